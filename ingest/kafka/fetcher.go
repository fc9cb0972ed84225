package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/crmpulse/crmpulse/ingest"
)

// Record is one consumed message and its decoded form. Exactly one of I, R
// and C is set when Err is nil, except for a tombstone; At is its
// occurred_at (updated_at for a profile). A Record and the record
// it points to belong to their Batch and are reused once the batch is
// returned with Merger.Next moving past it: copy what must outlive that.
type Record struct {
	Msg kafkago.Message
	At  time.Time
	// Err is the decode failure (a *ingest.RejectError); At is zero then.
	Err error
	I   *ingest.Interaction
	R   *ingest.Receipt
	C   *ingest.Customer
	// Tombstone says the record is a Kafka tombstone (a null value) of the
	// customers topic: drop the profile keyed by Msg.Key. At is zero, so
	// the merge takes it as soon as it is at the head.
	Tombstone bool
}

// Batch is a run of consecutive records of one topic-partition.
type Batch struct {
	Records []Record
	// CaughtUp says the fetcher had reached the partition's high watermark
	// when it sent this batch: no record after the last one was pending.
	CaughtUp bool
	// HighWaterMark is the partition's end offset as last seen.
	HighWaterMark int64
	// Next is the offset after the last record (or the start offset for a
	// batch without records).
	Next int64

	inter []ingest.Interaction
	rcpt  []ingest.Receipt
	cust  []ingest.Customer
}

func (b *Batch) reset() {
	clear(b.Records)
	b.Records = b.Records[:0]
	b.CaughtUp = false
}

// FetcherConfig says what one Fetcher reads.
type FetcherConfig struct {
	Brokers []string
	// Security is the TLS and SASL of every connection (nil: plaintext).
	Security  *Security
	Topic     string
	Partition int
	Source    ingest.Source
	// Offset is where reading starts; kafkago.FirstOffset or LastOffset are
	// accepted too.
	Offset int64
	// MinBytes, MaxBytes and MaxWait tune the fetch requests. A fetch
	// returns once MinBytes are there or after MaxWait; with the default
	// MinBytes of 1 a record is fetched the moment it arrives, and a backlog
	// still comes in MaxBytes-sized fetches (DESIGN §3's speed comes from
	// MaxBytes and the queue, not MinBytes). A MaxWait much below 100ms
	// makes kafka-go's socket deadline race the broker's answer.
	MinBytes int
	MaxBytes int
	MaxWait  time.Duration
	// BatchSize caps the records of one Batch; a batch is also sent as soon
	// as the fetcher catches up, so a live record waits for nothing.
	BatchSize int
	// Out receives the batches; Free returns spent ones for reuse.
	Out  chan<- *Batch
	Free chan *Batch
	// Lag, when set, is told the partition's lag after each batch.
	Lag func(records int64)
	// Logger receives kafka-go's error log lines; nil discards them.
	ErrorLogger kafkago.Logger
	// OnFetch, when set, is called after each fetch that succeeded (with
	// or without records); OnReconnect when a failed fetch or dial
	// drops the connection to connect again. Both run on the fetcher's
	// goroutine and must be cheap (a counter).
	OnFetch     func()
	OnReconnect func()
}

func (c *FetcherConfig) cluster() Cluster { return Cluster{Brokers: c.Brokers, Security: c.Security} }

// Defaults for FetcherConfig fields left zero.
const (
	DefaultMinBytes  = 1
	DefaultMaxBytes  = 16 << 20
	DefaultMaxWait   = 250 * time.Millisecond
	DefaultBatchSize = 512
)

// Fetcher reads one topic-partition from an explicit offset.
type Fetcher struct {
	cfg FetcherConfig
}

// NewFetcher checks cfg and fills its defaults.
func NewFetcher(cfg FetcherConfig) (*Fetcher, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" || cfg.Out == nil {
		return nil, errors.New("fetcher: brokers, topic and out are required")
	}
	if cfg.Source != ingest.SourceInteractions && cfg.Source != ingest.SourceReceipts && cfg.Source != ingest.SourceCustomers {
		return nil, fmt.Errorf("fetcher: unknown source %q", cfg.Source)
	}
	if cfg.MinBytes <= 0 {
		cfg.MinBytes = DefaultMinBytes
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	return &Fetcher{cfg: cfg}, nil
}

