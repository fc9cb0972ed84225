package kafka

import "time"

// The inputs of a Merger.
const (
	Interactions = 0
	Receipts     = 1
	// Customers is the optional profile input (SPEC §1.3), added with
	// WithCustomers.
	Customers = 2
	// NumInputs is the number of inputs a Merger can have.
	NumInputs = 3
)

// tieOrder is SPEC §5's order on equal times: the profile, then the
// interaction, then the receipt.
var tieOrder = [NumInputs]int{Customers, Interactions, Receipts}

// DefaultOrderWait bounds how long the merger holds one topic back while
// waiting for the other one's pending records (see Merger). Long enough to
// cover a fetcher reconnecting after the pipeline stalled (kafka-go's
// reader times out a connection whose fetch response was not read for a
// while, e.g. during ClickHouse backpressure): passing over an input with
// pending records makes them late, so waiting is the safe side.
const DefaultOrderWait = 5 * time.Second

// Merger merges the batches of the input topics of one partition number by
// event time (occurred_at, updated_at for profiles), in SPEC §5's tie
// order: the merge of replay, so that an engine fed from Kafka sees its
// customers' records in the order replay would.
//
// When an input has no record at hand, the merger waits for it only while
// that input is known to have records pending (its last batch was sent
// before the fetcher reached the partition's end). A caught-up input does
// not hold the others back, so live records are processed at once; an input
// that stays silent for OrderWait although records were pending (a slow
// broker, or transaction markers after the last record) stops holding the
// others back until its next batch.
//
// The profile input follows the same rule, which is all the tie order
// needs: a caught-up customers topic, however long idle, never holds the
// events back, and while it has records pending the events wait for them
// (bounded by OrderWait) because any of them may hold a version current
// at the next event's time. Profiles never count for Started.
//
// A Merger is used by one goroutine. Records returned by Next stay valid
// until the following call.
type Merger struct {
	in [NumInputs]input
	// OrderWait is how long to wait for a lagging input; DefaultOrderWait
	// when zero.
	OrderWait time.Duration
}

type input struct {
	present   bool
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
	m.in[Interactions] = input{present: true, ch: inter, free: freeI, next: startI, hwm: startI}
	m.in[Receipts] = input{present: true, ch: rcpt, free: freeR, next: startR, hwm: startR}
	return m
}

// WithCustomers adds the profile input, starting at offset start, and
// returns m.
func (m *Merger) WithCustomers(ch <-chan *Batch, free chan<- *Batch, start int64) *Merger {
	m.in[Customers] = input{present: true, ch: ch, free: free, next: start, hwm: start}
	return m
}

// HasCustomers reports whether the merger has the profile input.
func (m *Merger) HasCustomers() bool { return m.in[Customers].present }

// Chans returns the channel of each input that needs a batch (nil for an
// input that still has records at hand, or that is absent).
func (m *Merger) Chans() (chans [NumInputs]<-chan *Batch) {
	for k := range m.in {
		if m.in[k].present && m.in[k].head() == nil {
			chans[k] = m.in[k].ch
		}
	}
	return chans
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
		var heads [NumInputs]*Record
		best := -1
		for _, k := range tieOrder {
			in := &m.in[k]
			if !in.present {
				continue
			}
			h := in.head()
			if h == nil {
				continue
			}
			heads[k] = h
			if h.Err != nil || h.Tombstone {
				// A record that did not decode, or a tombstone, has no
				// time: it goes first (a tombstone acts when processed,
				// SPEC §1.3).
				best = k
				break
			}
			if best < 0 || h.At.Before(heads[best].At) {
				best = k
			}
		}
		if best < 0 {
			return nil, -1
		}
		if h := heads[best]; h.Err != nil || h.Tombstone {
			src = best
			break
		}
		polled, blocked := false, false
		for k := range m.in {
			in := &m.in[k]
			if !in.present || heads[k] != nil {
				continue
			}
			// A batch already waiting is taken before the input may be
			// passed over: after a long stall the fetcher's batches are
			// there, though the wait measured by now may look expired.
			if m.poll(k) {
				polled = true
				break
			}
			if !in.ready(now, m.orderWait()) {
				blocked = true
			}
		}
		switch {
		case polled:
			continue
		case blocked:
			return nil, -1
		}
		src = best
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

// Started reports whether the first batch of both event inputs arrived
// (the profile input does not count: profiles never hold the watermark).
func (m *Merger) Started() bool { return m.in[Interactions].started && m.in[Receipts].started }

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
