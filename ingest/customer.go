package ingest

import (
	"time"
)

// SourceCustomers is the profile stream of SPEC §1.3 (topic crm.customers,
// --customers in replay).
const SourceCustomers Source = "customers"

// Customer is one version of a customer's profile (topic crm.customers, a
// compacted topic keyed by customer_id). Optional fields hold their SPEC
// defaults after decoding: Tenant DefaultTenant; Tier, Segment and Region
// UnknownDim. AccountManager and Timezone stay empty when absent.
type Customer struct {
	CustomerID     string            `json:"customer_id"`
	UpdatedAt      time.Time         `json:"updated_at"`
	Tenant         string            `json:"tenant"`
	AccountManager string            `json:"account_manager,omitempty"`
	Tier           string            `json:"tier"`
	Segment        string            `json:"segment"`
	Region         string            `json:"region"`
	Timezone       string            `json:"timezone,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	Deleted        bool              `json:"deleted,omitempty"`
}

// Profile is a profile version as the engine keeps it and as an accepted
// record carries it (Interaction.Profile, Receipt.Profile): the version
// current at the record's time. Its strings are interned by the engine's
// profile store and must not be modified. The zero Profile is never handed
// out: no profile is a nil *Profile.
type Profile struct {
	Tenant         string
	AccountManager string
	Tier           string
	Segment        string
	Region         string
	Timezone       string
	// Attrs holds the attributes as name, value pairs sorted by name: a
	// slice is a third of a small map's size and a lookup in a handful of
	// pairs is as fast.
	Attrs []string
	// UpdatedAt is the version's updated_at in Unix nanoseconds.
	UpdatedAt int64
	Deleted   bool
}

// Attr returns attribute name, or "" when the version has none.
func (p *Profile) Attr(name string) string {
	for i := 0; i+1 < len(p.Attrs); i += 2 {
		if p.Attrs[i] == name {
			return p.Attrs[i+1]
		}
	}
	return ""
}

// Location is the version's time zone, nil when it names none. The decoder
// refused unknown zones, so a non-empty Timezone always loads.
func (p *Profile) Location() *time.Location {
	if p == nil || p.Timezone == "" {
		return nil
	}
	loc, err := LoadZone(p.Timezone)
	if err != nil {
		return nil
	}
	return loc
}

// Field indexes of the customer schema; the order of the first two is the
// order missing required fields are reported in.
const (
	cCustomerID = iota
	cUpdatedAt
	cTenant
	cAccountManager
	cTier
	cSegment
	cRegion
	cTimezone
	cAttributes
	cDeleted
)

var customerSchema = newSchema([]fieldSpec{
	cCustomerID:     {name: "customer_id", kind: kindString, required: true},
	cUpdatedAt:      {name: "updated_at", kind: kindTime, required: true},
	cTenant:         {name: "tenant", kind: kindString},
	cAccountManager: {name: "account_manager", kind: kindString},
	cTier:           {name: "tier", kind: kindString},
	cSegment:        {name: "segment", kind: kindString},
	cRegion:         {name: "region", kind: kindString},
	cTimezone:       {name: "timezone", kind: kindString},
	cAttributes:     {name: "attributes", kind: kindAttributes},
	cDeleted:        {name: "deleted", kind: kindBool},
})

// DecodeCustomer decodes one crm.customers record (SPEC §1.3) into c,
// replacing everything c held, with the same scanner and the same
// differences from encoding/json as DecodeInteraction. A timezone that
// LoadZone does not know is refused with ReasonBadValue. A Kafka tombstone
// (a null value) is not a record: the consumer handles it before decoding
// (Engine.DropCustomer), so "null" here is refused as not an object.
//
// The error, if any, is a *RejectError; c is then the zero Customer.
func DecodeCustomer(data []byte, c *Customer) error {
	d := decoder{data: data, schema: &customerSchema}
	if err := d.decode(); err != nil {
		*c = Customer{}
		return err
	}
	backing := d.materialize()
	tz := d.str(backing, cTimezone)
	if tz != "" {
		if _, err := LoadZone(tz); err != nil {
			*c = Customer{}
			return &RejectError{Reason: ReasonBadValue, Field: "timezone", Detail: err.Error()}
		}
	}
	*c = Customer{
		CustomerID:     d.str(backing, cCustomerID),
		UpdatedAt:      d.when,
		Tenant:         d.strOr(backing, cTenant, DefaultTenant),
		AccountManager: d.str(backing, cAccountManager),
		Tier:           d.strOr(backing, cTier, UnknownDim),
		Segment:        d.strOr(backing, cSegment, UnknownDim),
		Region:         d.strOr(backing, cRegion, UnknownDim),
		Timezone:       tz,
		Attributes:     d.attributeMap(backing),
		Deleted:        d.flag,
	}
	return nil
}
