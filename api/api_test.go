package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/api"
	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var fixedNow = func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

// draftRecords fire the draft rules: customer c1 complains four times in
// an hour (complaint_streak), c2 twice (quiet), and an SMS to c3 soft
// bounces (sms_retry resends it).
func draftRecords() backtest.Records {
	var r backtest.Records
	add := func(id, cust, typ string, at time.Duration) {
		r.Interactions = append(r.Interactions, ingest.Interaction{EventID: id, Type: typ, CustomerID: cust,
			OccurredAt: t0.Add(at), Tenant: "acme", Segment: "smb", Region: "emea", Channel: "web"})
	}
	for i := range 4 {
		add(fmt.Sprint("c1-", i), "c1", "complaint", time.Duration(i)*10*time.Minute)
	}
	add("c2-0", "c2", "complaint", 5*time.Minute)
	add("c2-1", "c2", "complaint", 15*time.Minute)
	add("late", "c4", "login", 5*time.Hour)
	r.Receipts = []ingest.Receipt{
		{ReceiptID: "r1", MessageID: "m1", CustomerID: "c3", Channel: "sms", Status: "sent", OccurredAt: t0.Add(time.Minute), Attempt: 1, Tenant: "acme"},
		{ReceiptID: "r2", MessageID: "m1", CustomerID: "c3", Channel: "sms", Status: "soft_bounce", OccurredAt: t0.Add(2 * time.Minute), Attempt: 1, Tenant: "acme"},
	}
	return r
}

func loadRules(t *testing.T, path string) *rules.File {
	t.Helper()
	rf, err := rules.Load(path)
	require.NoError(t, err)
	return rf
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// firingAlerts are alerts of examples/rules.yaml as the engine emits them.
func firingAlerts() []processor.Alert {
	end := t0.Add(time.Hour)
	return []processor.Alert{
		{Fingerprint: "b2", Rule: "complaint_burst", Kind: "threshold", State: "firing", Severity: "critical",
			Labels:      map[string]string{"alertname": "complaint_burst", "tenant": "acme", "region": "emea", "team": "customer_care"},
			Annotations: map[string]string{"summary": "12 complaints in the last hour"},
			Value:       12, Threshold: 10, StartsAt: end, WindowStart: &t0, WindowEnd: &end},
		{Fingerprint: "a1", Rule: "customer_churn", Kind: "inactivity", State: "firing", Severity: "info",
			Labels:      map[string]string{"alertname": "customer_churn", "tenant": "acme", "customer_id": "c9", "team": "retention"},
			Annotations: map[string]string{}, Value: 604800, StartsAt: t0},
	}
}

type segments []api.SegmentSet

func (s segments) Segments() []api.SegmentSet { return s }

// server is the API with every source set, as `crmpulse run` mounts it.
type server struct {
	alerts   []processor.Alert
	rules    *rules.File
	segments api.SegmentSource
	bt       api.Backtester
	maxBody  int64
}

func (s server) handler(t *testing.T) *api.API {
	t.Helper()
	a, err := api.New(api.Config{
		Alerts: api.AlertsFunc(func() []processor.Alert { return s.alerts }), Rules: api.RulesFunc(func() *rules.File { return s.rules }),
		RulesFile: "rules.yaml", Segments: s.segments, Backtest: s.bt, MaxBodyBytes: s.maxBody,
	})
	require.NoError(t, err)
	return a
}

func runner(t *testing.T, lim backtest.Limits) *backtest.Runner {
	t.Helper()
	r, err := backtest.New(backtest.Config{Source: draftRecords(), Limits: lim, Now: fixedNow})
	require.NoError(t, err)
	return r
}

type answer struct {
	code int
	ct   string
	body []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(a.body, &v), string(a.body))
	return v
}

func do(t *testing.T, h http.Handler, ctx context.Context, method, target, ct, body string) answer {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return answer{code: rec.Code, ct: rec.Header().Get("Content-Type"), body: b}
}

func backtestJSON(t *testing.T, rulesValue any, from, to any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"rules": rulesValue, "from": from, "to": to})
	require.NoError(t, err)
	return string(b)
}

