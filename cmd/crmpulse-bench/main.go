// Command crmpulse-bench measures `crmpulse run` against a Kafka broker
// (docs/benchmarks.md):
//
//	throughput: end-to-end events/s of the pipeline against raw kafka-go
//	            consumption of the same topics in the same run;
//	latency:    event→alert latency of a threshold rule at a steady input
//	            rate, from an event's occurred_at (set when it is produced)
//	            to the alert's arrival at a consumer of the alerts topic.
//
// The broker is --brokers (or CRMPULSE_KAFKA_BROKERS); without one an
// embedded kfake broker is started. Topics get unique names per run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"gopkg.in/yaml.v3"

	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/stream"
)

func main() {
	brokers := flag.String("brokers", os.Getenv("CRMPULSE_KAFKA_BROKERS"), "Kafka brokers (empty: embedded kfake)")
	mode := flag.String("mode", "throughput", "throughput or latency")
	events := flag.Int("events", 1_000_000, "throughput: events to produce (interactions and receipts)")
	partitions := flag.Int("partitions", 4, "partitions of each input topic")
	rate := flag.Int("rate", 50_000, "latency: events per second")
	duration := flag.Duration("duration", 20*time.Second, "latency: measured duration (after a 5s warm-up)")
	rulesPath := flag.String("rules", "stream/testdata/rules.yaml", "throughput: rules file")
	rounds := flag.Int("rounds", 3, "throughput: rounds of baseline then pipeline over the same topics")
	latencyWith := flag.String("latency-with", "", "latency: also load the rules, resend policies and segment sets of this file beside the measured threshold rule (e.g. stream/testdata/rules.yaml: five detectors)")
	commitEvery := flag.Duration("commit-interval", time.Second, "the pipeline's commit_interval")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	bs := strings.Split(*brokers, ",")
	if *brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			fail(err)
		}
		defer c.Close()
		bs = c.ListenAddrs()
		fmt.Println("broker: embedded kfake", bs)
	} else {
		fmt.Println("broker:", bs)
	}
	var err error
	switch *mode {
	case "throughput":
		err = throughput(ctx, bs, *events, *partitions, *rulesPath, *rounds)
	case "latency":
		err = latency(ctx, bs, *rate, *duration, *partitions, *commitEvery, *latencyWith)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "crmpulse-bench:", err)
	os.Exit(1)
}

func topicsFor(prefix string) stream.TopicsConfig {
	return stream.TopicsConfig{
		Interactions: prefix + ".interactions", Receipts: prefix + ".receipts", Alerts: prefix + ".alerts",
		Resends: prefix + ".resends", Segments: prefix + ".segments", Digests: prefix + ".digests",
		DigestDeliveries: prefix + ".digest-deliveries", Snapshots: prefix + ".snapshots", Repartition: prefix + ".repartition",
	}
}

func createInputs(ctx context.Context, brokers []string, t stream.TopicsConfig, n int) error {
	return ikafka.EnsureTopics(ctx, ikafka.Plain(brokers),
		ikafka.TopicSpec{Name: t.Interactions, Partitions: n, ReplicationFactor: -1},
		ikafka.TopicSpec{Name: t.Receipts, Partitions: n, ReplicationFactor: -1})
}

// interaction and receipt are generated input events.
func interaction(i int, cust string, typ string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"event_id":"e%d","type":%q,"customer_id":%q,"occurred_at":%q,"tenant":"acme","segment":"smb","region":"apac","channel":"web","amount":%d.5}`,
		i, typ, cust, at.UTC().Format(time.RFC3339Nano), i%97)
}

func receipt(i int, cust string, status string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"receipt_id":"r%d","message_id":"m%d","customer_id":%q,"channel":"sms","status":%q,"occurred_at":%q,"attempt":1,"tenant":"acme","provider":"p1"}`,
		i, i/2, cust, status, at.UTC().Format(time.RFC3339Nano))
}