// Run reads until ctx ends (returning nil) or reading fails.
func (f *Fetcher) Run(ctx context.Context) error {
	c := f.cfg
	first, last, err := PartitionBounds(ctx, c.cluster(), c.Topic, c.Partition)
	if err != nil {
		return err
	}
	offset := c.Offset
	switch {
	case offset == kafkago.FirstOffset || offset < first:
		offset = first
	case offset == kafkago.LastOffset || offset > last:
		offset = last
	}
	// The first batch carries no records: it tells the merger whether the
	// partition has anything pending at all.
	b := f.get()
	b.CaughtUp, b.HighWaterMark, b.Next = offset >= last, last, offset
	if !f.send(ctx, b) {
		return nil
	}
	if c.Lag != nil {
		c.Lag(last - offset)
	}
	// A Conn per topic-partition, read a fetch response at a time: half
	// the CPU of kafka-go's Reader, which hands every message through a
	// channel from a goroutine of its own (measured in docs/benchmarks.md).
	var conn *kafkago.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	pause := retryMin
	b = f.get()
	b.Next = offset
	for ctx.Err() == nil {
		if conn == nil {
			if conn, err = f.dial(ctx, offset); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				f.logf("fetching %s/%d: %v (retrying in %s)", c.Topic, c.Partition, err, pause)
				if c.OnReconnect != nil {
					c.OnReconnect()
				}
				if !sleep(ctx, pause) {
					return nil
				}
				pause = min(2*pause, retryMax)
				continue
			}
		}
		// The socket deadline is well past MaxWait, the broker's long poll:
		// a fetch that waited MaxWait at the end of the partition comes
		// back in time, empty, and is not a timeout of the connection.
		_ = conn.SetReadDeadline(time.Now().Add(c.MaxWait + fetchTimeout))
		fetched := offset
		batch := conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: c.MinBytes, MaxBytes: c.MaxBytes, MaxWait: c.MaxWait})
		hwm := batch.HighWaterMark()
		read := 0
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break // io.EOF at the end; anything else is Close's error too
			}
			read++
			f.add(b, m)
			offset = m.Offset + 1
			if len(b.Records) >= c.BatchSize {
				b.CaughtUp, b.HighWaterMark, b.Next = offset >= hwm, hwm, offset
				if !f.send(ctx, b) {
					batch.Close()
					return nil
				}
				b = f.get()
			}
		}
		// Past control records (transaction markers) too.
		offset = max(offset, batch.Offset())
		err := batch.Close()
		if err != nil && read == 0 && hwm == fetched && errors.Is(err, kafkago.RequestTimedOut) {
			// kafka-go's word for an empty answer at the high watermark:
			// the long poll ended with nothing new. The connection is
			// fine (kafka-go keeps it open after a Kafka error code).
			err = nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, kafkago.OffsetOutOfRange) {
				// A snapshot's offset deleted by retention: resume at the
				// partition's start.
				first, _, berr := PartitionBounds(ctx, c.cluster(), c.Topic, c.Partition)
				if berr != nil {
					return berr
				}
				f.logf("fetching %s/%d: offset %d is out of range; resuming at %d", c.Topic, c.Partition, offset, first)
				offset = max(first, 0)
			} else {
				f.logf("fetching %s/%d at offset %d: %v (reconnecting)", c.Topic, c.Partition, offset, err)
			}
			conn.Close()
			conn = nil
			if c.OnReconnect != nil {
				c.OnReconnect()
			}
			if !sleep(ctx, pause) {
				return nil
			}
			pause = min(2*pause, retryMax)
			continue
		}
		pause = retryMin
		if c.OnFetch != nil {
			c.OnFetch()
		}
		if len(b.Records) > 0 || offset > b.Next {
			b.CaughtUp, b.HighWaterMark, b.Next = offset >= hwm, hwm, offset
			if c.Lag != nil {
				c.Lag(max(hwm-offset, 0))
			}
			if !f.send(ctx, b) {
				return nil
			}
			b = f.get()
			b.Next = offset
		}
	}
	return nil
}

// Retry pauses after a failed fetch, and the time a fetch may take beyond
// its MaxWait before the connection is considered dead.
const (
	retryMin     = 100 * time.Millisecond
	retryMax     = 5 * time.Second
	fetchTimeout = 30 * time.Second
)

// dial connects to the partition's leader, trying each broker, and seeks
// to offset.
func (f *Fetcher) dial(ctx context.Context, offset int64) (*kafkago.Conn, error) {
	c := f.cfg
	d := c.Security.Dialer()
	var errs []error
	for _, addr := range c.Brokers {
		conn, err := d.DialLeader(ctx, "tcp", addr, c.Topic, c.Partition)
		if err != nil {
			errs = append(errs, c.Security.Explain(addr, err))
			continue
		}
		if _, err := conn.Seek(offset, kafkago.SeekAbsolute|kafkago.SeekDontCheck); err != nil {
			conn.Close()
			errs = append(errs, err)
			continue
		}
		return conn, nil
	}
	return nil, fmt.Errorf("connecting to the leader of %s/%d: %w", c.Topic, c.Partition, errors.Join(errs...))
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.cfg.ErrorLogger != nil {
		f.cfg.ErrorLogger.Printf(format, args...)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// add decodes m into the next record of b.
func (f *Fetcher) add(b *Batch, m kafkago.Message) {
	i := len(b.Records)
	b.Records = append(b.Records, Record{Msg: m})
	rec := &b.Records[i]
	if f.cfg.Source == ingest.SourceInteractions {
		if i >= len(b.inter) {
			b.inter = append(b.inter, make([]ingest.Interaction, f.cfg.BatchSize)...)
		}
		ev := &b.inter[i]
		if rec.Err = ingest.DecodeInteraction(m.Value, ev); rec.Err == nil {
			rec.I, rec.At = ev, ev.OccurredAt
		}
		return
	}
	if f.cfg.Source == ingest.SourceCustomers {
		// kafka-go reads a null value (and an empty one, which no JSON
		// record is) as nil.
		if len(m.Value) == 0 {
			rec.Tombstone = true
			return
		}
		if i >= len(b.cust) {
			b.cust = append(b.cust, make([]ingest.Customer, f.cfg.BatchSize)...)
		}
		c := &b.cust[i]
		if rec.Err = ingest.DecodeCustomer(m.Value, c); rec.Err == nil {
			rec.C, rec.At = c, c.UpdatedAt
		}
		return
	}
	if i >= len(b.rcpt) {
		b.rcpt = append(b.rcpt, make([]ingest.Receipt, f.cfg.BatchSize)...)
	}
	r := &b.rcpt[i]
	if rec.Err = ingest.DecodeReceipt(m.Value, r); rec.Err == nil {
		rec.R, rec.At = r, r.OccurredAt
	}
}

func (f *Fetcher) get() *Batch {
	select {
	case b := <-f.cfg.Free:
		b.reset()
		return b
	default:
		return &Batch{Records: make([]Record, 0, f.cfg.BatchSize)}
	}
}

func (f *Fetcher) send(ctx context.Context, b *Batch) bool {
	select {
	case f.cfg.Out <- b:
		return true
	case <-ctx.Done():
		return false
	}
}
