package ingest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const minimalCustomer = `"customer_id":"c1","updated_at":"2026-11-22T09:00:00+08:00"`

// benchCustomer is a typical crm.customers record: every field set, two
// attributes, about 300 bytes.
var benchCustomer = []byte(`{"customer_id":"cus-0088421","updated_at":"2026-11-22T09:00:00.123+08:00","tenant":"acme","account_manager":"am1@example.com","tier":"platinum","segment":"enterprise","region":"apac","timezone":"Asia/Shanghai","attributes":{"birthday":"1984-03-09","contract_end":"2027-06-30"}}`)

func TestDecodeCustomer(t *testing.T) {
	base := Customer{
		CustomerID: "c1", UpdatedAt: mustTime(t, "2026-11-22T01:00:00Z"),
		Tenant: DefaultTenant, Tier: UnknownDim, Segment: UnknownDim, Region: UnknownDim,
	}
	with := func(f func(*Customer)) Customer {
		c := base
		f(&c)
		return c
	}
	tests := []struct {
		name string
		in   string
		want Customer
	}{
		{name: "minimal gets the SPEC defaults", in: `{` + minimalCustomer + `}`, want: base},
		{
			name: "every field", in: string(benchCustomer),
			want: Customer{
				CustomerID: "cus-0088421", UpdatedAt: mustTime(t, "2026-11-22T01:00:00.123Z"),
				Tenant: "acme", AccountManager: "am1@example.com", Tier: "platinum", Segment: "enterprise",
				Region: "apac", Timezone: "Asia/Shanghai",
				Attributes: map[string]string{"birthday": "1984-03-09", "contract_end": "2027-06-30"},
			},
		},
		{name: "deleted true forgets the profile", in: `{` + minimalCustomer + `,"deleted":true}`, want: with(func(c *Customer) { c.Deleted = true })},
		{name: "deleted false is a plain version", in: `{` + minimalCustomer + `,"deleted":false}`, want: base},
		{name: "a later deleted replaces an earlier one, null included", in: `{` + minimalCustomer + `,"deleted":true,"deleted":null}`, want: base},
		{name: "null and empty optional strings take their defaults", in: `{` + minimalCustomer + `,"tenant":null,"tier":"","segment":null,"region":"","account_manager":null,"timezone":""}`, want: base},
		{name: "unknown fields are ignored", in: `{` + minimalCustomer + `,"score":5,"tags":["a"]}`, want: base},
		{name: "an empty attributes object is none", in: `{` + minimalCustomer + `,"attributes":{}}`, want: base},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Customer{CustomerID: "stale", Attributes: map[string]string{"stale": "x"}}
			require.NoError(t, DecodeCustomer([]byte(tc.in), &c))
			c.UpdatedAt = c.UpdatedAt.UTC()
			require.Equal(t, tc.want, c)
		})
	}
}

