package processor

import (
	"bytes"
	"encoding/gob"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// digest is one scheduled report of SPEC §3.4. Periods [S, E) end at the
// scheduled instants; once the watermark is past E, one Digest record is
// emitted for every group with anything to report.
//
// It is computed as records and alerts flow, never by re-reading history:
// each period not yet emitted has per-group accumulators (metric sums and
// distinct sets, the alerts fired and resolved in it), and the alerts of
// the listed rules that are firing are kept by fingerprint. Records and
// alerts are placed by their own times (occurred_at, starts_at, ends_at),
// not by when they are seen.
//
// A digest is not one of the engine's components: the engine calls it
// after every other component, with the alerts they emitted (already
// carrying their customer labels), and stops the watermark at each
// scheduled instant on its way (Engine.Advance), so that whatever is
// decided before E is decided before the digest at E is made, and the
// segment sets can be read as they stand just before E.
type digest struct {
	d        *rules.Digest
	sched    digestSchedule
	rules    map[string]bool // rules whose alerts are reported
	profiles *profileStore
	segs     segmentCounter // nil until a segment set component is connected

	started bool
	next    int64                    // E of the earliest period whose digests are not made (once started)
	periods map[int64]*digestPeriod  // by E
	open    map[string][]*digestOpen // firing alerts of the listed rules, by fingerprint
	// ready are the digests of the period ending at readyAt, made when the
	// watermark reached it and emitted once it is past it (SPEC: "once
	// the watermark is past E"). Making them at E exactly, whatever steps
	// the watermark takes after, keeps the output independent of how the
	// driver moves the watermark.
	ready    []Digest
	hasReady bool
	readyAt  int64
	// cacheS and cacheE are the last period looked up: records come in
	// time order, nearly always in the same period.
	cacheS, cacheE int64
	buf            []byte
	sbuf           []byte // segmentGroupBytes' buffer
}

// digestPeriod holds what one open period has gathered, per group.
type digestPeriod struct {
	Start  int64
	Groups map[string]*digestAcc
}

// digestAcc is one group's accumulator in one period. Sums holds count
// and sum metrics; Distinct the value sets of distinct metrics (nil for
// the others).
type digestAcc struct {
	Fired    []DigestAlert
	Resolved []DigestAlert
	Sums     []float64
	Distinct []map[string]bool
}

// digestOpen is a firing alert of a listed rule; ResolvedAt is its
// resolved record's ends_at once seen (0 while firing).
type digestOpen struct {
	Group      string
	Alert      DigestAlert
	ResolvedAt int64
}

// segmentCounter is what a digest needs from the segment set component of
// SPEC §3.3. The engine connects a digest to the first component that
// implements it; a digest with segments and none connected lists no
// classes.
type segmentCounter interface {
	// segmentClasses are the class names of set in the file's order; ok
	// is false when there is no such set.
	segmentClasses(set string) (classes []string, ok bool)
	// segmentCounts counts the keys of set in each class just before at,
	// by the group that group gives each key: result[group][class]. The
	// engine calls it while the watermark is exactly at (every transition
	// at an instant before at emitted, none at at).
	// group's bytes are valid until its next call.
	segmentCounts(set string, at time.Time, group func(k SegmentKey) []byte) map[string]map[string]int
}

// SegmentKey is a key of a segment set as digests group it: its tenant,
// its customer and its key fields by label.
type SegmentKey struct {
	Tenant, CustomerID string
	Fields             map[string]string
}

// segmentUser is implemented by digests, to be connected to the segment
// set component.
type segmentUser interface{ useSegments(segmentCounter) }

func newDigest(d *rules.Digest) *digest {
	g := &digest{
		d:       d,
		sched:   digestSchedule{every: d.Schedule.Every, atMin: d.Schedule.AtMin, loc: d.Schedule.Location},
		rules:   map[string]bool{},
		periods: map[int64]*digestPeriod{},
		open:    map[string][]*digestOpen{},
	}
	for _, r := range d.Alerts {
		g.rules[r] = true
	}
	if g.sched.loc == nil {
		g.sched.loc = time.UTC
	}
	return g
}

// Name is the digest's state name in snapshots.
func (g *digest) Name() string { return "digest:" + g.d.Name }

func (g *digest) useProfiles(s *profileStore) { g.profiles = s }

func (g *digest) useSegments(s segmentCounter) { g.segs = s }

// record accounts for an accepted interaction or receipt.
func (g *digest) record(e rules.Event, at time.Time, source string) {
	t := at.UnixNano()
	if !g.started {
		g.started = true
		g.next = g.sched.next(t)
	}
	var acc *digestAcc
	for i, m := range g.d.Metrics {
		if m.Source != source || !m.Matcher.Match(e) {
			continue
		}
		if acc == nil {
			if acc = g.acc(t, g.recordGroup(e)); acc == nil {
				return // before the first period
			}
		}
		switch m.Agg.Op {
		case "count":
			acc.Sums[i]++
		case "sum":
			// Held at ±MaxFloat64 as the detectors' sums are, rather
			// than overflowing to an infinity no output could encode.
			var ignored int64
			acc.Sums[i] = satAdd(acc.Sums[i], m.Agg.Num(e), &ignored)
		case "distinct":
			if acc.Distinct[i] == nil {
				acc.Distinct[i] = map[string]bool{}
			}
			acc.Distinct[i][m.Agg.Field.Get(e)] = true
		}
	}
}

// recordGroup is e's group key in g.buf, valid until the next call: acc
// copies it only for a group it has not seen in the period, so a record
// of a known group allocates nothing.
func (g *digest) recordGroup(e rules.Event) []byte {
	g.buf = g.buf[:0]
	for i := range g.d.Fields {
		if i > 0 {
			g.buf = append(g.buf, keySep...)
		}
		g.buf = append(g.buf, g.d.Fields[i].Value(e)...)
	}
	return g.buf
}

func (g *digest) labelGroup(labels map[string]string) string {
	g.buf = g.buf[:0]
	for i, f := range g.d.Fields {
		if i > 0 {
			g.buf = append(g.buf, keySep...)
		}
		v := labels[f.Label]
		if v == "" {
			v = ingest.UnknownDim
		}
		g.buf = append(g.buf, v...)
	}
	return string(g.buf)
}

// acc is the accumulator of group in the period holding instant t; nil
// when that period was already emitted or began before the first one.
func (g *digest) acc(t int64, group []byte) *digestAcc {
	if !g.started {
		return nil
	}
	var s, e int64
	if t >= g.cacheS && t < g.cacheE {
		s, e = g.cacheS, g.cacheE
	} else {
		e = g.sched.next(t)
		s = g.sched.prev(e)
		g.cacheS, g.cacheE = s, e
	}
	if e < g.next {
		return nil
	}
	p := g.periods[e]
	if p == nil {
		p = &digestPeriod{Start: s, Groups: map[string]*digestAcc{}}
		g.periods[e] = p
	}
	a := p.Groups[string(group)]
	if a == nil {
		a = &digestAcc{Sums: make([]float64, len(g.d.Metrics)), Distinct: make([]map[string]bool, len(g.d.Metrics))}
		p.Groups[string(group)] = a
	}
	return a
}

// observe sees the alerts the engine emitted, in order.
func (g *digest) observe(alerts []Alert) {
	for i := range alerts {
		a := &alerts[i]
		if !g.rules[a.Rule] {
			continue
		}
		group := g.labelGroup(a.Labels)
		// Labels are copied: a sink may still change the emitted alert's.
		da := DigestAlert{Fingerprint: a.Fingerprint, Rule: a.Rule, Labels: maps.Clone(a.Labels), StartsAt: a.StartsAt, Value: a.Value}
		switch a.State {
		case StateFiring:
			g.open[a.Fingerprint] = append(g.open[a.Fingerprint], &digestOpen{Group: group, Alert: da})
			if acc := g.acc(a.StartsAt.UnixNano(), []byte(group)); acc != nil {
				acc.Fired = append(acc.Fired, da)
			}
		case StateResolved:
			if a.EndsAt == nil {
				continue
			}
			da.EndsAt = a.EndsAt
			end := a.EndsAt.UnixNano()
			for _, o := range g.open[a.Fingerprint] {
				if o.ResolvedAt == 0 {
					o.ResolvedAt = end
					break
				}
			}
			if acc := g.acc(end, []byte(group)); acc != nil {
				acc.Resolved = append(acc.Resolved, da)
			}
		}
	}
}

// stop is the first instant after wm at which the engine must stop the
// watermark: the end of the earliest period whose digests are not made.
func (g *digest) stop(wm int64) (int64, bool) {
	if !g.started {
		return 0, false
	}
	if g.next > wm {
		return g.next, true
	}
	return g.sched.next(g.next), true // not reached: advance makes it first
}

// advance emits the digests made at an E the watermark is now past, and
// makes those of every period end it has reached.
func (g *digest) advance(wm time.Time, out *Output) {
	if !g.started {
		return
	}
	w := wm.UnixNano()
	for {
		if g.hasReady && w > g.readyAt {
			out.Digests = append(out.Digests, g.ready...)
			g.ready, g.hasReady, g.readyAt = nil, false, 0
		}
		if g.hasReady || w < g.next {
			return
		}
		g.ready, g.hasReady, g.readyAt = g.make(g.next), true, g.next
		g.next = g.sched.next(g.next)
	}
}

// segmentGroup is the group of a segment key: tenant and customer_id from
// the key, customer.* from its profile at E, other paths from the key's
// fields, unknown where absent.
func (g *digest) segmentGroup(k SegmentKey, at int64) string {
	return string(g.segmentGroupBytes(k, at))
}

// segmentGroupBytes is segmentGroup in g.sbuf, valid until the next call.
func (g *digest) segmentGroupBytes(k SegmentKey, at int64) []byte {
	var p *ingest.Profile
	looked := false
	b := g.sbuf[:0]
	for i, f := range g.d.Fields {
		if i > 0 {
			b = append(b, keySep...)
		}
		v := ""
		switch {
		case f.Customer:
			if !looked && g.profiles != nil {
				p, looked = g.profiles.at(k.Tenant, k.CustomerID, at), true
			}
			if p != nil {
				v = f.Profile(p)
			}
		case f.Path == "tenant":
			v = k.Tenant
		case f.Path == "customer_id":
			v = k.CustomerID
		default:
			v = k.Fields[f.Label]
		}
		if v == "" {
			v = ingest.UnknownDim
		}
		b = append(b, v...)
	}
	g.sbuf = b
	return b
}

func (g *digest) classes() []string {
	if g.d.Segments == "" || g.segs == nil {
		return nil
	}
	c, _ := g.segs.segmentClasses(g.d.Segments)
	return c
}

// make produces the digests of the period ending at e and forgets it;
// the segment sets are read now, with the watermark at e.
func (g *digest) make(e int64) []Digest {
	p := g.periods[e]
	delete(g.periods, e)
	start := g.sched.prev(e)
	if p != nil {
		start = p.Start
	}
	groups := map[string]bool{}
	if p != nil {
		for k := range p.Groups {
			groups[k] = true
		}
	}
	open := map[string][]DigestAlert{}
	for fp, os := range g.open {
		keep := os[:0]
		for _, o := range os {
			if o.Alert.StartsAt.UnixNano() < e && (o.ResolvedAt == 0 || o.ResolvedAt > e) {
				open[o.Group] = append(open[o.Group], o.Alert)
				groups[o.Group] = true
			}
			if o.ResolvedAt == 0 || o.ResolvedAt > e {
				keep = append(keep, o)
			}
		}
		if len(keep) == 0 {
			delete(g.open, fp)
		} else {
			g.open[fp] = keep
		}
	}
	classes := g.classes()
	var segs map[string]map[string]int
	if classes != nil {
		segs = g.segs.segmentCounts(g.d.Segments, ts(e), func(k SegmentKey) []byte { return g.segmentGroupBytes(k, e) })
		for k := range segs {
			groups[k] = true
		}
	}
	ds := []Digest{}
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		d := Digest{
			Digest:      g.d.Name,
			Group:       make(map[string]string, len(g.d.Fields)),
			PeriodStart: ts(start),
			PeriodEnd:   ts(e),
			Fired:       []DigestAlert{},
			Resolved:    []DigestAlert{},
			Open:        sortedAlerts(open[key]),
			Metrics:     make(map[string]float64, len(g.d.Metrics)),
			Segments:    make(map[string]int, len(classes)),
		}
		vals := strings.Split(key, keySep)
		for i, f := range g.d.Fields {
			if i < len(vals) {
				d.Group[f.Label] = vals[i]
			}
		}
		report := len(d.Open) > 0
		var acc *digestAcc
		if p != nil {
			acc = p.Groups[key]
		}
		if acc != nil {
			d.Fired, d.Resolved = sortedAlerts(acc.Fired), sortedAlerts(acc.Resolved)
			report = report || len(d.Fired) > 0 || len(d.Resolved) > 0
		}
		for i, m := range g.d.Metrics {
			v := 0.0
			if acc != nil {
				v = acc.Sums[i]
				if m.Agg.Op == "distinct" {
					v = float64(len(acc.Distinct[i]))
				}
			}
			d.Metrics[m.Name] = v
			report = report || v != 0
		}
		for _, c := range classes {
			n := segs[key][c]
			d.Segments[c] = n
			report = report || n != 0
		}
		if !report {
			continue
		}
		d.DigestID = digestID(g.d.Name, d.Group, d.PeriodEnd)
		ds = append(ds, d)
	}
	return ds
}

