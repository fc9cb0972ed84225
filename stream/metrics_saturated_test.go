package stream

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// TestSaturatedSumsMetric: two amounts of 1.7e308 in one window make a sum
// the engine holds at MaxFloat64, which crmpulse_engine_saturated_sums_total
// reports.
func TestSaturatedSumsMetric(t *testing.T) {
	f, err := rules.Parse([]byte(`
version: 1
rules:
  - {name: big, kind: threshold, source: interactions, group_by: [tenant], window: 1h, value: sum(amount), op: '>', threshold: 1.7e308}
`))
	require.NoError(t, err)
	eng, err := processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"e1", "e2"} {
		require.NoError(t, eng.Interaction(&ingest.Interaction{EventID: id, Type: "purchase", CustomerID: "c1",
			Tenant: "acme", Amount: 1.7e308, OccurredAt: at.Add(time.Duration(i) * time.Minute)}))
	}
	require.Positive(t, eng.Stats().Saturated)

	reg := prometheus.NewRegistry()
	newMetrics(reg, nil)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var got float64 = -1
	for _, mf := range mfs {
		if mf.GetName() == "crmpulse_engine_saturated_sums_total" {
			got = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.GreaterOrEqual(t, got, 1.0)
}
