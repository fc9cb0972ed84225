package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor/rules"
)

const testRules = `
version: 1
defaults: {timezone: UTC, allowed_lateness: 10m}
rules:
  - {name: churn, kind: inactivity, source: interactions, match: {type: [login]}, key: [tenant, customer_id], idle_for: 1h}
resend:
  - {name: sms_retry, channel: sms, on: [soft_bounce], max_attempts: 3, backoff: {initial: 5m}}
`

func write(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return p
}

func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	return out
}

func TestReplay(t *testing.T) {
	dir := t.TempDir()
	inter := write(t, dir, "i.jsonl",
		`{"event_id":"e1","type":"login","customer_id":"c1","occurred_at":"2026-11-02T10:00:00Z"}`,
		`not json`,
		``,
		`{"event_id":"e1","type":"login","customer_id":"c1","occurred_at":"2026-11-02T10:00:00Z"}`,
		`{"event_id":"e2","type":"login","customer_id":"c2","occurred_at":"2026-11-02T18:30:00+08:00"}`,
		`{"event_id":"e3","type":"unsubscribe","customer_id":"c3","occurred_at":"2026-11-02T11:00:00Z"}`,
		`{"event_id":"e4","type":"login","occurred_at":"2026-11-02T11:00:00Z"}`,
		`{"event_id":"e5","type":"login","customer_id":"c9","occurred_at":"2026-11-02T09:00:00Z"}`,
	)
	rec := write(t, dir, "r.jsonl",
		`{"receipt_id":"r1","message_id":"m1","customer_id":"c1","channel":"sms","status":"soft_bounce","occurred_at":"2026-11-02T10:05:00Z"}`,
		// Same instant as the unsubscribe: on a tie the interaction goes first, so this is suppressed.
		`{"receipt_id":"r2","message_id":"m2","customer_id":"c3","channel":"sms","status":"soft_bounce","occurred_at":"2026-11-02T11:00:00Z"}`,
		`{"receipt_id":"r3","message_id":"m3","customer_id":"c3","channel":"sms","status":"soft_bounce","occurred_at":"yesterday"}`,
	)
	f, err := rules.Parse([]byte(testRules))
	require.NoError(t, err)
	out := filepath.Join(dir, "out")
	sum, err := Run(context.Background(), Config{Rules: f, Interactions: inter, Receipts: rec, OutDir: out,
		Until: time.Date(2026, 11, 2, 13, 0, 0, 0, time.UTC)})
	require.NoError(t, err)

	require.EqualValues(t, 3, sum.Interactions)
	require.EqualValues(t, 2, sum.Receipts)
	require.EqualValues(t, 1, sum.Duplicates)
	require.EqualValues(t, 4, sum.RejectedTotal())

	alerts := readJSONL(t, filepath.Join(out, "alerts.jsonl"))
	// c1 logged in at 10:00Z and c2 at 10:30Z (18:30+08:00); both idle by 13:00.
	require.Len(t, alerts, 2)
	require.Equal(t, "c1", alerts[0]["labels"].(map[string]any)["customer_id"])
	require.Equal(t, "2026-11-02T11:00:00Z", alerts[0]["starts_at"])
	require.Equal(t, "c2", alerts[1]["labels"].(map[string]any)["customer_id"])
	require.Equal(t, "2026-11-02T11:30:00Z", alerts[1]["starts_at"])
	require.NotEmpty(t, alerts[0]["emitted_at"])

	resends := readJSONL(t, filepath.Join(out, "resends.jsonl"))
	require.Len(t, resends, 1)
	require.Equal(t, "m1", resends[0]["message_id"])
	require.Equal(t, "2026-11-02T10:10:00Z", resends[0]["not_before"])

	rejected := readJSONL(t, filepath.Join(out, "rejected.jsonl"))
	type rj struct {
		source, reason string
		line           float64
	}
	var got []rj
	for _, r := range rejected {
		got = append(got, rj{r["source"].(string), r["reason"].(string), r["line"].(float64)})
		require.NotEmpty(t, r["raw"])
		require.NotEmpty(t, r["error"])
	}
	require.ElementsMatch(t, []rj{
		{"interactions", "not_json", 2},
		{"interactions", "missing_field", 7},
		{"interactions", "late", 8},
		{"receipts", "bad_time", 3},
	}, got)
	require.Contains(t, sum.String(), "3 interactions, 2 receipts, 4 rejected")
}

func TestReplayDeterministic(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := 0; i < 500; i++ {
		ts := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 7 * time.Minute)
		lines = append(lines, `{"event_id":"e`+itoa(i)+`","type":"login","customer_id":"c`+itoa(i%13)+`","occurred_at":"`+ts.Format(time.RFC3339)+`"}`)
	}
	inter := write(t, dir, "i.jsonl", lines...)
	f, err := rules.Parse([]byte(testRules))
	require.NoError(t, err)
	var outs [2][]byte
	for k := range outs {
		out := filepath.Join(dir, "out"+itoa(k))
		_, err := Run(context.Background(), Config{Rules: f, Interactions: inter, OutDir: out,
			Now: func() time.Time { return time.Unix(int64(k), 0) }})
		require.NoError(t, err)
		alerts := readJSONL(t, filepath.Join(out, "alerts.jsonl"))
		require.NotEmpty(t, alerts)
		for _, a := range alerts {
			delete(a, "emitted_at")
		}
		outs[k], _ = json.Marshal(alerts)
	}
	require.Equal(t, string(outs[0]), string(outs[1]))
}

func TestReplayUnreadableInput(t *testing.T) {
	f, err := rules.Parse([]byte(testRules))
	require.NoError(t, err)
	_, err = Run(context.Background(), Config{Rules: f, Interactions: "/nonexistent/i.jsonl", OutDir: t.TempDir()})
	require.ErrorIs(t, err, ErrInput)
}

func itoa(i int) string { return strconv.Itoa(i) }
