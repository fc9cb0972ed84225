// Package processor is the event-time engine of CRM Pulse (SPEC §2–3): it
// takes decoded records and watermarks and produces alerts, resend triggers
// and aggregate rows. It is pure: no clock, no I/O, no goroutines, so replay,
// streaming and tests share it and its output is a function of its input.
//
// One Engine serves one input partition (or the whole input in replay). The
// driver feeds records in order, advances the watermark, and drains Output.
package processor

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// ErrDuplicate reports a record whose id was already accepted; it is counted
// once and otherwise ignored.
var ErrDuplicate = errors.New("duplicate record id")

// Config is what an Engine runs.
type Config struct {
	// Rules are the detectors and resend policies.
	Rules *rules.File
	// Extra components run after the rules' detectors, e.g. the
	// aggregates for the analytics sink.
	Extra []Component
	// ProfilesFromRecords makes the engine read customer.* from the
	// Profile that records already carry instead of looking it up in its
	// own store: the group stage, fed by partition engines that hold the
	// profiles (SPEC §1.3: what a partition engine hands on carries the
	// customer.* values it read).
	ProfilesFromRecords bool
	// AttachProfiles makes the engine attach the current profile to every
	// record even when its own rules do not read customer.* from records:
	// a partition engine whose accepted records feed group-level rules
	// that do. Otherwise the per-record lookup is skipped when nothing
	// needs it (rules.File.ReadsRecordProfiles).
	AttachProfiles bool
	// FutureSkew, when positive, refuses a record whose occurred_at is
	// more than this far ahead of the watermark (once there is one) with
	// reason future, so that one record from a wrong clock cannot move the
	// watermark and make every later valid record late. Zero disables the
	// guard; the drivers default to DefaultFutureSkew.
	FutureSkew time.Duration
}

// DefaultFutureSkew is the future_skew of `crmpulse run` and `crmpulse
// replay` unless configured. A week is far beyond any clock error or
// time-zone mistake (at most a day) and beyond the reordering a partition
// sees, yet refuses the records dated years ahead that a wrong clock or a
// typo writes. It is also the longest gap in a partition's event time that
// the guard lets through: after a silence longer than FutureSkew plus the
// allowed lateness, the next records are refused (docs/limits.md).
const DefaultFutureSkew = 7 * 24 * time.Hour

// Stats are counters an engine keeps about its input.
type Stats struct {
	Interactions int64
	Receipts     int64
	Duplicates   int64
	Late         int64
	// Saturated counts sums that would have overflowed float64 and were
	// held at ±math.MaxFloat64 instead (docs/limits.md).
	Saturated int64
	// Customers counts profile versions read (tombstones not included).
	Customers int64
	// Ignored counts what a deadline or calendar rule could not read: a
	// start whose due is missing or unparsable, a profile date that does
	// not parse.
	Ignored int64
	Future  int64
}

// ignoredCounter is implemented by components that ignore some inputs
// they cannot read (Stats.Ignored).
type ignoredCounter interface{ Ignored() int64 }

// Engine runs detectors and resend policies over one ordered input.
type Engine struct {
	rules    *rules.File
	lateness time.Duration
	skew     time.Duration
	comps    []Component
	dedupI   *dedup
	dedupR   *dedup
	wm       time.Time
	max      time.Time
	out      Output
	stats    Stats
	// profiles are the customer profiles of SPEC §1.3; fromRecords is
	// Config.ProfilesFromRecords.
	profiles    *profileStore
	fromRecords bool
	// attach says whether records get their profile attached (Config.AttachProfiles).
	attach bool
	// custRules are the rules with customer_labels, by name; custLabels
	// holds, by the fingerprint the detector gave a firing alert, the
	// profile labels added to it, so that its resolved record carries
	// exactly the same labels.
	custRules  map[string]*rules.Rule
	custLabels map[string]map[string]string
	// names are the components' names, fixed at New so Busy can read them
	// from another goroutine; busy is the component call in progress
	// (index+1)<<2 | call, 0 between calls. One atomic store per component
	// call is what it costs (BenchmarkEngineRecords).
	names []string
	busy  atomic.Int32
	// digests are the scheduled reports (SPEC §3.4), run after every
	// component on what they emitted (digest.go).
	digests []*digest
}

