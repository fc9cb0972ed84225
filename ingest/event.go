// Package ingest owns the input side of CRM Pulse: the two record kinds of
// SPEC §1, their decoding and validation, and the reasons a record is refused.
package ingest

import "time"

// DefaultTenant and UnknownDim are the values SPEC §1.1 gives to optional
// string fields that an upstream system left out.
const (
	DefaultTenant = "default"
	UnknownDim    = "unknown"
)

// Interaction is one thing a customer did (topic crm.interactions).
// Optional fields hold their SPEC defaults after decoding.
type Interaction struct {
	EventID    string            `json:"event_id"`
	Type       string            `json:"type"`
	CustomerID string            `json:"customer_id"`
	OccurredAt time.Time         `json:"occurred_at"`
	Tenant     string            `json:"tenant"`
	Segment    string            `json:"segment"`
	Region     string            `json:"region"`
	Channel    string            `json:"channel"`
	Amount     float64           `json:"amount"`
	Currency   string            `json:"currency,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Profile is the customer's profile version current at OccurredAt
	// (SPEC §1.3), set by the engine that accepted the record; nil when
	// there is none. It is not part of the topic's JSON. Read it with
	// CurrentProfile: an engine may leave it to be looked up on first use.
	Profile *Profile `json:"-"`
	// ProfileFrom, when set, is where CurrentProfile looks Profile up the
	// first time it is asked (then it is cleared). The engine sets it
	// instead of looking every record's profile up: most records are
	// never asked for theirs (no rule matching them reads customer.*).
	ProfileFrom ProfileSource `json:"-"`
}

// ProfileSource finds the profile version of (tenant, customer) current
// at t (Unix ns), nil when there is none.
type ProfileSource interface {
	ProfileAt(tenant, customer string, t int64) *Profile
}

// CurrentProfile is the record's Profile, looked up from ProfileFrom the
// first time if the engine left it to be.
func (ev *Interaction) CurrentProfile() *Profile {
	if ev.ProfileFrom != nil {
		ev.Profile = ev.ProfileFrom.ProfileAt(ev.Tenant, ev.CustomerID, ev.OccurredAt.UnixNano())
		ev.ProfileFrom = nil
	}
	return ev.Profile
}

// Receipt is what happened to one attempt of a message sent to a customer
// (topic crm.delivery-receipts).
type Receipt struct {
	ReceiptID   string    `json:"receipt_id"`
	MessageID   string    `json:"message_id"`
	CustomerID  string    `json:"customer_id"`
	Channel     string    `json:"channel"`
	Status      string    `json:"status"`
	OccurredAt  time.Time `json:"occurred_at"`
	Attempt     int       `json:"attempt"`
	Tenant      string    `json:"tenant"`
	CampaignID  string    `json:"campaign_id,omitempty"`
	TemplateID  string    `json:"template_id,omitempty"`
	Provider    string    `json:"provider,omitempty"`
	ErrorCode   string    `json:"error_code,omitempty"`
	RecipientTZ string    `json:"recipient_tz,omitempty"`
	// Profile and ProfileFrom are as in Interaction.
	Profile     *Profile      `json:"-"`
	ProfileFrom ProfileSource `json:"-"`
}

// CurrentProfile is as Interaction.CurrentProfile.
func (r *Receipt) CurrentProfile() *Profile {
	if r.ProfileFrom != nil {
		r.Profile = r.ProfileFrom.ProfileAt(r.Tenant, r.CustomerID, r.OccurredAt.UnixNano())
		r.ProfileFrom = nil
	}
	return r.Profile
}

// Source names one of the two input streams.
type Source string

// The two input streams of SPEC §1.
const (
	SourceInteractions Source = "interactions"
	SourceReceipts     Source = "receipts"
)

// Reason is a fixed code saying why a record was refused. Metrics and
// dead-letter headers carry the code; the error carries the detail.
type Reason string

// The reasons a record is refused.
const (
	ReasonNotJSON      Reason = "not_json"
	ReasonMissingField Reason = "missing_field"
	ReasonWrongType    Reason = "wrong_type"
	ReasonBadTime      Reason = "bad_time"
	ReasonBadValue     Reason = "bad_value"
	ReasonLate         Reason = "late"
	// ReasonFuture is a record too far ahead of the watermark (the
	// engine's future_skew guard): accepting it would move the watermark
	// so far that every later valid record would be late.
	ReasonFuture Reason = "future"
	// ReasonTooLarge is a line or message longer than the reader's limit;
	// it is refused before decoding, without being held whole.
	ReasonTooLarge Reason = "too_large"
)

// Reasons lists every Reason, for metrics that pre-create their series.
var Reasons = []Reason{ReasonNotJSON, ReasonMissingField, ReasonWrongType, ReasonBadTime, ReasonBadValue, ReasonLate, ReasonFuture, ReasonTooLarge}

// RejectError is a refused record: a Reason for counting and a message that
// names the field and what was wrong with it.
type RejectError struct {
	Reason Reason
	Field  string
	Detail string
}

func (e *RejectError) Error() string {
	if e.Field == "" {
		return string(e.Reason) + ": " + e.Detail
	}
	return string(e.Reason) + ": field " + e.Field + ": " + e.Detail
}
