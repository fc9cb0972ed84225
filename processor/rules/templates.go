package rules

import (
	"fmt"
	"math"
	"strings"
	"text/template"
	"time"
)

// templateFuncs are the annotation helpers Prometheus users know from
// alerting rules, so `{{ .Value | humanizePercentage }}` reads the same here.
var templateFuncs = template.FuncMap{
	"humanize":           humanize,
	"humanizePercentage": func(v float64) string { return fmt.Sprintf("%.4g%%", v*100) },
	"humanizeDuration":   humanizeDuration,
	"toUpper":            strings.ToUpper,
	"toLower":            strings.ToLower,
}

func humanize(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v)
	}
	abs := math.Abs(v)
	for _, u := range []struct {
		f float64
		s string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if abs >= u.f {
			return fmt.Sprintf("%.4g%s", v/u.f, u.s)
		}
	}
	return fmt.Sprintf("%.4g", v)
}

// humanizeDuration renders seconds as "7d 2h 3m 4s", dropping zero parts.
func humanizeDuration(seconds float64) string {
	if seconds < 1 {
		return fmt.Sprintf("%.4gs", seconds)
	}
	d := time.Duration(seconds * float64(time.Second)).Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	parts := []string{}
	if days > 0 {
		parts = append(parts, fmt.Sprintf("%dd", days))
	}
	for _, u := range []struct {
		d time.Duration
		s string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", n, u.s))
			d -= n * u.d
		}
	}
	return strings.Join(parts, " ")
}