// The calls Busy reports.
const (
	callInteraction = 1 + iota
	callReceipt
	callAdvance
)

// detectorFactories builds a detector for each kind; adding a kind is one
// new file and one line here.
var detectorFactories = map[string]func(r *rules.Rule, f *rules.File) Component{
	rules.KindInactivity: newInactivity,
	rules.KindDrop:       newDrop,
	rules.KindThreshold:  newThreshold,
	rules.KindRatio:      newRatio,
	rules.KindAbsence:    newAbsence,
	rules.KindEvent:      newEvent,
	rules.KindDeadline:   newDeadline,
	rules.KindCalendar:   newCalendar,
}

// New builds an engine for cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.Rules == nil {
		return nil, errors.New("engine config: no rules")
	}
	if cfg.FutureSkew < 0 {
		return nil, fmt.Errorf("engine config: future skew %s is negative (0 disables the guard)", cfg.FutureSkew)
	}
	lateness := cfg.Rules.Defaults.AllowedLateness.D()
	e := &Engine{
		rules:    cfg.Rules,
		lateness: lateness,
		skew:     cfg.FutureSkew,
		dedupI:   newDedup(lateness),
		dedupR:   newDedup(lateness),

		profiles:    newProfileStore(readHorizon(cfg.Rules)),
		fromRecords: cfg.ProfilesFromRecords,
		attach:      !cfg.ProfilesFromRecords && (cfg.AttachProfiles || cfg.Rules.ReadsRecordProfiles()),
		custRules:   map[string]*rules.Rule{},
		custLabels:  map[string]map[string]string{},
	}
	for _, r := range cfg.Rules.Rules {
		if r.Source == rules.SourceSegments {
			continue // run by the segment stage, which feeds them transitions
		}
		mk, ok := detectorFactories[r.Kind]
		if !ok {
			return nil, fmt.Errorf("rule %q: no detector for kind %q", r.Name, r.Kind)
		}
		e.comps = append(e.comps, mk(r, cfg.Rules))
	}
	if len(cfg.Rules.Resend) > 0 {
		e.comps = append(e.comps, newResender(cfg.Rules))
	}
	if err := e.addSegments(cfg.Rules); err != nil {
		return nil, err
	}
	e.comps = append(e.comps, cfg.Extra...)
	for _, r := range cfg.Rules.Rules {
		if len(r.CustomerFields) > 0 {
			e.custRules[r.Name] = r
		}
	}
	for _, c := range e.comps {
		e.names = append(e.names, c.Name())
		if pr, ok := c.(profileReader); ok {
			pr.useProfiles(e.profiles)
		}
	}
	e.buildDigests()
	return e, nil
}

// Rules returns the rules the engine runs.
func (e *Engine) Rules() *rules.File { return e.rules }

// Watermark is the engine's current event-time watermark.
func (e *Engine) Watermark() time.Time { return e.wm }

// MaxEventTime is the highest occurred_at accepted so far.
func (e *Engine) MaxEventTime() time.Time { return e.max }

// AllowedLateness is the rules file's allowed lateness.
func (e *Engine) AllowedLateness() time.Duration { return e.lateness }

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	st := e.stats
	for _, c := range e.comps {
		if ic, ok := c.(ignoredCounter); ok {
			st.Ignored += ic.Ignored()
		}
	}
	return st
}

// Output is what the engine produced since the driver last reset it.
func (e *Engine) Output() *Output { return &e.out }

// DedupKeys is the number of record ids remembered for deduplication.
func (e *Engine) DedupKeys() int { return e.dedupI.len() + e.dedupR.len() }

func (e *Engine) late(at time.Time) error {
	if !at.Before(e.wm) {
		return nil
	}
	e.stats.Late++
	return &ingest.RejectError{
		Reason: ingest.ReasonLate,
		Field:  "occurred_at",
		Detail: fmt.Sprintf("%s is before the watermark %s (allowed lateness %s)",
			at.UTC().Format(time.RFC3339Nano), e.wm.UTC().Format(time.RFC3339Nano), e.lateness),
	}
}

