package replay

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor/rules"
)

const segmentRules = `
version: 1
defaults: {allowed_lateness: 10m}
segments:
  - name: lifecycle
    key: [tenant, customer_id]
    window: 180d
    classes:
      - {name: potential, max_total: 0}
      - {name: new, tenure_under: 30d}
      - {name: active, recency_under: 60d}
      - {name: churned}
`

// TestReplaySegments: transitions go to segments.jsonl in event-time
// order, with from null for a first class, and the summary counts them.
// A change at the final watermark itself is not emitted: the watermark
// must be past it.
func TestReplaySegments(t *testing.T) {
	dir := t.TempDir()
	inter := write(t, dir, "i.jsonl",
		`{"event_id":"e1","type":"login","customer_id":"c1","tenant":"acme","occurred_at":"2026-01-01T00:00:00Z"}`,
		`{"event_id":"e2","type":"purchase","customer_id":"c1","tenant":"acme","amount":10,"occurred_at":"2026-01-02T00:00:00Z"}`,
		`{"event_id":"e3","type":"login","customer_id":"c2","occurred_at":"2026-01-03T00:00:00Z"}`,
	)
	f, err := rules.Parse([]byte(segmentRules))
	require.NoError(t, err)
	out := filepath.Join(dir, "out")
	sum, err := Run(context.Background(), Config{Rules: f, Interactions: inter, OutDir: out,
		Until: time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)}) // 90 days after the purchase
	require.NoError(t, err)
	got := readJSONL(t, filepath.Join(out, "segments.jsonl"))
	type tr struct{ Customer, Tenant, From, To, At string }
	var brief []tr
	for _, m := range got {
		from, _ := m["from"].(string)
		if m["from"] == nil {
			from = "null"
		}
		require.Equal(t, map[string]any{"tenant": m["tenant"], "customer_id": m["customer_id"]}, m["key"])
		require.NotEmpty(t, m["emitted_at"])
		brief = append(brief, tr{m["customer_id"].(string), m["tenant"].(string), from, m["to"].(string), m["at"].(string)})
	}
	require.Equal(t, []tr{
		{"c1", "acme", "null", "potential", "2026-01-01T00:00:00Z"},
		{"c1", "acme", "potential", "new", "2026-01-02T00:00:00Z"},
		{"c2", "default", "null", "potential", "2026-01-03T00:00:00Z"},
		{"c1", "acme", "new", "active", "2026-02-01T00:00:00Z"},
		{"c1", "acme", "active", "churned", "2026-03-03T00:00:00Z"},
	}, brief)
	require.EqualValues(t, 5, sum.Transitions)
	require.Contains(t, sum.String(), "0 cancels, 5 transitions;")

	// Without --until the watermark ends at the last record, 03 Jan: the
	// first class of c2 at that very instant waits for a later watermark.
	out2 := filepath.Join(dir, "out2")
	sum, err = Run(context.Background(), Config{Rules: f, Interactions: inter, OutDir: out2})
	require.NoError(t, err)
	require.Len(t, readJSONL(t, filepath.Join(out2, "segments.jsonl")), 2)
	require.EqualValues(t, 2, sum.Transitions)
}
