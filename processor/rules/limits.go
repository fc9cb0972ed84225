package rules

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits a rules file must respect (docs/limits.md, "Rules"). They keep
// every rule's cost and every sum of event times and durations bounded, so
// a file that passes `rules check` cannot hang or overflow the engine.
const (
	// MinWindow is the shortest window of a drop, threshold or ratio rule.
	MinWindow = time.Second
	// MaxBaselineBuckets is how many windows a drop rule's baseline may
	// reach back: baseline.windows, or season/window × seasons. Each group
	// keeps one value per such window.
	MaxBaselineBuckets = 10_000
	// MaxAttempts is the largest max_attempts of a resend policy.
	MaxAttempts = 100
)

// durationPaths are the rule and policy fields holding a Duration, as
// field paths. They are parsed before the mapping is decoded so that an
// error names the field (yaml.v3 would only give a line number).
var durationPaths = []string{
	"idle_for", "window", "within", "keep_firing_for", "for", "baseline.season",
	"undelivered_after", "backoff.initial", "backoff.max", "frequency_cap.per",
}

// checkDurations parses the duration fields at paths of a mapping and
// reports the ones that are not durations within MaxDuration.
func checkDurations(n *yaml.Node, paths ...string) error {
	var errs []error
	for _, path := range paths {
		v := lookup(n, path)
		if v == nil || v.Kind != yaml.ScalarNode {
			continue
		}
		if path == "for" && v.ShortTag() == "!!int" {
			continue // a number of windows
		}
		if _, err := ParseDuration(v.Value); err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

// lookup finds the value at a dotted path of mapping keys, or nil.
func lookup(n *yaml.Node, path string) *yaml.Node {
	for key := range strings.SplitSeq(path, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// nonFinite lists the float64 fields (plain or pointer, in nested structs
// too) of a decoded rule or policy that hold NaN or ±Inf, by field path.
// It reads the yaml tags, so a parameter added later is checked without
// being listed here.
func nonFinite(v reflect.Value, prefix string) []string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	var bad []string
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			bad = append(bad, prefix)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if !sf.IsExported() || name == "" || name == "-" {
				continue
			}
			if prefix != "" {
				name = prefix + "." + name
			}
			bad = append(bad, nonFinite(v.Field(i), name)...)
		}
	}
	return bad
}

// checkFinite reports every non-finite number of a decoded rule or policy.
func checkFinite(x any, fail func(field, format string, args ...any)) {
	for _, f := range nonFinite(reflect.ValueOf(x), "") {
		fail(f, "must be a finite number")
	}
}

// checkWindow refuses a window below MinWindow.
func checkWindow(field string, d Duration, fail func(field, format string, args ...any)) {
	if d > 0 && d.D() < MinWindow {
		fail(field, "%s is shorter than the minimum window %s", d.D(), MinWindow)
	}
}
