package profilerows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/privacy"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

const key = "test-secret-of-at-least-32-bytes!"

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func profile(id string, attrs map[string]string) *ingest.Customer {
	return &ingest.Customer{CustomerID: id, UpdatedAt: t0, Tenant: "acme", AccountManager: "am1@example.com",
		Tier: "gold", Segment: "smb", Region: "emea", Timezone: "Europe/Paris", Attributes: attrs}
}

func TestProfileRows(t *testing.T) {
	hashed, err := privacy.NewHasher(key)
	require.NoError(t, err)
	cases := []struct {
		name       string
		cfg        Config
		in         *ingest.Customer
		wantKeys   []string
		wantValues []string
	}{
		{
			name:       "a birthday is contact data by default and is hashed, other attributes are kept",
			cfg:        Config{HashKey: key},
			in:         profile("c1", map[string]string{"birthday": "1984-03-09", "contract_end": "2027-06-30", "Email": "a@b.c"}),
			wantKeys:   []string{"Email", "birthday", "contract_end"},
			wantValues: []string{hashed.Hash("a@b.c"), hashed.Hash("1984-03-09"), "2027-06-30"},
		},
		{
			name:       "the configured contact keys and patterns replace the defaults",
			cfg:        Config{HashKey: key, ContactAttributes: []string{"contract_end"}, ContactPatterns: []string{"-"}},
			in:         profile("c1", map[string]string{"birthday": "03-09", "contract_end": "2027-06-30"}),
			wantKeys:   []string{"birthday", "contract_end"},
			wantValues: []string{"03-09", hashed.Hash("2027-06-30")},
		},
		{
			name:       "the default patterns catch keys that are not listed",
			cfg:        Config{HashKey: key},
			in:         profile("c1", map[string]string{"billing_email_address": "a@b.c", "date_of_birth_note": "x", "plan": "gold"}),
			wantKeys:   []string{"billing_email_address", "date_of_birth_note", "plan"},
			wantValues: []string{hashed.Hash("a@b.c"), hashed.Hash("x"), "gold"},
		},
		{
			name:       "without a hash key contact attributes are left out, not stored in clear",
			cfg:        Config{},
			in:         profile("c1", map[string]string{"birthday": "1984-03-09", "credit_limit": "5000"}),
			wantKeys:   []string{"credit_limit"},
			wantValues: []string{"5000"},
		},
		{
			name:       "no attributes is empty arrays",
			cfg:        Config{HashKey: key},
			in:         profile("c1", nil),
			wantKeys:   []string{},
			wantValues: []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			require.NoError(t, err)
			var out processor.Output
			c.Customer(tc.in, &out)
			require.Len(t, out.Aggregates, 1)
			r := out.Aggregates[0].(Profile)
			require.Equal(t, Profile{Tenant: "acme", CustomerID: "c1", UpdatedAt: t0, AccountManager: "am1@example.com",
				Tier: "gold", Segment: "smb", Region: "emea", Timezone: "Europe/Paris",
				AttributeKeys: tc.wantKeys, AttributeValues: tc.wantValues}, r)
			require.Equal(t, Table, r.Table())
			require.Equal(t, uint64(t0.UnixNano()), r.Version())
		})
	}
}

func TestDeletedVersionCarriesOnlyItsIdentity(t *testing.T) {
	c, err := New(Config{HashKey: key})
	require.NoError(t, err)
	in := profile("c1", map[string]string{"birthday": "03-09"})
	in.Deleted, in.Tenant = true, ""
	var out processor.Output
	c.Customer(in, &out)
	require.Equal(t, []processor.Aggregate{Profile{Tenant: ingest.DefaultTenant, CustomerID: "c1", UpdatedAt: t0,
		Deleted: true, AttributeKeys: []string{}, AttributeValues: []string{}}}, out.Aggregates)
}

func TestIDAndVersion(t *testing.T) {
	a := Profile{Tenant: "acme", CustomerID: "c1", UpdatedAt: t0}
	b := a
	b.UpdatedAt = t0.Add(time.Nanosecond)
	require.NotEqual(t, a.ID(), b.ID(), "two versions are two rows to the engine")
	require.Less(t, a.Version(), b.Version(), "the newer version wins in ClickHouse")
	require.Zero(t, Profile{UpdatedAt: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}.Version(), "clamped at 1970")
}

