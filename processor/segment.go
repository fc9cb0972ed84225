package processor

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Segments (SPEC §3.3). Each segment set keeps, per key, the features its
// classes read — first and last purchase, purchases ever, and the purchases
// and matched refunds within the look-back — and the class the key is in.
// A class can only change at a record's occurred_at or where a feature
// crosses a bound as time passes, so each key holds one timer at its next
// such instant (the earliest of last purchase + a recency bound, first
// purchase + a tenure bound, the oldest look-back purchase + window) and
// the watermark only ever touches keys with something due: a million
// tracked keys cost a million timers, not a scan per watermark step.
//
// Records are not applied when they arrive but at their instant, as the
// watermark passes it: a record at t must not be seen by instants before t
// that are still undecided (the watermark may lag far behind in streaming).

// noTime marks an absent instant (no timer, no tracked record yet).
const noTime = math.MaxInt64

// segmentReader is a component that can read segment transitions: the
// rules on source segments. threshold and event implement it below; a kind
// joins by implementing it too and being listed in rules.SegmentKinds.
type segmentReader interface {
	Component
	Segment(rec *rules.SegmentRecord, at time.Time, out *Output)
}

// Segment feeds a transition to a threshold rule on source segments.
func (d *threshold) Segment(rec *rules.SegmentRecord, at time.Time, out *Output) {
	if d.rule.Source == rules.SourceSegments {
		d.observe(rules.Event{S: rec}, at, out)
		out.Saturated, d.sat = out.Saturated+d.sat, 0
	}
}

// Segment feeds a transition to an event rule on source segments.
func (d *event) Segment(rec *rules.SegmentRecord, at time.Time, out *Output) {
	if d.rule.Source == rules.SourceSegments {
		d.observe(rules.Event{S: rec}, at, out)
	}
}

// segmentStage runs every segment set of a file and the rules on source
// segments, as one component: SPEC §3.3 orders them together ("at each
// instant t, the transitions at t reach the rules on segments, ordered by
// segment set, then key, and then the timers due at t fire").
type segmentStage struct {
	sets   []*segmentSet // by name
	rules  []segmentReader
	ruleWM int64 // the watermark the rules were last advanced to
	rec    rules.SegmentRecord
	// profiles is the engine's profile store: rules on segments read
	// customer.* from the version current at the transition's instant.
	profiles *profileStore
}

func (st *segmentStage) useProfiles(s *profileStore) { st.profiles = s }

// newSegmentStage builds the stage for f's segment sets and the rules on
// source segments; nil when the file has no segment sets.
func newSegmentStage(f *rules.File) (*segmentStage, error) {
	if len(f.Segments) == 0 {
		return nil, nil
	}
	st := &segmentStage{ruleWM: math.MinInt64}
	for _, s := range f.Segments {
		st.sets = append(st.sets, newSegmentSet(s))
	}
	slices.SortFunc(st.sets, func(a, b *segmentSet) int { return strings.Compare(a.def.Name, b.def.Name) })
	for _, r := range f.Rules {
		if r.Source != rules.SourceSegments {
			continue
		}
		mk, ok := detectorFactories[r.Kind]
		if !ok {
			return nil, fmt.Errorf("rule %q: no detector for kind %q", r.Name, r.Kind)
		}
		sr, ok := mk(r, f).(segmentReader)
		if !ok {
			return nil, fmt.Errorf("rule %q: kind %s cannot read source segments", r.Name, r.Kind)
		}
		st.rules = append(st.rules, sr)
	}
	return st, nil
}

func (st *segmentStage) Name() string { return "segments" }

func (st *segmentStage) Interaction(ev *ingest.Interaction, _ *Output) {
	for _, s := range st.sets {
		s.observe(ev)
	}
}

func (st *segmentStage) Receipt(*ingest.Receipt, *Output) {}

