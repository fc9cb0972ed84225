package processor_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const absenceRules = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - name: unresolved_complaint
    kind: absence
    source: interactions
    start: {type: [complaint]}
    stop: {type: [complaint_resolved]}
    correlate: [tenant, customer_id, attributes.ticket_id]
    within: 2h
`

func TestAbsence(t *testing.T) {
	open := func(when, ticket string) step { return ev("complaint", "c1", when, attr("ticket_id", ticket)) }
	closeT := func(when, ticket string) step { return ev("complaint_resolved", "c1", when, attr("ticket_id", ticket)) }
	tests := []struct {
		name  string
		steps []step
		want  []brief
	}{
		{
			name:  "fires when the watermark passes start + within with no stop",
			steps: []step{open("10:00", "t1"), wm("11:59"), wm("12:00")},
			want:  []brief{{State: "firing", Key: "t1", Starts: o("12:00"), Value: 7200}},
		},
		{
			name:  "a stop in time prevents it",
			steps: []step{open("10:00", "t1"), closeT("11:00", "t1"), wm("13:00")},
		},
		{
			name:  "a stop arriving later resolves it",
			steps: []step{open("10:00", "t1"), wm("12:00"), closeT("12:30", "t1")},
			want: []brief{
				{State: "firing", Key: "t1", Starts: o("12:00"), Value: 7200},
				{State: "resolved", Key: "t1", Starts: o("12:00"), Ends: o("12:30"), Value: 9000},
			},
		},
		{
			name:  "a repeated start while one is open changes nothing",
			steps: []step{open("10:00", "t1"), open("11:00", "t1"), wm("12:00")},
			want:  []brief{{State: "firing", Key: "t1", Starts: o("12:00"), Value: 7200}},
		},
		{
			name:  "a stop earlier than the start does not correlate",
			steps: []step{open("10:00", "t1"), closeT("09:30", "t1"), wm("12:00")},
			want:  []brief{{State: "firing", Key: "t1", Starts: o("12:00"), Value: 7200}},
		},
		{
			name:  "a stop at the same instant as the start correlates",
			steps: []step{open("10:00", "t1"), closeT("10:00", "t1"), wm("12:00")},
		},
		{
			name:  "correlation keys are independent",
			steps: []step{open("10:00", "t1"), open("10:30", "t2"), closeT("11:00", "t1"), wm("13:00")},
			want:  []brief{{State: "firing", Key: "t2", Starts: o("12:30"), Value: 7200}},
		},
		{
			name:  "after a stop a new start opens a new correlation",
			steps: []step{open("10:00", "t1"), closeT("10:10", "t1"), open("11:00", "t1"), wm("13:00")},
			want:  []brief{{State: "firing", Key: "t1", Starts: o("13:00"), Value: 7200}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, briefs(run(t, absenceRules, tc.steps...), "ticket_id"))
		})
	}
}

// TestAbsenceEdges: the timer of an open start is due at start + within
// and fires when the watermark reaches it, not a second before.
func TestAbsenceEdges(t *testing.T) {
	open := func(when, ticket string) step { return ev("complaint", "c1", when, attr("ticket_id", ticket)) }
	tests := []struct {
		name  string
		steps []step
		want  []brief
	}{
		{
			name:  "one second before start + within nothing fires",
			steps: []step{open("10:00", "t1"), wm("11h59m59s")},
		},
		{
			name:  "the watermark exactly at start + within fires",
			steps: []step{open("10:00", "t1"), wm("11h59m59s"), wm("12:00")},
			want:  []brief{{State: "firing", Key: "t1", Starts: o("12:00"), Value: 7200}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, briefs(run(t, absenceRules, tc.steps...), "ticket_id"))
		})
	}
}
