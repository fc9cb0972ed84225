package stream_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/stream"
)

// blocker is an engine component that blocks in Interaction on an event
// whose id starts with "stuck", until released: a rule evaluation that
// does not end.
type blocker struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlocker(t *testing.T) *blocker {
	b := &blocker{entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(b.unblock) // before the broker and the app's cleanups
	return b
}

func (b *blocker) unblock() {
	select {
	case <-b.release:
	default:
		close(b.release)
	}
}

func (b *blocker) Name() string { return "blocker" }
func (b *blocker) Interaction(ev *ingest.Interaction, _ *processor.Output) {
	if strings.HasPrefix(ev.EventID, "stuck") {
		b.once.Do(func() { close(b.entered) })
		<-b.release
	}
}
func (b *blocker) Receipt(*ingest.Receipt, *processor.Output) {}
func (b *blocker) Advance(time.Time, *processor.Output)       {}
func (b *blocker) MarshalState() ([]byte, error)              { return []byte{}, nil }
func (b *blocker) UnmarshalState([]byte) error                { return nil }
func (b *blocker) components(int) []processor.Component       { return []processor.Component{b} }
func (b *blocker) waitEntered(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-b.entered:
	case <-time.After(within):
		t.Fatal("the stuck record never reached the engine")
	}
}

// logBuffer collects an app's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines are the log lines containing every one of the substrings.
func (l *logBuffer) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// started is an app whose logs are kept and whose Run the test ends.
type started struct {
	app    *stream.App
	reg    *prometheus.Registry
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan error
}

func startLogged(t *testing.T, cfg stream.Config) *started {
	t.Helper()
	s := &started{reg: prometheus.NewRegistry(), logs: &logBuffer{}, done: make(chan error, 1)}
	var w io.Writer = s.logs
	app, err := stream.New(cfg, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})), s.reg)
	require.NoError(t, err)
	s.app = app
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- app.Run(ctx) }()
	t.Cleanup(cancel)
	return s
}

// wait returns Run's result once it returned after cancel.
func (s *started) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return within 2 minutes of being cancelled")
		return nil
	}
}

func (s *started) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.app.Addr() + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// produceInteractions writes logins of customer c to the interactions
// topic, one per id, a second apart.
func produceInteractions(t *testing.T, brokers []string, topic string, at time.Time, ids ...string) {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll,
		BatchTimeout: time.Millisecond}
	defer w.Close()
	msgs := make([]kafkago.Message, len(ids))
	for i, id := range ids {
		msgs[i] = kafkago.Message{Topic: topic, Key: []byte("c1"), Value: []byte(fmt.Sprintf(
			`{"event_id":%q,"type":"login","customer_id":"c1","occurred_at":%q,"tenant":"acme"}`,
			id, at.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339Nano)))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, msgs...))
}

// healthConfig is a one-partition pipeline on brokers whose engines carry
// the blocker, with a watchdog quick enough for a test.
func healthConfig(t *testing.T, brokers []string, blk *blocker) (stream.Config, topics) {
	tp := newTopics(t)
	createInputs(t, brokers, tp, 1)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.IdleTimeout = stream.Duration(time.Hour) // the watermark follows the records only
	cfg.Health.StallTimeout = stream.Duration(2 * time.Second)
	cfg.Health.SlowStep = stream.Duration(500 * time.Millisecond)
	cfg.Components = blk.components
	return cfg, tp
}

// TestKfakeHealthzFailsWhileARuleIsStuck: /healthz stays 200 while a
// caught-up partition idles for longer than health.stall_timeout, fails
// with the partition and the component named while an evaluation does not
// end (the gauges and one WARN line say so too, /readyz keeps answering
// 200), and recovers when it ends.
func TestKfakeHealthzFailsWhileARuleIsStuck(t *testing.T) {
	brokers := newKfake(t)
	blk := newBlocker(t)
	cfg, tp := healthConfig(t, brokers, blk)
	s := startLogged(t, cfg)
	require.Eventually(t, func() bool { c, _ := s.get(t, "/readyz"); return c == 200 }, time.Minute, 20*time.Millisecond)

	at := time.Now().Add(-time.Hour)
	produceInteractions(t, brokers, tp.cfg.Interactions, at, "a1", "a2", "a3")
	require.Eventually(t, func() bool {
		return gauge(t, s.reg, "crmpulse_stream_consumed_records_total") == 3
	}, time.Minute, 20*time.Millisecond)
	// Idle and caught up for well over a stall timeout: healthy throughout.
	require.Never(t, func() bool { c, _ := s.get(t, "/healthz"); return c != 200 }, 5*time.Second, 50*time.Millisecond)
	require.Zero(t, gauge(t, s.reg, "crmpulse_stream_partition_stalled"))

	produceInteractions(t, brokers, tp.cfg.Interactions, at.Add(time.Minute), "stuck1", "a4")
	blk.waitEntered(t, time.Minute)
	var body string
	require.Eventually(t, func() bool {
		var c int
		c, body = s.get(t, "/healthz")
		return c == http.StatusServiceUnavailable
	}, time.Minute, 20*time.Millisecond)
	require.Contains(t, body, "partition 0: no progress for")
	require.Contains(t, body, `in "blocker" (interaction)`)
	code, _ := s.get(t, "/readyz")
	require.Equal(t, 200, code, "/readyz keeps its meaning: in the group and restored")
	require.Equal(t, 1.0, gauge(t, s.reg, "crmpulse_stream_partition_stalled"))
	require.GreaterOrEqual(t, gauge(t, s.reg, "crmpulse_stream_partition_busy_seconds"), 2.0)
	require.GreaterOrEqual(t, gauge(t, s.reg, "crmpulse_stream_slow_steps_total"), 1.0)
	// (A loaded test machine may log another slow step; this one is logged once.)
	warn := s.logs.lines("level=WARN", `msg="partition busy on one step"`, "blocker")
	require.Len(t, warn, 1, "logged once:\n%s", s.logs)
	require.Contains(t, warn[0], "partition=0")
	require.Contains(t, warn[0], `step="in \"blocker\" (interaction)"`)
	require.Len(t, s.logs.lines("level=ERROR", `msg="partition stalled`, "partition=0", "blocker"), 1)

	blk.unblock()
	require.Eventually(t, func() bool { c, _ := s.get(t, "/healthz"); return c == 200 }, time.Minute, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		return gauge(t, s.reg, "crmpulse_stream_consumed_records_total") == 5
	}, time.Minute, 20*time.Millisecond)
	require.Zero(t, gauge(t, s.reg, "crmpulse_stream_partition_stalled"))
	require.NotEmpty(t, s.logs.lines(`msg="partition making progress again"`, "partition=0"))
	require.NoError(t, s.stop(t))
}