// Advance decides every instant before wm, in time order: at each, the
// sets emit their transitions (by set name, then key), the rules on
// segments read them, and then the rules' timers due at that instant fire.
func (st *segmentStage) Advance(wm time.Time, out *Output) {
	w := wm.UnixNano()
	for {
		t := int64(noTime)
		for _, s := range st.sets {
			t = min(t, s.next())
		}
		if t >= w { // strictly past: a record at w can still arrive
			break
		}
		// The rules' timers before t fire before the transitions at t.
		st.advanceRules(t-1, out)
		from := len(out.Transitions)
		for _, s := range st.sets {
			if s.next() == t {
				s.step(t, out)
			}
		}
		if len(st.rules) > 0 {
			for i := from; i < len(out.Transitions); i++ {
				st.feedRules(&out.Transitions[i], out)
			}
		}
		st.advanceRules(t, out)
	}
	st.advanceRules(w, out)
	for _, s := range st.sets {
		s.pending.shrink()
		s.timers.shrink()
	}
}

func (st *segmentStage) advanceRules(w int64, out *Output) {
	if w <= st.ruleWM {
		return
	}
	st.ruleWM = w
	for _, r := range st.rules {
		r.Advance(ts(w), out)
	}
}

func (st *segmentStage) feedRules(tr *Transition, out *Output) {
	st.rec = rules.SegmentRecord{SegmentSet: tr.SegmentSet, To: tr.To, Tenant: tr.Tenant, CustomerID: tr.CustomerID,
		KeyPaths: st.rec.KeyPaths[:0], KeyValues: st.rec.KeyValues[:0]}
	if tr.From != nil {
		st.rec.From = *tr.From
	}
	for _, s := range st.sets {
		if s.def.Name == tr.SegmentSet {
			for _, f := range s.def.Fields {
				st.rec.KeyPaths = append(st.rec.KeyPaths, f.Path)
				st.rec.KeyValues = append(st.rec.KeyValues, tr.Key[f.Label])
			}
		}
	}
	if st.profiles != nil {
		tenant := tr.Tenant
		if tenant == "" {
			tenant = ingest.DefaultTenant
		}
		st.rec.Profile = st.profiles.at(tenant, tr.CustomerID, tr.At.UnixNano())
	}
	for _, r := range st.rules {
		r.Segment(&st.rec, tr.At, out)
	}
}

type segmentStageState struct {
	RuleWM int64
	Sets   map[string][]byte
	Rules  map[string][]byte
}

func (st *segmentStage) MarshalState() ([]byte, error) {
	s := segmentStageState{RuleWM: st.ruleWM, Sets: map[string][]byte{}, Rules: map[string][]byte{}}
	for _, set := range st.sets {
		b, err := set.marshal()
		if err != nil {
			return nil, fmt.Errorf("segment set %s: %w", set.def.Name, err)
		}
		s.Sets[set.def.Name] = b
	}
	for _, r := range st.rules {
		b, err := r.MarshalState()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Name(), err)
		}
		s.Rules[r.Name()] = b
	}
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(&s)
	return buf.Bytes(), err
}

// UnmarshalState restores the sets and rules the snapshot has; a set or
// rule added since starts empty.
func (st *segmentStage) UnmarshalState(b []byte) error {
	var s segmentStageState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
		return err
	}
	st.ruleWM = s.RuleWM
	for _, set := range st.sets {
		if b, ok := s.Sets[set.def.Name]; ok {
			if err := set.unmarshal(b); err != nil {
				return fmt.Errorf("segment set %s: %w", set.def.Name, err)
			}
		}
	}
	for _, r := range st.rules {
		if b, ok := s.Rules[r.Name()]; ok {
			if err := r.UnmarshalState(b); err != nil {
				return fmt.Errorf("%s: %w", r.Name(), err)
			}
		}
	}
	return nil
}

// StateKeys is the number of keys the sets track plus the rules' groups.
func (st *segmentStage) StateKeys() int {
	n := 0
	for _, s := range st.sets {
		n += s.keys.len()
	}
	for _, r := range st.rules {
		if k, ok := r.(keyCounter); ok {
			n += k.StateKeys()
		}
	}
	return n
}

