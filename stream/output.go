package stream

import (
	"context"
	"errors"
	"fmt"
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

// producer writes alerts, resend triggers and dead letters with one
// asynchronous kafka-go Writer (acks from all in-sync replicas); each record
// carries its partition's epoch, released when the broker answers.
type producer struct {
	w      *kafkago.Writer
	topics TopicsConfig
}

func newProducer(brokers []string, topics TopicsConfig, logger kafkago.Logger) *producer {
	p := &producer{topics: topics}
	p.w = &kafkago.Writer{
		Addr:         kafkago.TCP(brokers...),
		Balancer:     &kafkago.Murmur2Balancer{},
		RequiredAcks: kafkago.RequireAll,
		Async:        true,
		BatchSize:    outputBatchSize,
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
	return p
}

// write hands msgs to the writer; each must carry its epoch in WriterData,
// already counted by the caller.
func (p *producer) write(ctx context.Context, msgs []kafkago.Message) error {
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		// Nothing was queued: release the references the caller took.
		for i := range msgs {
			if e, ok := msgs[i].WriterData.(*epoch); ok {
				e.release(err)
			}
		}
		return fmt.Errorf("queueing %d output records: %w", len(msgs), err)
	}
	return nil
}

func (p *producer) close() error { return p.w.Close() }

// encoder turns engine output into Kafka messages.
type encoder struct {
	topics TopicsConfig
}

func newEncoder(topics TopicsConfig) *encoder { return &encoder{topics: topics} }

// output appends the alerts and resends of out, stamped with now, to msgs.
func (e *encoder) output(msgs []kafkago.Message, out *processor.Output, now time.Time, ep *epoch) ([]kafkago.Message, error) {
	now = now.UTC()
	for i := range out.Alerts {
		a := &out.Alerts[i]
		a.EmittedAt = now
		v, err := a.AppendJSON(make([]byte, 0, 512))
		if err != nil {
			return msgs, fmt.Errorf("encoding alert %s: %w", a.ID(), err)
		}
		msgs = append(msgs, kafkago.Message{
			Topic: e.topics.Alerts, Key: []byte(a.Fingerprint), Value: v, WriterData: ep,
			Headers: []kafkago.Header{{Key: HeaderID, Value: []byte(a.ID())}},
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
			Headers: []kafkago.Header{{Key: HeaderID, Value: []byte(r.ID())}},
		})
	}
	return msgs, nil
}

// deadLetter is the DLQ record for a refused input record: the original key
// and value (contact attributes hashed or dropped when scrub is set:
// privacy.dead_letters), and headers saying why and where it came from.
func deadLetter(rec *ikafka.Record, reason ingest.Reason, detail string, ep *epoch, scrub *privacy.Scrubber) kafkago.Message {
	m := &rec.Msg
	value := m.Value
	if scrub != nil {
		value = scrub.Record(value)
	}
	return kafkago.Message{
		Topic: m.Topic + DLQSuffix, Key: m.Key, Value: value, WriterData: ep,
		Headers: []kafkago.Header{
			{Key: HeaderReason, Value: []byte(reason)},
			{Key: HeaderError, Value: []byte(detail)},
			{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
			{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(m.Partition))},
			{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		},
	}
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
