package stream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rawevents"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
	"github.com/crmpulse/crmpulse/sink/clickhouse/chtest"
	"github.com/crmpulse/crmpulse/stream"
)

// firingOf is the set of fingerprints whose last alert record (by
// starts_at) is still firing: what the instance should list as firing
// once it has emitted everything.
func firingOf(t *testing.T, o *outputs) []string {
	t.Helper()
	type last struct {
		startsAt string
		firing   bool
	}
	byFP := map[string]last{}
	for _, raw := range o.alerts {
		var a struct{ Fingerprint, State, StartsAt string }
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(raw), &m))
		a.Fingerprint, a.State, a.StartsAt = m["fingerprint"].(string), m["state"].(string), m["starts_at"].(string)
		l, ok := byFP[a.Fingerprint]
		at, err := time.Parse(time.RFC3339Nano, a.StartsAt)
		require.NoError(t, err)
		var prev time.Time
		if ok {
			prev, err = time.Parse(time.RFC3339Nano, l.startsAt)
			require.NoError(t, err)
		}
		switch {
		case !ok || at.After(prev):
			byFP[a.Fingerprint] = last{a.StartsAt, a.State == "firing"}
		case at.Equal(prev) && a.State != "firing":
			byFP[a.Fingerprint] = last{a.StartsAt, false}
		}
	}
	var out []string
	for fp, l := range byFP {
		if l.firing {
			out = append(out, fp)
		}
	}
	slices.Sort(out)
	return out
}

// TestKfakeQueryAPI: `crmpulse run` serves the query API on its listener.
// Once the outputs equal replay's, /api/v1/alerts lists exactly the alerts
// replay leaves firing, /api/v1/rules the running rules with those alerts,
// and a backtest without ClickHouse is refused as unavailable. A new
// instance taking over the partitions lists the same alerts from their
// restored state, though it emits nothing.
func TestKfakeQueryAPI(t *testing.T) {
	brokers := newKfake(t)
	ds := generate(t, genConfig{customers: 60, days: 3, seed: 5})
	want := replayOutputs(t, ds)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 2)
	c := collect(t, brokers, tp)
	produce(t, brokers, tp, ds)
	r := startApp(t, appConfig(brokers, tp, tp.prefix), "a")
	c.waitEqual(t, want, 2*time.Minute)

	base := "http://" + r.app.Addr()
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.NoError(t, json.Unmarshal(b, v), string(b))
	}
	var alerts struct {
		Status string
		Data   struct {
			Alerts []struct {
				Fingerprint string
				State       string
				Labels      map[string]string
			}
		}
	}
	get("/api/v1/alerts", &alerts)
	require.Equal(t, "success", alerts.Status)
	var got []string
	for _, a := range alerts.Data.Alerts {
		require.Equal(t, "firing", a.State)
		require.NotEmpty(t, a.Labels["alertname"])
		got = append(got, a.Fingerprint)
	}
	slices.Sort(got)
	wantFiring := firingOf(t, want)
	require.NotEmpty(t, wantFiring, "the data set leaves some alert firing")
	require.Equal(t, wantFiring, got)

	var rulesAns struct {
		Data struct {
			Groups []struct {
				File  string
				Rules []struct {
					Name   string
					State  string
					Alerts []struct{ Fingerprint string }
				}
			}
		}
	}
	get("/api/v1/rules", &rulesAns)
	rf, err := rules.Load(rulesFile)
	require.NoError(t, err)
	require.Len(t, rulesAns.Data.Groups, 1)
	require.Equal(t, rulesFile, rulesAns.Data.Groups[0].File)
	require.Len(t, rulesAns.Data.Groups[0].Rules, len(rf.Rules))
	n := 0
	for _, rule := range rulesAns.Data.Groups[0].Rules {
		n += len(rule.Alerts)
		if len(rule.Alerts) > 0 {
			require.Equal(t, "firing", rule.State, rule.Name)
		}
	}
	require.Equal(t, len(wantFiring), n, "every firing alert is listed under its rule")

	resp, err := http.Post(base+"/api/v1/backtest", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	r.stop(t)
	r2 := startApp(t, appConfig(brokers, tp, tp.prefix), "b")
	base = "http://" + r2.app.Addr()
	var last []string
	require.Eventually(t, func() bool {
		get("/api/v1/alerts", &alerts)
		last = last[:0]
		for _, a := range alerts.Data.Alerts {
			last = append(last, a.Fingerprint)
		}
		slices.Sort(last)
		return slices.Equal(wantFiring, last)
	}, time.Minute, 100*time.Millisecond, "after the takeover: %v", last)
	got2, diffs := c.result()
	require.Empty(t, diffs)
	require.Empty(t, diff(want, got2), "the new instance emitted nothing new")
}