// future refuses at when the guard is on, there is a watermark, and at is
// more than the skew ahead of it. A refused record changes nothing, so the
// watermark stays where the valid records put it.
func (e *Engine) future(at time.Time) error {
	if e.skew <= 0 || e.wm.IsZero() || !at.After(e.wm.Add(e.skew)) {
		return nil
	}
	e.stats.Future++
	return &ingest.RejectError{
		Reason: ingest.ReasonFuture,
		Field:  "occurred_at",
		Detail: fmt.Sprintf("%s is more than %s (future_skew) ahead of the watermark %s",
			at.UTC().Format(time.RFC3339Nano), e.skew, e.wm.UTC().Format(time.RFC3339Nano)),
	}
}

// FutureSkew is the future-skew guard's bound; 0 when it is off.
func (e *Engine) FutureSkew() time.Duration { return e.skew }

// Interaction feeds one decoded interaction. It returns a *ingest.RejectError
// with reason late when the record is behind the watermark, future when it is
// more than the future skew ahead of it, ErrDuplicate for a repeated
// event_id, nil when accepted.
func (e *Engine) Interaction(ev *ingest.Interaction) error {
	if err := e.late(ev.OccurredAt); err != nil {
		return err
	}
	if err := e.future(ev.OccurredAt); err != nil {
		return err
	}
	if e.dedupI.seen(ev.EventID, ev.OccurredAt) {
		e.stats.Duplicates++
		return ErrDuplicate
	}
	e.stats.Interactions++
	if ev.OccurredAt.After(e.max) {
		e.max = ev.OccurredAt
	}
	e.attachProfile(&ev.Profile, &ev.ProfileFrom)
	n := len(e.out.Alerts)
	for i, c := range e.comps {
		e.busy.Store(int32(i+1)<<2 | callInteraction)
		c.Interaction(ev, &e.out)
	}
	e.busy.Store(0)
	e.countSaturated()
	e.labelAlerts(n)
	e.digestRecord(rules.Event{I: ev}, ev.OccurredAt, rules.SourceInteractions, n)
	return nil
}

// Receipt feeds one decoded delivery receipt, like Interaction.
func (e *Engine) Receipt(r *ingest.Receipt) error {
	if err := e.late(r.OccurredAt); err != nil {
		return err
	}
	if err := e.future(r.OccurredAt); err != nil {
		return err
	}
	if e.dedupR.seen(r.ReceiptID, r.OccurredAt) {
		e.stats.Duplicates++
		return ErrDuplicate
	}
	e.stats.Receipts++
	if r.OccurredAt.After(e.max) {
		e.max = r.OccurredAt
	}
	e.attachProfile(&r.Profile, &r.ProfileFrom)
	n := len(e.out.Alerts)
	for i, c := range e.comps {
		e.busy.Store(int32(i+1)<<2 | callReceipt)
		c.Receipt(r, &e.out)
	}
	e.busy.Store(0)
	e.countSaturated()
	e.labelAlerts(n)
	e.digestRecord(rules.Event{R: r}, r.OccurredAt, rules.SourceReceipts, n)
	return nil
}

// Advance moves the watermark to wm, firing timers and closing windows in
// event-time order. A wm at or before the current watermark does nothing.
func (e *Engine) Advance(wm time.Time) {
	if !wm.After(e.wm) {
		return
	}
	// A digest's period end on the way is a stop (digest.go).
	for at, ok := e.digestStop(wm); ok; at, ok = e.digestStop(wm) {
		e.Advance(at)
	}
	e.wm = wm
	n := len(e.out.Alerts)
	for i, c := range e.comps {
		e.busy.Store(int32(i+1)<<2 | callAdvance)
		c.Advance(wm, &e.out)
	}
	e.busy.Store(0)
	e.countSaturated()
	e.labelAlerts(n)
	e.digestAdvance(wm, n)
	e.profiles.advance(wm)
	e.dedupI.evict(wm)
	e.dedupR.evict(wm)
}