func sortedAlerts(as []DigestAlert) []DigestAlert {
	out := slices.Clone(as)
	if out == nil {
		return []DigestAlert{}
	}
	slices.SortStableFunc(out, func(a, b DigestAlert) int {
		if c := a.StartsAt.Compare(b.StartsAt); c != 0 {
			return c
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
	return out
}

// digestID is deterministic in the digest's name, group and period end
// (SPEC §4), so a digest produced twice (a replay, a restart) is
// delivered once.
func digestID(name string, group map[string]string, end time.Time) string {
	h := fnv.New64a()
	for _, n := range slices.Sorted(maps.Keys(group)) {
		h.Write([]byte(n))
		h.Write([]byte{0xff})
		h.Write([]byte(group[n]))
		h.Write([]byte{0xff})
	}
	return name + ":" + strconv.FormatUint(h.Sum64(), 16) + ":" + end.UTC().Format(time.RFC3339Nano)
}

type digestState struct {
	Started  bool
	Next     int64
	Periods  map[int64]*digestPeriod
	Open     map[string][]*digestOpen
	Ready    []Digest
	HasReady bool
	ReadyAt  int64
}

func (g *digest) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(digestState{Started: g.started, Next: g.next, Periods: g.periods,
		Open: g.open, Ready: g.ready, HasReady: g.hasReady, ReadyAt: g.readyAt})
	return buf.Bytes(), err
}

func (g *digest) UnmarshalState(b []byte) error {
	var st digestState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	g.started, g.next, g.periods, g.open = st.Started, st.Next, st.Periods, st.Open
	g.ready, g.hasReady, g.readyAt = st.Ready, st.HasReady, st.ReadyAt
	for i := range g.ready {
		// gob gives nil for empty slices and maps; the record lists
		// them as [] and {}.
		d := &g.ready[i]
		for _, l := range []*[]DigestAlert{&d.Fired, &d.Resolved, &d.Open} {
			if *l == nil {
				*l = []DigestAlert{}
			}
		}
		if d.Group == nil {
			d.Group = map[string]string{}
		}
		if d.Metrics == nil {
			d.Metrics = map[string]float64{}
		}
		if d.Segments == nil {
			d.Segments = map[string]int{}
		}
	}
	if g.periods == nil {
		g.periods = map[int64]*digestPeriod{}
	}
	for _, p := range g.periods {
		if p.Groups == nil {
			p.Groups = map[string]*digestAcc{}
		}
		for _, a := range p.Groups {
			// gob drops nil slice elements' length: restore the shapes.
			if len(a.Sums) < len(g.d.Metrics) {
				a.Sums = append(a.Sums, make([]float64, len(g.d.Metrics)-len(a.Sums))...)
			}
			if len(a.Distinct) < len(g.d.Metrics) {
				a.Distinct = append(a.Distinct, make([]map[string]bool, len(g.d.Metrics)-len(a.Distinct))...)
			}
		}
	}
	if g.open == nil {
		g.open = map[string][]*digestOpen{}
	}
	g.cacheS, g.cacheE = 0, 0
	return nil
}

// StateKeys is the number of groups in open periods plus the firing
// alerts kept.
func (g *digest) StateKeys() int {
	n := len(g.open)
	for _, p := range g.periods {
		n += len(p.Groups)
	}
	return n
}

// digestSchedule computes a digest's scheduled instants: every day, every
// Monday or the first of every month at atMin local time in loc, a time in
// a DST gap moved forward as calendar reminders are (wallTime).
type digestSchedule struct {
	every string
	atMin int
	loc   *time.Location
}

// instant is the scheduled instant of the local date date (a UTC midnight
// standing for a civil date).
func (s digestSchedule) instant(date time.Time) int64 {
	return wallTime(date.Year(), date.Month(), date.Day(), s.atMin, s.loc).UnixNano()
}

// alignUp is the first scheduled date on or after date.
func (s digestSchedule) alignUp(date time.Time) time.Time {
	switch s.every {
	case rules.EveryWeek:
		return date.AddDate(0, 0, (int(time.Monday)-int(date.Weekday())+7)%7)
	case rules.EveryMonth:
		if date.Day() == 1 {
			return date
		}
		return time.Date(date.Year(), date.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return date
}

func (s digestSchedule) step(date time.Time) time.Time {
	switch s.every {
	case rules.EveryWeek:
		return date.AddDate(0, 0, 7)
	case rules.EveryMonth:
		return date.AddDate(0, 1, 0) // from a first of the month: no overflow
	}
	return date.AddDate(0, 0, 1)
}

// localDate is t's civil date in loc, as a UTC midnight.
func (s digestSchedule) localDate(t int64) time.Time {
	y, m, d := time.Unix(0, t).In(s.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// next is the first scheduled instant after t.
func (s digestSchedule) next(t int64) int64 {
	// From the day before: a DST gap can move an instant past midnight.
	date := s.alignUp(s.localDate(t).AddDate(0, 0, -1))
	for s.instant(date) <= t {
		date = s.step(date)
	}
	return s.instant(date)
}

// prev is the last scheduled instant before t.
func (s digestSchedule) prev(t int64) int64 {
	date := s.alignUp(s.localDate(t).AddDate(0, -1, -8))
	at := s.instant(date)
	for {
		n := s.instant(s.step(date))
		if n >= t {
			return at
		}
		date, at = s.step(date), n
	}
}

// buildDigests makes the rules file's digests, reading the engine's
// profiles and the first component that counts segment keys.
func (e *Engine) buildDigests() {
	var segs segmentCounter
	for _, c := range e.comps {
		if s, ok := c.(segmentCounter); ok {
			segs = s
			break
		}
	}
	for _, d := range e.rules.Digests {
		g := newDigest(d)
		g.useProfiles(e.profiles)
		if segs != nil {
			g.useSegments(segs)
		}
		e.digests = append(e.digests, g)
	}
}

// digestStop is the earliest period end of a digest strictly between the
// watermark and wm: Advance stops there first, so that everything before
// it is decided, and the segment sets read, as they stand at it.
func (e *Engine) digestStop(wm time.Time) (time.Time, bool) {
	var at int64
	found := false
	lo, hi := e.wm.UnixNano(), wm.UnixNano()
	if e.wm.IsZero() {
		lo = minInstant
	}
	for _, g := range e.digests {
		if s, ok := g.stop(lo); ok && s > lo && s < hi && (!found || s < at) {
			at, found = s, true
		}
	}
	return ts(at), found
}

// digestRecord hands an accepted record, then the alerts emitted for it
// from index from on, to every digest.
func (e *Engine) digestRecord(ev rules.Event, at time.Time, source string, from int) {
	for _, g := range e.digests {
		g.record(ev, at, source)
		g.observe(e.out.Alerts[from:])
	}
}

// digestObserve hands the alerts emitted from index from on to every
// digest.
func (e *Engine) digestObserve(from int) {
	for _, g := range e.digests {
		g.observe(e.out.Alerts[from:])
	}
}

// digestAdvance hands the alerts emitted by the other components' Advance
// to every digest, then advances the digests.
func (e *Engine) digestAdvance(wm time.Time, from int) {
	for _, g := range e.digests {
		g.observe(e.out.Alerts[from:])
		g.advance(wm, &e.out)
	}
}
