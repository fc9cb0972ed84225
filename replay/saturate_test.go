package replay

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor/rules"
)

// TestReplayHugeAmountsSaturate is the poisoned partition of issue 10: two
// amounts of 1.7e308 used to make a sum +Inf, and the replay stopped with
// exit 2 ("threshold is +Inf"). Now the sum saturates, the alert carries a
// finite value, later records are still processed, and the summary says so.
func TestReplayHugeAmountsSaturate(t *testing.T) {
	dir := t.TempDir()
	inter := write(t, dir, "i.jsonl",
		`{"event_id":"e1","type":"purchase","customer_id":"c1","tenant":"acme","amount":1.7e308,"occurred_at":"2026-11-02T10:00:00Z"}`,
		`{"event_id":"e2","type":"purchase","customer_id":"c1","tenant":"acme","amount":1.7e308,"occurred_at":"2026-11-02T10:01:00Z"}`,
		`{"event_id":"e3","type":"login","customer_id":"c2","tenant":"acme","occurred_at":"2026-11-02T10:02:00Z"}`,
	)
	rec := write(t, dir, "r.jsonl")
	f, err := rules.Parse([]byte(`
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - {name: big_spend, kind: threshold, source: interactions, match: {type: [purchase]}, group_by: [tenant],
     window: 1h, value: sum(amount), op: '>', threshold: 1.7e308}
  - {name: churn, kind: inactivity, source: interactions, match: {type: [login]}, key: [customer_id], idle_for: 1h}
`))
	require.NoError(t, err)
	out := filepath.Join(dir, "out")
	sum, err := Run(context.Background(), Config{Rules: f, Interactions: inter, Receipts: rec, OutDir: out,
		Until: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)})
	require.NoError(t, err) // exit 0
	require.EqualValues(t, 3, sum.Interactions)
	require.Positive(t, sum.Saturated)
	require.Contains(t, sum.String(), "saturated sums")

	alerts := readJSONL(t, filepath.Join(out, "alerts.jsonl"))
	byRule := map[string][]map[string]any{}
	for _, a := range alerts {
		byRule[a["rule"].(string)] = append(byRule[a["rule"].(string)], a)
	}
	require.NotEmpty(t, byRule["big_spend"])
	require.Equal(t, math.MaxFloat64, byRule["big_spend"][0]["value"])
	require.Len(t, byRule["churn"], 1, "the records after the huge amounts are processed too")
}
