package processor

import (
	"bytes"
	"encoding/gob"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// absence fires when an expected follow-up does not come (SPEC §3.1): a
// start opens a correlation, a stop at or after it closes it, and the
// watermark passing start + within with no stop fires; a stop arriving later
// resolves it.
type absence struct {
	rule   *rules.Rule
	within int64
	open   map[string]*absOpen
	timers timerHeap
	buf    []byte
}

type absOpen struct {
	Start int64
	Fired bool
}

func newAbsence(r *rules.Rule, _ *rules.File) Component {
	return &absence{rule: r, within: int64(r.Within), open: map[string]*absOpen{}}
}

func (d *absence) Name() string { return "rule:" + d.rule.Name }

func (d *absence) Interaction(ev *ingest.Interaction, out *Output) {
	if d.rule.Source == rules.SourceInteractions {
		d.observe(rules.Event{I: ev}, ev.OccurredAt, out)
	}
}

func (d *absence) Receipt(r *ingest.Receipt, out *Output) {
	if d.rule.Source == rules.SourceReceipts {
		d.observe(rules.Event{R: r}, r.OccurredAt, out)
	}
}

func (d *absence) observe(e rules.Event, at time.Time, out *Output) {
	if !d.rule.Matcher.Match(e) {
		return
	}
	isStop, isStart := d.rule.StopMatch.Match(e), d.rule.StartMatch.Match(e)
	if !isStop && !isStart {
		return
	}
	d.buf = groupKey(d.rule.Fields, e, d.buf)
	t := at.UnixNano()
	// A record that is both closes the open one first, then opens anew.
	if o, ok := d.open[string(d.buf)]; ok && isStop && t >= o.Start {
		if o.Fired {
			a := newAlert(d.rule, string(d.buf), StateResolved, float64(t-o.Start)/1e9, d.seconds(), ts(o.Start+d.within))
			a.EndsAt = tp(at)
			a.WindowStart, a.WindowEnd = tp(ts(o.Start)), tp(at)
			out.Alerts = append(out.Alerts, a)
		}
		delete(d.open, string(d.buf))
	}
	if _, ok := d.open[string(d.buf)]; isStart && !ok {
		key := string(d.buf)
		d.open[key] = &absOpen{Start: t}
		d.timers.push(timer{At: t + d.within + int64(d.rule.ForDur), Key: key, Ref: t})
	}
}

func (d *absence) seconds() float64 { return float64(d.within) / 1e9 }

func (d *absence) Advance(wm time.Time, out *Output) {
	w := wm.UnixNano()
	for len(d.timers) > 0 && d.timers[0].At <= w {
		tm := d.timers.pop()
		o, ok := d.open[tm.Key]
		if !ok || o.Start != tm.Ref || o.Fired {
			continue // closed or replaced since the timer was set
		}
		o.Fired = true
		a := newAlert(d.rule, tm.Key, StateFiring, float64(tm.At-o.Start)/1e9, d.seconds(), ts(o.Start+d.within))
		a.WindowStart, a.WindowEnd = tp(ts(o.Start)), tp(ts(tm.At))
		out.Alerts = append(out.Alerts, a)
	}
}

type absenceState struct {
	Open   map[string]*absOpen
	Timers []timer
}

func (d *absence) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(absenceState{Open: d.open, Timers: d.timers})
	return buf.Bytes(), err
}

func (d *absence) UnmarshalState(b []byte) error {
	var st absenceState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	d.open, d.timers = st.Open, st.Timers
	if d.open == nil {
		d.open = map[string]*absOpen{}
	}
	d.timers.init()
	return nil
}

// timer is an event-time timer: due At, for Key, valid while the state it
// was set for still has Ref (so stale timers are skipped, not searched for).
type timer struct {
	At  int64
	Key string
	Ref int64
	N   int // an extra discriminator (e.g. an attempt number)
	P   int // the owner's index (e.g. a resend policy)
}

// timerHeap is a binary min-heap of timers ordered by (At, Key, N), so
// ties fire in a deterministic order. It is typed rather than built on
// container/heap: boxing each timer in an interface cost an allocation per
// push and pop on the hottest timer path (one per sent message).
type timerHeap []timer

func (h timerHeap) less(i, j int) bool {
	if h[i].At != h[j].At {
		return h[i].At < h[j].At
	}
	if h[i].Key != h[j].Key {
		return h[i].Key < h[j].Key
	}
	return h[i].N < h[j].N
}

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *timerHeap) pop() timer {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = timer{}
	s = s[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s.less(l, m) {
			m = l
		}
		if r < n && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// init restores the heap order after a snapshot restore.
func (h timerHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		for j := i; ; {
			l, r, m := 2*j+1, 2*j+2, j
			if l < len(h) && h.less(l, m) {
				m = l
			}
			if r < len(h) && h.less(r, m) {
				m = r
			}
			if m == j {
				break
			}
			h[j], h[m] = h[m], h[j]
			j = m
		}
	}
}

// StateKeys is the number of open starts waiting for their stop.
func (d *absence) StateKeys() int { return len(d.open) }
