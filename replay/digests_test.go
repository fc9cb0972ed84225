package replay

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor/rules"
)

const digestReplayRules = `
version: 1
defaults: {timezone: UTC, allowed_lateness: 10m}
rules:
  - {name: gold_order, kind: event, source: interactions, match: {type: [purchase], customer.tier: [gold]}, group_by: [tenant, customer_id], lasts: 1h, customer_labels: [account_manager]}
digests:
  - name: am_daily
    schedule: {every: day, at: "09:00", timezone: Europe/Berlin}
    group_by: [tenant, customer.account_manager]
    alerts: [gold_order]
    metrics:
      - {name: revenue, source: interactions, match: {type: [purchase, refund]}, value: sum(amount)}
`

// TestReplayDigests: replay writes DIR/digests.jsonl, one line per digest
// in period order, stamped with emitted_at, and counts them in the summary.
func TestReplayDigests(t *testing.T) {
	dir := t.TempDir()
	cust := write(t, dir, "c.jsonl",
		`{"customer_id":"c1","updated_at":"2026-11-01T00:00:00Z","tier":"gold","account_manager":"ann@example.com"}`)
	in := write(t, dir, "i.jsonl",
		`{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2026-11-02T10:00:00Z","amount":40}`,
		`{"event_id":"e2","type":"refund","customer_id":"c1","occurred_at":"2026-11-02T11:00:00Z","amount":15}`,
		`{"event_id":"e3","type":"purchase","customer_id":"c2","occurred_at":"2026-11-03T10:00:00Z","amount":7}`)
	f, err := rules.Parse([]byte(digestReplayRules))
	require.NoError(t, err)
	out := filepath.Join(dir, "out")
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	sum, err := Run(context.Background(), Config{Rules: f, Interactions: in, Customers: cust, OutDir: out,
		Until: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), Now: func() time.Time { return now }})
	require.NoError(t, err)
	require.Equal(t, int64(2), sum.Digests)
	require.Contains(t, sum.String(), "2 digests")

	data, err := os.ReadFile(filepath.Join(out, "digests.jsonl"))
	require.NoError(t, err)
	ls := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, ls, 2)
	type line struct {
		Group       map[string]string  `json:"group"`
		PeriodStart time.Time          `json:"period_start"`
		PeriodEnd   time.Time          `json:"period_end"`
		Metrics     map[string]float64 `json:"metrics"`
		Alerts      struct {
			Fired []struct {
				Rule string `json:"rule"`
			} `json:"fired"`
		} `json:"alerts"`
		EmittedAt time.Time `json:"emitted_at"`
	}
	var got []line
	for _, l := range ls {
		var one line
		require.NoError(t, json.Unmarshal([]byte(l), &one))
		got = append(got, one)
	}
	// 09:00 in Berlin is 08:00Z in November.
	require.Equal(t, "ann@example.com", got[0].Group["account_manager"])
	require.Equal(t, time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC), got[0].PeriodStart.UTC())
	require.Equal(t, time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC), got[0].PeriodEnd.UTC())
	require.Equal(t, 25.0, got[0].Metrics["revenue"])
	require.Len(t, got[0].Alerts.Fired, 1)
	require.Equal(t, "unknown", got[1].Group["account_manager"], "c2 has no profile")
	require.Equal(t, 7.0, got[1].Metrics["revenue"])
	require.Equal(t, now, got[1].EmittedAt.UTC())
}
