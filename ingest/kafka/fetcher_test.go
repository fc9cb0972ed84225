package kafka

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/crmpulse/crmpulse/ingest"
)

// TestFetcherCaughtUpIsQuiet: a fetcher at the end of its partition goes
// through empty long polls without logging and without reconnecting, and
// still hands over a record produced afterwards. On kfake, and on the
// real Kafka when CRMPULSE_KAFKA_BROKERS is set.
func TestFetcherCaughtUpIsQuiet(t *testing.T) {
	brokers := map[string][]string{}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers["kfake"] = c.ListenAddrs()
	if b := os.Getenv("CRMPULSE_KAFKA_BROKERS"); b != "" {
		brokers["kafka"] = strings.Split(b, ",")
	}
	for name, bs := range brokers {
		t.Run(name, func(t *testing.T) { testFetcherQuiet(t, bs) })
	}
}

type lines struct {
	mu sync.Mutex
	s  []string
}

func (l *lines) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s = append(l.s, fmt.Sprintf(format, args...))
}

func (l *lines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.s...)
}

func testFetcherQuiet(t *testing.T, brokers []string) {
	topic := fmt.Sprintf("fetcher-quiet-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, EnsureTopics(ctx, Plain(brokers), TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: -1}))
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	value := func(id string) []byte {
		return []byte(`{"event_id":"` + id + `","type":"login","customer_id":"c1","occurred_at":"2026-01-01T00:00:00Z"}`)
	}
	require.NoError(t, w.WriteMessages(ctx, kafkago.Message{Topic: topic, Value: value("e1")}))

	var fetches, reconnects atomic.Int64
	logs := &lines{}
	out := make(chan *Batch, 16)
	f, err := NewFetcher(FetcherConfig{
		Brokers: brokers, Topic: topic, Source: ingest.SourceInteractions, Offset: kafkago.FirstOffset,
		MaxWait: 50 * time.Millisecond, Out: out, ErrorLogger: logs,
		OnFetch: func() { fetches.Add(1) }, OnReconnect: func() { reconnects.Add(1) },
	})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	defer func() { stop(); require.NoError(t, <-done) }()

	next := func() *Batch {
		t.Helper()
		for {
			select {
			case b := <-out:
				if len(b.Records) > 0 {
					return b
				}
			case <-ctx.Done():
				t.Fatal("no batch with records")
			}
		}
	}
	b := next()
	require.Len(t, b.Records, 1)
	require.True(t, b.CaughtUp)
	f0 := fetches.Load()
	// Twenty empty polls, or the first reconnect.
	require.Eventually(t, func() bool { return fetches.Load() >= f0+20 || reconnects.Load() > 0 }, time.Minute, 10*time.Millisecond)
	require.Zero(t, reconnects.Load(), "reconnects while caught up; logged: %q", logs.get())
	require.Empty(t, logs.get())

	require.NoError(t, w.WriteMessages(ctx, kafkago.Message{Topic: topic, Value: value("e2")}))
	b = next()
	require.Len(t, b.Records, 1)
	require.Equal(t, "e2", b.Records[0].I.EventID)
	require.Equal(t, int64(1), b.Records[0].Msg.Offset)
	require.Zero(t, reconnects.Load())
	require.Empty(t, logs.get())
}

// TestFetcherCustomers: a fetcher of the customers topic decodes profile
// versions (At is updated_at), marks a null value as a tombstone and a bad
// profile as refused.
func TestFetcherCustomers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	topic := fmt.Sprintf("fetcher-customers-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, EnsureTopics(ctx, Plain(brokers), TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: -1}))
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	require.NoError(t, w.WriteMessages(ctx,
		kafkago.Message{Topic: topic, Key: []byte("c1"), Value: []byte(`{"customer_id":"c1","updated_at":"2026-01-02T03:04:05Z","tier":"gold"}`)},
		kafkago.Message{Topic: topic, Key: []byte("c1")},
		kafkago.Message{Topic: topic, Key: []byte("c2"), Value: []byte(`{"customer_id":"c2","updated_at":"2026-01-02T03:04:05Z","timezone":"Not/AZone"}`)},
	))
	out := make(chan *Batch, 16)
	f, err := NewFetcher(FetcherConfig{Brokers: brokers, Topic: topic, Source: ingest.SourceCustomers, Offset: kafkago.FirstOffset,
		MaxWait: 50 * time.Millisecond, Out: out})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	defer func() { stop(); require.NoError(t, <-done) }()
	var recs []Record
	for len(recs) < 3 {
		select {
		case b := <-out:
			recs = append(recs, b.Records...)
		case <-ctx.Done():
			t.Fatal("fewer than 3 records")
		}
	}
	require.NotNil(t, recs[0].C)
	require.Equal(t, "gold", recs[0].C.Tier)
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), recs[0].At.UTC())
	require.True(t, recs[1].Tombstone)
	require.Nil(t, recs[1].C)
	require.NoError(t, recs[1].Err)
	require.Equal(t, "c1", string(recs[1].Msg.Key))
	var re *ingest.RejectError
	require.ErrorAs(t, recs[2].Err, &re)
	require.Equal(t, ingest.ReasonBadValue, re.Reason)
}
