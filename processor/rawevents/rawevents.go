// Package rawevents copies every accepted input record, one row each, into
// the optional drill-down tables interactions_raw and receipts_raw that the
// ClickHouse sink stores (sink/clickhouse, migration 0002). It is off by
// default: the aggregates answer the usual questions, and raw events are the
// largest tables by far.
//
// Interaction attributes that hold contact details (email, phone, ...) are
// replaced by a keyed hash before they leave the engine, so the analytics
// store never holds them in clear; equal values still hash equal, so one can
// count or join on them. customer_id is kept as is: it is the join key with
// every other table, and an opaque CRM id rather than a contact detail.
//
// The Component is an engine component like the aggregates: pure (no clock,
// no I/O, no goroutines) and stateless, so snapshots carry nothing for it.
package rawevents

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"slices"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/privacy"
	"github.com/crmpulse/crmpulse/processor"
)

// Name is the component's name in engine snapshots.
const Name = "rawevents"

// The tables the rows of this package go to (sink/clickhouse creates them).
const (
	TableInteractions = "interactions_raw"
	TableReceipts     = "receipts_raw"
)

// DefaultContactAttributes are the interaction attribute keys hashed when
// Config.ContactAttributes is empty: the usual ways to reach or identify a
// person (SPEC §1.1 leaves attributes free-form, so these are the names CRM
// exports commonly use), with privacy.DefaultContactPatterns besides. List
// the keys of a schema you know rather than rely on these.
var DefaultContactAttributes = privacy.DefaultContactAttributes

// Config configures a Component.
type Config struct {
	// HashKey is the secret key of the HMAC that replaces contact values.
	// Required: without a secret, a hash of an email address can be
	// reversed by hashing a list of known addresses and comparing. Keep it
	// stable: another key hashes the same value differently, so rows
	// written before and after a change no longer match.
	HashKey string
	// ContactAttributes are the attribute keys whose values are hashed,
	// compared case-insensitively ("Email" is "email"). Empty means
	// DefaultContactAttributes.
	ContactAttributes []string
	// ContactPatterns are globs of keys also hashed (privacy.NewMatcher):
	// empty means privacy.DefaultContactPatterns, ["-"] none.
	ContactPatterns []string
	// Shard names the slice of the input this component sees: the Kafka
	// partition in `crmpulse run`, 0 in a replay. It is stored for
	// information only; a row's identity is its event or receipt id.
	Shard int
}

func (c Config) validate() error {
	if c.HashKey == "" {
		return errors.New("rawevents config: hash_key: required (the secret of the HMAC that hides contact attributes)")
	}
	if err := privacy.CheckHashKey(c.HashKey); err != nil {
		return fmt.Errorf("rawevents config: %w", err)
	}
	if c.Shard < 0 || c.Shard > math.MaxUint16 {
		return fmt.Errorf("rawevents config: shard: must be in [0, %d], got %d", math.MaxUint16, c.Shard)
	}
	return nil
}

// Interaction is one accepted interaction as stored in interactions_raw.
// Attributes are parallel key/value slices sorted by key, with contact
// values replaced by their hex HMAC-SHA256.
type Interaction struct {
	EventID, Type, CustomerID        string
	OccurredAt                       time.Time
	Tenant, Segment, Region, Channel string
	Amount                           float64
	Currency                         string
	Shard                            uint16
	AttributeKeys, AttributeValues   []string
}

// Receipt is one accepted delivery receipt as stored in receipts_raw.
// Receipts carry no contact details, so every field is kept.
type Receipt struct {
	ReceiptID, MessageID, CustomerID string
	Channel, Status                  string
	OccurredAt                       time.Time
	Attempt                          int
	Tenant                           string
	CampaignID, TemplateID           string
	Provider, ErrorCode, RecipientTZ string
	Shard                            uint16
}

var (
	_ processor.Aggregate = Interaction{}
	_ processor.Aggregate = Receipt{}
	_ processor.Component = (*Component)(nil)
)

// Table implements processor.Aggregate.
func (Interaction) Table() string { return TableInteractions }

// ID implements processor.Aggregate: the event id, which the engine already
// deduplicates on.
func (r Interaction) ID() string { return r.EventID }

// Table implements processor.Aggregate.
func (Receipt) Table() string { return TableReceipts }