// segmentSet is one segment set: interned keys, a fixed-size entry per key,
// a timer heap with at most one live timer per key, and the records that
// arrived but whose instant the watermark has not passed yet.
type segmentSet struct {
	def     *rules.SegmentSet
	classes []segClass
	names   []string // class names; Transition.From points into it
	recency []int64  // the distinct recency bounds, ascending
	tenure  []int64  // the distinct tenure bounds, ascending
	window  int64
	// usesCount and usesAmount say which look-back features a class
	// reads; stride is the words per record in segEntry.Look.
	usesCount, usesAmount bool
	stride                int

	keys    *keyTable
	entries pages[segEntry]
	timers  minHeap[segTimer]
	pending minHeap[segPending]
	// tenants interns the tenant of keys without a tenant field (SPEC:
	// "tenant is the key's, or else the tracked record's").
	tenants   []string
	tenantIdx map[string]uint32
	buf       []byte
	touched   []uint32
	// evals counts key evaluations, so a test can hold Advance to
	// touching only keys with something due.
	evals int64
}

// segEntry is one key's state. Purchases are kept only when a class reads
// count or amount.
type segEntry struct {
	First, Last int64 // first and last purchase applied (valid when Total > 0)
	// At is, while Class is 0 (the key not tracked yet), the earliest
	// tracked record seen; from then on, the key's next possible change
	// (noTime if none). An untracked key has no timer and a tracked one
	// needs no first record, so one field serves both and saves 8 bytes a
	// key. The timer heap holds an entry for the key at or before At.
	At     int64
	Total  uint32
	Tenant uint32
	Class  uint16 // 0: not tracked yet; else class index + 1
	// Look holds the look-back's records, kept only when a class reads
	// count or amount, as words of stride each: the time, then (when
	// amount is read) the amount's float64 bits, then (when count is read
	// too) 1 for a matched refund. Sorted by time then amount, so sums do
	// not depend on arrival order. One slice of words rather than a slice
	// of structs per feature: the common sets (count only) keep 8 bytes a
	// purchase and one slice header a key.
	Look []int64
}

// Kinds of pending record.
const (
	pendTrack uint8 = iota // a tracked interaction that is not a purchase
	pendBuy
	pendRefund
)

type segPending struct {
	At     int64
	Amount float64
	Idx    uint32
	Kind   uint8
}

func (p segPending) when() int64 { return p.At }

type segTimer struct {
	At  int64
	Idx uint32
}

func (t segTimer) when() int64 { return t.At }

// segClass is a class with its bounds in nanoseconds; a nil bound is absent.
type segClass struct {
	minCount, maxCount, maxTotal *int64
	minAmount                    *float64
	recUnder, recOver, tenUnder  int64 // 0: absent
}

func newSegmentSet(def *rules.SegmentSet) *segmentSet {
	s := &segmentSet{def: def, window: int64(def.Window), keys: newKeyTable(), tenantIdx: map[string]uint32{}}
	dur := func(d *rules.Duration) int64 {
		if d == nil {
			return 0
		}
		return int64(*d)
	}
	for _, c := range def.Classes {
		sc := segClass{minCount: c.MinCount, maxCount: c.MaxCount, maxTotal: c.MaxTotal, minAmount: c.MinAmount,
			recUnder: dur(c.RecencyUnder), recOver: dur(c.RecencyOver), tenUnder: dur(c.TenureUnder)}
		s.classes = append(s.classes, sc)
		s.usesCount = s.usesCount || sc.minCount != nil || sc.maxCount != nil
		s.usesAmount = s.usesAmount || sc.minAmount != nil
		s.names = append(s.names, c.Name)
		for _, r := range []int64{sc.recUnder, sc.recOver} {
			if r > 0 {
				s.recency = append(s.recency, r)
			}
		}
		if sc.tenUnder > 0 {
			s.tenure = append(s.tenure, sc.tenUnder)
		}
	}
	switch {
	case s.usesCount && s.usesAmount:
		s.stride = 3
	case s.usesAmount:
		s.stride = 2
	case s.usesCount:
		s.stride = 1
	}
	slices.Sort(s.recency)
	slices.Sort(s.tenure)
	s.recency, s.tenure = slices.Compact(s.recency), slices.Compact(s.tenure)
	return s
}

