package processor_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor/rules"
)

// withOpts adds lifecycle options to the first rule of a rules document.
func withOpts(doc string, opts ...string) string {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "- name:") {
			indent := strings.Repeat(" ", strings.Index(l, "-")+2)
			var add []string
			for _, o := range opts {
				add = append(add, indent+o)
			}
			lines = append(lines[:i+1], append(add, lines[i+1:]...)...)
			break
		}
	}
	return strings.Join(lines, "\n")
}

func TestLifecycleOptions(t *testing.T) {
	c := func(when string) step { return ev("complaint", "c1", when) }
	burst := []step{c("10:00"), c("10:20"), c("10:40")} // count 3 over 1h at 10:40; falls to 2 at 11:00
	tests := []struct {
		name  string
		rules string
		label string
		steps []step
		want  []brief
	}{
		{
			name:  "threshold for: pending until the condition held for the duration; starts_at is when it began",
			rules: withOpts(burstRules, "for: 10m"),
			steps: append(burst, wm("10:49"), wm("10:50")),
			want:  []brief{{State: "firing", Key: "apac", Starts: o("10:40"), Value: 3}},
		},
		{
			name:  "threshold for: a condition that stops before for elapses never fires",
			rules: withOpts(burstRules, "for: 30m"),
			steps: append(burst, wm("12:00")),
		},
		{
			name:  "threshold keep_firing_for: resolves keep_firing_for after the condition stopped",
			rules: withOpts(burstRules, "keep_firing_for: 15m"),
			steps: append(burst, wm("11:14"), wm("11:15")),
			want: []brief{
				{State: "firing", Key: "apac", Starts: o("10:40"), Value: 3},
				{State: "resolved", Key: "apac", Starts: o("10:40"), Ends: o("11:15"), Value: 2},
			},
		},
		{
			name:  "threshold keep_firing_for: holding again within it cancels the resolution",
			rules: withOpts(burstRules, "keep_firing_for: 15m"),
			steps: append(burst, wm("11:04"), c("11:05"), wm("12:00")),
			want: []brief{
				{State: "firing", Key: "apac", Starts: o("10:40"), Value: 3},
				{State: "resolved", Key: "apac", Starts: o("10:40"), Ends: o("11:35"), Value: 2},
			},
		},
		{
			name:  "threshold resolve_threshold: hysteresis keeps it firing until the value crosses the resolve level",
			rules: withOpts(burstRules, "resolve_threshold: 1"),
			steps: append(burst, wm("12:00")),
			want: []brief{
				{State: "firing", Key: "apac", Starts: o("10:40"), Value: 3},
				{State: "resolved", Key: "apac", Starts: o("10:40"), Ends: o("11:20"), Value: 1},
			},
		},
		{
			name:  "drop resolve_threshold (a percentage): stays firing while below baseline × (1 − 20%)",
			rules: withOpts(dropRules, "resolve_threshold: 20"),
			label: "segment",
			steps: []step{buy("00:10", 100), buy("01:10", 100), buy("02:10", 100), buy("03:10", 40), buy("04:10", 60), buy("05:10", 100), wm("06:00")},
			want: []brief{
				{State: "firing", Key: "smb", Starts: o("04:00"), Value: 40},
				{State: "resolved", Key: "smb", Starts: o("04:00"), Ends: o("06:00"), Value: 100},
			},
		},
		{
			name:  "drop without resolve_threshold resolves on the first window above the bound",
			label: "segment",
			steps: []step{buy("00:10", 100), buy("01:10", 100), buy("02:10", 100), buy("03:10", 40), buy("04:10", 60), buy("05:10", 100), wm("06:00")},
			want: []brief{
				{State: "firing", Key: "smb", Starts: o("04:00"), Value: 40},
				{State: "resolved", Key: "smb", Starts: o("04:00"), Ends: o("05:00"), Value: 60},
			},
		},
		{
			name:  "drop keep_firing_for: a non-breaching window within it does not resolve",
			rules: withOpts(dropRules, "keep_firing_for: 2h"),
			label: "segment",
			steps: []step{buy("00:10", 100), buy("01:10", 100), buy("02:10", 100), buy("03:10", 10), buy("04:10", 100), buy("05:10", 100), buy("06:10", 100), wm("07:00")},
			want: []brief{
				{State: "firing", Key: "smb", Starts: o("04:00"), Value: 10},
				{State: "resolved", Key: "smb", Starts: o("04:00"), Ends: o("07:00"), Value: 100},
			},
		},
		{
			name:  "ratio for: 2 consecutive breaching windows",
			rules: withOpts(ratioRules, "for: 2"),
			label: "provider",
			steps: ratioHours([]int{3, 3, 0}, 4),
			want: []brief{
				{State: "firing", Key: "twilio", Starts: o("01:00"), Value: 0.75},
				{State: "resolved", Key: "twilio", Starts: o("01:00"), Ends: o("03:00"), Value: 0},
			},
		},
		{
			name:  "ratio for: an empty window breaks the streak",
			rules: withOpts(ratioRules, "for: 2h"),
			label: "provider",
			steps: ratioHours([]int{3, -1, 3}, 4),
		},
		{
			name:  "ratio keep_firing_for",
			rules: withOpts(ratioRules, "keep_firing_for: 1h"),
			label: "provider",
			steps: ratioHours([]int{3, 0, 3, 0, 0}, 4),
			want: []brief{
				{State: "firing", Key: "twilio", Starts: o("01:00"), Value: 0.75},
				{State: "resolved", Key: "twilio", Starts: o("01:00"), Ends: o("05:00"), Value: 0},
			},
		},
		{
			name:  "inactivity for: fires for after idle_for, with starts_at at idle_for",
			rules: withOpts(churnRules, "for: 1h"),
			label: "customer_id",
			steps: []step{ev("login", "c1", "10:00"), wm("12:59"), wm("13:00")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("12:00"), Value: 10800}},
		},
		{
			name:  "inactivity for: activity while pending means no alert at all",
			rules: withOpts(churnRules, "for: 1h"),
			label: "customer_id",
			steps: []step{ev("login", "c1", "10:00"), wm("12:30"), ev("login", "c1", "12:30"), wm("14:00")},
		},
		{
			name:  "absence for",
			rules: withOpts(absenceRules, "for: 30m"),
			label: "ticket_id",
			steps: []step{ev("complaint", "c1", "10:00", attr("ticket_id", "t1")), wm("12:29"), wm("12:30")},
			want:  []brief{{State: "firing", Key: "t1", Starts: o("12:00"), Value: 9000}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rules
			if r == "" {
				r = dropRules
			}
			label := tc.label
			if label == "" {
				label = "region"
			}
			require.Equal(t, tc.want, briefs(run(t, r, tc.steps...), label))
		})
	}
}