// throughput produces events to fresh topics, reads them all with plain
// kafka-go readers (the baseline), then runs the pipeline over them.
func throughput(ctx context.Context, brokers []string, events, n int, rulesPath string, rounds int) error {
	t := topicsFor(fmt.Sprintf("bench-%06x", rand.Uint32()&0xffffff))
	if err := createInputs(ctx, brokers, t, n); err != nil {
		return err
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{},
		RequiredAcks: kafkago.RequireOne, BatchSize: 10000, BatchBytes: 8 << 20, BatchTimeout: 5 * time.Millisecond,
		Compression: kafkago.Lz4}
	defer w.Close()
	start := time.Now().Add(-72 * time.Hour)
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Now()
	var bytes int64
	for off := 0; off < events; off += 50000 {
		msgs := make([]kafkago.Message, 0, 50000)
		for i := off; i < min(off+50000, events); i++ {
			// 5000 customers active every ~15 minutes of event time: alerts
			// and resends are a few percent of the input, as in production.
			cust := "c" + strconv.Itoa(rng.IntN(5000))
			at := start.Add(time.Duration(i) * 200 * time.Millisecond)
			if i%3 == 2 {
				st := []string{"sent", "delivered", "sent", "delivered", "sent", "delivered", "soft_bounce"}[rng.IntN(7)]
				msgs = append(msgs, kafkago.Message{Topic: t.Receipts, Key: []byte(cust), Value: receipt(i, cust, st, at)})
			} else {
				typ := "login"
				switch r := rng.IntN(100); {
				case r < 30:
					typ = "visit"
				case r < 50:
					typ = "purchase"
				case r < 51:
					typ = "complaint"
				}
				msgs = append(msgs, kafkago.Message{Topic: t.Interactions, Key: []byte(cust), Value: interaction(i, cust, typ, at)})
			}
			bytes += int64(len(msgs[len(msgs)-1].Value))
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("producing: %w", err)
		}
	}
	fmt.Printf("produced %d events (%.0f bytes avg) in %s\n", events, float64(bytes)/float64(events), time.Since(t0).Round(time.Millisecond))

	// Rounds alternate the baseline and the pipeline over the same topics,
	// so that a busy moment of the shared machine hits both alike; the
	// median ratio is the figure.
	var ratios, batchRatios []float64
	for round := 1; round <= rounds; round++ {
		rawRate, err := rawConsume(ctx, brokers, t, n)
		if err != nil {
			return err
		}
		batchRate, err := rawConsumeBatches(ctx, brokers, t, n)
		if err != nil {
			return err
		}
		e2eRate, rejected, err := pipelineConsume(ctx, brokers, t, events, rulesPath, round)
		if err != nil {
			return err
		}
		ratios = append(ratios, e2eRate/rawRate)
		batchRatios = append(batchRatios, e2eRate/batchRate)
		fmt.Printf("round %d: raw kafka-go Reader %.0f records/s, raw kafka-go Conn.ReadBatch %.0f records/s, "+
			"pipeline (decode, merge, engine with %s, outputs, checkpoints) %.0f records/s (%.0f dead-lettered), "+
			"ratio %.2f to Reader, %.2f to ReadBatch\n",
			round, rawRate, batchRate, filepath.Base(rulesPath), e2eRate, rejected, e2eRate/rawRate, e2eRate/batchRate)
	}
	median := func(xs []float64) string {
		slices.Sort(xs)
		return fmt.Sprintf("median %.2f of %d rounds (min %.2f, max %.2f)", xs[len(xs)/2], len(xs), xs[0], xs[len(xs)-1])
	}
	fmt.Printf("ratio pipeline / raw Reader consumption: %s\n", median(ratios))
	fmt.Printf("ratio pipeline / raw ReadBatch consumption: %s\n", median(batchRatios))
	return nil
}

// consumeAll runs read on every input topic-partition at once and returns
// the records per second they counted together.
func consumeAll(t stream.TopicsConfig, n int, read func(topic string, p int) (int64, error)) (float64, error) {
	t0 := time.Now()
	var got atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for _, topic := range []string{t.Interactions, t.Receipts} {
		for p := 0; p < n; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, err := read(topic, p)
				got.Add(k)
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(got.Load()) / time.Since(t0).Seconds(), nil
}

// rawConsumeBatches reads every topic-partition to its end the way the
// pipeline's fetchers do, with a kafka-go Conn a fetch response at a time,
// discarding the records: the fastest kafka-go path, the stricter baseline.
func rawConsumeBatches(ctx context.Context, brokers []string, t stream.TopicsConfig, n int) (float64, error) {
	return consumeAll(t, n, func(topic string, p int) (int64, error) {
		conn, err := kafkago.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		first, end, err := conn.ReadOffsets()
		if err != nil {
			return 0, err
		}
		if _, err := conn.Seek(first, kafkago.SeekAbsolute); err != nil {
			return 0, err
		}
		var got int64
		for off := first; off < end; {
			b := conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: ikafka.DefaultMinBytes,
				MaxBytes: ikafka.DefaultMaxBytes, MaxWait: ikafka.DefaultMaxWait})
			for {
				m, err := b.ReadMessage()
				if err != nil {
					break
				}
				got++
				off = m.Offset + 1
			}
			if err := b.Close(); err != nil {
				return got, err
			}
		}
		return got, nil
	})
}

