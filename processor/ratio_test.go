package processor_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const ratioRules = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - name: sms_failure_rate
    kind: ratio
    source: receipts
    match: {channel: [sms]}
    group_by: [tenant, provider]
    window: 1h
    numerator: {status: [failed, soft_bounce]}
    denominator: {status: [sent]}
    op: ">"
    threshold: 0.5
    min_denominator: 4
`

func TestRatio(t *testing.T) {
	sends := func(h string, n int) []step {
		var s []step
		for i := 0; i < n; i++ {
			s = append(s, rc("m"+h+itoa(i), "c1", "sent", h, provider("twilio")))
		}
		return s
	}
	fails := func(h string, n int) []step {
		var s []step
		for i := 0; i < n; i++ {
			s = append(s, rc("m"+h+itoa(i), "c1", "failed", h, provider("twilio")))
		}
		return s
	}
	cat := func(parts ...[]step) []step {
		var s []step
		for _, p := range parts {
			s = append(s, p...)
		}
		return s
	}
	tests := []struct {
		name  string
		steps []step
		want  []brief
	}{
		{
			name:  "fires on a final window whose ratio breaches",
			steps: cat(sends("00:10", 4), fails("00:20", 3), []step{wm("01:00")}),
			want:  []brief{{State: "firing", Key: "twilio", Starts: o("01:00"), Value: 0.75}},
		},
		{
			name:  "not before the window is final",
			steps: cat(sends("00:10", 4), fails("00:20", 3), []step{wm("00:59")}),
		},
		{
			name:  "no breach below min_denominator",
			steps: cat(sends("00:10", 3), fails("00:20", 3), []step{wm("01:00")}),
		},
		{
			name:  "resolves on the first final window without a breach",
			steps: cat(sends("00:10", 4), fails("00:20", 3), sends("01:10", 4), fails("01:20", 1), []step{wm("03:00")}),
			want: []brief{
				{State: "firing", Key: "twilio", Starts: o("01:00"), Value: 0.75},
				{State: "resolved", Key: "twilio", Starts: o("01:00"), Ends: o("02:00"), Value: 0.25},
			},
		},
		{
			name:  "an empty window after a breach resolves it",
			steps: cat(sends("00:10", 4), fails("00:20", 3), []step{wm("05:00")}),
			want: []brief{
				{State: "firing", Key: "twilio", Starts: o("01:00"), Value: 0.75},
				{State: "resolved", Key: "twilio", Starts: o("01:00"), Ends: o("02:00"), Value: 0},
			},
		},
		{
			name:  "receipts outside match are ignored",
			steps: cat(sends("00:10", 4), []step{rc("x", "c1", "failed", "00:20", channel("email"))}, fails("00:20", 2), []step{wm("01:00")}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, briefs(run(t, ratioRules, tc.steps...), "provider"))
		})
	}
}

// TestRatioEdges: a window [start, end) is final when the watermark
// reaches end, not a second before, and an event at end belongs to the
// next window.
func TestRatioEdges(t *testing.T) {
	receipts := func(status, when string, n int) []step {
		var s []step
		for i := 0; i < n; i++ {
			s = append(s, rc("m"+status+when+itoa(i), "c1", status, when, provider("twilio")))
		}
		return s
	}
	breach := append(receipts("sent", "00:10", 4), receipts("failed", "00:20", 3)...)
	tests := []struct {
		name  string
		steps []step
		want  []brief
	}{
		{
			name:  "one second before the window's end it is not final",
			steps: append(append([]step{}, breach...), wm("59m59s")),
		},
		{
			name:  "the watermark exactly at the window's end makes it final",
			steps: append(append([]step{}, breach...), wm("59m59s"), wm("01:00")),
			want:  []brief{{State: "firing", Key: "twilio", Starts: o("01:00"), Value: 0.75}},
		},
		{
			name: "failures one second before the end count in the window, failures at the end in the next",
			steps: append(append(receipts("sent", "00:10", 4), append(receipts("failed", "59m59s", 2), receipts("failed", "01:00", 1)...)...),
				wm("01:00")),
		},
		{
			name:  "failures one second before the end tip it over",
			steps: append(append(receipts("sent", "00:10", 4), receipts("failed", "59m59s", 3)...), wm("01:00")),
			want:  []brief{{State: "firing", Key: "twilio", Starts: o("01:00"), Value: 0.75}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, briefs(run(t, ratioRules, tc.steps...), "provider"))
		})
	}
}