// TestKfakeBacktestOverStreamedRawEvents: the whole path. `crmpulse run`
// with raw events stores every accepted record of its partitions in
// ClickHouse; a POST /api/v1/backtest of the same rules over that range,
// on the running instance, answers exactly the records replay writes for
// the input files.
func TestKfakeBacktestOverStreamedRawEvents(t *testing.T) {
	brokers := newKfake(t)
	chtest.ServerDSN(t)
	ds := generate(t, genConfig{customers: 60, days: 3, seed: 6})
	want := replayOutputs(t, ds)

	dsn, conn := migratedDatabase(t)
	sink := startSink(t, clickhouse.Config{DSN: dsn, FlushInterval: 100 * time.Millisecond}, "sink")
	now := func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }
	bt, err := backtest.New(backtest.Config{Source: backtest.NewClickHouse(sink.Conn()), Now: now})
	require.NoError(t, err)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 3)
	c := collect(t, brokers, tp)
	produce(t, brokers, tp, ds)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Sinks = []stream.OutputSink{sink}
	cfg.Backtest = bt
	cfg.Components = func(p int) []processor.Component {
		raw, err := rawevents.New(rawevents.Config{HashKey: "stream-api-test-key-of-at-least-32-bytes", Shard: p})
		require.NoError(t, err)
		return []processor.Component{raw}
	}
	r := startApp(t, cfg, "a")
	c.waitEqual(t, want, 2*time.Minute)

	// The oracle: replay of the files, taken to the end of the range.
	rf, err := rules.Load(rulesFile)
	require.NoError(t, err)
	to := time.Now().UTC().Truncate(time.Hour)
	from := to.AddDate(0, 0, -30)
	out := filepath.Join(ds.dir, "backtest-oracle")
	sum, err := replay.Run(context.Background(), replay.Config{Rules: rf, Interactions: ds.interactions,
		Receipts: ds.receipts, OutDir: out, Until: to, Now: now})
	require.NoError(t, err)
	// Every accepted record has reached ClickHouse.
	require.Eventually(t, func() bool {
		var ni, nr uint64
		return conn.QueryRow(context.Background(), "SELECT count() FROM (SELECT DISTINCT event_id FROM interactions_raw)").Scan(&ni) == nil &&
			conn.QueryRow(context.Background(), "SELECT count() FROM (SELECT DISTINCT receipt_id FROM receipts_raw)").Scan(&nr) == nil &&
			int64(ni) == sum.Interactions && int64(nr) == sum.Receipts
	}, time.Minute, 50*time.Millisecond, "raw events stored")

	rulesText, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	body, err := json.Marshal(map[string]any{"rules": string(rulesText), "from": from, "to": to})
	require.NoError(t, err)
	resp, err := http.Post("http://"+r.app.Addr()+"/api/v1/backtest", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var got struct {
		Data struct {
			Alerts, Resends []json.RawMessage
			Truncated       bool
			Stats           struct{ Interactions, Receipts int64 }
		}
	}
	require.NoError(t, json.Unmarshal(b, &got))
	require.False(t, got.Data.Truncated)
	require.Equal(t, sum.Interactions, got.Data.Stats.Interactions)
	require.Equal(t, sum.Receipts, got.Data.Stats.Receipts)
	lines := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	join := func(rs []json.RawMessage) string {
		var s []string
		for _, r := range rs {
			s = append(s, string(r))
		}
		return strings.Join(s, "\n")
	}
	require.NotEmpty(t, got.Data.Alerts)
	require.Equal(t, lines("alerts.jsonl"), join(got.Data.Alerts))
	require.Equal(t, lines("resends.jsonl"), join(got.Data.Resends))
}