var customerRejects = []rejectCase{
	{"not an object", `[1]`, ReasonNotJSON, "", "got array"},
	{"a tombstone is not a record", `null`, ReasonNotJSON, "", "got null"},
	{"truncated", `{` + minimalCustomer, ReasonNotJSON, "", "unexpected end"},
	{"missing customer_id", `{"updated_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "customer_id", "missing"},
	{"missing updated_at", `{"customer_id":"c1"}`, ReasonMissingField, "updated_at", "missing"},
	{"empty customer_id", `{` + minimalCustomer + `,"customer_id":""}`, ReasonMissingField, "customer_id", "empty"},
	{"null updated_at", `{` + minimalCustomer + `,"updated_at":null}`, ReasonMissingField, "updated_at", "null"},
	{"bad updated_at", `{` + minimalCustomer + `,"updated_at":"2026-11-22"}`, ReasonBadTime, "updated_at", ""},
	{"tier number", `{` + minimalCustomer + `,"tier":1}`, ReasonWrongType, "tier", "expected string, got number"},
	{"deleted string", `{` + minimalCustomer + `,"deleted":"true"}`, ReasonWrongType, "deleted", "expected boolean, got string"},
	{"deleted number", `{` + minimalCustomer + `,"deleted":1}`, ReasonWrongType, "deleted", "expected boolean, got number"},
	{"deleted misspelt literal", `{` + minimalCustomer + `,"deleted":tru}`, ReasonNotJSON, "", ""},
	{"attribute number", `{` + minimalCustomer + `,"attributes":{"credit_limit":5000}}`, ReasonWrongType, "attributes.credit_limit", "expected string"},
	{"unknown timezone", `{` + minimalCustomer + `,"timezone":"Mars/Olympus_Mons"}`, ReasonBadValue, "timezone", `unknown time zone "Mars/Olympus_Mons"`},
	{"Local is not a zone", `{` + minimalCustomer + `,"timezone":"Local"}`, ReasonBadValue, "timezone", ""},
	{"offset is not a zone", `{` + minimalCustomer + `,"timezone":"+08:00"}`, ReasonBadValue, "timezone", ""},
}

func TestDecodeCustomerRejects(t *testing.T) {
	for _, tc := range customerRejects {
		t.Run(tc.name, func(t *testing.T) {
			c := Customer{CustomerID: "stale", Deleted: true}
			err := DecodeCustomer([]byte(tc.in), &c)
			checkRejectReason(t, tc, err)
			require.Equal(t, Customer{}, c, "a rejected record leaves the zero value")
		})
	}
}

// TestDecodeCustomerMatchesEncodingJSON: on valid records the hand-written
// decoder agrees with encoding/json (plus the SPEC defaults).
func TestDecodeCustomerMatchesEncodingJSON(t *testing.T) {
	var c Customer
	require.NoError(t, DecodeCustomer(benchCustomer, &c))
	var std Customer
	require.NoError(t, json.Unmarshal(benchCustomer, &std))
	require.True(t, std.UpdatedAt.Equal(c.UpdatedAt))
	std.UpdatedAt = c.UpdatedAt
	require.Equal(t, std, c)
}

func TestDecodeCustomerAllocations(t *testing.T) {
	var c Customer
	// One backing string, and the attributes map (two).
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		if err := DecodeCustomer(benchCustomer, &c); err != nil {
			t.Fatal(err)
		}
	}), 3.0)
}

func FuzzDecodeCustomer(f *testing.F) {
	f.Add([]byte(`{` + minimalCustomer + `}`))
	f.Add(benchCustomer)
	f.Add([]byte(`{` + minimalCustomer + `,"deleted":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Customer
		err := DecodeCustomer(data, &c)
		if err != nil {
			checkFuzzReject(t, data, err)
			require.Equal(t, Customer{}, c)
			return
		}
		require.True(t, json.Valid(data), "accepted invalid JSON")
		require.NotEmpty(t, c.CustomerID)
		require.NotEmpty(t, c.Tenant)
		require.False(t, c.UpdatedAt.IsZero())
		if c.Timezone != "" {
			_, err := LoadZone(c.Timezone)
			require.NoError(t, err)
		}
		want := c
		for _, f := range []*string{&want.CustomerID, &want.Tenant, &want.AccountManager, &want.Tier,
			&want.Segment, &want.Region, &want.Timezone} {
			*f = validUTF8(*f)
		}
		if c.Attributes != nil {
			want.Attributes = make(map[string]string, len(c.Attributes))
			for k, v := range c.Attributes {
				if validUTF8(k) != k {
					return
				}
				want.Attributes[k] = validUTF8(v)
			}
		}
		out, err := json.Marshal(c)
		require.NoError(t, err)
		var again Customer
		require.NoError(t, DecodeCustomer(out, &again), "%s", out)
		require.True(t, want.UpdatedAt.Equal(again.UpdatedAt))
		again.UpdatedAt = want.UpdatedAt
		require.Equal(t, want, again)
	})
}

func BenchmarkDecodeCustomer(b *testing.B) {
	var c Customer
	b.SetBytes(int64(len(benchCustomer)))
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeCustomer(benchCustomer, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeCustomerBounds: profiles share the input limits of
// docs/limits.md (time range, string lengths) with the other records.
func TestDecodeCustomerBounds(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		reason     Reason
		field      string
	}{
		{"updated_at after 2200", `{"customer_id":"c","updated_at":"2300-01-01T00:00:00Z"}`, ReasonBadTime, "updated_at"},
		{"updated_at before 1970", `{"customer_id":"c","updated_at":"1969-12-31T23:59:59Z"}`, ReasonBadTime, "updated_at"},
		{"an account manager over the field limit", `{"customer_id":"c","updated_at":"2026-01-01T00:00:00Z","account_manager":"` + strings.Repeat("a", MaxFieldLen+1) + `"}`, ReasonBadValue, "account_manager"},
		{"an attribute value over its limit", `{"customer_id":"c","updated_at":"2026-01-01T00:00:00Z","attributes":{"birthday":"` + strings.Repeat("1", MaxAttributeValueLen+1) + `"}}`, ReasonBadValue, "attributes.birthday"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Customer
			err := DecodeCustomer([]byte(tc.line), &c)
			var re *RejectError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.reason, re.Reason)
			require.Equal(t, tc.field, re.Field)
		})
	}
	var c Customer
	require.NoError(t, DecodeCustomer([]byte(`{"customer_id":"c","updated_at":"2026-01-01T00:00:00Z","account_manager":"`+strings.Repeat("a", MaxFieldLen)+`"}`), &c))
}
