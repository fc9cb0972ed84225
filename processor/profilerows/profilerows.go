// Package profilerows turns the customer profiles the engine reads (SPEC
// §1.3, topic crm.customers or replay --customers) into rows of the
// ClickHouse table customers (sink/clickhouse, migration 0003): one row per
// profile version, a deleted version included, so that the table holds the
// current profile of each (tenant, customer_id).
//
// A row's version is the profile's updated_at, not the time it was
// written: the newest version wins whatever order versions are read or
// written in, and the same version written twice (a replay, a restart)
// collapses into one row.
//
// Attributes are treated as the contact-data setting says, the one of the
// raw-event tables (package privacy, as processor/rawevents uses it:
// clickhouse.contact_attributes, clickhouse.contact_patterns,
// clickhouse.hash_key): a contact attribute's value (birthday by default)
// is replaced by its HMAC under the hash key, the same as in
// interactions_raw, or left out when no key is set, so the analytics store
// never holds it in clear. account_manager is kept in clear: it is the
// employee who looks after the customer, whom dashboards filter on, not
// the customer's contact data.
//
// The Component is pure (no clock, no I/O) and stateless, so snapshots
// carry nothing for it.
package profilerows

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/privacy"
	"github.com/crmpulse/crmpulse/processor"
)

// Name is the component's name in engine snapshots.
const Name = "profilerows"

// Table is the table the rows go to (sink/clickhouse creates it).
const Table = "customers"

// Config configures a Component.
type Config struct {
	// HashKey is the secret of the HMAC that replaces contact values, as
	// in rawevents.Config (privacy.CheckHashKey must accept it). Empty is
	// allowed here, unlike for the raw tables: contact attributes are then
	// left out of the rows instead of hashed.
	HashKey string
	// ContactAttributes and ContactPatterns say which attribute keys are
	// contact data (privacy.NewMatcher: empty means the defaults, birthday
	// among them), the same setting as rawevents.Config's.
	ContactAttributes, ContactPatterns []string
}

// Profile is one profile version as stored in customers. Attributes are
// parallel key/value slices sorted by key, contact values replaced by their
// hex HMAC-SHA256 (or left out without a hash key). A deleted version has
// Deleted set and every other field but the identity empty.
type Profile struct {
	Tenant, CustomerID             string
	UpdatedAt                      time.Time
	AccountManager, Tier           string
	Segment, Region, Timezone      string
	AttributeKeys, AttributeValues []string
	Deleted                        bool
}

var (
	_ processor.Aggregate = Profile{}
	_ processor.Component = (*Component)(nil)
)

// Table implements processor.Aggregate.
func (Profile) Table() string { return Table }

// ID implements processor.Aggregate: the version's identity, tenant,
// customer and updated_at (the engine keeps one version per such triple,
// the one read last).
func (p Profile) ID() string {
	return p.Tenant + "/" + p.CustomerID + "/" + strconv.FormatInt(p.UpdatedAt.UnixNano(), 10)
}

// Version is the row's version in customers: updated_at in Unix
// nanoseconds (0 before 1970), so the newest profile replaces older ones.
func (p Profile) Version() uint64 { return uint64(max(p.UpdatedAt.UnixNano(), 0)) }

// Component emits one Profile per profile version the engine reads. It is
// not safe for concurrent use (its hash state is reused); a pipeline runs
// one per engine.
type Component struct {
	contact *privacy.Matcher
	hasher  *privacy.Hasher // nil: no key, contact values are left out
}

// New returns a Component for cfg.
func New(cfg Config) (*Component, error) {
	m, err := privacy.NewMatcher(cfg.ContactAttributes, cfg.ContactPatterns)
	if err != nil {
		return nil, fmt.Errorf("profilerows config: %w", err)
	}
	c := &Component{contact: m}
	if cfg.HashKey != "" {
		if c.hasher, err = privacy.NewHasher(cfg.HashKey); err != nil {
			return nil, fmt.Errorf("profilerows config: %w", err)
		}
	}
	return c, nil
}

// Name implements processor.Component.
func (c *Component) Name() string { return Name }

// Customer is called by the engine with every profile version it reads
// (processor.Engine.Customer).
func (c *Component) Customer(cu *ingest.Customer, out *processor.Output) {
	tenant := cu.Tenant
	if tenant == "" {
		tenant = ingest.DefaultTenant
	}
	r := Profile{Tenant: tenant, CustomerID: cu.CustomerID, UpdatedAt: cu.UpdatedAt.UTC(), Deleted: cu.Deleted,
		AttributeKeys: []string{}, AttributeValues: []string{}}
	if !cu.Deleted {
		// A deleted version means "no profile" (SPEC §1.3): it carries
		// nothing, as the engine keeps nothing of it.
		r.AccountManager, r.Tier, r.Segment, r.Region, r.Timezone =
			cu.AccountManager, cu.Tier, cu.Segment, cu.Region, cu.Timezone
		for _, k := range slices.Sorted(maps.Keys(cu.Attributes)) {
			v := cu.Attributes[k]
			if c.contact.Contact(k) {
				if c.hasher == nil {
					continue
				}
				v = c.hasher.Hash(v)
			}
			r.AttributeKeys = append(r.AttributeKeys, k)
			r.AttributeValues = append(r.AttributeValues, v)
		}
	}
	out.Aggregates = append(out.Aggregates, r)
}

// DropCustomer is called by the engine with a Kafka tombstone of
// customerID (processor.Engine.DropCustomer): a deleted row for each
// tenant the customer had versions in, so that the table no longer holds
// the profile either. The row's updated_at is 1 ns after the newest
// version dropped: it replaces every version the table holds, it is the
// same whenever the tombstone is processed again (a restart), and a
// version published after the tombstone with a later updated_at replaces
// it in turn. One with an earlier updated_at stays hidden behind it in the
// table, though the engine reads it: the table cannot tell when a row
// arrived, only its version.
func (c *Component) DropCustomer(customerID string, dropped []processor.DroppedProfile, out *processor.Output) {
	for _, d := range dropped {
		out.Aggregates = append(out.Aggregates, Profile{Tenant: d.Tenant, CustomerID: customerID,
			UpdatedAt: d.Newest.Add(time.Nanosecond), Deleted: true,
			AttributeKeys: []string{}, AttributeValues: []string{}})
	}
}

// Hash is what a contact value v is stored as (the HMAC of the raw
// tables), for looking a known value up; "" when no key is set.
func (c *Component) Hash(v string) string {
	if c.hasher == nil {
		return ""
	}
	return c.hasher.Hash(v)
}

// Interaction implements processor.Component: interactions carry no profile.
func (c *Component) Interaction(*ingest.Interaction, *processor.Output) {}

// Receipt implements processor.Component.
func (c *Component) Receipt(*ingest.Receipt, *processor.Output) {}

// Advance implements processor.Component; rows are emitted as profiles
// arrive, so there is nothing to fire.
func (c *Component) Advance(time.Time, *processor.Output) {}

// MarshalState implements processor.Component: the component has no state.
func (c *Component) MarshalState() ([]byte, error) { return nil, nil }

// UnmarshalState implements processor.Component. It accepts only the empty
// state MarshalState writes.
func (c *Component) UnmarshalState(data []byte) error {
	if len(data) != 0 {
		return fmt.Errorf("profilerows state: expected none, got %d bytes", len(data))
	}
	return nil
}
