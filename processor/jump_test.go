package processor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// These tests count the windows drop and ratio evaluate one by one when
// the watermark jumps a year over 1s windows: the cost must be the windows
// with data plus the baseline, not the 31 million empty windows between.
// The alerts pin that skipping changes nothing a window-by-window
// evaluation would give.

var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

const year = 365 * 24 * time.Hour

type jumpStep struct {
	at     time.Duration // an event at t0+at, or with wm a watermark
	wm     bool
	status string // receipts: the status; interactions otherwise
}

func feed(t *testing.T, yaml string, steps []jumpStep) (*Engine, []Alert) {
	t.Helper()
	f, err := rules.Parse([]byte(yaml))
	require.NoError(t, err)
	e, err := New(Config{Rules: f})
	require.NoError(t, err)
	for i, s := range steps {
		when := t0.Add(s.at)
		switch {
		case s.wm:
			e.Advance(when)
		case s.status != "":
			require.NoError(t, e.Receipt(&ingest.Receipt{ReceiptID: "r" + itoa(i), MessageID: "m" + itoa(i), CustomerID: "c1",
				Channel: "sms", Status: s.status, Attempt: 1, Tenant: "acme", OccurredAt: when}))
		default:
			require.NoError(t, e.Interaction(&ingest.Interaction{EventID: "e" + itoa(i), Type: "purchase", CustomerID: "c1",
				Tenant: "acme", OccurredAt: when}))
		}
		if !s.wm {
			e.AdvanceFromEvents() // as replay does after every record
		}
	}
	return e, e.Output().Alerts
}

func itoa(i int) string { return time.Duration(i).String() }

type span struct{ state, starts, ends string }

func spans(as []Alert) []span {
	var out []span
	for _, a := range as {
		s := span{state: a.State, starts: a.StartsAt.Sub(t0).String()}
		if a.EndsAt != nil {
			s.ends = a.EndsAt.Sub(t0).String()
		}
		out = append(out, s)
	}
	return out
}

const dropJump = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - {name: d, kind: drop, source: interactions, group_by: [tenant], window: 1s, value: count,
     baseline: {windows: 3}, drop_pct: 50, min_baseline: 1%s}
`

func TestDropWatermarkJump(t *testing.T) {
	three := []jumpStep{{at: 0}, {at: time.Second}, {at: 2 * time.Second}}
	tests := []struct {
		name      string
		kff       string
		steps     []jumpStep
		want      []span
		maxEvals  int64
		forgotten bool
	}{
		{
			name:  "a jump with data a year later evaluates only the windows near data",
			steps: append(three, jumpStep{at: year}, jumpStep{at: year + time.Second}, jumpStep{at: year + 10*time.Second, wm: true}),
			// window 3 is empty against a baseline of 1: fires; window 4's
			// baseline of 2/3 is under min_baseline: resolves.
			want:     []span{{"firing", "4s", ""}, {"resolved", "4s", "5s"}},
			maxEvals: 30,
		},
		{
			name:      "a jump without data forgets the group after its zero baseline",
			steps:     append(three, jumpStep{at: year, wm: true}),
			want:      []span{{"firing", "4s", ""}, {"resolved", "4s", "5s"}},
			maxEvals:  30,
			forgotten: true,
		},
		{
			name:  "a firing group with keep_firing_for resolves when it ends, without walking to it",
			kff:   ", keep_firing_for: 30d",
			steps: append(three, jumpStep{at: year, wm: true}),
			// window 4 (ending at 5s) is the first that does not breach.
			want:     []span{{"firing", "4s", ""}, {"resolved", "4s", (5*time.Second + 30*24*time.Hour).String()}},
			maxEvals: 30,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yaml := dropJump
			yaml = yaml[:len(yaml)-len("%s}\n")] + tc.kff + "}\n"
			e, alerts := feed(t, yaml, tc.steps)
			require.Equal(t, tc.want, spans(alerts))
			d := e.comps[0].(*drop)
			require.LessOrEqual(t, d.evals, tc.maxEvals, "windows evaluated one by one")
			if tc.forgotten {
				require.Zero(t, d.StateKeys())
				require.Contains(t, d.forgotten, "acme")
			}
		})
	}
}

// TestDropJumpMatchesStepByStep feeds the same records once with one
// watermark jump and once with the watermark moved every window: the
// alerts must be the same.
func TestDropJumpMatchesStepByStep(t *testing.T) {
	yaml := dropJump[:len(dropJump)-len("%s}\n")] + ", keep_firing_for: 20s}\n"
	events := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 40 * time.Second, 41 * time.Second,
		42 * time.Second, 100 * time.Second, 101 * time.Second, 102 * time.Second, 103 * time.Second, 104 * time.Second}
	var jump, walk []jumpStep
	for _, at := range events {
		jump = append(jump, jumpStep{at: at})
	}
	jump = append(jump, jumpStep{at: 200 * time.Second, wm: true})
	for s := time.Duration(0); s <= 200*time.Second; s += time.Second {
		for _, at := range events {
			if at >= s && at < s+time.Second {
				walk = append(walk, jumpStep{at: at})
			}
		}
		walk = append(walk, jumpStep{at: s, wm: true})
	}
	// Neither feed advances from events when the test controls the watermark.
	_, a := feed(t, yaml, jump)
	_, b := feed(t, yaml, walk)
	require.NotEmpty(t, a)
	require.Equal(t, spans(b), spans(a))
}

func TestRatioWatermarkJump(t *testing.T) {
	const yaml = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - {name: r, kind: ratio, source: receipts, group_by: [tenant], window: 1s, numerator: {status: [failed]},
     denominator: {status: [sent]}, op: '>', threshold: 0.5, keep_firing_for: 30d}
`
	e, alerts := feed(t, yaml, []jumpStep{
		{at: 0, status: "sent"}, {at: 0, status: "failed"}, // ratio 1 in window 0: fires at 1s
		{at: year, wm: true},
	})
	// The first empty window (ending at 2s) starts clearing; it resolves
	// when keep_firing_for is over.
	require.Equal(t, []span{{"firing", "1s", ""}, {"resolved", "1s", (2*time.Second + 30*24*time.Hour).String()}}, spans(alerts))
	r := e.comps[0].(*ratio)
	require.LessOrEqual(t, r.evals, int64(5))
	require.Zero(t, r.StateKeys())
}
