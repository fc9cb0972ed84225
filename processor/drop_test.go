package processor_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const dropRules = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - name: revenue_drop
    kind: drop
    source: interactions
    match: {type: [purchase, refund]}
    severity: critical
    group_by: [tenant, segment]
    window: 1h
    value: sum(amount)
    baseline: {windows: 3}
    drop_pct: 50
    min_baseline: 10
`

func buy(when string, amt float64) step { return ev("purchase", "c1", when, amount(amt)) }

func TestDropWindowsBaseline(t *testing.T) {
	threeHundreds := []step{buy("00:10", 100), buy("01:10", 100), buy("02:10", 100)}
	tests := []struct {
		name  string
		rules string
		steps []step
		want  []brief
	}{
		{
			name:  "fires when the final window falls below baseline × (1 − drop_pct/100)",
			steps: append(threeHundreds, buy("03:10", 49), wm("04:00")),
			want:  []brief{{State: "firing", Key: "smb", Starts: o("04:00"), Value: 49}},
		},
		{
			name:  "exactly at the bound is not a breach",
			steps: append(threeHundreds, buy("03:10", 50), wm("04:00")),
		},
		{
			name:  "nothing is evaluated before the window is final",
			steps: append(threeHundreds, buy("03:10", 1), wm("03:59")),
		},
		{
			name:  "a group needs a full baseline before it can breach",
			steps: []step{buy("00:10", 100), buy("01:10", 100), wm("03:00")},
		},
		{
			name:  "refunds count negative",
			steps: append(threeHundreds, buy("03:10", 100), ev("refund", "c1", "03:20", amount(60)), wm("04:00")),
			want:  []brief{{State: "firing", Key: "smb", Starts: o("04:00"), Value: 40}},
		},
		{
			name: "revenue that stops entirely drops, and resolves once the baseline decays below min_baseline",
			// Windows 3,4,5 are empty: baselines 100, 66.7, 33.3 breach; window 6 has baseline 0 < 10.
			steps: append(threeHundreds, wm("12:00")),
			want: []brief{
				{State: "firing", Key: "smb", Starts: o("04:00"), Value: 0},
				{State: "resolved", Key: "smb", Starts: o("04:00"), Ends: o("07:00"), Value: 0},
			},
		},
		{
			name:  "resolves on the first final window that does not breach",
			steps: append(threeHundreds, buy("03:10", 10), buy("04:10", 100), wm("05:00")),
			want: []brief{
				{State: "firing", Key: "smb", Starts: o("04:00"), Value: 10},
				{State: "resolved", Key: "smb", Starts: o("04:00"), Ends: o("05:00"), Value: 100},
			},
		},
		{
			name: "a watermark that jumps many windows evaluates each in order",
			steps: append(threeHundreds, buy("03:10", 10), buy("04:10", 100), buy("05:10", 100),
				buy("06:10", 1), buy("07:10", 100), wm("23:00")),
			want: []brief{
				{State: "firing", Key: "smb", Starts: o("04:00"), Value: 10},
				{State: "resolved", Key: "smb", Starts: o("04:00"), Ends: o("05:00"), Value: 100},
				{State: "firing", Key: "smb", Starts: o("07:00"), Value: 1},
				{State: "resolved", Key: "smb", Starts: o("07:00"), Ends: o("08:00"), Value: 100},
				{State: "firing", Key: "smb", Starts: o("09:00"), Value: 0},
				{State: "resolved", Key: "smb", Starts: o("09:00"), Ends: o("12:00"), Value: 0},
			},
		},
		{
			name:  "for: fires on the for-th consecutive breach, starting at the first",
			rules: dropRulesFor2,
			steps: append(threeHundreds, buy("03:10", 10), buy("04:10", 10), wm("05:00")),
			want:  []brief{{State: "firing", Key: "smb", Starts: o("04:00"), Value: 10}},
		},
		{
			name:  "for: a breach streak broken before for does not fire",
			rules: dropRulesFor2,
			steps: append(threeHundreds, buy("03:10", 10), buy("04:10", 300), buy("05:10", 10), wm("06:00")),
		},
		{
			name:  "groups are independent",
			steps: append(threeHundreds, buy("03:10", 100), ev("purchase", "c9", "03:20", amount(5), seg("enterprise")), wm("04:00")),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dropRules
			if tc.rules != "" {
				r = tc.rules
			}
			out := run(t, r, tc.steps...)
			require.Equal(t, tc.want, briefs(out, "segment"))
		})
	}
}

const dropRulesFor2 = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - name: revenue_drop
    kind: drop
    source: interactions
    match: {type: [purchase, refund]}
    group_by: [tenant, segment]
    window: 1h
    value: sum(amount)
    baseline: {windows: 3}
    drop_pct: 50
    min_baseline: 10
    for: 2
`

func TestDropRecordFields(t *testing.T) {
	out := run(t, dropRules, buy("00:10", 100), buy("01:10", 100), buy("02:10", 100), buy("03:10", 40), wm("04:00"))
	require.Len(t, out.Alerts, 1)
	a := out.Alerts[0]
	require.Equal(t, 50.0, a.Threshold, "threshold is baseline × (1 − drop_pct/100)")
	require.Equal(t, o("03:00"), off(*a.WindowStart))
	require.Equal(t, o("04:00"), off(*a.WindowEnd))
	require.Equal(t, map[string]string{"alertname": "revenue_drop", "tenant": "acme", "segment": "smb"}, a.Labels)
}

func TestDropSeasonBaseline(t *testing.T) {
	rules := `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - name: hourly_drop
    kind: drop
    source: interactions
    group_by: [tenant]
    window: 1h
    value: count
    baseline: {season: 24h, seasons: 2}
    drop_pct: 50
    min_baseline: 5
`
	var steps []step
	for day, n := range []int{10, 10, 4} {
		for i := 0; i < n; i++ {
			steps = append(steps, ev("visit", "c1", hm(day*24+10, i)))
		}
	}
	steps = append(steps, wm("60h"))
	out := run(t, rules, steps...)
	// Only 10:00–11:00 has a baseline ≥ 5; on day 3 it is (10+10)/2 and 4 < 5.
	// Its first non-breaching window is the next hour, whose seasonal baseline is 0.
	require.Equal(t, []brief{
		{State: "firing", Key: "acme", Starts: o("59h"), Value: 4},
		{State: "resolved", Key: "acme", Starts: o("59h"), Ends: o("60h"), Value: 0},
	}, briefs(out, "tenant"))
}

// hm is hour h plus m minutes as an offset.
func hm(h, m int) string {
	return (durH(h) + durM(m)).String()
}

// TestDropForgettingIsInvisible: a group whose history is all zeros is
// dropped from memory; when it comes back, the result must be the same as
// if the watermark had not yet forgotten it.
func TestDropForgettingIsInvisible(t *testing.T) {
	before := []step{buy("00:10", 100), buy("01:10", 100), buy("02:10", 100)}
	// Revenue stops; by 09:00 the baseline has been zero for 3 windows.
	back := []step{buy("09:10", 300), buy("10:10", 10)}
	forgotten := run(t, dropRules, append(append(append([]step{}, before...), wm("09:00")), append(back, wm("11:00"))...)...)
	kept := run(t, dropRules, append(append(append([]step{}, before...), back...), wm("11:00"))...)
	require.Equal(t, briefs(kept, "segment"), briefs(forgotten, "segment"))
	// Baseline for 10:00 is (0 + 0 + 300) / 3 = 100, so 10 breaches.
	require.Contains(t, briefs(kept, "segment"), brief{State: "firing", Key: "smb", Starts: o("11:00"), Value: 10})
}
