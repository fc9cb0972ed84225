package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxDuration is the longest duration a rules file may give anywhere
// (idle_for, window, within, for, keep_firing_for, baseline.season,
// allowed_lateness, backoff, frequency_cap.per, undelivered_after): 3650
// days, about ten years. Anything longer is a typo, and the engine adds
// durations to event times in int64 nanoseconds, which a longer duration
// could overflow.
const MaxDuration = 3650 * 24 * time.Hour

// maxDurationText is MaxDuration as the error messages write it.
const maxDurationText = "3650d"

// Duration is a time.Duration written in Go syntax plus the day (d) and
// week (w) units that analysts use for churn and baselines: "90d", "2w",
// "1d12h".
type Duration time.Duration

// ParseDuration parses Go duration syntax extended with d (24h) and w (7d).
// It refuses negative durations and durations beyond MaxDuration, checking
// before every addition so that no input can overflow and wrap.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	tooLong := func() error {
		return fmt.Errorf("invalid duration %q: longer than the maximum %s", orig, maxDurationText)
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
		unit := 24 * time.Hour
		if s[i] == 'w' {
			unit = 7 * 24 * time.Hour
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return 0, tooLong()
			}
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
		// n*unit and total+n*unit stay within MaxDuration, so neither the
		// product nor the sum can overflow.
		if n > int64((MaxDuration-total)/unit) {
			return 0, tooLong()
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
		// time.ParseDuration refuses values beyond int64 nanoseconds
		// itself, so this cannot wrap either.
		return 0, fmt.Errorf("invalid duration %q", orig)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", orig)
	}
	if d > MaxDuration-total {
		return 0, tooLong()
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
