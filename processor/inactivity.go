package processor

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// inactivity is the churn detector (SPEC §3.1): every key seen in a
// matching event is tracked; when the watermark passes last_activity +
// idle_for, the key fires once; a later matching event resolves it.
//
// Keys are kept in a doubly linked list ordered by last activity, so the
// next key to go idle is always at the head and Advance costs nothing until
// something is due. An entry is 16 bytes plus the interned key; the list
// replaces a timer heap, which would need another 12+ bytes per key.
type inactivity struct {
	rule    *rules.Rule
	idle    int64
	pending int64 // the rule's for: how long past idle_for before firing
	keys    *keyTable
	entries pages[inEntry]
	head    uint32
	tail    uint32
	buf     []byte
}

type inEntry struct {
	last       int64 // unix nanos of the latest matching event
	prev, next uint32
}

const (
	nilIdx   = ^uint32(0)
	firedIdx = ^uint32(0) - 1 // prev and next of a key whose alert is firing
)

func newInactivity(r *rules.Rule, _ *rules.File) Component {
	return &inactivity{rule: r, idle: int64(r.IdleFor), pending: int64(r.ForDur), keys: newKeyTable(), head: nilIdx, tail: nilIdx}
}

func (d *inactivity) Name() string { return "rule:" + d.rule.Name }

func (d *inactivity) Interaction(ev *ingest.Interaction, out *Output) {
	if d.rule.Source == rules.SourceInteractions {
		d.observe(rules.Event{I: ev}, ev.OccurredAt, out)
	}
}

func (d *inactivity) Receipt(r *ingest.Receipt, out *Output) {
	if d.rule.Source == rules.SourceReceipts {
		d.observe(rules.Event{R: r}, r.OccurredAt, out)
	}
}

func (d *inactivity) observe(e rules.Event, at time.Time, out *Output) {
	if !d.rule.Matcher.Match(e) {
		return
	}
	d.buf = groupKey(d.rule.Fields, e, d.buf)
	t := at.UnixNano()
	idx, added := d.keys.intern(d.buf)
	if added {
		en := d.entries.add()
		en.last = t
		d.link(idx)
		return
	}
	en := d.entries.at(idx)
	switch {
	case en.prev == firedIdx:
		a := newAlert(d.rule, string(d.buf), StateResolved, float64(t-en.last)/1e9, d.seconds(), time.Unix(0, en.last+d.idle))
		a.EndsAt = tp(at)
		a.WindowStart, a.WindowEnd = tp(time.Unix(0, en.last)), tp(at)
		out.Alerts = append(out.Alerts, a)
		en.last = t
		d.link(idx)
	case t > en.last:
		d.unlink(idx)
		en.last = t
		d.link(idx)
	}
}

func (d *inactivity) seconds() float64 { return float64(d.idle) / 1e9 }

// link inserts idx by its last activity, walking back from the tail: events
// arrive nearly in time order, so the walk is short.
func (d *inactivity) link(idx uint32) {
	en := d.entries.at(idx)
	after := d.tail
	for after != nilIdx && d.entries.at(after).last > en.last {
		after = d.entries.at(after).prev
	}
	en.prev = after
	if after == nilIdx {
		en.next = d.head
		d.head = idx
	} else {
		a := d.entries.at(after)
		en.next = a.next
		a.next = idx
	}
	if en.next == nilIdx {
		d.tail = idx
	} else {
		d.entries.at(en.next).prev = idx
	}
}

func (d *inactivity) unlink(idx uint32) {
	en := d.entries.at(idx)
	if en.prev == nilIdx {
		d.head = en.next
	} else {
		d.entries.at(en.prev).next = en.next
	}
	if en.next == nilIdx {
		d.tail = en.prev
	} else {
		d.entries.at(en.next).prev = en.prev
	}
	en.prev, en.next = nilIdx, nilIdx
}

func (d *inactivity) Advance(wm time.Time, out *Output) {
	w := wm.UnixNano()
	for d.head != nilIdx {
		idx := d.head
		en := d.entries.at(idx)
		if en.last+d.idle+d.pending > w {
			return
		}
		due := time.Unix(0, en.last+d.idle)
		a := newAlert(d.rule, string(d.keys.key(idx)), StateFiring, float64(d.idle+d.pending)/1e9, d.seconds(), due)
		a.WindowStart, a.WindowEnd = tp(time.Unix(0, en.last)), tp(time.Unix(0, en.last+d.idle+d.pending))
		out.Alerts = append(out.Alerts, a)
		d.unlink(idx)
		en.prev, en.next = firedIdx, firedIdx
	}
}

// MarshalState writes the keys in list order (which is firing order for
// equal times), then the firing ones: len, key, last (varints), fired flag.
func (d *inactivity) MarshalState() ([]byte, error) {
	var b []byte
	put := func(idx uint32, fired byte) {
		k := d.keys.key(idx)
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendVarint(b, d.entries.at(idx).last)
		b = append(b, fired)
	}
	for i := d.head; i != nilIdx; i = d.entries.at(i).next {
		put(i, 0)
	}
	for i := 0; i < d.keys.len(); i++ {
		if d.entries.at(uint32(i)).prev == firedIdx {
			put(uint32(i), 1)
		}
	}
	return b, nil
}

var errCorruptState = errors.New("corrupt state")

func (d *inactivity) UnmarshalState(b []byte) error {
	*d = *newInactivity(d.rule, nil).(*inactivity)
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return errCorruptState
		}
		k := b[w : w+int(n)]
		b = b[w+int(n):]
		last, w := binary.Varint(b)
		if w <= 0 || len(b) < w+1 {
			return errCorruptState
		}
		fired := b[w]
		b = b[w+1:]
		idx, _ := d.keys.intern(k)
		en := d.entries.add()
		en.last = last
		if fired == 1 {
			en.prev, en.next = firedIdx, firedIdx
		} else {
			d.link(idx)
		}
	}
	return nil
}

// StateKeys is the number of customers tracked.
func (d *inactivity) StateKeys() int { return d.keys.len() }