// TestKfakeShutdownTimeoutWithAStuckRule: a stop while an evaluation does
// not end still returns, after shutdown_timeout, with an error and a log
// line naming the partition that did not stop.
func TestKfakeShutdownTimeoutWithAStuckRule(t *testing.T) {
	brokers := newKfake(t)
	blk := newBlocker(t)
	cfg, tp := healthConfig(t, brokers, blk)
	cfg.ShutdownTimeout = stream.Duration(2 * time.Second)
	s := startLogged(t, cfg)
	require.Eventually(t, s.app.Ready, time.Minute, 20*time.Millisecond)
	produceInteractions(t, brokers, tp.cfg.Interactions, time.Now().Add(-time.Hour), "stuck1")
	blk.waitEntered(t, time.Minute)

	err := s.stop(t)
	require.ErrorIs(t, err, stream.ErrShutdownTimeout)
	require.ErrorContains(t, err, "partition 0 did not stop")
	lines := s.logs.lines("level=ERROR", `msg="shutdown timed out; partitions did not stop"`)
	require.Len(t, lines, 1, s.logs.String())
	require.Contains(t, lines[0], `partitions="[partition 0]"`)
	require.Contains(t, lines[0], "shutdown_timeout=2s")
}

// TestKfakeShutdownInTime: without a stuck part, a stop ends normally
// (final checkpoints written) well within shutdown_timeout.
func TestKfakeShutdownInTime(t *testing.T) {
	brokers := newKfake(t)
	blk := newBlocker(t)
	cfg, tp := healthConfig(t, brokers, blk)
	s := startLogged(t, cfg)
	require.Eventually(t, s.app.Ready, time.Minute, 20*time.Millisecond)
	produceInteractions(t, brokers, tp.cfg.Interactions, time.Now().Add(-time.Hour), "a1", "a2")
	require.Eventually(t, func() bool {
		return gauge(t, s.reg, "crmpulse_stream_consumed_records_total") == 2
	}, time.Minute, 20*time.Millisecond)
	require.NoError(t, s.stop(t))
	require.Empty(t, s.logs.lines("shutdown timed out"))
	require.NotEmpty(t, s.logs.lines(`msg="pipeline stopped"`))
}

// TestKafkaCaughtUpIsQuiet: on the real Kafka, a pipeline that has read
// everything goes through many empty long polls (kafka.max_wait each)
// without a warning and without reconnecting.
func TestKafkaCaughtUpIsQuiet(t *testing.T) {
	brokers := realBrokers(t)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 2)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Kafka.MaxWait = stream.Duration(100 * time.Millisecond)
	produceInteractions(t, brokers, tp.cfg.Interactions, time.Now().Add(-time.Hour), "a1", "a2", "a3")
	s := startLogged(t, cfg)
	require.Eventually(t, func() bool {
		return gauge(t, s.reg, "crmpulse_stream_consumed_records_total") == 3
	}, 2*time.Minute, 50*time.Millisecond)
	// Four fetchers (two topics, two partitions), caught up: each fetch
	// now waits max_wait and comes back empty. Twenty cycles each, from
	// here on (joining a new group on a shared broker may log a retry).
	f0, r0 := gauge(t, s.reg, "crmpulse_kafka_fetches_total"), gauge(t, s.reg, "crmpulse_kafka_reconnects_total")
	logged := len(s.logs.String())
	require.Eventually(t, func() bool {
		return gauge(t, s.reg, "crmpulse_kafka_fetches_total") >= f0+4*20
	}, 2*time.Minute, 50*time.Millisecond)
	require.Equal(t, r0, gauge(t, s.reg, "crmpulse_kafka_reconnects_total"), "reconnects while caught up")
	since := s.logs.String()[logged:]
	require.NotContains(t, since, "level=WARN")
	require.NotContains(t, since, "reconnecting")
	require.Zero(t, r0, "no reconnect before either:\n%s", s.logs)
	c, _ := s.get(t, "/healthz")
	require.Equal(t, 200, c)
	require.NoError(t, s.stop(t))
}
