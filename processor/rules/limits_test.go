package rules

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseDurationLimits(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		err  string // substring of the error; "" when accepted
	}{
		{"the maximum in days is accepted", "3650d", MaxDuration, ""},
		{"the maximum in hours is accepted", "87600h", MaxDuration, ""},
		{"the maximum as weeks, days and hours is accepted", "521w2d24h", MaxDuration, ""},
		{"one day more is refused", "3651d", 0, "longer than the maximum 3650d"},
		{"one nanosecond more is refused", "3650d1ns", 0, "longer than the maximum 3650d"},
		{"one nanosecond more in hours is refused", "87600h1ns", 0, "longer than the maximum 3650d"},
		{"100000w is refused, not wrapped", "100000w", 0, "longer than the maximum 3650d"},
		{"a day count beyond int64 is refused", "99999999999999999999d", 0, "longer than the maximum 3650d"},
		{"weeks that would overflow when multiplied are refused", "15250284452471w", 0, "longer than the maximum 3650d"},
		{"many components summing past the maximum are refused", "3000d3000d", 0, "longer than the maximum 3650d"},
		{"an int64-overflowing Go duration is refused", "9223372036854775808ns", 0, "invalid duration"},
		{"hours beyond int64 are refused", "99999999999999h", 0, "invalid duration"},
		{"zero is a duration (positivity is the field's check)", "0s", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// rule builds a one-rule file from a flow mapping's fields.
func rule(fields string) string { return head + "  - {name: r, " + fields + "}\n" }

const (
	thr   = "kind: threshold, source: interactions, group_by: [tenant], value: count, op: '>', "
	drp   = "kind: drop, source: interactions, group_by: [tenant], value: count, drop_pct: 50, "
	rat   = "kind: ratio, source: receipts, group_by: [tenant], numerator: {status: [failed]}, denominator: {status: [sent]}, op: '>', "
	inact = "kind: inactivity, source: interactions, key: [customer_id], "
	pol   = "version: 1\nresend:\n  - {name: p, channel: sms, on: [failed], "
)

func TestParseLimits(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		err  []string // substrings of the error; nil when accepted
	}{
		// non-finite numbers
		{"threshold .inf is refused", rule(thr + "window: 1h, threshold: .inf"), []string{`rule "r"`, "field threshold: must be a finite number"}},
		{"threshold -.inf is refused", rule(thr + "window: 1h, threshold: -.inf"), []string{`rule "r"`, "field threshold: must be a finite number"}},
		{"threshold .nan is refused", rule(thr + "window: 1h, threshold: .nan"), []string{`rule "r"`, "field threshold: must be a finite number"}},
		{"the largest finite threshold is accepted", rule(thr + fmt.Sprintf("window: 1h, threshold: %g", math.MaxFloat64)), nil},
		{"resolve_threshold .nan is refused", rule(thr + "window: 1h, threshold: 5, resolve_threshold: .nan"), []string{"field resolve_threshold: must be a finite number"}},
		{"drop_pct .nan is refused", rule(strings.Replace(drp, "drop_pct: 50", "drop_pct: .nan", 1) + "window: 1h, baseline: {windows: 3}"), []string{"field drop_pct: must be a finite number"}},
		{"min_baseline .inf is refused", rule(drp + "window: 1h, baseline: {windows: 3}, min_baseline: .inf"), []string{"field min_baseline: must be a finite number"}},
		{"min_denominator .nan is refused", rule(rat + "window: 1h, threshold: 0.5, min_denominator: .nan"), []string{"field min_denominator: must be a finite number"}},
		{"backoff multiplier .inf is refused", pol + "max_attempts: 3, backoff: {initial: 1m, multiplier: .inf}}\n", []string{`resend policy "p"`, "field backoff.multiplier: must be a finite number"}},
		{"backoff multiplier .nan is refused", pol + "max_attempts: 3, backoff: {initial: 1m, multiplier: .nan}}\n", []string{"field backoff.multiplier: must be a finite number"}},

		// windows
		{"a threshold window of exactly 1s is accepted", rule(thr + "window: 1s, threshold: 1"), nil},
		{"a threshold window of 999ms is refused", rule(thr + "window: 999ms, threshold: 1"), []string{`rule "r"`, "field window: 999ms is shorter than the minimum window 1s"}},
		{"a drop window of 1us is refused", rule(drp + "window: 1us, baseline: {windows: 3}"), []string{"field window", "shorter than the minimum window 1s"}},
		{"a ratio window of 1ns is refused", rule(rat + "window: 1ns, threshold: 0.5"), []string{"field window", "shorter than the minimum window 1s"}},
		{"a ratio window of exactly 1s is accepted", rule(rat + "window: 1s, threshold: 0.5"), nil},
		{"a threshold window of the maximum duration is accepted", rule(thr + "window: 3650d, threshold: 1"), nil},
		{"a threshold window of 100000d is refused", rule(thr + "window: 100000d, threshold: 1"), []string{`rule "r"`, "field window", "longer than the maximum 3650d"}},
		{"a threshold window one second over the maximum is refused", rule(thr + "window: 87600h1s, threshold: 1"), []string{"field window", "longer than the maximum 3650d"}},

		// baseline buckets
		{"a baseline of exactly the bucket limit is accepted", rule(drp + "window: 1h, baseline: {windows: 10000}"), nil},
		{"a baseline one bucket over the limit is refused", rule(drp + "window: 1h, baseline: {windows: 10001}"), []string{"field baseline.windows: 10001 windows is more than the limit of 10000"}},
		{"a seasonal baseline of exactly the bucket limit is accepted", rule(drp + "window: 1s, baseline: {season: 2000s, seasons: 5}"), nil},
		{"a seasonal baseline one season over the limit is refused", rule(drp + "window: 1s, baseline: {season: 2000s, seasons: 6}"), []string{"field baseline", "12000 windows, more than the limit of 10000"}},
		{"a seasonal baseline that would overflow int is refused", rule(drp + "window: 1s, baseline: {season: 3650d, seasons: 9223372036854775807}"), []string{"field baseline", "more than the limit of 10000"}},

		// durations in every field
		{"idle_for 100000w is refused with its field", rule(inact + "idle_for: 100000w"), []string{`rule "r"`, "field idle_for", "longer than the maximum 3650d"}},
		{"idle_for of the maximum is accepted", rule(inact + "idle_for: 3650d"), nil},
		{"keep_firing_for over the maximum is refused", rule(thr + "window: 1h, threshold: 1, keep_firing_for: 3651d"), []string{"field keep_firing_for", "longer than the maximum"}},
		{"for over the maximum is refused", rule(thr + "window: 1h, threshold: 1, for: 3651d"), []string{"field for", "longer than the maximum"}},
		{"a number of windows for for is not a duration", rule(rat + "window: 1h, threshold: 0.5, for: 100000"), nil},
		{"baseline.season over the maximum is refused", rule(drp + "window: 1h, baseline: {season: 3651d, seasons: 1}"), []string{"field baseline.season", "longer than the maximum"}},
		{"within over the maximum is refused", rule("kind: absence, source: interactions, start: {type: [complaint]}, stop: {type: [complaint_resolved]}, correlate: [customer_id], within: 3651d"), []string{"field within", "longer than the maximum"}},
		{"allowed_lateness over the maximum is refused", "version: 1\ndefaults: {allowed_lateness: 3651d}\n", []string{"defaults: field allowed_lateness", "longer than the maximum"}},
		{"undelivered_after over the maximum is refused", "version: 1\nresend:\n  - {name: p, channel: sms, on: [undelivered], undelivered_after: 3651d, max_attempts: 3}\n", []string{`resend policy "p"`, "field undelivered_after", "longer than the maximum"}},
		{"backoff.initial over the maximum is refused", pol + "max_attempts: 3, backoff: {initial: 3651d}}\n", []string{"field backoff.initial", "longer than the maximum"}},
		{"backoff.max over the maximum is refused", pol + "max_attempts: 3, backoff: {initial: 1m, max: 3651d}}\n", []string{"field backoff.max", "longer than the maximum"}},
		{"frequency_cap.per over the maximum is refused", pol + "max_attempts: 3, frequency_cap: {max: 1, per: 3651d}}\n", []string{"field frequency_cap.per", "longer than the maximum"}},

		// empty values found by FuzzParse: the rule would run without a comparison
		{"an empty op is refused", rule("kind: ratio, source: receipts, group_by: [provider], window: 1s, numerator: {status: [failed]}, denominator: {status: [sent]}, op: , threshold: 1"), []string{"field op: empty operator"}},
		{"an empty threshold is refused", rule(thr + "window: 1h, threshold: "), []string{"field threshold: must be a number"}},

		// attempts
		{"max_attempts at the limit is accepted", pol + "max_attempts: 100}\n", nil},
		{"max_attempts one over the limit is refused", pol + "max_attempts: 101}\n", []string{`resend policy "p"`, "field max_attempts: 101 is more than the limit of 100"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if tc.err == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.err {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestBackoffDelayNeverWraps(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		k    int
		want time.Duration
	}{
		{"a huge multiplier without max stops at MaxDuration", Backoff{Initial: Duration(time.Minute), Multiplier: 1e300}, 5, MaxDuration},
		{"many attempts without max stop at MaxDuration", Backoff{Initial: Duration(time.Minute), Multiplier: 2}, 1 << 30, MaxDuration},
		{"max still caps", Backoff{Initial: Duration(time.Minute), Multiplier: 2, Max: Duration(5 * time.Minute)}, 10, 5 * time.Minute},
		{"below the caps it is initial × multiplier^(k−1)", Backoff{Initial: Duration(time.Minute), Multiplier: 3}, 3, 9 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.b.Delay(tc.k))
		})
	}
}
