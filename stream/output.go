package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/crmpulse/crmpulse/ingest"
	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/privacy"
	"github.com/crmpulse/crmpulse/processor"
)

// Record headers the pipeline writes.
const (
	HeaderID              = "crmpulse-id"
	HeaderReason          = "crmpulse-reason"
	HeaderError           = "crmpulse-error"
	HeaderSourceTopic     = "crmpulse-source-topic"
	HeaderSourcePartition = "crmpulse-source-partition"
	HeaderSourceOffset    = "crmpulse-source-offset"
)

// The crmpulse_outputs_total kinds of segment transitions and digests.
const (
	kindTransition = "transition"
	kindDigest     = "digest"
)

// DLQSuffix names a topic's dead-letter topic: crm.interactions.dlq.
const DLQSuffix = ".dlq"

// Producer batching: outputs are few next to inputs, so batches are small
// and a short timeout keeps event→alert latency low.
const (
	outputBatchSize    = 1000
	outputBatchTimeout = 2 * time.Millisecond
	outputMaxAttempts  = 10
)

// epoch counts the records a partition produced since its last checkpoint
// that the brokers have not acknowledged yet. It starts with one reference
// that seal drops, so done closes once the epoch is sealed and every record
// in it is acknowledged.
type epoch struct {
	n    atomic.Int64
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newEpoch() *epoch {
	e := &epoch{done: make(chan struct{})}
	e.n.Store(1)
	return e
}

func (e *epoch) add(k int) { e.n.Add(int64(k)) }

func (e *epoch) release(err error) {
	if err != nil {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.mu.Unlock()
	}
	if e.n.Add(-1) == 0 {
		close(e.done)
	}
}

func (e *epoch) seal() { e.release(nil) }

// wait blocks until the sealed epoch is fully acknowledged and returns the
// first delivery error.
func (e *epoch) wait(ctx context.Context) error {
	select {
	case <-e.done:
	case <-ctx.Done():
		return fmt.Errorf("waiting for output acknowledgements: %w", ctx.Err())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return fmt.Errorf("producing outputs: %w", e.err)
	}
	return nil
}

// producer writes alerts, resend triggers, segment transitions and dead letters with one
// asynchronous kafka-go Writer (acks from all in-sync replicas); each record
// carries its partition's epoch, released when the broker answers.
type producer struct {
	w *kafkago.Writer
	// digests writes the digests topic: a digest lists every alert of its
	// group, so one record may pass the 1 MiB that is every topic's
	// default limit (see digestTopicConfigs). A writer of its own keeps
	// the other topics' batches within their limit.
	digests *kafkago.Writer
	topics  TopicsConfig
}

// maxDigestBytes is the largest digest record: the digests topic's
// max.message.bytes and its writer's batch bound.
const maxDigestBytes = 8 << 20

// digestTopicConfigs let the digests topic take records up to
// maxDigestBytes.
var digestTopicConfigs = map[string]string{"max.message.bytes": strconv.Itoa(maxDigestBytes)}

func newProducer(cl ikafka.Cluster, topics TopicsConfig, logger kafkago.Logger) *producer {
	p := &producer{topics: topics}
	writer := func(batchBytes int64) *kafkago.Writer {
		return &kafkago.Writer{
			Addr:         kafkago.TCP(cl.Brokers...),
			Transport:    cl.Security.Transport(),
			Balancer:     &kafkago.Murmur2Balancer{},
			RequiredAcks: kafkago.RequireAll,
			Async:        true,
			BatchSize:    outputBatchSize,
			BatchBytes:   batchBytes,
			BatchTimeout: outputBatchTimeout,
			MaxAttempts:  outputMaxAttempts,
			ErrorLogger:  logger,
			Completion: func(msgs []kafkago.Message, err error) {
				for i := range msgs {
					if e, ok := msgs[i].WriterData.(*epoch); ok {
						e.release(err)
					}
				}
			},
		}
	}
	p.w = writer(0) // kafka-go's default, 1 MiB
	p.digests = writer(maxDigestBytes)
	return p
}

// write hands msgs to the writers; each must carry its epoch in WriterData,
// already counted by the caller.
func (p *producer) write(ctx context.Context, msgs []kafkago.Message) error {
	var digests []kafkago.Message
	if p.topics.Digests != "" && slices.ContainsFunc(msgs, func(m kafkago.Message) bool { return m.Topic == p.topics.Digests }) {
		var rest []kafkago.Message
		for _, m := range msgs {
			if m.Topic == p.topics.Digests {
				digests = append(digests, m)
			} else {
				rest = append(rest, m)
			}
		}
		msgs = rest
	}
	err := p.w.WriteMessages(ctx, msgs...)
	if err != nil {
		// Nothing was queued: release the references the caller took.
		release(msgs, err)
		release(digests, err)
		return fmt.Errorf("queueing %d output records: %w", len(msgs), err)
	}
	if len(digests) > 0 {
		if err := p.digests.WriteMessages(ctx, digests...); err != nil {
			release(digests, err)
			return fmt.Errorf("queueing %d digest records (at most %d bytes each): %w", len(digests), maxDigestBytes, err)
		}
	}
	return nil
}

func release(msgs []kafkago.Message, err error) {
	for i := range msgs {
		if e, ok := msgs[i].WriterData.(*epoch); ok {
			e.release(err)
		}
	}
}

func (p *producer) close() error { return errors.Join(p.w.Close(), p.digests.Close()) }

// encoder turns engine output into Kafka messages. Every message carries
// its id and its origin (see originHeaders), which a restore reads back to
// suppress what it re-produces (outputdedup.go).
type encoder struct {
	topics TopicsConfig
	group  []byte
	origin []byte
	// The producing state, set by at before each emit.
	offsets []int64
	wm      time.Time
}

// newEncoder encodes the outputs of origin (a partition number, or
// "groups" for the group stage) in consumer group group.
func newEncoder(topics TopicsConfig, group, origin string) *encoder {
	return &encoder{topics: topics, group: []byte(group), origin: []byte(origin)}
}

// at records the origin's state for the headers of what it produces next:
// the next input offsets and the engine's watermark.
func (e *encoder) at(wm time.Time, offsets ...int64) {
	e.wm = wm
	e.offsets = append(e.offsets[:0], offsets...)
}

// originHeaders are the headers naming where and at which state a record
// was produced.
func (e *encoder) originHeaders() []kafkago.Header {
	offs := make([]byte, 0, 24)
	for i, o := range e.offsets {
		if i > 0 {
			offs = append(offs, ',')
		}
		offs = strconv.AppendInt(offs, o, 10)
	}
	var wm []byte
	if !e.wm.IsZero() {
		wm = e.wm.UTC().AppendFormat(nil, time.RFC3339Nano)
	}
	return []kafkago.Header{
		{Key: HeaderOrigin, Value: e.origin},
		{Key: HeaderGroup, Value: e.group},
		{Key: HeaderOriginOffsets, Value: offs},
		{Key: HeaderOriginWatermark, Value: wm},
	}
}

// headers are a record's id followed by the origin headers.
func headers(id string, origin []kafkago.Header) []kafkago.Header {
	h := make([]kafkago.Header, 0, 1+len(origin))
	h = append(h, kafkago.Header{Key: HeaderID, Value: []byte(id)})
	return append(h, origin...)
}

// output appends the alerts, resends, segment transitions and digests of out,
// stamped with now, to msgs.
func (e *encoder) output(msgs []kafkago.Message, out *processor.Output, now time.Time, ep *epoch) ([]kafkago.Message, error) {
	now = now.UTC()
	origin := e.originHeaders()
	for i := range out.Alerts {
		a := &out.Alerts[i]
		a.EmittedAt = now
		v, err := a.AppendJSON(make([]byte, 0, 512))
		if err != nil {
			return msgs, fmt.Errorf("encoding alert %s: %w", a.ID(), err)
		}
		msgs = append(msgs, kafkago.Message{
			Topic: e.topics.Alerts, Key: []byte(a.Fingerprint), Value: v, WriterData: ep,
			Headers: headers(a.ID(), origin),
		})
	}
	for i := range out.Resends {
		r := &out.Resends[i]
		r.CreatedAt = now
		v, err := r.AppendJSON(make([]byte, 0, 320))
		if err != nil {
			return msgs, fmt.Errorf("encoding resend %s: %w", r.ID(), err)
		}
		msgs = append(msgs, kafkago.Message{
			Topic: e.topics.Resends, Key: []byte(r.CustomerID), Value: v, WriterData: ep,
			Headers: headers(r.ID(), origin),
		})
	}
	for i := range out.Transitions {
		tr := &out.Transitions[i]
		tr.EmittedAt = now
		v, err := tr.AppendJSON(make([]byte, 0, 256))
		if err != nil {
			return msgs, fmt.Errorf("encoding segment transition %s: %w", tr.ID(), err)
		}
		// Keyed by customer: a customer's transitions stay in order on one
		// partition, next to its resends.
		msgs = append(msgs, kafkago.Message{
			Topic: e.topics.Segments, Key: []byte(tr.CustomerID), Value: v, WriterData: ep,
			Headers: headers(tr.ID(), origin),
		})
	}
	for i := range out.Digests {
		d := &out.Digests[i]
		d.EmittedAt = now
		v, err := d.AppendJSON(make([]byte, 0, 1024))
		if err != nil {
			return msgs, fmt.Errorf("encoding digest %s: %w", d.ID(), err)
		}
		// Keyed by digest and group: one group's digests stay in order on
		// one partition.
		msgs = append(msgs, kafkago.Message{
			Topic: e.topics.Digests, Key: []byte(d.Digest + "/" + processor.Fingerprint(d.Group)), Value: v, WriterData: ep,
			Headers: headers(d.ID(), origin),
		})
	}
	return msgs, nil
}

// deadLetterID is a dead letter's crmpulse-id: where the refused record
// was, <topic>/<partition>/<offset>.
func deadLetterID(m *kafkago.Message) string {
	return m.Topic + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10)
}