// ratioHours makes hour h of the scenario: 4 sends and fails[h] failures;
// -1 leaves the hour empty. The watermark ends after the last hour.
func ratioHours(fails []int, sends int) []step {
	var s []step
	for h, f := range fails {
		if f < 0 {
			continue
		}
		at := hm(h, 10)
		for i := 0; i < sends; i++ {
			s = append(s, rc("s"+itoa(h)+"_"+itoa(i), "c1", "sent", at, provider("twilio")))
		}
		for i := 0; i < f; i++ {
			s = append(s, rc("s"+itoa(h)+"_"+itoa(i), "c1", "failed", hm(h, 20), provider("twilio")))
		}
	}
	return append(s, wm(hm(len(fails), 0)))
}

func TestLifecycleValidation(t *testing.T) {
	tests := []struct {
		name, rules, want string
	}{
		{"for on drop must be a multiple of window", withOpts(dropRules, "for: 90m"), "multiple of window"},
		{"for on threshold must be a duration", withOpts(burstRules, "for: 3"), "positive duration"},
		{"keep_firing_for is not an inactivity option", withOpts(churnRules, "keep_firing_for: 1h"), "field keep_firing_for: unknown field"},
		{"resolve_threshold must be on the other side", withOpts(burstRules, "resolve_threshold: 5"), "hysteresis"},
		{"drop resolve_threshold below drop_pct", withOpts(dropRules, "resolve_threshold: 60"), "below drop_pct"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rules.Parse([]byte(tc.rules))
			require.ErrorContains(t, err, tc.want)
		})
	}
}