func TestBadSettingIsRefused(t *testing.T) {
	_, err := New(Config{HashKey: key, ContactAttributes: []string{" "}})
	require.ErrorContains(t, err, "contact_attributes[0]")
	_, err = New(Config{HashKey: key, ContactPatterns: []string{"["}})
	require.ErrorContains(t, err, "contact_patterns[0]")
	_, err = New(Config{HashKey: "short"})
	require.ErrorContains(t, err, "hash_key", "a short key is refused, as for the raw tables")
}

func TestStateIsEmpty(t *testing.T) {
	c, err := New(Config{})
	require.NoError(t, err)
	st, err := c.MarshalState()
	require.NoError(t, err)
	require.Empty(t, st)
	require.NoError(t, c.UnmarshalState(nil))
	require.Error(t, c.UnmarshalState([]byte("x")))
}

// TestEngineFeedsTheComponent: every profile version the engine reads,
// deleted ones included, comes out as a row, in reading order.
func TestEngineFeedsTheComponent(t *testing.T) {
	rf, err := rules.Parse([]byte("version: 1\nrules: []\n"))
	require.NoError(t, err)
	c, err := New(Config{HashKey: key})
	require.NoError(t, err)
	e, err := processor.New(processor.Config{Rules: rf, Extra: []processor.Component{c}})
	require.NoError(t, err)
	v1 := profile("c1", map[string]string{"birthday": "03-09"})
	v2 := profile("c1", nil)
	v2.UpdatedAt, v2.Tier = t0.Add(time.Hour), "platinum"
	gone := &ingest.Customer{CustomerID: "c2", UpdatedAt: t0, Tenant: "acme", Deleted: true}
	for _, cu := range []*ingest.Customer{v1, v2, gone} {
		require.NoError(t, e.Customer(cu))
	}
	var got []string
	for _, a := range e.Output().Aggregates {
		p := a.(Profile)
		got = append(got, p.ID()+" "+p.Tier)
		require.NotContains(t, p.AttributeValues, "03-09")
	}
	require.Equal(t, []string{
		Profile{Tenant: "acme", CustomerID: "c1", UpdatedAt: t0}.ID() + " gold",
		Profile{Tenant: "acme", CustomerID: "c1", UpdatedAt: t0.Add(time.Hour)}.ID() + " platinum",
		Profile{Tenant: "acme", CustomerID: "c2", UpdatedAt: t0}.ID() + " ",
	}, got)
}

// TestTombstoneDeletesEveryTenantsRow: a Kafka tombstone (Engine.DropCustomer)
// comes out as one deleted row per tenant the customer had versions in,
// 1 ns after that tenant's newest version, so it replaces every row the
// table holds for the customer; a tombstone of a customer without
// versions (unknown, or already dropped) writes nothing.
func TestTombstoneDeletesEveryTenantsRow(t *testing.T) {
	rf, err := rules.Parse([]byte("version: 1\nrules: []\n"))
	require.NoError(t, err)
	c, err := New(Config{HashKey: key})
	require.NoError(t, err)
	e, err := processor.New(processor.Config{Rules: rf, Extra: []processor.Component{c}})
	require.NoError(t, err)
	acmeOld := profile("c1", nil)
	acmeNew := profile("c1", nil)
	acmeNew.UpdatedAt = t0.Add(2 * time.Hour)
	beta := profile("c1", nil)
	beta.Tenant, beta.UpdatedAt = "beta", t0.Add(time.Hour)
	other := profile("c2", nil)
	for _, cu := range []*ingest.Customer{acmeNew, beta, acmeOld, other} {
		require.NoError(t, e.Customer(cu))
	}
	e.Output().Aggregates = nil

	e.DropCustomer("c1")
	deleted := func(tenant string, newest time.Time) Profile {
		return Profile{Tenant: tenant, CustomerID: "c1", UpdatedAt: newest.Add(time.Nanosecond), Deleted: true,
			AttributeKeys: []string{}, AttributeValues: []string{}}
	}
	require.Equal(t, []processor.Aggregate{deleted("acme", acmeNew.UpdatedAt), deleted("beta", beta.UpdatedAt)},
		e.Output().Aggregates)
	require.Greater(t, e.Output().Aggregates[0].(Profile).Version(), Profile{UpdatedAt: acmeNew.UpdatedAt}.Version(),
		"the deleted row outranks the newest version in ReplacingMergeTree")
	require.Nil(t, e.Profile("acme", "c1", t0.Add(3*time.Hour)), "the engine dropped the profile too")
	require.NotNil(t, e.Profile("acme", "c2", t0.Add(3*time.Hour)), "and only that customer's")

	e.Output().Aggregates = nil
	e.DropCustomer("c1")
	e.DropCustomer("nobody")
	require.Empty(t, e.Output().Aggregates)
}
