package stream

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
)

// Each output once (docs/run.md, "Each output once"). kafka-go has no
// transactional producer, so a partition cannot write its outputs and its
// snapshot atomically; after a crash its next owner restores the last
// snapshot and re-produces what was written since. Instead of transactions
// a recovery step removes those duplicates:
//
//   - Every alert, resend, segment transition and dead letter carries its id (crmpulse-id) and
//     its origin: the partition or the group stage, the consumer group, and
//     the origin's input offsets and watermark when it was produced.
//   - Every checkpoint records, per output topic-partition, an offset at or
//     below which no record of the origin's next epoch can land: end offsets
//     listed before the checkpoint handed any record of that epoch to the
//     writer (offsets only grow, so an answer received earlier is a lower
//     bound for every record sent later).
//   - A restore reads each output topic-partition from the recorded offset
//     to its current end and collects the ids of its own origin; when the
//     re-processing produces one of them again, it is not written to Kafka
//     (the sinks still get it: they are idempotent) and leaves the set.

// Headers of the origin of alerts, resends and dead letters.
const (
	// HeaderOrigin is the input partition number that produced the record,
	// or "groups" for the group stage.
	HeaderOrigin = "crmpulse-origin"
	// HeaderGroup is the consumer group (kafka.group_id) of the producer.
	HeaderGroup = headerGroup
	// HeaderOriginOffsets are the origin's next input offsets when it
	// produced the record: "<interactions>,<receipts>" for a partition,
	// "<repartition>" for the group stage.
	HeaderOriginOffsets = "crmpulse-origin-offsets"
	// HeaderOriginWatermark is the origin engine's watermark then
	// (RFC 3339; empty before its first).
	HeaderOriginWatermark = "crmpulse-origin-watermark"
)

// Limits of the recovery step.
const (
	// maxSuppressedIDs bounds the ids one partition holds for suppression.
	// Beyond it the rest of a tail is not held: those outputs may be
	// written twice (counted as a fallback).
	maxSuppressedIDs = 200_000
	// tailReadTimeout bounds reading the output tails at a restore.
	tailReadTimeout = 2 * time.Minute
	// tailReaders is how many output topic-partitions a restore reads at once.
	tailReaders = 4
	// expireEvery is how many flushes pass between two sweeps of ids the
	// re-processing has gone past without producing them.
	expireEvery = 64
)

// Reasons a restore falls back to at-least-once, in
// crmpulse_output_dedup_fallbacks_total.
const (
	fallbackNoOffsets  = "no_offsets"  // the snapshot records no output offsets
	fallbackReadFailed = "read_failed" // the tails could not be read
	fallbackTooMany    = "too_many"    // more ids than maxSuppressedIDs
	fallbackListFailed = "list_failed" // a checkpoint could not list the end offsets
)

// dedupMetrics are the recovery step's.
type dedupMetrics struct {
	suppressed *prometheus.CounterVec
	fallbacks  *prometheus.CounterVec
	tailRead   prometheus.Counter
	held       prometheus.Gauge
}

func newDedupMetrics(reg prometheus.Registerer) *dedupMetrics {
	m := &dedupMetrics{
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "output", Name: "duplicates_suppressed_total",
			Help: "Records a restored partition re-produced and did not write again because its output topic already holds their id.",
		}, []string{"topic"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "output", Name: "dedup_fallbacks_total",
			Help: "Restores and checkpoints that could not rule out duplicates in the output topics (at-least-once), by reason.",
		}, []string{"reason"}),
		tailRead: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "output", Name: "dedup_tail_records_total",
			Help: "Output records read back at restores to find what was already written.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "output", Name: "dedup_held_ids",
			Help: "Ids held for suppression, over the partitions of this instance.",
		}),
	}
	for _, r := range []string{fallbackNoOffsets, fallbackReadFailed, fallbackTooMany, fallbackListFailed} {
		m.fallbacks.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.suppressed, m.fallbacks, m.tailRead, m.held)
	}
	return m
}

// dedupTopics are the output topics whose ids are deduplicated.
func (a *App) dedupTopics() []string {
	t := a.cfg.Topics
	return []string{t.Alerts, t.Resends, t.Segments, t.Digests, t.Interactions + DLQSuffix, t.Receipts + DLQSuffix}
}

