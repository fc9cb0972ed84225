package processor

import (
	"bytes"
	"encoding/gob"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// event tells someone the moment something happens (SPEC §3.1, kind
// event): every matching record fires for its group unless the group is
// already firing; further matching records count and keep it firing until
// lasts after the latest one, when it resolves with the count as value.
type event struct {
	rule   *rules.Rule
	lasts  int64
	open   map[string]*evOpen
	timers timerHeap // Key group, Ref the latest occurred_at it was set for
	buf    []byte
}

type evOpen struct {
	Start  int64 // starts_at: the first matching record's occurred_at
	Latest int64 // the latest matching record's occurred_at
	Count  int   // matching records in the firing period
}

func newEvent(r *rules.Rule, _ *rules.File) Component {
	return &event{rule: r, lasts: int64(r.Lasts), open: map[string]*evOpen{}}
}

func (d *event) Name() string { return "rule:" + d.rule.Name }

func (d *event) Interaction(ev *ingest.Interaction, out *Output) {
	if d.rule.Source == rules.SourceInteractions {
		d.observe(rules.Event{I: ev}, ev.OccurredAt, out)
	}
}

func (d *event) Receipt(r *ingest.Receipt, out *Output) {
	if d.rule.Source == rules.SourceReceipts {
		d.observe(rules.Event{R: r}, r.OccurredAt, out)
	}
}

func (d *event) observe(e rules.Event, at time.Time, out *Output) {
	if !d.rule.Matcher.Match(e) {
		return
	}
	d.buf = groupKey(d.rule.Fields, e, d.buf)
	t := at.UnixNano()
	if o, ok := d.open[string(d.buf)]; ok {
		o.Count++
		if t > o.Latest {
			o.Latest = t
			d.timers.push(timer{At: t + d.lasts, Key: string(d.buf), Ref: t})
		}
		return
	}
	key := string(d.buf)
	d.open[key] = &evOpen{Start: t, Latest: t, Count: 1}
	d.timers.push(timer{At: t + d.lasts, Key: key, Ref: t})
	out.Alerts = append(out.Alerts, d.alert(key, StateFiring, 1, t))
}

func (d *event) alert(key, state string, value float64, start int64) Alert {
	return newAlert(d.rule, key, state, value, 0, ts(start))
}

func (d *event) Advance(wm time.Time, out *Output) {
	w := wm.UnixNano()
	for len(d.timers) > 0 && d.timers[0].At <= w {
		tm := d.timers.pop()
		o, ok := d.open[tm.Key]
		if !ok || o.Latest != tm.Ref {
			continue // extended by a later record, or already resolved
		}
		a := d.alert(tm.Key, StateResolved, float64(o.Count), o.Start)
		a.EndsAt = tp(ts(tm.At))
		out.Alerts = append(out.Alerts, a)
		delete(d.open, tm.Key)
	}
}

type eventState struct {
	Open   map[string]*evOpen
	Timers []timer
}

func (d *event) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(eventState{Open: d.open, Timers: d.timers})
	return buf.Bytes(), err
}

func (d *event) UnmarshalState(b []byte) error {
	var st eventState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	d.open, d.timers = st.Open, st.Timers
	if d.open == nil {
		d.open = map[string]*evOpen{}
	}
	d.timers.init()
	return nil
}

// StateKeys is the number of groups firing.
func (d *event) StateKeys() int { return len(d.open) }
