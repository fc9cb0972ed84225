package processor

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// TestSegmentAdvanceTouchesOnlyDueKeys: with many tracked keys, moving the
// watermark evaluates a key only at its own instants (its records and the
// bounds it crosses), never all keys per step.
func TestSegmentAdvanceTouchesOnlyDueKeys(t *testing.T) {
	f, err := rules.Parse([]byte(`
version: 1
segments:
  - name: lifecycle
    key: [customer_id]
    window: 90d
    classes:
      - {name: new, tenure_under: 30d}
      - {name: loyal, min_count: 2, recency_under: 45d}
      - {name: active, recency_under: 60d}
      - {name: churned}
`))
	require.NoError(t, err)
	e, err := New(Config{Rules: f})
	require.NoError(t, err)
	set := e.comps[0].(*segmentStage).sets[0]
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const keys = 20_000
	for i := range keys {
		ev := &ingest.Interaction{EventID: strconv.Itoa(i), Type: "purchase", CustomerID: "c" + strconv.Itoa(i),
			Tenant: "acme", OccurredAt: base}
		require.NoError(t, e.Interaction(ev))
	}
	e.Advance(base.Add(time.Second))
	require.EqualValues(t, keys, set.evals, "one evaluation per key at its purchase")
	require.Len(t, e.Output().Transitions, keys)
	// A thousand watermark steps before any bound: nothing is evaluated.
	for s := range 1000 {
		e.Advance(base.Add(time.Duration(s+2) * time.Minute))
	}
	require.EqualValues(t, keys, set.evals)
	// Every bound of every key, in one jump: tenure at 30d, recency at 60d;
	// 45d (loyal's bound) is crossed too but changes nothing for a single
	// purchase, and the purchase leaving the look-back at 90d is the last.
	e.Advance(base.Add(365 * 24 * time.Hour))
	require.EqualValues(t, keys*5, set.evals, "the purchase, then 30d, 45d, 60d and 90d")
	require.Len(t, e.Output().Transitions, keys*3) // new, active, churned
	require.Equal(t, int64(noTime), set.timers.top(), "no timer left once every bound is past")
}
