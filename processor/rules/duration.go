package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in Go syntax plus the day (d) and
// week (w) units that analysts use for churn and baselines: "90d", "2w",
// "1d12h".
type Duration time.Duration

// ParseDuration parses Go duration syntax extended with d (24h) and w (7d).
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	// Peel leading day/week components off so time.ParseDuration sees the rest.
	for {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9') {
			i++
		}
		if i == 0 || i == len(s) || (s[i] != 'd' && s[i] != 'w') {
			break
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
		unit := 24 * time.Hour
		if s[i] == 'w' {
			unit = 7 * 24 * time.Hour
		}
		total += time.Duration(n) * unit
		s = s[i+1:]
		if s == "" {
			return total, nil
		}
	}
	if strings.ContainsAny(s, "dw") {
		return 0, fmt.Errorf("invalid duration %q: d and w must come first", orig)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", orig)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", orig)
	}
	return total + d, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string {
	v := time.Duration(d)
	if v != 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}
