package processor_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// runEngine is run that also returns the engine, for its Stats.
func runEngine(t *testing.T, yaml string, extra []processor.Component, steps ...step) *processor.Engine {
	t.Helper()
	f, err := rules.Parse([]byte(yaml))
	require.NoError(t, err)
	e, err := processor.New(processor.Config{Rules: f, Extra: extra})
	require.NoError(t, err)
	for n, s := range steps {
		switch {
		case s.i != nil:
			require.NoError(t, e.Interaction(s.i), "step %d", n)
		case s.r != nil:
			require.NoError(t, e.Receipt(s.r), "step %d", n)
		default:
			e.Advance(mustAt(s.wm))
		}
	}
	return e
}

// requireEncodable checks what processor.Alert.AppendJSON refuses: a
// non-finite value or threshold ("threshold is +Inf" stopped replays).
func requireEncodable(t *testing.T, out *processor.Output) {
	t.Helper()
	for _, a := range out.Alerts {
		require.False(t, math.IsInf(a.Value, 0) || math.IsNaN(a.Value), "value %v", a.Value)
		require.False(t, math.IsInf(a.Threshold, 0) || math.IsNaN(a.Threshold), "threshold %v", a.Threshold)
		_, err := a.AppendJSON(nil)
		require.NoError(t, err)
	}
}

const huge = 1.7e308

func TestThresholdSumSaturates(t *testing.T) {
	const yaml = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - {name: big, kind: threshold, source: interactions, match: {type: [purchase, refund]}, group_by: [tenant],
     window: 1h, value: sum(amount), op: '>', threshold: 1.7e308}
  - {name: small, kind: threshold, source: interactions, match: {type: [purchase, refund]}, group_by: [tenant],
     window: 1h, value: sum(amount), op: '<', threshold: -1.7e308}
`
	e := runEngine(t, yaml, nil,
		buy("10:00", huge), buy("10:10", huge), // +Inf unsaturated
		wm("11:05"), // the first left at 11:00: the window holds one huge amount again
		ev("refund", "c1", "12:00", amount(huge)), ev("refund", "c1", "12:10", amount(huge)),
		wm("14:00"),
		buy("14:30", 5), wm("15:00"), // the engine goes on
	)
	out := e.Output()
	requireEncodable(t, out)
	require.Equal(t, []brief{
		{State: "firing", Key: "acme", Starts: o("10:10"), Value: math.MaxFloat64},
		{State: "resolved", Key: "acme", Starts: o("10:10"), Ends: o("11:00"), Value: huge},
		{State: "firing", Key: "acme", Starts: o("12:10"), Value: -math.MaxFloat64},
		{State: "resolved", Key: "acme", Starts: o("12:10"), Ends: o("13:00"), Value: -huge},
	}, briefs(out, "tenant"))
	require.GreaterOrEqual(t, e.Stats().Saturated, int64(2))
	require.GreaterOrEqual(t, processor.SaturatedSums(), e.Stats().Saturated)
}

func TestDropSumSaturates(t *testing.T) {
	const yaml = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - {name: drop, kind: drop, source: interactions, match: {type: [purchase]}, group_by: [tenant],
     window: 1h, value: sum(amount), baseline: {windows: 2}, drop_pct: 50}
`
	e := runEngine(t, yaml, nil,
		buy("00:10", huge), buy("00:20", huge), // window 0: saturates at MaxFloat64
		buy("01:10", huge), buy("01:20", huge), // window 1: too; their baseline sum saturates as well
		buy("02:10", 1), wm("03:00"),
	)
	out := e.Output()
	requireEncodable(t, out)
	require.Len(t, out.Alerts, 1)
	require.Equal(t, 1.0, out.Alerts[0].Value)
	// The baseline is the mean of two saturated windows: MaxFloat64/2,
	// not +Inf/2; the bound is half of it.
	require.Equal(t, math.MaxFloat64/2*0.5, out.Alerts[0].Threshold)
	require.GreaterOrEqual(t, e.Stats().Saturated, int64(3))
}

func TestRevenueSaturationIsCounted(t *testing.T) {
	agg, err := aggregate.New(aggregate.Config{})
	require.NoError(t, err)
	e := runEngine(t, "version: 1\n", []processor.Component{agg},
		buy("00:10", huge), buy("00:20", huge), wm("02:00"))
	var rows []aggregate.Revenue
	for _, a := range e.Output().Aggregates {
		if r, ok := a.(aggregate.Revenue); ok {
			rows = append(rows, r)
		}
	}
	require.Len(t, rows, 1)
	require.Equal(t, aggregate.MaxMoney, rows[0].Amount)
	require.GreaterOrEqual(t, e.Stats().Saturated, int64(1))
}

func TestSaturatedCountSurvivesSnapshot(t *testing.T) {
	const yaml = `
version: 1
rules:
  - {name: big, kind: threshold, source: interactions, group_by: [tenant], window: 1h, value: sum(amount), op: '>', threshold: 1.7e308}
`
	e := runEngine(t, yaml, nil, buy("10:00", huge), buy("10:10", huge))
	n := e.Stats().Saturated
	require.Positive(t, n)
	snap, err := e.Snapshot()
	require.NoError(t, err)
	e2 := runEngine(t, yaml, nil)
	require.NoError(t, e2.Restore(snap))
	require.Equal(t, n, e2.Stats().Saturated)
}
