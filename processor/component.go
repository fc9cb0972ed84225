package processor

import (
	"time"

	"github.com/crmpulse/crmpulse/ingest"
)

// Component is one stateful part of the engine: a detector, the resend
// policies, or an aggregator. The engine hands every accepted record to every
// component in order, then advances their watermark. A component is pure:
// no clock, no I/O, no goroutines; time comes only from records and
// watermarks, so the same input always yields the same output.
type Component interface {
	// Name identifies the component's state in snapshots; it is stable
	// across restarts (the rule name for detectors).
	Name() string
	// Interaction sees an accepted, deduplicated interaction whose
	// occurred_at is not before the current watermark.
	Interaction(ev *ingest.Interaction, out *Output)
	// Receipt sees an accepted, deduplicated delivery receipt.
	Receipt(r *ingest.Receipt, out *Output)
	// Advance moves the component's watermark forward to wm and fires what
	// became due, in event-time order. wm never goes backwards.
	Advance(wm time.Time, out *Output)
	// MarshalState and UnmarshalState snapshot and restore the component's
	// state; a restored component continues exactly where the original was.
	MarshalState() ([]byte, error)
	UnmarshalState(data []byte) error
}

// keyCounter is implemented by components that can say how many keys
// (customers, groups, messages, open windows) their state holds; the
// pipeline exports the sum as a gauge.
type keyCounter interface{ StateKeys() int }

// StateKeys is the number of keys the engine's components hold, plus the
// record ids remembered for deduplication.
func (e *Engine) StateKeys() int {
	n := e.DedupKeys() + e.profiles.len() + len(e.custLabels)
	for _, c := range e.comps {
		if k, ok := c.(keyCounter); ok {
			n += k.StateKeys()
		}
	}
	for _, g := range e.digests {
		n += g.StateKeys()
	}
	return n
}
