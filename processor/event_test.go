package processor_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const eventRules = `
version: 1
defaults: {allowed_lateness: 30m}
rules:
  - name: big_order
    kind: event
    source: interactions
    match: {type: [purchase]}
    group_by: [tenant, customer_id]
    lasts: 2h
  - name: bounced
    kind: event
    source: receipts
    match: {status: [hard_bounce]}
    group_by: [tenant, customer_id]
`

func TestEvent(t *testing.T) {
	buy := func(cust, when string) step { return ev("purchase", cust, when) }
	tests := []struct {
		name  string
		steps []step
		want  []brief
	}{
		{
			name:  "a matching record fires at once for its group, starts_at = its occurred_at, value 1",
			steps: []step{buy("c1", "10:00")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("10:00"), Value: 1}},
		},
		{
			name:  "records that do not match fire nothing",
			steps: []step{ev("visit", "c1", "10:00"), wm("20:00")},
		},
		{
			name:  "each group fires on its own",
			steps: []step{buy("c1", "10:00"), buy("c2", "10:05")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("10:00"), Value: 1}, {State: "firing", Key: "c2", Starts: o("10:05"), Value: 1}},
		},
		{
			name:  "it resolves when the watermark passes the latest occurred_at + lasts, with that instant as ends_at",
			steps: []step{buy("c1", "10:00"), wm("11:59"), wm("12:00")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("10:00"), Value: 1}, {State: "resolved", Key: "c1", Starts: o("10:00"), Ends: o("12:00"), Value: 1}},
		},
		{
			name: "a further matching record while firing does not fire again, counts, and keeps it firing until lasts after the latest",
			steps: []step{buy("c1", "10:00"), buy("c1", "11:00"), wm("12:00"), buy("c1", "12:30"), wm("13:00"), wm("14:29"),
				wm("14:30")},
			want: []brief{{State: "firing", Key: "c1", Starts: o("10:00"), Value: 1},
				{State: "resolved", Key: "c1", Starts: o("10:00"), Ends: o("14:30"), Value: 3}},
		},
		{
			name:  "a record within the lateness but older than the latest counts without moving the end",
			steps: []step{buy("c1", "10:00"), buy("c1", "11:00"), buy("c1", "10:30"), wm("13:00")},
			want: []brief{{State: "firing", Key: "c1", Starts: o("10:00"), Value: 1},
				{State: "resolved", Key: "c1", Starts: o("10:00"), Ends: o("13:00"), Value: 3}},
		},
		{
			name:  "after resolving, the next matching record fires anew",
			steps: []step{buy("c1", "10:00"), wm("12:00"), buy("c1", "12:00")},
			want: []brief{{State: "firing", Key: "c1", Starts: o("10:00"), Value: 1},
				{State: "resolved", Key: "c1", Starts: o("10:00"), Ends: o("12:00"), Value: 1},
				{State: "firing", Key: "c1", Starts: o("12:00"), Value: 1}},
		},
		{
			name:  "lasts defaults to 24h",
			steps: []step{rc("m1", "c1", "hard_bounce", "10:00"), wm("33h59m"), wm("34h")},
			want: []brief{{State: "firing", Key: "c1", Starts: o("10:00"), Value: 1},
				{State: "resolved", Key: "c1", Starts: o("10:00"), Ends: o("34h"), Value: 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, eventRules, tc.steps...)
			require.Equal(t, tc.want, briefs(out, "customer_id"))
			for _, a := range out.Alerts {
				require.Equal(t, "event", a.Kind)
				require.Zero(t, a.Threshold, "threshold 0")
				require.Nil(t, a.WindowStart, "window fields null")
				require.Nil(t, a.WindowEnd)
			}
		})
	}
}
