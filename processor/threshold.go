package processor

import (
	"bytes"
	"encoding/gob"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// threshold evaluates a sliding window (SPEC §3.1): on every matching event
// at t the value over (t − window, t] is computed and the alert fires at
// once when the condition holds; as the watermark moves, it resolves at the
// first instant the value over (x − window, x] stops holding.
//
// Each group keeps its events in time order with prefix sums, so a window's
// value is two binary searches; distinct() counts by scanning.
type threshold struct {
	rule    *rules.Rule
	window  int64
	groups  map[string]*thrGroup
	firing  map[string]bool // keys of groups whose alert is firing or pending
	wm      int64           // watermark at the last Advance
	sweepAt int64           // next watermark at which idle groups are dropped
	// due holds one timer per active group at the next instant its value
	// or a deadline can change, so Advance touches only groups with
	// something due instead of every firing group on every call.
	due timerHeap
	buf []byte
	sat int64 // saturated values since the last call, moved to Output.Saturated
}

// Prefix sums are kept scaled by 2⁻⁶⁴, so that they cannot overflow
// whatever the values (a sum of n values each below math.MaxFloat64·2⁻⁶⁴
// stays finite for n < 2⁶⁴). Scaling by a power of two is exact, so every
// window value is the one unscaled float64 arithmetic gives, except that a
// window whose sum passes ±math.MaxFloat64 saturates there instead of
// becoming ±Inf (and an Inf − Inf cannot make NaN).
const (
	cumScale   = 0x1p-64
	cumUnscale = 0x1p64
)

// thrGroup holds one group's entries from Off on; the dead prefix is
// compacted away once it is half the slice, so pruning is amortised O(1).
type thrGroup struct {
	Times   []int64   // event times, ascending
	Cum     []float64 // Cum[i] = sum of values of entries Off..i (plus a constant)
	Strs    []string  // distinct(): the field value per entry
	Off     int
	Checked int64 // resolution has been checked up to this instant
	Firing  bool
	Pending bool  // the condition holds but not yet for `for`
	Since   int64 // when the condition began to hold: starts_at
	Clear   int64 // while firing: when it stopped holding (keep_firing_for)
	// Scaled is set when Cum holds sums scaled by cumScale; snapshots
	// written before scaling are converted on restore.
	Scaled bool

	// distinct() keeps value counts for entries [dLo, dHi), moved
	// incrementally as queries move forward; rebuilt when a query goes back.
	dValid   bool
	dLo, dHi int
	dCnt     map[string]int
	due      int64 // At of this group's live timer in threshold.due
}

func newThreshold(r *rules.Rule, _ *rules.File) Component {
	return &threshold{rule: r, window: int64(r.Window), groups: map[string]*thrGroup{}, firing: map[string]bool{}}
}

func (d *threshold) Name() string { return "rule:" + d.rule.Name }

func (d *threshold) Interaction(ev *ingest.Interaction, out *Output) {
	if d.rule.Source == rules.SourceInteractions {
		d.observe(rules.Event{I: ev}, ev.OccurredAt, out)
		out.Saturated, d.sat = out.Saturated+d.sat, 0
	}
}

func (d *threshold) Receipt(r *ingest.Receipt, out *Output) {
	if d.rule.Source == rules.SourceReceipts {
		d.observe(rules.Event{R: r}, r.OccurredAt, out)
		out.Saturated, d.sat = out.Saturated+d.sat, 0
	}
}

func (d *threshold) observe(e rules.Event, at time.Time, out *Output) {
	if !d.rule.Matcher.Match(e) {
		return
	}
	d.buf = groupKey(d.rule.Fields, e, d.buf)
	g, ok := d.groups[string(d.buf)]
	if !ok {
		g = &thrGroup{Scaled: true}
		d.groups[string(d.buf)] = g
	}
	t := at.UnixNano()
	v := 1.0
	var s string
	switch d.rule.Agg.Op {
	case "sum":
		v = sat(d.rule.Agg.Num(e), &d.sat)
	case "distinct":
		s = strings.Clone(d.rule.Agg.Field.Get(e))
	}
	g.prune(d.wm - d.window)
	g.insert(t, v, s, d.rule.Agg.Op == "distinct")
	switch {
	case g.Firing:
		if g.Clear != 0 && d.rule.Resolve(d.value(g, max(t, g.Clear)), d.rule.ThresholdValue()) {
			g.Clear = 0 // it holds again within keep_firing_for
		}
		d.schedule(string(d.buf), g)
		return
	case g.Pending:
		d.schedule(string(d.buf), g)
		return
	}
	// An event that arrived out of order also changes the windows ending at
	// the later events already seen within one window of it: the condition
	// may first hold at one of those instants.
	x, i := t, g.search(t)
	for {
		val := d.value(g, x)
		if d.rule.Compare(val, d.rule.ThresholdValue()) {
			g.Since, g.Checked = x, x
			d.firing[string(d.buf)] = true
			if d.rule.ForDur > 0 {
				g.Pending = true
			} else {
				d.fire(string(d.buf), g, x, val, out)
			}
			d.schedule(string(d.buf), g)
			return
		}
		if i >= len(g.Times) || g.Times[i] >= t+d.window {
			return
		}
		x = g.Times[i]
		for i < len(g.Times) && g.Times[i] == x {
			i++
		}
	}
}

func (d *threshold) fire(key string, g *thrGroup, x int64, val float64, out *Output) {
	g.Firing, g.Pending, g.Clear = true, false, 0
	a := newAlert(d.rule, key, StateFiring, val, d.rule.ThresholdValue(), ts(g.Since))
	a.WindowStart, a.WindowEnd = tp(ts(x-d.window)), tp(ts(x))
	out.Alerts = append(out.Alerts, a)
}

func (g *thrGroup) insert(t int64, v float64, s string, distinct bool) {
	i := len(g.Times)
	for i > g.Off && g.Times[i-1] > t {
		i--
	}
	if i < g.dHi {
		g.dValid = false
	}
	g.Times = slices.Insert(g.Times, i, t)
	if distinct {
		g.Strs = slices.Insert(g.Strs, i, s)
	}
	prev := 0.0
	if i > 0 {
		prev = g.Cum[i-1]
	}
	v *= cumScale
	g.Cum = slices.Insert(g.Cum, i, prev+v)
	for j := i + 1; j < len(g.Cum); j++ {
		g.Cum[j] += v
	}
}

// value is the aggregate over (x − window, x].
func (d *threshold) value(g *thrGroup, x int64) float64 {
	lo := g.search(x - d.window)
	hi := g.search(x)
	if hi <= lo {
		return 0
	}
	if d.rule.Agg.Op == "distinct" {
		return float64(g.distinct(lo, hi))
	}
	v := g.Cum[hi-1]
	if lo > 0 { // dead entries before Off still hold valid prefix sums
		v -= g.Cum[lo-1]
	}
	return sat(v*cumUnscale, &d.sat)
}

// distinct is the number of distinct values among entries [lo, hi).
func (g *thrGroup) distinct(lo, hi int) int {
	if !g.dValid || lo < g.dLo || hi < g.dHi {
		g.dCnt = make(map[string]int, hi-lo)
		g.dLo, g.dHi, g.dValid = lo, lo, true
	}
	for ; g.dHi < hi; g.dHi++ {
		g.dCnt[g.Strs[g.dHi]]++
	}
	for ; g.dLo < lo; g.dLo++ {
		s := g.Strs[g.dLo]
		if g.dCnt[s]--; g.dCnt[s] == 0 {
			delete(g.dCnt, s)
		}
	}
	return len(g.dCnt)
}

// search is the index of the first live entry after x.
func (g *thrGroup) search(x int64) int {
	return g.Off + sort.Search(len(g.Times)-g.Off, func(i int) bool { return g.Times[g.Off+i] > x })
}

func (d *threshold) Advance(wm time.Time, out *Output) {
	w := wm.UnixNano()
	d.wm = w
	for len(d.due) > 0 && d.due[0].At <= w {
		tm := d.due.pop()
		g, ok := d.groups[tm.Key]
		if !ok || !(g.Firing || g.Pending) || g.due != tm.At {
			continue // resolved, or rescheduled since
		}
		g.due = 0
		d.checkResolve(tm.Key, g, g.Checked, w, out)
		g.Checked = w
		if g.Firing || g.Pending {
			d.schedule(tm.Key, g)
		}
	}
	out.Saturated, d.sat = out.Saturated+d.sat, 0
	if w < d.sweepAt {
		return
	}
	// Once per window of event time, drop what no window can include any
	// more and forget idle groups; between sweeps groups prune themselves
	// when they receive an event.
	d.sweepAt = w + d.window
	for key, g := range d.groups {
		g.prune(w - d.window)
		if !g.Firing && !g.Pending && g.Off == len(g.Times) {
			delete(d.groups, key)
		}
	}
}

// schedule sets g's timer at the next instant after g.Checked where its
// value or a deadline can change.
func (d *threshold) schedule(key string, g *thrGroup) {
	next := int64(math.MaxInt64)
	if i := g.search(g.Checked); i < len(g.Times) {
		next = g.Times[i] // an entry arriving
	}
	if i := g.search(g.Checked - d.window); i < len(g.Times) {
		next = min(next, g.Times[i]+d.window) // an entry leaving
	}
	if dl := d.deadline(g); dl > g.Checked {
		next = min(next, dl)
	}
	if next == math.MaxInt64 || (g.due != 0 && g.due <= next) {
		return
	}
	g.due = next
	d.due.push(timer{At: next, Key: key})
}

// checkResolve walks the instants in (prev, wm] after the condition began
// where anything can change — an event entering at t, leaving at
// t + window, the end of a pending `for`, the end of keep_firing_for — and
// moves the alert along: pending → firing, firing → resolved.
func (d *threshold) checkResolve(key string, g *thrGroup, prev, wm int64, out *Output) {
	from := max(prev, g.Since)
	var pts []int64
	for i := g.search(from); i < len(g.Times) && g.Times[i] <= wm; i++ {
		pts = append(pts, g.Times[i])
	}
	for i := g.search(from - d.window); i < len(g.Times) && g.Times[i]+d.window <= wm; i++ {
		pts = append(pts, g.Times[i]+d.window)
	}
	slices.Sort(pts)
	// Walk the change points and the deadlines (end of a pending `for`, end
	// of keep_firing_for) in time order; a deadline can appear during the
	// walk, so it is recomputed at every step.
	i, last := 0, from
	for {
		for i < len(pts) && pts[i] <= last {
			i++
		}
		next := int64(math.MaxInt64)
		if i < len(pts) {
			next = pts[i]
		}
		if dl := d.deadline(g); dl > last && dl < next {
			next = dl
		}
		if next > wm {
			return
		}
		last = next
		if d.at(key, g, next, out) {
			return
		}
	}
}

// deadline is the next instant at which time alone changes g's state.
func (d *threshold) deadline(g *thrGroup) int64 {
	switch {
	case g.Pending:
		return g.Since + int64(d.rule.ForDur)
	case g.Firing && g.Clear != 0:
		return g.Clear + int64(d.rule.KeepFiringFor)
	}
	return 0
}

// at moves g along at instant x; it reports whether g is done (resolved,
// or pending that broke off).
func (d *threshold) at(key string, g *thrGroup, x int64, out *Output) bool {
	thr := d.rule.ThresholdValue()
	v := d.value(g, x)
	if g.Pending {
		if !d.rule.Compare(v, thr) {
			g.Pending = false // it stopped holding before `for` elapsed
			delete(d.firing, key)
			return true
		}
		if x >= g.Since+int64(d.rule.ForDur) {
			d.fire(key, g, x, v, out)
		}
		return false
	}
	if d.rule.Resolve(v, thr) {
		g.Clear = 0
		return false
	}
	if g.Clear == 0 {
		g.Clear = x
	}
	if x-g.Clear < int64(d.rule.KeepFiringFor) {
		return false
	}
	g.Firing, g.Clear = false, 0
	delete(d.firing, key)
	a := newAlert(d.rule, key, StateResolved, v, thr, ts(g.Since))
	a.EndsAt = tp(ts(x))
	a.WindowStart, a.WindowEnd = tp(ts(x-d.window)), tp(ts(x))
	out.Alerts = append(out.Alerts, a)
	return true
}

// prune drops entries at or before cut: no later window can include them.
func (g *thrGroup) prune(cut int64) {
	g.Off = g.search(cut)
	if g.Off*2 < len(g.Times) || g.Off == 0 {
		return
	}
	base := g.Cum[g.Off-1]
	g.Times = slices.Delete(g.Times, 0, g.Off)
	g.Cum = slices.Delete(g.Cum, 0, g.Off)
	if len(g.Strs) > 0 {
		g.Strs = slices.Delete(g.Strs, 0, g.Off)
	}
	g.Off = 0
	g.dValid = false
	// Rebase so prefix sums stay small and exact over a long run.
	for i := range g.Cum {
		g.Cum[i] -= base
	}
}

type thresholdState struct {
	Groups  map[string]*thrGroup
	WM      int64
	SweepAt int64
}

func (d *threshold) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(thresholdState{Groups: d.groups, WM: d.wm, SweepAt: d.sweepAt})
	return buf.Bytes(), err
}

func (d *threshold) UnmarshalState(b []byte) error {
	var st thresholdState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	d.groups, d.wm, d.sweepAt = st.Groups, st.WM, st.SweepAt
	d.due = nil
	if d.groups == nil {
		d.groups = map[string]*thrGroup{}
	}
	d.firing = map[string]bool{}
	for _, g := range d.groups {
		if !g.Scaled {
			for i := range g.Cum {
				g.Cum[i] *= cumScale
			}
			g.Scaled = true
		}
	}
	for _, k := range sortedKeys(d.groups) {
		if g := d.groups[k]; g.Firing || g.Pending {
			d.firing[k] = true
			d.schedule(k, g)
		}
	}
	return nil
}

// StateKeys is the number of groups with events in the window.
func (d *threshold) StateKeys() int { return len(d.groups) }
