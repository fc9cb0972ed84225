package processor

import (
	"bytes"
	"encoding/gob"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// deadline reminds before and after a due time (SPEC §3.1, kind deadline):
// a start opens a deadline for its correlation, each stage fires at due +
// its at (the previous stage resolving at the same instant), and a stop
// resolves the firing stage and closes the deadline.
//
// A deadline lives in event time: its records do not act when they arrive
// but when the watermark passes their occurred_at, in time order together
// with the stage instants, so the outcome does not depend on the order the
// records came in within the allowed lateness. At one instant, records go
// before stage instants (a stop at a stage's instant closes the deadline
// first), and of records a stop before a start.
type deadline struct {
	rule    *rules.Rule
	open    map[string]*dlOpen
	pending timerHeap // records: At occurred_at, Key, Ref due, N dlStart|dlStop
	timers  timerHeap // stage instants: Key, Ref the deadline's Seq, N stage index
	seq     int64
	ignored int64 // starts whose due could not be read
	wm      int64
	buf     []byte
}

// Record flags in pending timers' N; a stop sorts before a start at one
// instant.
const (
	dlStop  = 1
	dlStart = 2
	dlBoth  = 3
)

type dlOpen struct {
	Seq     int64 // identifies this deadline; a replacing start makes a new one
	Start   int64
	Due     int64
	Stage   int   // index of the firing stage, -1 when none
	FiredAt int64 // starts_at of the firing stage's alert
}

func newDeadline(r *rules.Rule, _ *rules.File) Component {
	return &deadline{rule: r, open: map[string]*dlOpen{}, wm: minInstant}
}

// minInstant is a watermark before every record.
const minInstant = -1 << 63

func (d *deadline) Name() string { return "rule:" + d.rule.Name }

func (d *deadline) Interaction(ev *ingest.Interaction, out *Output) {
	if d.rule.Source == rules.SourceInteractions {
		d.observe(rules.Event{I: ev}, ev.OccurredAt, out)
	}
}

func (d *deadline) Receipt(r *ingest.Receipt, out *Output) {
	if d.rule.Source == rules.SourceReceipts {
		d.observe(rules.Event{R: r}, r.OccurredAt, out)
	}
}

func (d *deadline) observe(e rules.Event, at time.Time, out *Output) {
	if !d.rule.Matcher.Match(e) {
		return
	}
	flags := 0
	if d.rule.StopMatch.Match(e) {
		flags |= dlStop
	}
	var due int64
	if d.rule.StartMatch.Match(e) {
		if t, ok := d.rule.DueOf(e); ok {
			flags |= dlStart
			due = t.UnixNano()
		} else {
			d.ignored++
		}
	}
	if flags == 0 {
		return
	}
	d.buf = groupKey(d.rule.Fields, e, d.buf)
	d.pending.push(timer{At: at.UnixNano(), Key: string(d.buf), Ref: due, N: flags})
	if at.UnixNano() <= d.wm {
		// At the watermark itself: the watermark has passed it already.
		d.run(d.wm, out)
	}
}

func (d *deadline) Advance(wm time.Time, out *Output) {
	d.wm = wm.UnixNano()
	d.run(d.wm, out)
}

// run applies, in time order, every record and stage instant up to w.
func (d *deadline) run(w int64, out *Output) {
	for {
		rec := len(d.pending) > 0 && d.pending[0].At <= w
		st := len(d.timers) > 0 && d.timers[0].At <= w
		switch {
		case rec && (!st || d.pending[0].At <= d.timers[0].At):
			r := d.pending.pop()
			if r.N&dlStop != 0 {
				d.stop(r.Key, r.At, out)
			}
			if r.N&dlStart != 0 {
				d.start(r.Key, r.At, r.Ref, out)
			}
		case st:
			tm := d.timers.pop()
			o, ok := d.open[tm.Key]
			if !ok || o.Seq != tm.Ref || tm.N != o.Stage+1 {
				continue // closed or replaced since
			}
			d.enter(tm.Key, o, tm.N, tm.At, out)
		default:
			return
		}
	}
}

func (d *deadline) instant(due int64, stage int) int64 {
	return due + int64(d.rule.Stages[stage].At)
}

// enter makes stage the firing one at instant t: the previous stage
// resolves at t, and the next stage's instant is set.
func (d *deadline) enter(key string, o *dlOpen, stage int, t int64, out *Output) {
	if o.Stage >= 0 {
		out.Alerts = append(out.Alerts, d.resolved(key, o, t))
	}
	o.Stage, o.FiredAt = stage, t
	out.Alerts = append(out.Alerts, d.alert(key, o, StateFiring))
	d.schedule(key, o)
}

func (d *deadline) schedule(key string, o *dlOpen) {
	if next := o.Stage + 1; next < len(d.rule.Stages) {
		d.timers.push(timer{At: d.instant(o.Due, next), Key: key, Ref: o.Seq, N: next})
	}
}

func (d *deadline) start(key string, t, due int64, out *Output) {
	old := d.open[key]
	if old != nil && old.Start > t {
		return // a start earlier than the open deadline's is ignored
	}
	// The stage the schedule is in at t: the latest instant not after t.
	stage := -1
	for i := range d.rule.Stages {
		if d.instant(due, i) <= t {
			stage = i
		}
	}
	d.seq++
	o := &dlOpen{Seq: d.seq, Start: t, Due: due, Stage: -1}
	d.open[key] = o
	if old != nil && old.Stage >= 0 {
		if old.Stage == stage {
			// Already in that stage: its alert goes on firing.
			o.Stage, o.FiredAt = stage, old.FiredAt
			d.schedule(key, o)
			return
		}
		out.Alerts = append(out.Alerts, d.resolved(key, old, t))
	}
	if stage >= 0 {
		d.enter(key, o, stage, t, out)
		return
	}
	d.timers.push(timer{At: d.instant(due, 0), Key: key, Ref: o.Seq, N: 0})
}

func (d *deadline) stop(key string, t int64, out *Output) {
	o := d.open[key]
	if o == nil || o.Start > t {
		return // a stop with nothing open before it correlates with nothing
	}
	if o.Stage >= 0 {
		out.Alerts = append(out.Alerts, d.resolved(key, o, t))
	}
	delete(d.open, key)
}

func (d *deadline) alert(key string, o *dlOpen, state string) Alert {
	s := d.rule.Stages[o.Stage]
	labels := alertLabels(d.rule, key)
	labels["stage"] = s.Name
	value := s.At.D().Seconds()
	due := ts(o.Due)
	return Alert{
		Fingerprint: Fingerprint(labels), Rule: d.rule.Name, Kind: d.rule.Kind, State: state,
		Severity: s.Severity, Labels: labels,
		Annotations: d.rule.RenderDeadlineAnnotations(labels, value, due),
		Value:       value, StartsAt: ts(o.FiredAt).UTC(), Due: due,
	}
}

func (d *deadline) resolved(key string, o *dlOpen, t int64) Alert {
	a := d.alert(key, o, StateResolved)
	a.EndsAt = tp(ts(t))
	return a
}

type deadlineState struct {
	Open    map[string]*dlOpen
	Pending []timer
	Timers  []timer
	Seq     int64
	Ignored int64
	WM      int64
}

func (d *deadline) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(deadlineState{Open: d.open, Pending: d.pending, Timers: d.timers,
		Seq: d.seq, Ignored: d.ignored, WM: d.wm})
	return buf.Bytes(), err
}

func (d *deadline) UnmarshalState(b []byte) error {
	var st deadlineState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	d.open, d.pending, d.timers, d.seq, d.ignored, d.wm = st.Open, st.Pending, st.Timers, st.Seq, st.Ignored, st.WM
	if d.open == nil {
		d.open = map[string]*dlOpen{}
	}
	d.pending.init()
	d.timers.init()
	return nil
}

// StateKeys is the number of open deadlines and records waiting.
func (d *deadline) StateKeys() int { return len(d.open) + len(d.pending) }

// Ignored is the number of starts whose due could not be read.
func (d *deadline) Ignored() int64 { return d.ignored }
