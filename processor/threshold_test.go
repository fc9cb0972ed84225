package processor_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const burstRules = `
version: 1
defaults: {allowed_lateness: 10m}
rules:
  - name: complaint_burst
    kind: threshold
    source: interactions
    match: {type: [complaint]}
    group_by: [tenant, region]
    window: 1h
    value: count
    op: ">"
    threshold: 2
`

func TestThreshold(t *testing.T) {
	c := func(when string) step { return ev("complaint", "c1", when) }
	first := c("10:00")
	tests := []struct {
		name  string
		rules string
		steps []step
		want  []brief
	}{
		{
			name:  "fires the moment an event pushes the sliding value over",
			steps: []step{c("10:00"), c("10:20"), c("10:40")},
			want:  []brief{{State: "firing", Key: "apac", Starts: o("10:40"), Value: 3}},
		},
		{
			name:  "the window is (t − window, t]: an event exactly window ago is out",
			steps: []step{c("10:00"), c("10:30"), c("11:00")},
		},
		{
			name:  "duplicates that would push the count over are counted once",
			steps: []step{first, c("10:20"), dup(first)},
		},
		{
			name:  "while firing it does not fire again",
			steps: []step{c("10:00"), c("10:20"), c("10:40"), c("10:45"), c("10:50")},
			want:  []brief{{State: "firing", Key: "apac", Starts: o("10:40"), Value: 3}},
		},
		{
			name:  "resolves when the watermark moves past the expiry that breaks it; ends_at = occurred_at + window",
			steps: []step{c("10:00"), c("10:20"), c("10:40"), wm("10:59"), wm("11:30")},
			want: []brief{
				{State: "firing", Key: "apac", Starts: o("10:40"), Value: 3},
				{State: "resolved", Key: "apac", Starts: o("10:40"), Ends: o("11:00"), Value: 2},
			},
		},
		{
			name:  "an event between the fire and the expiry keeps it firing",
			steps: []step{c("10:00"), c("10:20"), c("10:40"), c("10:50"), wm("11:10"), wm("11:30")},
			want: []brief{
				{State: "firing", Key: "apac", Starts: o("10:40"), Value: 3},
				{State: "resolved", Key: "apac", Starts: o("10:40"), Ends: o("11:20"), Value: 2},
			},
		},
		{
			name:  "out of order within the allowed lateness: the late arrival completes the burst at the latest event",
			steps: []step{c("10:30"), c("10:31"), c("10:25")},
			want:  []brief{{State: "firing", Key: "apac", Starts: o("10:31"), Value: 3}},
		},
		{
			name:  "out of order beyond the allowed lateness is refused as late and not counted",
			steps: []step{c("10:30"), c("10:31"), wm("10:21"), late(c("10:20"))},
		},
		{
			name:  "fires again after resolving",
			steps: []step{c("10:00"), c("10:20"), c("10:40"), wm("11:30"), c("11:45"), c("11:46"), c("11:47")},
			want: []brief{
				{State: "firing", Key: "apac", Starts: o("10:40"), Value: 3},
				{State: "resolved", Key: "apac", Starts: o("10:40"), Ends: o("11:00"), Value: 2},
				{State: "firing", Key: "apac", Starts: o("11:47"), Value: 3},
			},
		},
		{
			name:  "distinct counts values, not events",
			rules: distinctRules,
			steps: []step{c("10:00"), c("10:10"), c("10:20"), ev("complaint", "c2", "10:30")},
		},
		{
			name:  "distinct fires on the third distinct customer",
			rules: distinctRules,
			steps: []step{c("10:00"), ev("complaint", "c2", "10:10"), c("10:20"), ev("complaint", "c3", "10:30")},
			want:  []brief{{State: "firing", Key: "apac", Starts: o("10:30"), Value: 3}},
		},
		{
			name:  "sum(amount) with >=",
			rules: sumRules,
			steps: []step{ev("purchase", "c1", "10:00", amount(400)), ev("purchase", "c1", "10:30", amount(600))},
			want:  []brief{{State: "firing", Key: "apac", Starts: o("10:30"), Value: 1000}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := burstRules
			if tc.rules != "" {
				r = tc.rules
			}
			require.Equal(t, tc.want, briefs(run(t, r, tc.steps...), "region"))
		})
	}
}

const distinctRules = `
version: 1
defaults: {allowed_lateness: 10m}
rules:
  - name: complainers
    kind: threshold
    source: interactions
    match: {type: [complaint]}
    group_by: [tenant, region]
    window: 1h
    value: distinct(customer_id)
    op: ">="
    threshold: 3
`

const sumRules = `
version: 1
rules:
  - name: big_spend
    kind: threshold
    source: interactions
    match: {type: [purchase]}
    group_by: [region]
    window: 1h
    value: sum(amount)
    op: ">="
    threshold: 1000
`
