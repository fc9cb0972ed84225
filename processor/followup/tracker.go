// Package followup answers what the business asks after a resend: did the
// resent attempt get through? A Tracker follows every resend trigger
// (SPEC §3.2, §4) to the receipts of the attempt it asked for and reports,
// once each, how far that attempt went: sent, delivered, opened, clicked,
// failed, or expired without a delivery (or cancelled before it was sent).
// The outcomes are counted as Prometheus metrics by channel, policy and
// reason, so the recovery rate of a policy is
//
//	sum by (policy) (rate(crmpulse_resend_outcomes_total{outcome="delivered"}[1d]))
//	  / sum by (policy) (rate(crmpulse_resend_outcomes_total{outcome="triggered"}[1d]))
//
// and are returned as Events, rows the analytics sink can store.
//
// Like the engine, a Tracker is pure: time comes from records and the
// watermark (Advance), never from a clock, so replays give the same
// outcomes. It is not safe for concurrent use; a pipeline runs one per
// partition, next to the engine that emits the triggers.
package followup

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

// DefaultWindow is how long, in event time after a trigger's not_before,
// the resent attempt has to be delivered before it counts as expired.
const DefaultWindow = 72 * time.Hour

// Outcome is how far a resent attempt went.
type Outcome string

// Outcomes, each reported at most once per trigger. The positive ones form a
// funnel: a click implies an open, an open a delivery, a delivery a send, so
// that "delivered" counts every recovered message whatever receipts the
// provider reports.
const (
	OutcomeTriggered Outcome = "triggered" // the trigger was emitted
	OutcomeCancelled Outcome = "cancelled" // cancelled: the earlier attempt got through after all
	OutcomeSent      Outcome = "sent"
	OutcomeDelivered Outcome = "delivered" // recovered
	OutcomeOpened    Outcome = "opened"
	OutcomeClicked   Outcome = "clicked"
	OutcomeFailed    Outcome = "failed"  // the resent attempt bounced, failed or was rejected
	OutcomeExpired   Outcome = "expired" // no delivery within Window of not_before
)

// Outcomes lists every Outcome, for metrics that pre-create their series.
var Outcomes = []Outcome{OutcomeTriggered, OutcomeCancelled, OutcomeSent, OutcomeDelivered, OutcomeOpened,
	OutcomeClicked, OutcomeFailed, OutcomeExpired}

// Table is the analytics table that Events go to.
const Table = "resend_outcomes"

// Event is one outcome of one trigger. It is a processor.Aggregate: ID is
// deterministic, so a replayed event collapses with the original.
type Event struct {
	TriggerID  string    `json:"trigger_id"`
	Policy     string    `json:"policy"`
	MessageID  string    `json:"message_id"`
	CustomerID string    `json:"customer_id"`
	Tenant     string    `json:"tenant"`
	Channel    string    `json:"channel"` // the channel of the resent attempt
	Attempt    int       `json:"attempt"` // the resent attempt
	Reason     string    `json:"reason"`  // why it was resent
	Outcome    Outcome   `json:"outcome"`
	NotBefore  time.Time `json:"not_before"`
	// At is the event time of the outcome: the receipt's occurred_at, the
	// trigger's not_before for triggered and cancelled, the deadline for
	// expired.
	At time.Time `json:"at"`
	// Latency is At − NotBefore, never negative: how long after the resend
	// was due the outcome came.
	Latency time.Duration `json:"latency_ns"`
}

var _ processor.Aggregate = Event{}

// Table names the destination table of the analytics sink.
func (e Event) Table() string { return Table }

// ID is the deterministic identity of the row: trigger and outcome.
func (e Event) ID() string { return e.TriggerID + ":" + string(e.Outcome) }

// Config tunes a Tracker.
type Config struct {
	// Window is how long after not_before a resent attempt may still be
	// delivered; past it (by the watermark) the trigger is reported
	// expired, unless it was delivered, and forgotten. Default 72h.
	Window time.Duration
}

// Tracker follows resend triggers to the receipts of the attempts they
// asked for.
type Tracker struct {
	window  time.Duration
	metrics *metrics
	byKey   map[attemptKey]*tracked
	due     deadlines // by deadline, for Advance
}

// attemptKey names one attempt of one message; trigger ids are derived
// from the same pair (SPEC §3.2).
type attemptKey struct {
	MessageID string
	Attempt   int
}

// tracked is one trigger being followed.
type tracked struct {
	Trigger  processor.Resend
	Reached  uint16 // bit per Outcome reported
	Deadline time.Time
}

func (t *tracked) has(o Outcome) bool { return t.Reached&outcomeBit(o) != 0 }

func outcomeBit(o Outcome) uint16 {
	for i, x := range Outcomes {
		if x == o {
			return 1 << i
		}
	}
	return 0
}