// outputEnds caches the end offsets of the output topic-partitions for
// the checkpoints of every partition of the process. A cached answer is as
// good as a fresh one for what a checkpoint needs (a lower bound of where
// the records it has not handed to the writer yet will land); its age only
// lengthens the tail a restore reads, so it is refreshed every maxAge.
type outputEnds struct {
	cluster ikafka.Cluster
	topics  []string
	maxAge  time.Duration
	mu      sync.Mutex
	at      time.Time
	ends    map[string]map[int]int64
}

func newOutputEnds(cl ikafka.Cluster, topics []string, maxAge time.Duration) *outputEnds {
	return &outputEnds{cluster: cl, topics: topics, maxAge: maxAge}
}

// get returns the end offset of every output topic-partition as listed at
// some instant before the call. The map is shared: do not modify it.
func (o *outputEnds) get(ctx context.Context) (map[string]map[int]int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ends != nil && time.Since(o.at) < o.maxAge {
		return o.ends, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t0 := time.Now()
	b, err := ikafka.TopicBounds(ctx, o.cluster, o.topics...)
	if err != nil {
		return nil, err
	}
	ends := make(map[string]map[int]int64, len(b))
	for topic, parts := range b {
		m := make(map[int]int64, len(parts))
		for p, pb := range parts {
			m[p] = pb.End
		}
		ends[topic] = m
	}
	o.ends, o.at = ends, t0
	return ends, nil
}

// position is an origin's state: its next input offsets and its engine's
// watermark (Unix nanos, math.MinInt64 before the first).
type position struct {
	offsets []int64
	wm      int64
}

func wmNanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// covers reports whether an origin at p has processed everything an
// origin at q had when it produced a record: every input offset and the
// watermark at least q's. A record tagged q that a re-processing at p has
// not produced again will not be produced again: its cause (a record
// before q's offsets, or a timer due by q's watermark) is behind.
func (p position) covers(q position) bool {
	if len(p.offsets) != len(q.offsets) {
		return false
	}
	for i := range p.offsets {
		if q.offsets[i] > p.offsets[i] {
			return false
		}
	}
	return q.wm <= p.wm
}

// parsePosition reads the origin headers' offsets and watermark.
func parsePosition(offsets, wm string) (position, error) {
	var p position
	for f := range strings.SplitSeq(offsets, ",") {
		o, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return p, fmt.Errorf("origin offsets %q: %w", offsets, err)
		}
		p.offsets = append(p.offsets, o)
	}
	p.wm = math.MinInt64
	if wm != "" {
		t, err := time.Parse(time.RFC3339Nano, wm)
		if err != nil {
			return p, fmt.Errorf("origin watermark %q: %w", wm, err)
		}
		p.wm = t.UnixNano()
	}
	return p, nil
}

type outputKey struct{ topic, id string }

// heldOutput is an id already in an output topic, waiting to be
// re-produced.
type heldOutput struct {
	partition int
	offset    int64
	at        position // the origin's state when it was produced
}

// outputDedup is one origin's (a partition's or the group stage's)
// recovery state. It is used by the origin's goroutine only.
type outputDedup struct {
	a      *App
	origin string
	log    *slog.Logger
	topics map[string]bool
	ids    map[outputKey]heldOutput
	// marks are the output offsets the last checkpoint recorded (or the
	// restored one): still lower bounds, used when listing fails.
	marks   map[string]map[int]int64
	flushes int
}

func (a *App) newOutputDedup(origin string, log *slog.Logger) *outputDedup {
	d := &outputDedup{a: a, origin: origin, log: log, topics: map[string]bool{}}
	for _, t := range a.dedupTopics() {
		d.topics[t] = true
	}
	return d
}

// restore reads the output tails from the offsets a snapshot recorded
// (marks; nil for a snapshot of an older version) and holds the ids of
// this origin that the re-processing from cur may produce again. Failing
// that, it logs, counts and holds nothing: outputs are then at least once.
func (d *outputDedup) restore(ctx context.Context, marks map[string]map[int]int64, cur position) {
	a := d.a
	if marks == nil {
		a.dm.fallbacks.WithLabelValues(fallbackNoOffsets).Inc()
		d.log.Warn("snapshot records no output offsets (written by an older version): outputs re-produced since it may be written twice")
		return
	}
	d.marks = marks
	t0 := time.Now()
	rctx, cancel := context.WithTimeout(ctx, tailReadTimeout)
	defer cancel()
	ids, read, overflow, err := d.readTails(rctx, marks, cur)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		a.dm.fallbacks.WithLabelValues(fallbackReadFailed).Inc()
		d.log.Error("reading the output tails failed: outputs re-produced since the snapshot may be written twice", "err", err)
		return
	}
	a.dm.tailRead.Add(float64(read))
	if overflow > 0 {
		a.dm.fallbacks.WithLabelValues(fallbackTooMany).Inc()
		d.log.Warn("too many output ids to hold for deduplication: the rest may be written twice",
			"held", len(ids), "not_held", overflow, "limit", maxSuppressedIDs)
	}
	if len(ids) > 0 {
		d.ids = ids
		a.dm.held.Add(float64(len(ids)))
	}
	d.log.Info("output tails read", "records", read, "held_ids", len(ids), "took", time.Since(t0).Round(time.Millisecond))
}