// ID implements processor.Aggregate: the receipt id.
func (r Receipt) ID() string { return r.ReceiptID }

// Component emits one row per accepted record. It is not safe for
// concurrent use (its hash state is reused); a pipeline runs one per engine.
type Component struct {
	shard   uint16
	contact *privacy.Matcher
	mac     hash.Hash
	sum     []byte // scratch for mac.Sum
}

// New returns a Component for cfg.
func New(cfg Config) (*Component, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := privacy.NewMatcher(cfg.ContactAttributes, cfg.ContactPatterns)
	if err != nil {
		return nil, fmt.Errorf("rawevents config: %w", err)
	}
	return &Component{shard: uint16(cfg.Shard), contact: m, mac: hmac.New(sha256.New, []byte(cfg.HashKey))}, nil
}

// Name implements processor.Component.
func (c *Component) Name() string { return Name }

// Interaction implements processor.Component.
func (c *Component) Interaction(ev *ingest.Interaction, out *processor.Output) {
	r := Interaction{
		EventID: ev.EventID, Type: ev.Type, CustomerID: ev.CustomerID, OccurredAt: ev.OccurredAt.UTC(),
		Tenant: ev.Tenant, Segment: ev.Segment, Region: ev.Region, Channel: ev.Channel,
		Amount: ev.Amount, Currency: ev.Currency, Shard: c.shard,
		AttributeKeys: []string{}, AttributeValues: []string{},
	}
	if len(ev.Attributes) > 0 {
		r.AttributeKeys = make([]string, 0, len(ev.Attributes))
		for k := range ev.Attributes {
			r.AttributeKeys = append(r.AttributeKeys, k)
		}
		slices.Sort(r.AttributeKeys)
		r.AttributeValues = make([]string, len(r.AttributeKeys))
		for i, k := range r.AttributeKeys {
			r.AttributeValues[i] = c.value(k, ev.Attributes[k])
		}
	}
	out.Aggregates = append(out.Aggregates, r)
}

// value is v as stored for attribute k: hashed when k is a contact key.
func (c *Component) value(k, v string) string {
	if !c.isContact(k) {
		return v
	}
	return c.Hash(v)
}

func (c *Component) isContact(k string) bool { return c.contact.Contact(k) }

// Hash returns the hex HMAC-SHA256 of v under the component's key: what a
// contact value is replaced with. Analysts holding a value (an email from a
// support ticket) find its rows by asking whoever holds the key to hash it.
//
// A keyed hash, not a plain SHA-256: the set of plausible emails and phone
// numbers is small enough to hash entirely, so a plain digest of a contact
// value is reversed by a dictionary; without the key, an HMAC is not.
func (c *Component) Hash(v string) string {
	c.mac.Reset()
	c.mac.Write([]byte(v))
	c.sum = c.mac.Sum(c.sum[:0])
	return hex.EncodeToString(c.sum)
}

// Receipt implements processor.Component.
func (c *Component) Receipt(r *ingest.Receipt, out *processor.Output) {
	out.Aggregates = append(out.Aggregates, Receipt{
		ReceiptID: r.ReceiptID, MessageID: r.MessageID, CustomerID: r.CustomerID,
		Channel: r.Channel, Status: r.Status, OccurredAt: r.OccurredAt.UTC(), Attempt: r.Attempt,
		Tenant: r.Tenant, CampaignID: r.CampaignID, TemplateID: r.TemplateID,
		Provider: r.Provider, ErrorCode: r.ErrorCode, RecipientTZ: r.RecipientTZ, Shard: c.shard,
	})
}

// Advance implements processor.Component; rows are emitted as records
// arrive, so there is nothing to fire.
func (c *Component) Advance(time.Time, *processor.Output) {}

// MarshalState implements processor.Component: the component has no state.
func (c *Component) MarshalState() ([]byte, error) { return nil, nil }

// UnmarshalState implements processor.Component. It accepts only the empty
// state MarshalState writes: anything else was written by another
// component, and taking it silently would hide a wiring mistake.
func (c *Component) UnmarshalState(data []byte) error {
	if len(data) != 0 {
		return fmt.Errorf("rawevents state: expected none, got %d bytes", len(data))
	}
	return nil
}
