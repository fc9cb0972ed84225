package kafka

import "time"

// The two inputs of a Merger.
const (
	Interactions = 0
	Receipts     = 1
)

// DefaultOrderWait bounds how long the merger holds one topic back while
// waiting for the other one's pending records (see Merger). Long enough to
// cover a fetcher reconnecting after the pipeline stalled (kafka-go's
// reader times out a connection whose fetch response was not read for a
// while, e.g. during ClickHouse backpressure): passing over an input with
// pending records makes them late, so waiting is the safe side.
const DefaultOrderWait = 5 * time.Second

// Merger merges the batches of the two input topics of one partition number
// by occurred_at, the interaction first on a tie: SPEC §5's merge, so that
// an engine fed from Kafka sees its customers' records in the order replay
// would.
//
// When one input has no record at hand, the merger waits for it only while
// that input is known to have records pending (its last batch was sent
// before the fetcher reached the partition's end). A caught-up input does
// not hold the other back, so live records are processed at once; an input
// that stays silent for OrderWait although records were pending (a slow
// broker, or transaction markers after the last record) stops holding the
// other back until its next batch.
//
// A Merger is used by one goroutine. Records returned by Next stay valid
// until the following call.
type Merger struct {
	in [2]input
	// OrderWait is how long to wait for a lagging input; DefaultOrderWait
	// when zero.
	OrderWait time.Duration
}

type input struct {
	ch        <-chan *Batch
	free      chan<- *Batch
	cur       *Batch
	i         int
	started   bool // the first batch arrived
	caughtUp  bool
	next      int64 // offset after the last record returned
	hwm       int64
	waitSince time.Time
}

// NewMerger merges the batches arriving on inter and rcpt, which start at
// the given offsets, returning spent batches on the free channels.
func NewMerger(inter, rcpt <-chan *Batch, freeI, freeR chan<- *Batch, startI, startR int64) *Merger {
	m := &Merger{}
	m.in[Interactions] = input{ch: inter, free: freeI, next: startI, hwm: startI}
	m.in[Receipts] = input{ch: rcpt, free: freeR, next: startR, hwm: startR}
	return m
}

// Chans returns the channel of each input that needs a batch (nil for an
// input that still has records at hand).
func (m *Merger) Chans() (inter, rcpt <-chan *Batch) {
	for k := range m.in {
		m.in[k].head()
	}
	if m.in[Interactions].cur == nil {
		inter = m.in[Interactions].ch
	}
	if m.in[Receipts].cur == nil {
		rcpt = m.in[Receipts].ch
	}
	return inter, rcpt
}

// Feed hands the merger a batch received from input src's channel.
func (m *Merger) Feed(src int, b *Batch) {
	in := &m.in[src]
	in.started, in.caughtUp, in.waitSince = true, b.CaughtUp, time.Time{}
	in.hwm = max(in.hwm, b.HighWaterMark)
	if len(b.Records) == 0 {
		in.next = max(in.next, b.Next)
		in.recycle(b)
		return
	}
	in.cur, in.i = b, 0
}

// Next returns the next record in merge order and its input, or nil when
// the caller must wait for a batch (see Chans) or until WaitDeadline.
func (m *Merger) Next(now time.Time) (*Record, int) {
	src := -1
	for src < 0 {
		a, b := m.in[Interactions].head(), m.in[Receipts].head()
		switch {
		case a != nil && a.Err != nil:
			src = Interactions
		case b != nil && b.Err != nil:
			src = Receipts
		case a != nil && b != nil:
			src = Interactions
			if b.At.Before(a.At) {
				src = Receipts
			}
		case a != nil:
			// A batch already waiting is taken before the input may be
			// passed over: after a long stall the fetcher's batches are
			// there, though the wait measured by now may look expired.
			if m.poll(Receipts) {
				continue
			}
			if m.in[Receipts].ready(now, m.orderWait()) {
				src = Interactions
			}
		case b != nil:
			if m.poll(Interactions) {
				continue
			}
			if m.in[Interactions].ready(now, m.orderWait()) {
				src = Receipts
			}
		}
		if src < 0 {
			return nil, -1
		}
	}
	in := &m.in[src]
	r := &in.cur.Records[in.i]
	in.i++
	in.next = r.Msg.Offset + 1
	return r, src
}

// poll feeds input src a batch if one is waiting on its channel.
func (m *Merger) poll(src int) bool {
	if m.in[src].ch == nil {
		return false
	}
	select {
	case b := <-m.in[src].ch:
		m.Feed(src, b)
		return true
	default:
		return false
	}
}

// WaitDeadline is when Next will stop waiting for a lagging input, or the
// zero time when it is not waiting for one.
func (m *Merger) WaitDeadline() time.Time {
	var d time.Time
	for k := range m.in {
		if w := m.in[k].waitSince; !w.IsZero() {
			t := w.Add(m.orderWait())
			if d.IsZero() || t.Before(d) {
				d = t
			}
		}
	}
	return d
}

// Offset is the offset after the last record of input src that Next
// returned: where a restart resumes.
func (m *Merger) Offset(src int) int64 { return m.in[src].next }

// Lag is the number of records of input src known to be pending.
func (m *Merger) Lag(src int) int64 { return max(m.in[src].hwm-m.in[src].next, 0) }

// Started reports whether the first batch of both inputs arrived.
func (m *Merger) Started() bool { return m.in[0].started && m.in[1].started }

func (m *Merger) orderWait() time.Duration {
	if m.OrderWait > 0 {
		return m.OrderWait
	}
	return DefaultOrderWait
}

// head is the input's next record, recycling an exhausted batch.
func (in *input) head() *Record {
	if in.cur == nil {
		return nil
	}
	if in.i < len(in.cur.Records) {
		return &in.cur.Records[in.i]
	}
	in.recycle(in.cur)
	in.cur = nil
	return nil
}

func (in *input) recycle(b *Batch) {
	select {
	case in.free <- b:
	default:
	}
}

// ready reports whether an input without a record at hand may be passed
// over: it is caught up, or it has kept the other waiting for too long.
func (in *input) ready(now time.Time, wait time.Duration) bool {
	if in.started && in.caughtUp {
		return true
	}
	if in.waitSince.IsZero() {
		in.waitSince = now
		return false
	}
	if now.Sub(in.waitSince) >= wait {
		in.caughtUp = true
		in.waitSince = time.Time{}
		return true
	}
	return false
}