// New returns a Tracker. Its metrics are registered on reg if it is not nil;
// Trackers of several partitions may share reg and its series.
func New(cfg Config, reg prometheus.Registerer) (*Tracker, error) {
	if cfg.Window < 0 {
		return nil, fmt.Errorf("followup: window: must not be negative, got %s", cfg.Window)
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Tracker{window: cfg.Window, metrics: m, byKey: map[attemptKey]*tracked{}}, nil
}

// Track starts following a resend trigger (reporting triggered) or ends its
// story on a cancel (reporting cancelled, unless the attempt was already
// delivered; later receipts of a cancelled attempt are ignored). A trigger
// is remembered until its deadline passes, so one seen again, as after a
// replay, reports nothing.
func (t *Tracker) Track(r *processor.Resend) []Event {
	key := attemptKey{r.MessageID, r.Attempt}
	cur := t.byKey[key]
	switch r.Action {
	case processor.ActionResend:
		if cur != nil {
			return nil
		}
		cur = &tracked{Trigger: *r, Deadline: r.NotBefore.Add(t.window)}
		cur.Trigger.CreatedAt = time.Time{} // wall-clock stamp, not ours to keep
		t.byKey[key] = cur
		heap.Push(&t.due, dueItem{key: key, at: cur.Deadline})
		t.metrics.tracked.Inc()
		return t.report(nil, cur, OutcomeTriggered, r.NotBefore)
	case processor.ActionCancel:
		if cur == nil || cur.Trigger.TriggerID != r.TriggerID {
			return nil
		}
		if cur.has(OutcomeDelivered) {
			return nil // the resend went out and got through before the cancel
		}
		return t.report(nil, cur, OutcomeCancelled, r.NotBefore)
	}
	return nil
}

// Observe matches a receipt to the trigger of its attempt, if any, and
// reports the outcomes it reaches for the first time.
func (t *Tracker) Observe(rc *ingest.Receipt) []Event {
	attempt := max(rc.Attempt, 1)
	key := attemptKey{rc.MessageID, attempt}
	cur := t.byKey[key]
	if cur == nil || cur.has(OutcomeCancelled) {
		return nil
	}
	var out []Event
	at := rc.OccurredAt
	switch rc.Status {
	case "sent":
		out = t.report(out, cur, OutcomeSent, at)
	case "delivered", "complained", "unsubscribed": // the last two need a delivered message
		out = t.reportUpTo(out, cur, OutcomeDelivered, at)
	case "opened":
		out = t.reportUpTo(out, cur, OutcomeOpened, at)
	case "clicked":
		out = t.reportUpTo(out, cur, OutcomeClicked, at)
	case "soft_bounce", "hard_bounce", "failed", "rejected":
		if !cur.has(OutcomeDelivered) {
			out = t.report(out, cur, OutcomeFailed, at)
		}
	}
	return out
}

// funnel is the order of the positive outcomes.
var funnel = []Outcome{OutcomeSent, OutcomeDelivered, OutcomeOpened, OutcomeClicked}

// reportUpTo reports every funnel stage up to and including o.
func (t *Tracker) reportUpTo(out []Event, cur *tracked, o Outcome, at time.Time) []Event {
	for _, f := range funnel {
		out = t.report(out, cur, f, at)
		if f == o {
			break
		}
	}
	return out
}

// Advance moves the watermark to wm: triggers whose deadline it passed are
// reported expired, unless delivered, and forgotten.
func (t *Tracker) Advance(wm time.Time) []Event {
	var out []Event
	for len(t.due) > 0 && !t.due[0].at.After(wm) {
		it := heap.Pop(&t.due).(dueItem)
		cur := t.byKey[it.key]
		if cur == nil || !cur.Deadline.Equal(it.at) {
			continue // a stale item
		}
		if !cur.has(OutcomeDelivered) && !cur.has(OutcomeCancelled) {
			out = t.report(out, cur, OutcomeExpired, cur.Deadline)
		}
		delete(t.byKey, it.key)
		t.metrics.tracked.Dec()
	}
	return out
}

// Len is the number of triggers being followed.
func (t *Tracker) Len() int { return len(t.byKey) }

// report appends outcome o of cur unless it was reported before.
func (t *Tracker) report(out []Event, cur *tracked, o Outcome, at time.Time) []Event {
	if cur.has(o) {
		return out
	}
	cur.Reached |= outcomeBit(o)
	r := &cur.Trigger
	e := Event{
		TriggerID: r.TriggerID, Policy: r.Policy, MessageID: r.MessageID, CustomerID: r.CustomerID,
		Tenant: r.Tenant, Channel: r.Channel, Attempt: r.Attempt, Reason: r.Reason,
		Outcome: o, NotBefore: r.NotBefore.UTC(), At: at.UTC(), Latency: max(0, at.Sub(r.NotBefore)),
	}
	t.metrics.outcomes.WithLabelValues(e.Channel, e.Policy, e.Reason, string(o)).Inc()
	if o == OutcomeDelivered {
		t.metrics.recovery.WithLabelValues(e.Channel, e.Policy).Observe(e.Latency.Seconds())
	}
	return append(out, e)
}

// MarshalState snapshots the triggers being followed.
func (t *Tracker) MarshalState() ([]byte, error) {
	all := make([]*tracked, 0, len(t.byKey))
	for _, cur := range t.byKey {
		all = append(all, cur)
	}
	b, err := json.Marshal(all)
	if err != nil {
		return nil, fmt.Errorf("encoding follow-up state: %w", err)
	}
	return b, nil
}

// UnmarshalState replaces what t follows with a snapshot of MarshalState.
func (t *Tracker) UnmarshalState(data []byte) error {
	var all []*tracked
	if err := json.Unmarshal(data, &all); err != nil {
		return fmt.Errorf("decoding follow-up state: %w", err)
	}
	t.metrics.tracked.Sub(float64(len(t.byKey)))
	t.byKey = make(map[attemptKey]*tracked, len(all))
	t.due = t.due[:0]
	for _, cur := range all {
		key := attemptKey{cur.Trigger.MessageID, cur.Trigger.Attempt}
		t.byKey[key] = cur
		t.due = append(t.due, dueItem{key: key, at: cur.Deadline})
	}
	heap.Init(&t.due)
	t.metrics.tracked.Add(float64(len(t.byKey)))
	return nil
}

type dueItem struct {
	key attemptKey
	at  time.Time
}

// deadlines is a min-heap of dueItems by time.
type deadlines []dueItem

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].at.Before(d[j].at) }
func (d deadlines) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *deadlines) Push(x any)        { *d = append(*d, x.(dueItem)) }
func (d *deadlines) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}