func (s *segmentSet) observe(ev *ingest.Interaction) {
	e := rules.Event{I: ev}
	buy := s.def.PurchaseMatch.Match(e)
	if !buy && !s.def.TrackMatch.Match(e) {
		return
	}
	s.buf = groupKey(s.def.Fields, e, s.buf)
	idx, added := s.keys.intern(s.buf)
	if added {
		s.entries.add().At = noTime
	}
	en := s.entries.at(idx)
	t := ev.OccurredAt.UnixNano()
	// Once tracked, no record can be earlier than the key's first: that
	// instant is behind the watermark.
	earlier := en.Class == 0 && t < en.At
	if s.def.TenantField < 0 && en.Class == 0 {
		tn := s.tenant(ev.Tenant)
		// At a tie, the smaller tenant wins, so arrival order does not matter.
		if earlier || (t == en.At && ev.Tenant < s.tenants[en.Tenant]) {
			en.Tenant = tn
		}
	}
	if earlier {
		en.At = t
	}
	refund := buy && ev.Type == "refund"
	switch {
	case refund && s.usesAmount:
		s.pending.push(segPending{At: t, Amount: -math.Abs(ev.Amount), Idx: idx, Kind: pendRefund})
	case buy && !refund:
		s.pending.push(segPending{At: t, Amount: ev.Amount, Idx: idx, Kind: pendBuy})
	case earlier && en.Class == 0:
		// Only the key's first tracked record matters before a purchase:
		// later non-purchases change no feature.
		s.pending.push(segPending{At: t, Idx: idx, Kind: pendTrack})
	}
}

func (s *segmentSet) tenant(name string) uint32 {
	if i, ok := s.tenantIdx[name]; ok {
		return i
	}
	i := uint32(len(s.tenants))
	s.tenants = append(s.tenants, strings.Clone(name))
	s.tenantIdx[s.tenants[i]] = i
	return i
}

// next is the set's next instant: a pending record or a key's timer.
func (s *segmentSet) next() int64 { return min(s.pending.top(), s.timers.top()) }

// step decides instant t: applies the records at t, then evaluates every
// key with a record or a timer at t, in key order.
func (s *segmentSet) step(t int64, out *Output) {
	s.touched = s.touched[:0]
	for s.pending.top() == t {
		p := s.pending.pop()
		s.apply(s.entries.at(p.Idx), p)
		s.touched = append(s.touched, p.Idx)
	}
	for s.timers.top() == t {
		tm := s.timers.pop()
		switch en := s.entries.at(tm.Idx); {
		case en.At == t:
			s.touched = append(s.touched, tm.Idx)
		case en.At > t && en.At != noTime:
			// The next change moved later since this timer was set: it
			// was kept rather than pushing a second one; move it on.
			s.timers.push(segTimer{At: en.At, Idx: tm.Idx})
		}
	}
	slices.SortFunc(s.touched, func(a, b uint32) int { return bytes.Compare(s.keys.key(a), s.keys.key(b)) })
	s.touched = slices.Compact(s.touched)
	for _, idx := range s.touched {
		s.evaluate(idx, t, out)
	}
}

