package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
)

// TestCustomerPathsRefused: every refusal of SPEC §3 about profiles names
// the rule and the field.
func TestCustomerPathsRefused(t *testing.T) {
	tests := []struct {
		name string
		rule string
		want []string
	}{
		{"customer.* in an inactivity key", "{name: a, kind: inactivity, source: interactions, key: [customer_id, customer.tier], idle_for: 1h}",
			[]string{`rule "a"`, "field key", `"customer.tier" reads the customer profile`}},
		{"customer.* in an absence correlate", "{name: a, kind: absence, source: interactions, start: {type: [complaint]}, stop: {type: [complaint_resolved]}, correlate: [customer.account_manager], within: 1h}",
			[]string{`rule "a"`, "field correlate", "not in correlate"}},
		{"an unknown profile field in match", "{name: a, kind: event, source: interactions, match: {customer.colour: [red]}, group_by: [customer_id]}",
			[]string{`rule "a"`, "field match", `unknown profile field "colour"`}},
		{"an unknown profile field in group_by", "{name: a, kind: event, source: receipts, group_by: [customer.shoe_size]}",
			[]string{`rule "a"`, "field group_by", `unknown profile field "shoe_size"`}},
		{"an empty profile attribute name", "{name: a, kind: event, source: interactions, group_by: [customer.attributes.]}",
			[]string{`rule "a"`, "field group_by", "attribute name is empty"}},
		{"a group field and a customer group field with one label", "{name: a, kind: threshold, source: interactions, group_by: [segment, customer.segment], window: 1h, value: count, op: '>', threshold: 1}",
			[]string{`rule "a"`, "field group_by", `"customer.segment" gives label "segment", as "segment" does`}},
		{"an attribute and a customer attribute with one label", "{name: a, kind: event, source: interactions, group_by: [customer_id, attributes.plan, customer.attributes.plan]}",
			[]string{`rule "a"`, "field group_by", `label "plan"`}},
		{"a customer label colliding with a key field", "{name: a, kind: inactivity, source: interactions, key: [tenant, customer_id, region], idle_for: 1h, customer_labels: [region]}",
			[]string{`rule "a"`, "field customer_labels", `"region" gives label "region", as "region" does`}},
		{"two customer labels with one label name", "{name: a, kind: event, source: interactions, group_by: [customer_id], customer_labels: [tier, attributes.tier]}",
			[]string{`rule "a"`, "field customer_labels", `label "tier"`}},
		{"a customer label called alertname", "{name: a, kind: event, source: interactions, group_by: [customer_id], customer_labels: [attributes.alertname]}",
			[]string{`rule "a"`, "field customer_labels", `label "alertname"`}},
		{"customer_labels on a rule without customer_id", "{name: a, kind: threshold, source: interactions, group_by: [tenant], window: 1h, value: count, op: '>', threshold: 1, customer_labels: [account_manager]}",
			[]string{`rule "a"`, "field customer_labels", "needs customer_id"}},
		{"customer_labels naming an unknown profile field", "{name: a, kind: event, source: interactions, group_by: [customer_id], customer_labels: [favourite_colour]}",
			[]string{`rule "a"`, "field customer_labels", `unknown profile field "favourite_colour"`}},
		{"event with a zero lasts", "{name: a, kind: event, source: interactions, group_by: [customer_id], lasts: 0s}",
			[]string{`rule "a"`, "field lasts", "positive"}},
		{"event without group_by", "{name: a, kind: event, source: interactions}",
			[]string{`rule "a"`, "field group_by", "missing required parameter"}},
		{"deadline stages out of order", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due_after: 1d, stages: [{name: due, at: 0s}, {name: upcoming, at: -3d}]}",
			[]string{`rule "a"`, "field stages[1].at", "increasing at"}},
		{"deadline stages at the same at", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due_after: 1d, stages: [{name: x, at: 1h}, {name: y, at: 60m}]}",
			[]string{`rule "a"`, "field stages[1].at"}},
		{"deadline with both due and due_after", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due: attributes.due_at, due_after: 1d, stages: [{name: due, at: 0s}]}",
			[]string{`rule "a"`, "field due", "not both"}},
		{"deadline with neither due nor due_after", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], stages: [{name: due, at: 0s}]}",
			[]string{`rule "a"`, "field due", "missing required parameter"}},
		{"deadline due naming an unknown field", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due: deadline_at, stages: [{name: due, at: 0s}]}",
			[]string{`rule "a"`, "field due", `unknown event field "deadline_at"`}},
		{"deadline without stages", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due_after: 1d}",
			[]string{`rule "a"`, "field stages", "missing required parameter"}},
		{"deadline with an empty stage list", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due_after: 1d, stages: []}",
			[]string{`rule "a"`, "field stages", "at least one stage"}},
		{"deadline stage without name", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due_after: 1d, stages: [{at: 0s}]}",
			[]string{`rule "a"`, "field stages[0].name", "missing"}},
		{"deadline duplicate stage names", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due_after: 1d, stages: [{name: x, at: 0s}, {name: x, at: 1h}]}",
			[]string{`rule "a"`, "field stages[1].name", "duplicate"}},
		{"deadline stage unknown field", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due_after: 1d, stages: [{name: x, at: 0s, colour: red}]}",
			[]string{`rule "a"`, "colour"}},
		{"deadline correlate field labelled stage", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [customer_id, attributes.stage], due_after: 1d, stages: [{name: x, at: 0s}]}",
			[]string{`rule "a"`, "field correlate", `label "stage", as the stage label does`}},
		{"deadline customer.* in correlate", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [customer_id, customer.tier], due_after: 1d, stages: [{name: x, at: 0s}]}",
			[]string{`rule "a"`, "field correlate", "not in correlate"}},
		{"deadline with for", "{name: a, kind: deadline, source: interactions, start: {type: [invoice_issued]}, stop: {type: [invoice_paid]}, correlate: [tenant, customer_id], due_after: 1d, stages: [{name: x, at: 0s}], for: 1h}",
			[]string{`rule "a"`, "field for"}},
		{"calendar on interactions", "{name: a, kind: calendar, source: interactions, date: attributes.birthday, repeat: yearly, at: '09:00'}",
			[]string{`rule "a"`, "field source", "must be customers"}},
		{"source customers on another kind", "{name: a, kind: event, source: customers, group_by: [tier]}",
			[]string{`rule "a"`, "field source", "only calendar rules"}},
		{"calendar without date, repeat and at", "{name: a, kind: calendar, source: customers}",
			[]string{`rule "a"`, "field date: missing", "field repeat: missing", "field at: missing"}},
		{"calendar with an unknown repeat", "{name: a, kind: calendar, source: customers, date: attributes.birthday, repeat: monthly, at: '09:00'}",
			[]string{`rule "a"`, "field repeat", `"monthly"`}},
		{"calendar with a bad at", "{name: a, kind: calendar, source: customers, date: attributes.birthday, repeat: yearly, at: '9am'}",
			[]string{`rule "a"`, "field at", "HH:MM"}},
		{"calendar date naming an unknown profile field", "{name: a, kind: calendar, source: customers, date: birthday, repeat: yearly, at: '09:00'}",
			[]string{`rule "a"`, "field date", `unknown profile field "birthday"`}},
		{"calendar match on an unknown profile field", "{name: a, kind: calendar, source: customers, match: {colour: [red]}, date: attributes.birthday, repeat: yearly, at: '09:00'}",
			[]string{`rule "a"`, "field match", `unknown profile field "colour"`}},
		{"calendar customer label called customer_id", "{name: a, kind: calendar, source: customers, date: attributes.birthday, repeat: yearly, at: '09:00', customer_labels: [attributes.customer_id]}",
			[]string{`rule "a"`, "field customer_labels", `label "customer_id"`}},
		{"calendar with a bad offset", "{name: a, kind: calendar, source: customers, date: attributes.birthday, repeat: yearly, at: '09:00', offset: -1x}",
			[]string{`rule "a"`, "invalid duration"}},
		{"event with for", "{name: a, kind: event, source: interactions, group_by: [customer_id], for: 5m}",
			[]string{`rule "a"`, "field for", "not a parameter of kind event"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(head + "  - " + tc.rule + "\n"))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestCustomerPathsAccepted(t *testing.T) {
	f, err := Parse([]byte(head + `  - {name: a, kind: event, source: interactions, match: {customer.tier: [gold], customer.attributes.vip: ["yes"]}, group_by: [tenant, customer_id, customer.account_manager], customer_labels: [customer.tier, attributes.contract_end], labels: {account_manager: ignored}}
  - {name: b, kind: inactivity, source: receipts, match: {customer.region: [apac]}, key: [tenant, customer_id], idle_for: 1h, customer_labels: [account_manager]}
`))
	require.NoError(t, err)
	a := f.Rules[0]
	require.Equal(t, DefaultEventLasts, a.Lasts.D(), "lasts defaults to 24h")
	require.Equal(t, []string{"tenant", "customer_id", "account_manager"}, []string{a.Fields[0].Label, a.Fields[1].Label, a.Fields[2].Label},
		"customer.f is labelled f")
	require.True(t, a.Fields[2].Customer)
	require.Equal(t, []string{"tier", "contract_end"}, []string{a.CustomerFields[0].Label, a.CustomerFields[1].Label},
		"a customer label may be written with or without customer.")

	p := &ingest.Profile{Tier: "gold", AccountManager: "am1", Attrs: []string{"vip", "yes"}}
	e := Event{I: &ingest.Interaction{Profile: p}}
	require.True(t, a.Matcher.Match(e))
	require.Equal(t, "am1", a.Fields[2].Get(e))
	none := Event{I: &ingest.Interaction{}}
	require.False(t, a.Matcher.Match(none))
	require.Equal(t, ingest.UnknownDim, a.Fields[2].Get(none), "no profile reads unknown")
	require.Equal(t, ingest.UnknownDim, a.Fields[2].Get(Event{I: &ingest.Interaction{Profile: &ingest.Profile{}}}), "no such field reads unknown")
	require.True(t, f.Rules[1].Matcher.Match(Event{R: &ingest.Receipt{Profile: &ingest.Profile{Region: "apac"}}}), "receipts read profiles too")
}

func TestCalendarAccepted(t *testing.T) {
	f, err := Parse([]byte(head + `  - {name: a, kind: calendar, source: customers, match: {tier: [gold]}, date: customer.attributes.birthday, repeat: yearly, at: "09:30", offset: -1w2d, customer_labels: [account_manager]}
`))
	require.NoError(t, err)
	r := f.Rules[0]
	require.Equal(t, 9*60+30, r.AtMin)
	require.Equal(t, -9*24*time.Hour, r.Offset.D(), "offsets are signed")
	require.Equal(t, DefaultEventLasts, r.Lasts.D(), "lasts defaults to 24h")
	require.Equal(t, "03-09", r.DateOf(&ingest.Profile{Attrs: []string{"birthday", "03-09"}}))
	require.True(t, r.Matcher.Match(Event{C: &ingest.Profile{Tier: "gold"}}), "paths name the profile's own fields")
	g, err := CompileField(SourceCustomers, "customer.tier")
	require.NoError(t, err)
	require.Equal(t, "gold", g.Get(Event{C: &ingest.Profile{Tier: "gold"}}), "the customer. prefix reads the same")
	require.True(t, r.hasCustomerID(), "a calendar rule is keyed by (tenant, customer_id), so streaming runs it beside the profiles")
	for in, want := range map[string]bool{"03-09": true, "02-29": true, "1984-03-09": true, "2023-02-29": false, "13-01": false, "3-9": false, "": false} {
		_, ok := ParseCalendarDate(in)
		require.Equal(t, want, ok, in)
	}
}

func TestSuppressOnInteractions(t *testing.T) {
	f, err := Parse([]byte(`version: 1
resend:
  - {name: p, channel: sms, on: [failed], max_attempts: 2}
  - {name: q, channel: email, on: [failed], max_attempts: 2, suppress_on_interactions: [complaint, unsubscribe]}
  - {name: r, channel: push, on: [failed], max_attempts: 2, suppress_on_interactions: []}
`))
	require.NoError(t, err)
	require.Equal(t, []string{"unsubscribe"}, f.Resend[0].SuppressOnInteractions, "default [unsubscribe]")
	require.Equal(t, []string{"complaint", "unsubscribe"}, f.Resend[1].SuppressOnInteractions)
	require.Empty(t, f.Resend[2].SuppressOnInteractions, "an explicit empty list suppresses on no interaction")

	_, err = Parse([]byte("version: 1\nresend:\n  - {name: p, channel: sms, on: [failed], max_attempts: 2, suppress_on_interactions: ['']}\n"))
	require.ErrorContains(t, err, `resend policy "p": field suppress_on_interactions`)
}

// countingSource is an ingest.ProfileSource that counts its lookups.
type countingSource struct {
	p       *ingest.Profile
	lookups int
}

func (s *countingSource) ProfileAt(string, string, int64) *ingest.Profile { s.lookups++; return s.p }

// TestMatcherLooksTheProfileUpLast: a match that also reads customer.*
// tests the record's own fields first, so a record that fails them never
// has its profile looked up, and a record that passes them looks it up
// once however often it is read (the engine resolves profiles on first
// use, ingest.Interaction.CurrentProfile).
func TestMatcherLooksTheProfileUpLast(t *testing.T) {
	f, err := Parse([]byte(`version: 1
rules:
  - {name: big, kind: event, source: interactions, match: {customer.tier: [platinum], type: [large_order]}, group_by: [customer_id]}
`))
	require.NoError(t, err)
	m := f.Rules[0].Matcher
	cases := []struct {
		name        string
		typ, tier   string
		wantMatch   bool
		wantLookups int
	}{
		{"another type: the profile is never read", "login", "platinum", false, 0},
		{"the type matches, the tier does not", "large_order", "gold", false, 1},
		{"both match", "large_order", "platinum", true, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingSource{p: &ingest.Profile{Tier: tc.tier}}
			ev := &ingest.Interaction{Type: tc.typ, CustomerID: "c1", ProfileFrom: src}
			require.Equal(t, tc.wantMatch, m.Match(Event{I: ev}))
			require.Equal(t, tc.wantMatch, m.Match(Event{I: ev}), "a second reading")
			require.Equal(t, tc.wantLookups, src.lookups)
			if tc.wantLookups > 0 {
				require.Same(t, src.p, ev.Profile, "the looked-up version is kept on the record")
				require.Nil(t, ev.ProfileFrom)
			}
		})
	}
}