// Busy names the component the engine is running now (the rule name for a
// detector) and the call it is in: interaction, receipt or advance. ok is
// false between component calls. Unlike the other methods it may be called
// from any goroutine, so that a watchdog can say which rule a stuck
// partition is in.
func (e *Engine) Busy() (component, call string, ok bool) {
	v := e.busy.Load()
	i := int(v>>2) - 1
	if i < 0 || i >= len(e.names) {
		return "", "", false
	}
	return e.names[i], [...]string{"", "interaction", "receipt", "advance"}[v&3], true
}

// AdvanceFromEvents applies SPEC §2's rule for a single input: the
// watermark is the highest occurred_at seen minus the allowed lateness.
func (e *Engine) AdvanceFromEvents() {
	if e.max.IsZero() {
		return
	}
	e.Advance(e.max.Add(-e.lateness))
}

// snapshotVersion guards against restoring a snapshot written by an
// incompatible build.
const snapshotVersion = 1

type engineState struct {
	Version    int
	RulesHash  string
	Watermark  time.Time
	Max        time.Time
	Stats      Stats
	DedupI     dedupState
	DedupR     dedupState
	Components map[string][]byte
	// Profiles and CustLabels are absent from snapshots of builds without
	// customer profiles; those restore to an empty store.
	Profiles   []byte
	CustLabels map[string]map[string]string
	// Digests are the digests' states by name (absent before digests).
	Digests map[string][]byte
}

// Snapshot serialises the engine's whole state. Restoring it into an engine
// built from the same rules continues exactly where this one was.
func (e *Engine) Snapshot() ([]byte, error) {
	st := engineState{
		Version: snapshotVersion, RulesHash: e.rules.Hash,
		Watermark: e.wm, Max: e.max, Stats: e.stats,
		DedupI: e.dedupI.state(), DedupR: e.dedupR.state(),
		Components: make(map[string][]byte, len(e.comps)),
		Profiles:   e.profiles.state(), CustLabels: e.custLabels,
	}
	for _, c := range e.comps {
		b, err := c.MarshalState()
		if err != nil {
			return nil, fmt.Errorf("snapshotting %s: %w", c.Name(), err)
		}
		st.Components[c.Name()] = b
	}
	for _, g := range e.digests {
		b, err := g.MarshalState()
		if err != nil {
			return nil, fmt.Errorf("snapshotting %s: %w", g.Name(), err)
		}
		if st.Digests == nil {
			st.Digests = map[string][]byte{}
		}
		st.Digests[g.Name()] = b
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return nil, fmt.Errorf("encoding engine snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore loads a snapshot taken by Snapshot. Components whose name is not
// in the snapshot (a rule added since) start empty; state of rules that no
// longer exist is dropped.
func (e *Engine) Restore(data []byte) error {
	var st engineState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("decoding engine snapshot: %w", err)
	}
	if st.Version != snapshotVersion {
		return fmt.Errorf("engine snapshot version %d, this build reads %d", st.Version, snapshotVersion)
	}
	e.wm, e.max, e.stats = st.Watermark, st.Max, st.Stats
	e.dedupI.restore(st.DedupI)
	e.dedupR.restore(st.DedupR)
	if err := e.profiles.restore(st.Profiles); err != nil {
		return fmt.Errorf("restoring customer profiles: %w", err)
	}
	e.profiles.advance(e.wm)
	e.custLabels = st.CustLabels
	if e.custLabels == nil {
		e.custLabels = map[string]map[string]string{}
	}
	for _, c := range e.comps {
		b, ok := st.Components[c.Name()]
		if !ok {
			continue
		}
		if err := c.UnmarshalState(b); err != nil {
			return fmt.Errorf("restoring %s: %w", c.Name(), err)
		}
	}
	for _, g := range e.digests {
		if b, ok := st.Digests[g.Name()]; ok {
			if err := g.UnmarshalState(b); err != nil {
				return fmt.Errorf("restoring %s: %w", g.Name(), err)
			}
		}
	}
	return nil
}