func (s *segmentSet) apply(en *segEntry, p segPending) {
	if p.Kind == pendTrack {
		return
	}
	if p.Kind == pendBuy {
		if en.Total == 0 {
			en.First, en.Last = p.At, p.At
		} else {
			en.First, en.Last = min(en.First, p.At), max(en.Last, p.At)
		}
		if en.Total < math.MaxUint32 {
			en.Total++
		}
	}
	if s.stride == 0 || (p.Kind == pendRefund && !s.usesAmount) {
		return
	}
	rec := [3]int64{p.At, int64(math.Float64bits(p.Amount)), 0}
	if p.Kind == pendRefund {
		rec[2] = 1
	}
	// Insert before the first record that sorts after this one (by time,
	// then amount); scanning from the end is short, as records come in
	// time order.
	n := len(en.Look) / s.stride
	i := n
	for i > 0 {
		prev := en.Look[(i-1)*s.stride:]
		if prev[0] < p.At || (prev[0] == p.At && (s.stride == 1 || math.Float64frombits(uint64(prev[1])) <= p.Amount)) {
			break
		}
		i--
	}
	en.Look = slices.Insert(en.Look, i*s.stride, rec[:s.stride]...)
}

// evaluate decides the class of key idx at t, emits a transition when it
// changed, and sets the key's timer at its next possible change.
func (s *segmentSet) evaluate(idx uint32, t int64, out *Output) {
	s.evals++
	en := s.entries.at(idx)
	// A purchase at p counts in (t − window, t] while p > t − window.
	if cut := 0; len(en.Look) > 0 {
		for cut < len(en.Look) && en.Look[cut] <= t-s.window {
			cut += s.stride
		}
		if en.Look = en.Look[cut:]; len(en.Look) == 0 {
			en.Look = nil
		} else if cut > 0 {
			en.Look = slices.Clone(en.Look) // let go of what left
		}
	}
	// The first evaluation consumes the first record's instant; later
	// ones may consume the key's timer.
	wasDue := en.Class == 0 || en.At <= t
	cls := uint16(s.classify(en, t)) + 1
	if cls != en.Class {
		s.emit(idx, en, cls, t, out)
		en.Class = cls
	}
	// A heap entry at or before en.At exists unless en.At is now (just
	// taken) or none: push only when the next change comes earlier than
	// that, so a key holds one heap entry, not one per record.
	nd := s.nextChange(en, t)
	if nd != noTime && (wasDue || nd < en.At) {
		s.timers.push(segTimer{At: nd, Idx: idx})
	}
	en.At = nd
}

// classify is the index of the first class whose conditions hold at t.
func (s *segmentSet) classify(en *segEntry, t int64) int {
	var count int64
	var amount float64
	var ignored int64
	for i := 0; i < len(en.Look); i += s.stride {
		switch s.stride {
		case 1:
			count++
		case 3:
			count += 1 - en.Look[i+2] // a refund is not a purchase
		}
		if s.stride > 1 {
			amount = sat(amount+math.Float64frombits(uint64(en.Look[i+1])), &ignored)
		}
	}
	has := en.Total > 0
	for i, c := range s.classes {
		switch {
		case c.minCount != nil && count < *c.minCount,
			c.maxCount != nil && count > *c.maxCount,
			c.minAmount != nil && amount < *c.minAmount,
			c.maxTotal != nil && int64(en.Total) > *c.maxTotal,
			c.recUnder > 0 && !(has && t-en.Last < c.recUnder),
			c.recOver > 0 && has && t-en.Last < c.recOver,
			c.tenUnder > 0 && !(has && t-en.First < c.tenUnder):
			continue
		}
		return i
	}
	return len(s.classes) - 1 // unreachable: the last class has no condition
}

// nextChange is the first instant after t at which time alone can change
// a feature that a class reads.
func (s *segmentSet) nextChange(en *segEntry, t int64) int64 {
	next := int64(noTime)
	if en.Total > 0 {
		for _, d := range s.recency {
			if x := addSat(en.Last, d); x > t {
				next = min(next, x)
				break
			}
		}
		for _, d := range s.tenure {
			if x := addSat(en.First, d); x > t {
				next = min(next, x)
				break
			}
		}
	}
	if len(en.Look) > 0 {
		next = min(next, addSat(en.Look[0], s.window))
	}
	return next
}