// readTails reads every deduplicated topic-partition from its mark to its
// end, tailReaders at a time.
func (d *outputDedup) readTails(ctx context.Context, marks map[string]map[int]int64, cur position) (map[outputKey]heldOutput, int64, int, error) {
	a := d.a
	bounds, err := ikafka.TopicBounds(ctx, a.cluster(), a.dedupTopics()...)
	if err != nil {
		return nil, 0, 0, err
	}
	var (
		mu       sync.Mutex
		ids      = map[outputKey]heldOutput{}
		read     int64
		overflow int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(tailReaders)
	group := a.cfg.Kafka.GroupID
	for topic, parts := range bounds {
		for p, b := range parts {
			// A topic or partition the snapshot does not know is newer
			// than it: read it whole.
			from := b.First
			if m, ok := marks[topic][p]; ok {
				from = max(m, b.First)
			}
			if from >= b.End {
				continue
			}
			g.Go(func() error {
				var local []struct {
					k outputKey
					h heldOutput
				}
				n := int64(0)
				err := ikafka.ReadRange(gctx, a.cluster(), topic, p, from, b.End, func(m *kafkago.Message) error {
					n++
					var id, origin, grp, offs, wm string
					for _, h := range m.Headers {
						switch h.Key {
						case HeaderID:
							id = string(h.Value)
						case HeaderOrigin:
							origin = string(h.Value)
						case HeaderGroup:
							grp = string(h.Value)
						case HeaderOriginOffsets:
							offs = string(h.Value)
						case HeaderOriginWatermark:
							wm = string(h.Value)
						}
					}
					if origin != d.origin || grp != group || id == "" {
						return nil
					}
					at, err := parsePosition(offs, wm)
					if err != nil {
						// Held anyway: an id not re-produced costs memory only.
						at = position{offsets: []int64{math.MaxInt64}, wm: math.MaxInt64}
					}
					if cur.covers(at) {
						return nil // produced before the snapshot
					}
					local = append(local, struct {
						k outputKey
						h heldOutput
					}{outputKey{topic, id}, heldOutput{partition: p, offset: m.Offset, at: at}})
					return nil
				})
				mu.Lock()
				defer mu.Unlock()
				read += n
				for _, e := range local {
					if _, ok := ids[e.k]; ok {
						continue
					}
					if len(ids) >= maxSuppressedIDs {
						overflow++
						continue
					}
					ids[e.k] = e.h
				}
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, 0, 0, err
	}
	return ids, read, overflow, nil
}

// filter drops from msgs, in place, the records whose id is held, releasing
// their epoch references, and from time to time forgets held ids the
// re-processing went past. It must be called where every record processed
// so far has been emitted into msgs (where the worker and the group stage
// flush), so that cur is the state everything in msgs was produced at.
func (d *outputDedup) filter(msgs []kafkago.Message, cur func() position) []kafkago.Message {
	if d == nil || d.ids == nil {
		return msgs
	}
	kept := msgs[:0]
	for i := range msgs {
		m := &msgs[i]
		if d.topics[m.Topic] {
			k := outputKey{m.Topic, headerValue(m.Headers, HeaderID)}
			if _, ok := d.ids[k]; ok {
				delete(d.ids, k)
				d.a.dm.held.Dec()
				d.a.dm.suppressed.WithLabelValues(m.Topic).Inc()
				if ep, ok := m.WriterData.(*epoch); ok {
					ep.release(nil)
				}
				continue
			}
		}
		kept = append(kept, *m)
	}
	clear(msgs[len(kept):])
	d.flushes++
	if d.flushes%expireEvery == 0 || len(d.ids) == 0 {
		d.expire(cur())
	}
	return kept
}

// expire forgets the held ids that the origin at cur has gone past without
// producing them (its processing differed, say after a rules change).
func (d *outputDedup) expire(cur position) {
	n := 0
	for k, h := range d.ids {
		if cur.covers(h.at) {
			delete(d.ids, k)
			n++
		}
	}
	d.a.dm.held.Sub(float64(n))
	if len(d.ids) == 0 {
		d.ids = nil
		d.log.Info("re-produced outputs deduplicated; holding no more ids")
	}
}

// close gives back the gauge's share of a stopping origin.
func (d *outputDedup) close() {
	if d != nil {
		d.a.dm.held.Sub(float64(len(d.ids)))
		d.ids = nil
	}
}

func headerValue(hs []kafkago.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// checkpointMarks are the output offsets a checkpoint records: the end
// offsets (a lower bound of where any record not yet handed to the writer
// lands), lowered to every id still held, so that a restore from this
// checkpoint finds those too. Without them (listing failed and no earlier
// marks) a restore from this checkpoint is at least once.
func (d *outputDedup) checkpointMarks(ctx context.Context) map[string]map[int]int64 {
	base, err := d.a.outEnds.get(ctx)
	if err != nil {
		if d.marks == nil {
			d.a.dm.fallbacks.WithLabelValues(fallbackListFailed).Inc()
			d.log.Warn("listing the output offsets failed: a restore from this checkpoint may write outputs twice", "err", err)
			return nil
		}
		// The previous marks are still lower bounds: offsets only grow.
		d.log.Warn("listing the output offsets failed: the checkpoint keeps the previous ones", "err", err)
		base = d.marks
	}
	out := make(map[string]map[int]int64, len(base))
	for t, parts := range base {
		m := make(map[int]int64, len(parts))
		for p, o := range parts {
			m[p] = o
		}
		out[t] = m
	}
	for k, h := range d.ids {
		m := out[k.topic]
		if m == nil {
			m = map[int]int64{}
			out[k.topic] = m
		}
		if o, ok := m[h.partition]; !ok || h.offset < o {
			m[h.partition] = h.offset
		}
	}
	d.marks = out
	return out
}

// position is the worker's state for the origin headers and the
// deduplication.
func (w *worker) position() position {
	return position{offsets: w.positionOffsets(w.mergerOffsets()), wm: wmNanos(w.eng.Watermark())}
}

// mergerOffsets are the merger's next offsets, by input.
func (w *worker) mergerOffsets() [ikafka.NumInputs]int64 {
	return [ikafka.NumInputs]int64{w.merger.Offset(ikafka.Interactions), w.merger.Offset(ikafka.Receipts), w.merger.Offset(ikafka.Customers)}
}

// tag stamps what the worker produces next with its state.
func (w *worker) tag() {
	if w.merger != nil {
		w.enc.at(w.eng.Watermark(), w.positionOffsets(w.mergerOffsets())...)
	}
}

// firstCheckpoint writes the snapshot of a partition that has none: its
// empty engine at the start offsets, with the output offsets, so that a
// crash before the first regular checkpoint is deduplicated as well.
func (w *worker) firstCheckpoint(ctx context.Context, starts [ikafka.NumInputs]int64) error {
	snap, err := w.eng.Snapshot()
	if err != nil {
		return fmt.Errorf("snapshotting partition %d: %w", w.p, err)
	}
	cp := checkpoint{
		Engine: snap, RulesHash: w.eng.Rules().Hash,
		Offsets: w.offsets(starts),
		Outputs: w.dedup.checkpointMarks(ctx),
	}
	mf, err := w.a.snaps.save(ctx, w.p, &cp, w.last, w.a.now())
	if err != nil {
		return fmt.Errorf("writing the first snapshot of partition %d: %w", w.p, err)
	}
	w.last = mf
	return nil
}

// groupPosition is the group stage's state: the repartition offset it
// reads next and its engine's watermark. Everything taken before next has
// been released or is held in the snapshot's pending records.
func (s *groupStage) position() position {
	wm := int64(math.MinInt64)
	if s.eng != nil {
		wm = wmNanos(s.eng.Watermark())
	}
	return position{offsets: []int64{s.next}, wm: wm}
}

func (s *groupStage) tag() {
	if s.eng != nil {
		s.enc.at(s.eng.Watermark(), s.next)
	}
}