// TestBacktestEqualsReplay: POST /api/v1/backtest answers the records
// replay writes for the same records and rules, line for line; the YAML,
// JSON-string and JSON-object forms of the request are the same backtest.
func TestBacktestEqualsReplay(t *testing.T) {
	draft := readFile(t, "testdata/draft.yaml")
	rf := loadRules(t, "testdata/draft.yaml")
	from, to := t0.Add(-time.Hour), t0.Add(6*time.Hour)

	// replay of the same records, written as files.
	dir := t.TempDir()
	recs := draftRecords()
	writeJSONL(t, filepath.Join(dir, "i.jsonl"), recs.Interactions)
	writeJSONL(t, filepath.Join(dir, "r.jsonl"), recs.Receipts)
	out := filepath.Join(dir, "out")
	_, err := replay.Run(context.Background(), replay.Config{Rules: rf, Interactions: filepath.Join(dir, "i.jsonl"),
		Receipts: filepath.Join(dir, "r.jsonl"), OutDir: out, Until: to, Now: fixedNow})
	require.NoError(t, err)
	wantAlerts := strings.TrimSpace(readFile(t, filepath.Join(out, "alerts.jsonl")))
	wantResends := strings.TrimSpace(readFile(t, filepath.Join(out, "resends.jsonl")))
	require.NotEmpty(t, wantAlerts)
	require.NotEmpty(t, wantResends)

	var obj map[string]any
	require.NoError(t, json.Unmarshal(mustJSON(t, yamlToAny(t, draft)), &obj))
	h := server{rules: rf, bt: runner(t, backtest.Limits{})}.handler(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, target, ct, body string
	}{
		{"rules as a YAML string", "/api/v1/backtest", "application/json", backtestJSON(t, draft, from, to)},
		{"rules as a JSON object, times as Unix seconds", "/api/v1/backtest", "application/json", backtestJSON(t, obj, from.Unix(), to.Unix())},
		{"the rules file as the body", "/api/v1/backtest?from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339), "application/yaml", draft},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans := do(t, h, ctx, http.MethodPost, tc.target, tc.ct, tc.body)
			require.Equal(t, http.StatusOK, ans.code, string(ans.body))
			var got struct {
				Data struct {
					Alerts, Resends []json.RawMessage
					Truncated       bool
					Stats           struct{ Watermark time.Time }
				}
			}
			require.NoError(t, json.Unmarshal(ans.body, &got))
			require.Equal(t, wantAlerts, joinRaw(got.Data.Alerts))
			require.Equal(t, wantResends, joinRaw(got.Data.Resends))
			require.False(t, got.Data.Truncated)
			require.Equal(t, to, got.Data.Stats.Watermark)
		})
	}
}

func joinRaw(rs []json.RawMessage) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, string(r))
	}
	return strings.Join(parts, "\n")
}

func writeJSONL[T any](t *testing.T, path string, recs []T) {
	t.Helper()
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		buf.Write(append(b, '\n'))
	}
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestDescribeEveryKind: each rule of examples/rules.yaml (every kind) has
// a query line that names its kind, its source and its window or delay,
// and no formatting accident.
func TestDescribeEveryKind(t *testing.T) {
	rf := loadRules(t, "../examples/rules.yaml")
	want := map[string]string{
		"customer_churn":      `inactivity: no interactions{type=~"login|visit|purchase"} by (tenant, customer_id) for 7d`,
		"message_undelivered": `absence: receipts{status="sent"} not followed by receipts{status=~"delivered|opened|clicked|soft_bounce|hard_bounce|failed|rejected"} by (tenant, message_id, attempt) within 2h`,
		"complaint_burst":     `threshold: count(interactions{type="complaint"}) by (tenant, region) over 1h > 10`,
	}
	kinds := map[string]bool{}
	for _, r := range rf.Rules {
		q := api.Describe(r)
		kinds[r.Kind] = true
		require.True(t, strings.HasPrefix(q, r.Kind+": "), q)
		require.NotContains(t, q, "%!", q)
		require.Contains(t, q, r.Source, q)
		if w, ok := want[r.Name]; ok {
			require.Equal(t, w, q)
		}
	}
	require.Len(t, kinds, 8, "the examples hold every kind: inactivity, drop, threshold, ratio, absence, event, deadline, calendar")
}

// blockingSource holds every backtest in Open until released.
type blockingSource struct {
	entered chan struct{}
	release chan struct{}
}

func (s blockingSource) Open(ctx context.Context, from, to time.Time) ([]backtest.Cursor, error) {
	s.entered <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return draftRecords().Open(ctx, from, to)
}

// TestBacktestConcurrency: a backtest beyond api.backtest_concurrency is
// refused as unavailable while the others run, and accepted again once
// one has finished.
func TestBacktestConcurrency(t *testing.T) {
	src := blockingSource{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r, err := backtest.New(backtest.Config{Source: src, Now: fixedNow})
	require.NoError(t, err)
	a, err := api.New(api.Config{Alerts: api.AlertsFunc(func() []processor.Alert { return nil }),
		Rules: api.RulesFunc(func() *rules.File { return nil }), Backtest: r, BacktestConcurrency: 1})
	require.NoError(t, err)
	body := backtestJSON(t, readFile(t, "testdata/draft.yaml"), t0.Add(-time.Hour).Unix(), t0.Add(6*time.Hour).Unix())
	first := make(chan answer, 1)
	go func() {
		first <- do(t, a, context.Background(), http.MethodPost, "/api/v1/backtest", "application/json", body)
	}()
	<-src.entered // the first backtest is running

	busy := do(t, a, context.Background(), http.MethodPost, "/api/v1/backtest", "application/json", body)
	require.Equal(t, http.StatusServiceUnavailable, busy.code)
	require.Equal(t, "unavailable", busy.json(t)["errorType"])
	require.Contains(t, busy.json(t)["error"], "api.backtest_concurrency")

	close(src.release)
	require.Equal(t, http.StatusOK, (<-first).code)
	again := make(chan answer, 1)
	go func() {
		again <- do(t, a, context.Background(), http.MethodPost, "/api/v1/backtest", "application/json", body)
	}()
	<-src.entered
	require.Equal(t, http.StatusOK, (<-again).code, "a slot is free again")
}