func addSat(a, d int64) int64 {
	if a > noTime-d {
		return noTime
	}
	return a + d
}

func (s *segmentSet) emit(idx uint32, en *segEntry, cls uint16, t int64, out *Output) {
	vals := strings.Split(string(s.keys.key(idx)), keySep)
	key := make(map[string]string, len(s.def.Fields))
	for i, f := range s.def.Fields {
		if i < len(vals) {
			key[f.Label] = vals[i]
		}
	}
	tr := Transition{SegmentSet: s.def.Name, Key: key, To: s.names[cls-1], At: ts(t)}
	if en.Class > 0 {
		tr.From = &s.names[en.Class-1]
	}
	if i := s.def.TenantField; i >= 0 && i < len(vals) {
		tr.Tenant = vals[i]
	} else if int(en.Tenant) < len(s.tenants) {
		tr.Tenant = s.tenants[en.Tenant]
	}
	if i := s.def.CustomerField; i >= 0 && i < len(vals) {
		tr.CustomerID = vals[i]
	}
	out.Transitions = append(out.Transitions, tr)
}

// segSetState is a set's snapshot: keys in index order with their entries,
// the pending records (a heap array stays a heap), and the tenant table.
// Timers are rebuilt from the entries' Due: stale timers are not kept.
type segSetState struct {
	Keys    [][]byte
	Entries []segEntry
	Pending []segPending
	Tenants []string
}

func (s *segmentSet) marshal() ([]byte, error) {
	st := segSetState{Keys: make([][]byte, s.keys.len()), Entries: make([]segEntry, s.keys.len()),
		Pending: s.pending, Tenants: s.tenants}
	for i := range st.Keys {
		st.Keys[i] = s.keys.key(uint32(i))
		st.Entries[i] = *s.entries.at(uint32(i))
	}
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(&st)
	return buf.Bytes(), err
}

func (s *segmentSet) unmarshal(b []byte) error {
	var st segSetState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	if len(st.Keys) != len(st.Entries) {
		return errCorruptState
	}
	*s = *newSegmentSet(s.def)
	for i, k := range st.Keys {
		idx, _ := s.keys.intern(k)
		if idx != uint32(i) {
			return errCorruptState // a key twice
		}
		en := s.entries.add()
		*en = st.Entries[i]
		if en.Class > 0 && en.At != noTime {
			s.timers.push(segTimer{At: en.At, Idx: idx})
		}
	}
	for _, p := range st.Pending {
		if int(p.Idx) >= len(st.Keys) {
			return errCorruptState
		}
	}
	s.pending = st.Pending
	s.pending.init()
	for _, name := range st.Tenants {
		s.tenant(name)
	}
	return nil
}

// minHeap is a binary min-heap by when(); ties come out in no particular
// order, which is fine for its users: everything due at one instant is
// taken together and sorted by key.
type minHeap[T interface{ when() int64 }] []T

func (h minHeap[T]) top() int64 {
	if len(h) == 0 {
		return noTime
	}
	return h[0].when()
}

func (h *minHeap[T]) push(x T) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[i].when() >= s[p].when() {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *minHeap[T]) pop() T {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	s.down(0)
	*h = s
	return top
}

func (h minHeap[T]) down(i int) {
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].when() < h[m].when() {
			m = l
		}
		if r < len(h) && h[r].when() < h[m].when() {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// shrink gives back the capacity of a heap that drained (a burst of
// pending records, a wave of expiring timers): amortised O(1) per pop.
func (h *minHeap[T]) shrink() {
	if cap(*h) > 2*len(*h)+minHeapSpare {
		*h = append(minHeap[T](nil), (*h)...)
	}
}

const minHeapSpare = 1024

func (h minHeap[T]) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// addSegments adds the segment stage when the file has segment sets.
func (e *Engine) addSegments(f *rules.File) error {
	st, err := newSegmentStage(f)
	if err != nil {
		return err
	}
	if st != nil {
		e.comps = append(e.comps, st)
	}
	return nil
}