// rawConsume reads every topic-partition to its end with a kafka-go Reader
// (the usual way to consume with kafka-go), tuned as the pipeline's
// fetchers are, discarding the records.
func rawConsume(ctx context.Context, brokers []string, t stream.TopicsConfig, n int) (float64, error) {
	return consumeAll(t, n, func(topic string, p int) (int64, error) {
		_, end, err := ikafka.PartitionBounds(ctx, ikafka.Plain(brokers), topic, p)
		if err != nil || end == 0 {
			return 0, err
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p,
			MinBytes: ikafka.DefaultMinBytes, MaxBytes: ikafka.DefaultMaxBytes, MaxWait: ikafka.DefaultMaxWait, QueueCapacity: 10000})
		defer r.Close()
		var got int64
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return got, err
			}
			got++
			if m.Offset+1 >= end {
				return got, nil
			}
		}
	})
}

// pipelineConsume runs the whole pipeline in-process over the topics, as a
// new consumer group (own snapshots), until it has consumed every record.
func pipelineConsume(ctx context.Context, brokers []string, t stream.TopicsConfig, events int, rulesPath string, round int) (float64, float64, error) {
	rp, err := filepath.Abs(rulesPath)
	if err != nil {
		return 0, 0, err
	}
	cfg := stream.DefaultConfig()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.GroupID = fmt.Sprintf("%s.group%d", t.Interactions, round)
	cfg.Topics = t
	cfg.Topics.Snapshots = fmt.Sprintf("%s.%d", t.Snapshots, round)
	cfg.Topics.Repartition = fmt.Sprintf("%s.%d", t.Repartition, round)
	cfg.Rules = rp
	cfg.HTTP.Listen = ""
	// Workers publish their counters on every tick (a quarter of the
	// shorter of idle_timeout and commit_interval): a short idle timeout
	// makes that 25ms, the resolution of this measurement. Partitions with
	// records pending are never idle, so no record turns late by it (the
	// dead-letter count printed says so).
	cfg.IdleTimeout = stream.Duration(100 * time.Millisecond)
	reg := prometheus.NewRegistry()
	app, err := stream.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), reg)
	if err != nil {
		return 0, 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(rctx) }()
	for !app.Ready() {
		time.Sleep(time.Millisecond)
	}
	t0 := time.Now()
	for {
		if c := consumed(reg); c >= float64(events) {
			break
		}
		select {
		case err := <-done:
			cancel()
			return 0, 0, fmt.Errorf("pipeline stopped: %w", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	e2e := time.Since(t0)
	rejected := metricSum(reg, "crmpulse_stream_rejected_records_total")
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return 0, 0, err
	}
	return float64(events) / e2e.Seconds(), rejected, nil
}

func metricSum(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func consumed(reg *prometheus.Registry) float64 {
	mfs, _ := reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "crmpulse_stream_consumed_records_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

const latencyRules = `version: 1
defaults: {timezone: UTC, allowed_lateness: 10s}
rules:
  - name: complaint_burst
    kind: threshold
    source: interactions
    match: {type: [complaint]}
    group_by: [tenant, customer_id]
    window: 1m
    value: count
    op: ">="
    threshold: 3
    severity: critical
`

// mergeRules adds the rules, resend policies and segment sets of the file
// at path to the rules file base (whose defaults stay).
func mergeRules(base []byte, path string) ([]byte, error) {
	extra, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b, e map[string]any
	if err := yaml.Unmarshal(base, &b); err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(extra, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if rs, ok := e["rules"].([]any); ok {
		b["rules"] = append(b["rules"].([]any), rs...)
	}
	for _, k := range []string{"resend", "segments"} {
		if v, ok := e[k]; ok {
			b[k] = v
		}
	}
	return yaml.Marshal(b)
}

// latency produces a steady stream of events stamped with the wall clock
// in which, every 5ms, one customer crosses a threshold of 3 complaints;
// the alert's starts_at is the crossing event's occurred_at.
func latency(ctx context.Context, brokers []string, rate int, dur time.Duration, n int, commitEvery time.Duration, with string) error {
	t := topicsFor(fmt.Sprintf("bench-lat-%06x", rand.Uint32()&0xffffff))
	if err := createInputs(ctx, brokers, t, n); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "crmpulse-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rp := filepath.Join(dir, "rules.yaml")
	rulesText := []byte(latencyRules)
	if with != "" {
		if rulesText, err = mergeRules(rulesText, with); err != nil {
			return err
		}
	}
	if err := os.WriteFile(rp, rulesText, 0o644); err != nil {
		return err
	}
	cfg := stream.DefaultConfig()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.GroupID = t.Interactions + ".group"
	cfg.Topics = t
	cfg.Rules = rp
	cfg.HTTP.Listen = ""
	cfg.CommitInterval = stream.Duration(commitEvery)
	app, err := stream.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(rctx) }()
	for !app.Ready() {
		time.Sleep(10 * time.Millisecond)
	}

	// Alerts consumer: one reader per partition of the alerts topic.
	var mu sync.Mutex
	var lats []time.Duration
	measureFrom := time.Now().Add(5 * time.Second)
	for p := 0; p < n; p++ {
		go func() {
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: t.Alerts, Partition: p,
				MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond})
			defer r.Close()
			_ = r.SetOffset(kafkago.LastOffset)
			for {
				m, err := r.ReadMessage(rctx)
				if err != nil {
					return
				}
				now := time.Now()
				i := strings.Index(string(m.Value), `"starts_at":"`)
				if i < 0 || !strings.Contains(string(m.Value), `"state":"firing"`) {
					continue
				}
				s := string(m.Value[i+len(`"starts_at":"`):])
				at, err := time.Parse(time.RFC3339Nano, s[:strings.IndexByte(s, '"')])
				if err != nil || at.Before(measureFrom) {
					continue
				}
				mu.Lock()
				lats = append(lats, now.Sub(at))
				mu.Unlock()
			}
		}()
	}

	// An asynchronous producer, so that producing keeps to the schedule;
	// occurred_at is stamped before a record is handed to it, so its
	// batching counts in the latency.
	var produceErr atomic.Pointer[error]
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{},
		RequiredAcks: kafkago.RequireOne, BatchSize: 2000, BatchTimeout: time.Millisecond, Async: true,
		Completion: func(_ []kafkago.Message, err error) {
			if err != nil {
				produceErr.Store(&err)
			}
		}}
	defer w.Close()
	const tick = 5 * time.Millisecond
	perTick := rate * int(tick) / int(time.Second)
	end := measureFrom.Add(dur)
	i, burst := 0, 0
	next := time.Now()
	sent := 0
	var behind time.Duration
	for time.Now().Before(end) {
		now := time.Now()
		msgs := make([]kafkago.Message, 0, perTick)
		for k := 0; k < perTick-3; k++ {
			i++
			cust := "c" + strconv.Itoa(i%100000)
			msgs = append(msgs, kafkago.Message{Topic: t.Interactions, Key: []byte(cust), Value: interaction(i, cust, "login", now)})
		}
		// One customer complains three times: the third crosses.
		burst++
		cust := "burst" + strconv.Itoa(burst)
		for k := 0; k < 3; k++ {
			i++
			msgs = append(msgs, kafkago.Message{Topic: t.Interactions, Key: []byte(cust), Value: interaction(i, cust, "complaint", now)})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("producing: %w", err)
		}
		sent += len(msgs)
		next = next.Add(tick)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else {
			behind = max(behind, -d)
		}
	}
	elapsed := time.Since(measureFrom.Add(-5 * time.Second))
	if p := produceErr.Load(); p != nil {
		return fmt.Errorf("producing: %w", *p)
	}
	time.Sleep(2 * time.Second)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(lats) == 0 {
		return errors.New("no alert arrived")
	}
	slices.Sort(lats)
	q := func(p float64) time.Duration {
		return lats[min(int(p*float64(len(lats))), len(lats)-1)].Round(100 * time.Microsecond)
	}
	fmt.Printf("input: %d events in %s = %.0f events/s (producer fell behind its schedule by up to %s)\n",
		sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), behind.Round(time.Millisecond))
	fmt.Printf("event→alert latency over %d alerts: p50 %s, p90 %s, p99 %s, max %s\n",
		len(lats), q(0.5), q(0.9), q(0.99), lats[len(lats)-1].Round(100*time.Microsecond))
	return nil
}
