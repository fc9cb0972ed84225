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
}

// Stats are counters an engine keeps about its input.
type Stats struct {
	Interactions int64
	Receipts     int64
	Duplicates   int64
	Late         int64
	// Saturated counts sums that would have overflowed float64 and were
	// held at ±math.MaxFloat64 instead (docs/limits.md).
	Saturated int64
}

// Engine runs detectors and resend policies over one ordered input.
type Engine struct {
	rules    *rules.File
	lateness time.Duration
	comps    []Component
	dedupI   *dedup
	dedupR   *dedup
	wm       time.Time
	max      time.Time
	out      Output
	stats    Stats
}

// detectorFactories builds a detector for each kind; adding a kind is one
// new file and one line here.
var detectorFactories = map[string]func(r *rules.Rule, f *rules.File) Component{
	rules.KindInactivity: newInactivity,
	rules.KindDrop:       newDrop,
	rules.KindThreshold:  newThreshold,
	rules.KindRatio:      newRatio,
	rules.KindAbsence:    newAbsence,
}

// New builds an engine for cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.Rules == nil {
		return nil, errors.New("engine config: no rules")
	}
	lateness := cfg.Rules.Defaults.AllowedLateness.D()
	e := &Engine{
		rules:    cfg.Rules,
		lateness: lateness,
		dedupI:   newDedup(lateness),
		dedupR:   newDedup(lateness),
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
func (e *Engine) Stats() Stats { return e.stats }

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

// Interaction feeds one decoded interaction. It returns a *ingest.RejectError
// with reason late when the record is behind the watermark, ErrDuplicate for
// a repeated event_id, nil when accepted.
func (e *Engine) Interaction(ev *ingest.Interaction) error {
	if err := e.late(ev.OccurredAt); err != nil {
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
	for _, c := range e.comps {
		c.Interaction(ev, &e.out)
	}
	e.countSaturated()
	return nil
}

// Receipt feeds one decoded delivery receipt, like Interaction.
func (e *Engine) Receipt(r *ingest.Receipt) error {
	if err := e.late(r.OccurredAt); err != nil {
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
	for _, c := range e.comps {
		c.Receipt(r, &e.out)
	}
	e.countSaturated()
	return nil
}

// Advance moves the watermark to wm, firing timers and closing windows in
// event-time order. A wm at or before the current watermark does nothing.
func (e *Engine) Advance(wm time.Time) {
	if !wm.After(e.wm) {
		return
	}
	e.wm = wm
	for _, c := range e.comps {
		c.Advance(wm, &e.out)
	}
	e.countSaturated()
	e.dedupI.evict(wm)
	e.dedupR.evict(wm)
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
}

// Snapshot serialises the engine's whole state. Restoring it into an engine
// built from the same rules continues exactly where this one was.
func (e *Engine) Snapshot() ([]byte, error) {
	st := engineState{
		Version: snapshotVersion, RulesHash: e.rules.Hash,
		Watermark: e.wm, Max: e.max, Stats: e.stats,
		DedupI: e.dedupI.state(), DedupR: e.dedupR.state(),
		Components: make(map[string][]byte, len(e.comps)),
	}
	for _, c := range e.comps {
		b, err := c.MarshalState()
		if err != nil {
			return nil, fmt.Errorf("snapshotting %s: %w", c.Name(), err)
		}
		st.Components[c.Name()] = b
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
	for _, c := range e.comps {
		b, ok := st.Components[c.Name()]
		if !ok {
			continue
		}
		if err := c.UnmarshalState(b); err != nil {
			return fmt.Errorf("restoring %s: %w", c.Name(), err)
		}
	}
	return nil
}
