package processor

import "time"

// Alert states of SPEC §4.
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// Resend actions of SPEC §4.
const (
	ActionResend = "resend"
	ActionCancel = "cancel"
)

// Alert is one state change of one alert (SPEC §4). The engine leaves
// EmittedAt zero: it has no clock, so whoever writes the record stamps it.
type Alert struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Kind        string            `json:"kind"`
	State       string            `json:"state"`
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Value       float64           `json:"value"`
	Threshold   float64           `json:"threshold"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at"`
	WindowStart *time.Time        `json:"window_start"`
	WindowEnd   *time.Time        `json:"window_end"`
	EmittedAt   time.Time         `json:"emitted_at"`
	// due is a deadline alert's due time, so that annotations rendered
	// again (with customer labels) still see {{ .Due }}.
	due time.Time
}

// ID is the deterministic identity of this state change: consumers dedup
// alert records by it, and it is the Idempotency-Key of webhooks.
func (a *Alert) ID() string {
	return a.Fingerprint + ":" + a.State + ":" + a.StartsAt.UTC().Format(time.RFC3339Nano)
}

// Resend is a resend trigger or its cancellation (SPEC §3.2, §4). CreatedAt
// is stamped by the writer, like Alert.EmittedAt.
type Resend struct {
	TriggerID  string    `json:"trigger_id"`
	Action     string    `json:"action"`
	Policy     string    `json:"policy"`
	MessageID  string    `json:"message_id"`
	CustomerID string    `json:"customer_id"`
	Tenant     string    `json:"tenant"`
	Channel    string    `json:"channel"`
	Attempt    int       `json:"attempt"`
	Reason     string    `json:"reason"`
	NotBefore  time.Time `json:"not_before"`
	CreatedAt  time.Time `json:"created_at"`
	// FailedAt is the failure time the trigger answers (SPEC §3.2); the
	// frequency cap counts by it. Not part of the SPEC record.
	FailedAt time.Time `json:"-"`
}

// ID is the deterministic identity of this record (trigger_id + action).
func (r *Resend) ID() string { return r.TriggerID + ":" + r.Action }

// Aggregate is a row of a per-window aggregate (revenue, activity, delivery
// counts...) computed by an aggregating Component for the analytics sink.
// Table names the destination table; ID is deterministic so a row written
// twice collapses to one.
type Aggregate interface {
	Table() string
	ID() string
}

// Output collects what the engine produced since the driver last drained it.
// The engine only appends; the driver reads and resets it.
type Output struct {
	Alerts     []Alert
	Resends    []Resend
	Aggregates []Aggregate
	// Transitions are segment transitions (SPEC §3.3), in event-time order.
	Transitions []Transition
	// Digests are the scheduled reports of SPEC §3.4.
	Digests []Digest
	// Saturated counts sums that components clamped at ±math.MaxFloat64
	// (or an aggregate's own bound) instead of overflowing; the engine
	// moves it into Stats.Saturated after every call.
	Saturated int64
}

// Reset empties o, keeping its capacity.
func (o *Output) Reset() {
	clear(o.Alerts)
	clear(o.Resends)
	clear(o.Aggregates)
	clear(o.Digests)
	o.Alerts, o.Resends, o.Aggregates = o.Alerts[:0], o.Resends[:0], o.Aggregates[:0]
	clear(o.Transitions)
	o.Transitions = o.Transitions[:0]
	o.Digests = o.Digests[:0]
	o.Saturated = 0
}

// Len is the number of records in o.
func (o *Output) Len() int {
	return len(o.Alerts) + len(o.Resends) + len(o.Aggregates) + len(o.Transitions) + len(o.Digests)
}
