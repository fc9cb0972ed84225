package followup

import (
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

// Component runs a Tracker inside the engine, after the resend policies:
// it sees the triggers the engine emitted in the same call (they are in
// out.Resends) and every receipt, and emits outcome Events as aggregate
// rows for the analytics sink. Its state is snapshotted with the engine's,
// so a restarted pipeline follows the same triggers.
type Component struct {
	t *Tracker
}

var _ processor.Component = (*Component)(nil)

// NewComponent wraps t; add it to processor.Config.Extra.
func NewComponent(t *Tracker) *Component { return &Component{t: t} }

// Name implements processor.Component.
func (c *Component) Name() string { return "followup" }

// track picks up the triggers emitted so far in this call. Track is
// idempotent per trigger, so records the driver has not drained yet may be
// seen twice.
func (c *Component) track(out *processor.Output) {
	for i := range out.Resends {
		c.emit(out, c.t.Track(&out.Resends[i]))
	}
}

func (c *Component) emit(out *processor.Output, evs []Event) {
	for _, e := range evs {
		out.Aggregates = append(out.Aggregates, e)
	}
}

// Interaction implements processor.Component.
func (c *Component) Interaction(_ *ingest.Interaction, out *processor.Output) { c.track(out) }

// Receipt implements processor.Component.
func (c *Component) Receipt(r *ingest.Receipt, out *processor.Output) {
	c.track(out)
	c.emit(out, c.t.Observe(r))
}

// Advance implements processor.Component.
func (c *Component) Advance(wm time.Time, out *processor.Output) {
	c.track(out)
	c.emit(out, c.t.Advance(wm))
}

// MarshalState implements processor.Component.
func (c *Component) MarshalState() ([]byte, error) { return c.t.MarshalState() }

// UnmarshalState implements processor.Component.
func (c *Component) UnmarshalState(b []byte) error { return c.t.UnmarshalState(b) }