// deadLetter is the DLQ record for a refused input record: the original key
// and value (contact attributes hashed or dropped when scrub is set:
// privacy.dead_letters), and headers saying why and where it came from.
func (e *encoder) deadLetter(rec *ikafka.Record, reason ingest.Reason, detail string, ep *epoch, scrub *privacy.Scrubber) kafkago.Message {
	m := &rec.Msg
	h := headers(deadLetterID(m), e.originHeaders())
	h = append(h,
		kafkago.Header{Key: HeaderReason, Value: []byte(reason)},
		kafkago.Header{Key: HeaderError, Value: []byte(detail)},
		kafkago.Header{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
		kafkago.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafkago.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	value := m.Value
	if scrub != nil {
		value = scrub.Record(value)
	}
	return kafkago.Message{Topic: m.Topic + DLQSuffix, Key: m.Key, Value: value, WriterData: ep, Headers: h}
}

// rejection classifies a refused record's error.
func rejection(err error) (ingest.Reason, string) {
	var re *ingest.RejectError
	if errors.As(err, &re) {
		return re.Reason, re.Error()
	}
	return ingest.ReasonNotJSON, err.Error()
}

// emit hands out to the sinks, appends its records to msgs as messages of
// epoch ep, counts them, and empties out.
func (a *App) emit(ctx context.Context, out *processor.Output, enc *encoder, msgs []kafkago.Message, ep *epoch) ([]kafkago.Message, error) {
	if out.Len() == 0 {
		return msgs, nil
	}
	for _, s := range a.cfg.Sinks {
		if err := s.Write(ctx, out); err != nil {
			return msgs, fmt.Errorf("writing output to a sink: %w", err)
		}
	}
	before := len(msgs)
	msgs, err := enc.output(msgs, out, a.now(), ep)
	if err != nil {
		clear(msgs[before:])
		return msgs[:before], err // nothing of out queued: its epoch never counted them
	}
	ep.add(len(msgs) - before)
	a.m.outputs.WithLabelValues(kindAlert).Add(float64(len(out.Alerts)))
	a.m.outputs.WithLabelValues(kindResend).Add(float64(len(out.Resends)))
	if len(out.Transitions) > 0 {
		a.m.outputs.WithLabelValues(kindTransition).Add(float64(len(out.Transitions)))
	}
	if len(out.Digests) > 0 {
		a.m.outputs.WithLabelValues(kindDigest).Add(float64(len(out.Digests)))
	}
	out.Reset()
	return msgs, nil
}

// flush hands msgs to the producer and returns the emptied slice. It does
// not stop when a caller's context ends: queueing only waits for topic
// metadata, and records counted in an epoch must reach the writer.
func (a *App) flush(msgs []kafkago.Message) ([]kafkago.Message, error) {
	if len(msgs) == 0 {
		return msgs, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), finalCheckpointTimeout)
	defer cancel()
	err := a.out.write(ctx, msgs)
	clear(msgs)
	return msgs[:0], err
}
