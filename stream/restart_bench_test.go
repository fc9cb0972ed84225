package stream_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/stream"
)

func waitMetric(t testing.TB, r *running, name string, atLeast float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for gauge(t, r.reg, name) < atLeast {
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed below %v for %s", name, atLeast, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func produceLogins(t testing.TB, brokers []string, topic string, from, n int, at func(i int) time.Time) {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{},
		RequiredAcks: kafkago.RequireAll, BatchSize: 5000, BatchBytes: 1 << 20, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for start := from; start < from+n; start += 50000 {
		var msgs []kafkago.Message
		for i := start; i < min(start+50000, from+n); i++ {
			id := fmt.Sprintf("c%08d", i)
			msgs = append(msgs, kafkago.Message{Topic: topic, Key: []byte(id), Value: fmt.Appendf(nil,
				`{"event_id":"e%d","type":"login","customer_id":%q,"occurred_at":%q,"tenant":"acme"}`, i, id, at(i).Format(time.RFC3339Nano))})
		}
		require.NoError(t, w.WriteMessages(ctx, msgs...))
	}
}

// BenchmarkRestartWithState (issue 15: restart to resumed processing with
// 1 M keys of state, goal ≤ 5 s). A pipeline tracks CRMPULSE_BENCH_KEYS
// customers (default 1 M) under an inactivity rule on 4 partitions, stops
// with its final checkpoints, and a new instance of the same group starts:
// restart-s is the time from its start to the first new record consumed,
// the snapshots read and restored on the way. The baseline in the same run
// is an instance of a fresh group (no state, starting at the end of the
// topics) doing the same. On the broker of CRMPULSE_KAFKA_BROKERS, else an
// in-process kfake.
func BenchmarkRestartWithState(b *testing.B) {
	keys := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("CRMPULSE_BENCH_KEYS")); err == nil && v > 0 {
		keys = v
	}
	var brokers []string
	if v := os.Getenv("CRMPULSE_KAFKA_BROKERS"); v != "" {
		brokers = strings.Split(v, ",")
	} else {
		brokers = newKfake(b)
	}
	tp := newTopics(b)
	createInputs(b, brokers, tp, 4)
	rulesPath := filepath.Join(b.TempDir(), "rules.yaml")
	require.NoError(b, os.WriteFile(rulesPath, []byte("version: 1\nrules:\n  - {name: churn, kind: inactivity, source: interactions, key: [tenant, customer_id], idle_for: 30d}\n"), 0o644))
	// 100 ms apart, ending an hour ago: the watermark has passed nearly
	// every record, so what a snapshot holds is the detector's state.
	base := time.Now().Add(-time.Duration(keys)*100*time.Millisecond - time.Hour)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * 100 * time.Millisecond) }
	produceLogins(b, brokers, tp.cfg.Interactions, 0, keys, at)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = rulesPath
	cfg.CommitInterval = stream.Duration(time.Second)
	first := startApp(b, cfg, "first")
	waitMetric(b, first, "crmpulse_stream_consumed_records_total", float64(keys), 10*time.Minute)
	first.stop(b)
	stateKeys, snapBytes := gauge(b, first.reg, "crmpulse_stream_state_keys"), gauge(b, first.reg, "crmpulse_stream_snapshot_bytes")

	next := keys
	resume := func(c stream.Config, restored bool) time.Duration {
		start := time.Now()
		r := startApp(b, c, "restart")
		produceLogins(b, brokers, tp.cfg.Interactions, next, 1, at)
		next++
		waitMetric(b, r, "crmpulse_stream_consumed_records_total", 1, 5*time.Minute)
		d := time.Since(start)
		// The figure counts only if the state really came back.
		fromSnapshot := labelled(b, r.reg, "crmpulse_stream_restores_total", "outcome", "snapshot")
		require.Equal(b, restored, fromSnapshot >= 4, "partitions restored from a snapshot: %v", fromSnapshot)
		r.stop(b)
		return d
	}
	b.ResetTimer()
	for range b.N {
		restart := resume(cfg, true)
		fresh := cfg
		fresh.Kafka.GroupID = fmt.Sprintf("%s-fresh-%d", tp.prefix, next)
		fresh.Kafka.StartOffset = "latest"
		baseline := resume(fresh, false)
		b.ReportMetric(restart.Seconds(), "restart-s")
		b.ReportMetric(baseline.Seconds(), "baseline-fresh-group-s")
		b.ReportMetric(stateKeys, "state-keys")
		b.ReportMetric(snapBytes/(1<<20), "snapshot-MiB")
	}
}
