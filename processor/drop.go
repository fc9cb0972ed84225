package processor

import (
	"bytes"
	"encoding/gob"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// drop detects a group's value falling against its own baseline (SPEC
// §3.1). A group, once seen, has a value for every later window, so revenue
// that stops entirely is a drop; every window is evaluated in order even
// when the watermark jumps many windows at once.
type drop struct {
	rule   *rules.Rule
	window int64
	hist   int // length of the history ring: the baseline's reach
	groups map[string]*dropGroup
	// forgotten holds groups dropped from memory (see evaluate). One that
	// reappears continues with a full history of zeros, exactly as if it
	// had been kept, so when the watermark happened to forget it changes
	// nothing.
	forgotten map[string]struct{}
	due       int64 // end of the earliest window not yet evaluated
	buf       []byte
	evals     int64 // windows evaluated one by one, for tests of the skip
}

// dropGroup is one group's state; fields are exported for gob snapshots.
type dropGroup struct {
	Next   int64     // start of the next window to evaluate
	Open   []winVal  // values of windows not yet evaluated, by start
	Hist   []float64 // final values, ring indexed by window number
	Count  int       // final windows evaluated since the group was first seen
	Streak int       // consecutive breaching windows
	Since  int64     // end of the first window of the current streak
	Firing bool
	Clear  int64 // while firing: end of the first window that stopped breaching (keep_firing_for)
	Fresh  bool  // no window evaluated yet: an earlier event may move Next back
	// nonZero is the number of non-zero values in Hist; recomputed on
	// restore. With none, an empty window cannot breach or stay firing,
	// so Advance skips runs of them at once.
	nonZero int
}

type winVal struct {
	Start int64
	V     float64
}

func newDrop(r *rules.Rule, _ *rules.File) Component {
	d := &drop{rule: r, window: int64(r.Window), groups: map[string]*dropGroup{}, forgotten: map[string]struct{}{}}
	if b := r.Baseline; b.Windows > 0 {
		d.hist = b.Windows
	} else {
		d.hist = int(int64(b.Season)/d.window) * b.Seasons
	}
	return d
}

func (d *drop) Name() string { return "rule:" + d.rule.Name }

func (d *drop) Interaction(ev *ingest.Interaction, out *Output) {
	if d.rule.Source == rules.SourceInteractions {
		d.observe(rules.Event{I: ev}, ev.OccurredAt, out)
	}
}

func (d *drop) Receipt(r *ingest.Receipt, out *Output) {
	if d.rule.Source == rules.SourceReceipts {
		d.observe(rules.Event{R: r}, r.OccurredAt, out)
	}
}

func (d *drop) observe(e rules.Event, at time.Time, out *Output) {
	if !d.rule.Matcher.Match(e) {
		return
	}
	v := 1.0
	if d.rule.Agg.Op == "sum" {
		v = sat(d.rule.Agg.Num(e), &out.Saturated)
	}
	d.buf = groupKey(d.rule.Fields, e, d.buf)
	s := windowStart(at.UnixNano(), d.window)
	g, ok := d.groups[string(d.buf)]
	if !ok {
		g = &dropGroup{Next: s, Hist: make([]float64, d.hist), Fresh: true}
		if _, was := d.forgotten[string(d.buf)]; was {
			g.Count = d.hist // a full baseline of zeros
			delete(d.forgotten, string(d.buf))
		}
		d.groups[string(d.buf)] = g
	}
	if g.Fresh && s < g.Next {
		// Nothing evaluated yet: an earlier event moves the group's first
		// window back (any windows skipped were empty).
		g.Next = s
	}
	g.Open = addWin(g.Open, s, v, &out.Saturated)
	if d.due == 0 || g.Next+d.window < d.due {
		d.due = g.Next + d.window
	}
}

// addWin adds v to the window starting at s, keeping the slice sorted.
// The sum saturates (satAdd); n counts the clamps.
func addWin(open []winVal, s int64, v float64, n *int64) []winVal {
	i := len(open)
	for i > 0 && open[i-1].Start > s {
		i--
	}
	if i > 0 && open[i-1].Start == s {
		open[i-1].V = satAdd(open[i-1].V, v, n)
		return open
	}
	open = append(open, winVal{})
	copy(open[i+1:], open[i:])
	open[i] = winVal{Start: s, V: v}
	return open
}

func (d *drop) Advance(wm time.Time, out *Output) {
	w := wm.UnixNano()
	if d.due == 0 || w < d.due {
		return
	}
	d.due = 0
	for _, key := range sortedKeys(d.groups) {
		g := d.groups[key]
		for g.Next+d.window <= w {
			if d.skip(g, w) {
				continue
			}
			if d.evaluate(key, g, out) {
				delete(d.groups, key)
				d.forgotten[key] = struct{}{}
				break
			}
		}
		if _, ok := d.groups[key]; ok && (d.due == 0 || g.Next+d.window < d.due) {
			d.due = g.Next + d.window
		}
	}
}

// skip moves g past a run of windows whose evaluation is known to change
// nothing but the window count, and reports whether it did. With a history
// of zeros, an empty window has value 0 against a baseline of 0 (or none
// yet): it neither breaches nor keeps an alert firing. So when the
// watermark jumps far over empty windows, Advance costs the windows with
// data plus the baseline's length, not the jump divided by the window.
//
//   - not firing: every empty window up to the next one with data is inert;
//     without data ahead, evaluate runs instead, so that the group is
//     forgotten after at most a baseline's worth of windows;
//   - firing and clearing (keep_firing_for running): every empty window
//     that ends before keep_firing_for is over.
func (d *drop) skip(g *dropGroup, w int64) bool {
	if g.nonZero != 0 || (len(g.Open) > 0 && g.Open[0].Start == g.Next) {
		return false
	}
	n := (w - g.Next) / d.window // windows that are final
	if len(g.Open) > 0 {
		n = min(n, (g.Open[0].Start-g.Next)/d.window)
	}
	switch {
	case !g.Firing && len(g.Open) > 0:
		g.Streak = 0
	case g.Firing && g.Clear != 0:
		// the windows ending before Clear + keep_firing_for
		r := g.Clear + int64(d.rule.KeepFiringFor) - g.Next
		n = min(n, (r-1)/d.window)
	default:
		return false
	}
	if n <= 0 {
		return false
	}
	g.Count += int(n)
	g.Next += n * d.window
	g.Fresh = false
	return true
}

// baseline is the reference for the window numbered i, and whether the
// group has a full baseline yet.
func (d *drop) baseline(g *dropGroup, i int, sat *int64) (float64, bool) {
	b := d.rule.Baseline
	step, n := 1, b.Windows
	if n == 0 {
		step, n = int(int64(b.Season)/d.window), b.Seasons
	}
	if i < step*n {
		return 0, false
	}
	sum := 0.0
	for k := 1; k <= n; k++ {
		sum = satAdd(sum, g.Hist[(i-k*step)%d.hist], sat)
	}
	return sum / float64(n), true
}

// evaluate closes the group's next window and reports whether the group can
// be forgotten: nothing open, not breaching, and a history of zeros (its
// baseline is 0, so it could not breach before new events arrive).
func (d *drop) evaluate(key string, g *dropGroup, out *Output) (forget bool) {
	s := g.Next
	end := s + d.window
	v := 0.0
	if len(g.Open) > 0 && g.Open[0].Start == s {
		v = g.Open[0].V
		g.Open = g.Open[1:]
	}
	d.evals++
	base, full := d.baseline(g, g.Count, &out.Saturated)
	bound := base * (1 - d.rule.DropPct/100)
	breach := full && base >= d.rule.MinBaseline && v < bound
	stay := breach
	if rt := d.rule.ResolveThreshold; rt != nil {
		stay = full && base >= d.rule.MinBaseline && v < base*(1-*rt/100)
	}
	h := &g.Hist[g.Count%d.hist]
	if *h != 0 {
		g.nonZero--
	}
	if *h = v; v != 0 {
		g.nonZero++
	}
	g.Count++
	g.Next = end
	g.Fresh = false
	if !g.Firing {
		if !breach {
			g.Streak = 0
		} else if g.Streak++; g.Streak == 1 {
			g.Since = end
		}
		if breach && g.Streak >= d.rule.ForWindows {
			g.Firing, g.Clear = true, 0
			a := newAlert(d.rule, key, StateFiring, v, bound, ts(g.Since))
			a.WindowStart, a.WindowEnd = tp(ts(s)), tp(ts(end))
			out.Alerts = append(out.Alerts, a)
		}
		if breach {
			return false
		}
	} else {
		if stay {
			g.Clear = 0
			return false
		}
		if g.Clear == 0 {
			g.Clear = end
		}
		if end-g.Clear < int64(d.rule.KeepFiringFor) {
			return false
		}
		g.Firing, g.Streak, g.Clear = false, 0, 0
		a := newAlert(d.rule, key, StateResolved, v, bound, ts(g.Since))
		a.EndsAt = tp(ts(end))
		a.WindowStart, a.WindowEnd = tp(ts(s)), tp(ts(end))
		out.Alerts = append(out.Alerts, a)
	}
	return len(g.Open) == 0 && g.Count >= d.hist && g.nonZero == 0
}

type dropState struct {
	Groups    map[string]*dropGroup
	Forgotten map[string]struct{}
	Due       int64
}

func (d *drop) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(dropState{Groups: d.groups, Forgotten: d.forgotten, Due: d.due})
	return buf.Bytes(), err
}

func (d *drop) UnmarshalState(b []byte) error {
	var st dropState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	d.groups, d.forgotten, d.due = st.Groups, st.Forgotten, st.Due
	if d.groups == nil {
		d.groups = map[string]*dropGroup{}
	}
	if d.forgotten == nil {
		d.forgotten = map[string]struct{}{}
	}
	for _, g := range d.groups {
		if len(g.Hist) != d.hist {
			return errCorruptState
		}
		g.nonZero = 0
		for _, h := range g.Hist {
			if h != 0 {
				g.nonZero++
			}
		}
	}
	return nil
}

// StateKeys is the number of groups with history.
func (d *drop) StateKeys() int { return len(d.groups) }
