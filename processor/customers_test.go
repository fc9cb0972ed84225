package processor_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

// profileRules read the profile in match and group_by (SPEC §3): an event
// rule fires once per group, so each alert says one record matched.
const profileRules = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - {name: gold, kind: event, source: interactions, match: {type: [purchase], customer.tier: [gold]}, group_by: [tenant, customer_id], lasts: 1h}
  - {name: vip, kind: event, source: interactions, match: {type: [purchase], customer.attributes.vip: ["yes"]}, group_by: [tenant, customer_id], lasts: 1h}
  - {name: nobody, kind: event, source: interactions, match: {type: [visit], customer.tier: [unknown]}, group_by: [tenant, customer_id], lasts: 1h}
  - {name: bounces, kind: event, source: receipts, match: {status: [hard_bounce], customer.tier: [gold]}, group_by: [tenant, customer_id], lasts: 1h}
`

// firings lists "rule/customer@starts" for the firing records of out.
func firings(out *processor.Output) []string {
	var s []string
	for _, a := range out.Alerts {
		if a.State == processor.StateFiring {
			s = append(s, a.Rule+"/"+a.Labels["customer_id"]+"@"+off(a.StartsAt))
		}
	}
	return s
}

func TestProfileVersions(t *testing.T) {
	buy := func(cust, when string) step { return ev("purchase", cust, when) }
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name:  "a record reads the version current at its occurred_at",
			steps: []step{prof("c1", "01:00", tier("gold")), prof("c1", "03:00", tier("silver")), buy("c1", "02:00")},
			want:  []string{"gold/c1@" + o("02:00")},
		},
		{
			name:  "a record after a newer version reads the newer one",
			steps: []step{prof("c1", "01:00", tier("gold")), prof("c1", "03:00", tier("silver")), buy("c1", "04:00")},
		},
		{
			name:  "among the versions read so far, the greatest updated_at ≤ t wins, whatever order they came in",
			steps: []step{prof("c1", "03:00", tier("silver")), prof("c1", "01:00", tier("gold")), buy("c1", "02:00"), buy("c2", "02:00")},
			want:  []string{"gold/c1@" + o("02:00")},
		},
		{
			name:  "a version holds from its updated_at on, so a record at that very instant reads it",
			steps: []step{prof("c1", "02:00", tier("gold")), buy("c1", "02:00")},
			want:  []string{"gold/c1@" + o("02:00")},
		},
		{
			name:  "before the first version there is no profile, and customer.* reads unknown",
			steps: []step{prof("c1", "05:00", tier("gold")), buy("c1", "02:00"), ev("visit", "c1", "02:00"), ev("visit", "c2", "02:00")},
			want:  []string{"nobody/c1@" + o("02:00"), "nobody/c2@" + o("02:00")},
		},
		{
			name:  "a record reads the profile of its own tenant",
			steps: []step{prof("c1", "01:00", tier("gold"), tenant("other")), buy("c1", "02:00")},
		},
		{
			name:  "a version replaces the previous one whole: an attribute it leaves out is gone",
			steps: []step{prof("c1", "01:00", pattr("vip", "yes")), prof("c1", "02:00", tier("gold")), buy("c1", "03:00")},
			want:  []string{"gold/c1@" + o("03:00")},
		},
		{
			name:  "a deleted version is current like any other and means no profile",
			steps: []step{prof("c1", "01:00", tier("gold")), prof("c1", "02:00", deleted()), buy("c1", "03:00"), ev("visit", "c1", "03:00")},
			want:  []string{"nobody/c1@" + o("03:00")},
		},
		{
			name:  "before a deleted version the one it follows still holds",
			steps: []step{prof("c1", "01:00", tier("gold")), prof("c1", "02:00", deleted()), buy("c1", "01:30")},
			want:  []string{"gold/c1@" + o("01:30")},
		},
		{
			name:  "a version after a deletion brings the profile back",
			steps: []step{prof("c1", "01:00", deleted()), prof("c1", "02:00", tier("gold")), buy("c1", "03:00")},
			want:  []string{"gold/c1@" + o("03:00")},
		},
		{
			name:  "a Kafka tombstone drops every version at once",
			steps: []step{prof("c1", "01:00", tier("gold")), prof("c1", "02:00", tier("gold")), tombstone("c1"), buy("c1", "01:30"), buy("c1", "03:00")},
		},
		{
			name:  "a tombstone drops the profile in every tenant",
			steps: []step{prof("c1", "01:00", tier("gold")), prof("c1", "01:00", tier("gold"), tenant("other")), tombstone("c1"), buy("c1", "03:00")},
		},
		{
			name:  "versions after a tombstone are read again",
			steps: []step{prof("c1", "01:00", tier("gold")), tombstone("c1"), prof("c1", "01:00", tier("gold")), buy("c1", "03:00")},
			want:  []string{"gold/c1@" + o("03:00")},
		},
		{
			name: "a version read after a record was decided changes nothing for it, and counts for later records",
			steps: []step{buy("c1", "02:00"), prof("c1", "01:00", tier("gold")),
				buy("c2", "02:10"), prof("c2", "01:00", tier("gold")), ev("purchase", "c1", "02:30")},
			want: []string{"gold/c1@" + o("02:30")},
		},
		{
			name:  "receipts read the profile of their customer too",
			steps: []step{prof("c1", "01:00", tier("gold")), rc("m1", "c1", "hard_bounce", "02:00")},
			want:  []string{"bounces/c1@" + o("02:00")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, firings(run(t, profileRules, tc.steps...)))
		})
	}
}

// TestProfilesNeverLateNorWatermark: profiles take part in the merge but
// never move the watermark and are never refused as late (SPEC §1.3).
func TestProfilesNeverLateNorWatermark(t *testing.T) {
	e := newEngine(t, profileRules)
	require.NoError(t, e.Customer(&ingest.Customer{CustomerID: "c1", Tenant: "acme", UpdatedAt: base.Add(48 * time.Hour), Tier: "gold"}))
	e.AdvanceFromEvents()
	require.True(t, e.Watermark().IsZero(), "a profile does not move the watermark")
	require.True(t, e.MaxEventTime().IsZero())

	e.Advance(base.Add(10 * time.Hour))
	require.NoError(t, e.Customer(&ingest.Customer{CustomerID: "c2", Tenant: "acme", UpdatedAt: base, Tier: "gold"}),
		"a profile far behind the watermark is accepted")
	require.Equal(t, processor.Stats{Customers: 2}, e.Stats())
	require.Equal(t, "gold", e.Profile("acme", "c2", base.Add(11*time.Hour)).Tier)
	require.Nil(t, e.Profile("other", "c2", base.Add(11*time.Hour)), "profiles belong to (tenant, customer_id)")
	require.Equal(t, 2, e.StateKeys(), "profiles are counted in the state keys")
	e.DropCustomer("c2")
	require.Equal(t, 1, e.StateKeys())
}

// TestCustomerGroupBy: customer.f in group_by gives label f, and unknown
// is a value like any other.
func TestCustomerGroupBy(t *testing.T) {
	out := run(t, `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - {name: visits, kind: event, source: interactions, match: {type: [visit]}, group_by: [tenant, customer.account_manager], lasts: 1h}
`, prof("c1", "01:00", am("am1@example.com")), prof("c2", "01:00", am("am1@example.com")),
		ev("visit", "c1", "02:00"), ev("visit", "c2", "02:10"), ev("visit", "c3", "02:20"), wm("05:00"))
	type got struct{ State, Manager string }
	var gs []got
	for _, a := range out.Alerts {
		require.NotContains(t, a.Labels, "customer.account_manager")
		gs = append(gs, got{a.State, a.Labels["account_manager"]})
	}
	require.Equal(t, []got{{"firing", "am1@example.com"}, {"firing", "unknown"}, {"resolved", "am1@example.com"}, {"resolved", "unknown"}}, gs)
	require.Equal(t, 2.0, out.Alerts[2].Value, "c1 and c2 share their manager's group")
}

const labelRules = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - name: churn
    kind: inactivity
    source: interactions
    match: {type: [login]}
    key: [tenant, customer_id]
    idle_for: 2h
    customer_labels: [account_manager, tier, attributes.contract]
    labels: {team: crm}
    annotations: {summary: "tell {{ .Labels.account_manager }}"}
  - name: untenanted
    kind: inactivity
    source: interactions
    match: {type: [visit]}
    key: [customer_id]
    idle_for: 2h
    customer_labels: [account_manager]
`

func TestCustomerLabels(t *testing.T) {
	type lab struct {
		State  string
		Labels map[string]string
	}
	std := func(extra map[string]string) map[string]string {
		l := map[string]string{"alertname": "churn", "tenant": "acme", "customer_id": "c1", "team": "crm"}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	tests := []struct {
		name  string
		steps []step
		want  []lab
	}{
		{
			name: "a firing record gets the fields of the version current at its starts_at",
			steps: []step{ev("login", "c1", "10:00"), prof("c1", "09:00", am("old@x")), prof("c1", "11:00", am("am1@x"), tier("gold"), pattr("contract", "k-7")),
				prof("c1", "13:00", am("later@x")), wm("12:00")},
			want: []lab{{"firing", std(map[string]string{"account_manager": "am1@x", "tier": "gold", "contract": "k-7"})}},
		},
		{
			name:  "a missing or unknown field gives no label",
			steps: []step{ev("login", "c1", "10:00"), prof("c1", "09:00", am("am1@x")), wm("12:00")},
			want:  []lab{{"firing", std(map[string]string{"account_manager": "am1@x"})}},
		},
		{
			name:  "no profile gives no label",
			steps: []step{ev("login", "c1", "10:00"), wm("12:00")},
			want:  []lab{{"firing", std(nil)}},
		},
		{
			name: "a resolved record carries exactly the labels of the firing record it resolves",
			steps: []step{prof("c1", "09:00", am("am1@x"), tier("gold")), ev("login", "c1", "10:00"), wm("12:00"),
				prof("c1", "12:30", am("am2@x")), ev("login", "c1", "13:00")},
			want: []lab{{"firing", std(map[string]string{"account_manager": "am1@x", "tier": "gold"})},
				{"resolved", std(map[string]string{"account_manager": "am1@x", "tier": "gold"})}},
		},
		{
			name: "the next firing reads the profile afresh",
			steps: []step{prof("c1", "09:00", am("am1@x")), ev("login", "c1", "10:00"), wm("12:00"),
				prof("c1", "12:30", am("am2@x")), ev("login", "c1", "13:00"), wm("15:00")},
			want: []lab{{"firing", std(map[string]string{"account_manager": "am1@x"})},
				{"resolved", std(map[string]string{"account_manager": "am1@x"})},
				{"firing", std(map[string]string{"account_manager": "am2@x"})}},
		},
		{
			name:  "a key without tenant reads the default tenant's profile",
			steps: []step{prof("c9", "09:00", am("am1@x"), tenant("default")), ev("visit", "c9", "10:00"), wm("12:00")},
			want:  []lab{{"firing", map[string]string{"alertname": "untenanted", "customer_id": "c9", "account_manager": "am1@x"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, labelRules, tc.steps...)
			var got []lab
			for _, a := range out.Alerts {
				got = append(got, lab{a.State, a.Labels})
				require.Equal(t, processor.Fingerprint(a.Labels), a.Fingerprint, "the fingerprint covers the customer labels")
			}
			require.Equal(t, tc.want, got)
		})
	}

	out := run(t, labelRules, prof("c1", "09:00", am("am1@x")), ev("login", "c1", "10:00"), wm("12:00"), ev("login", "c1", "13:00"))
	require.Len(t, out.Alerts, 2)
	require.Equal(t, "tell am1@x", out.Alerts[0].Annotations["summary"], "annotations see the customer labels")
	require.Equal(t, out.Alerts[0].Fingerprint, out.Alerts[1].Fingerprint, "firing and resolved are one alert")
}

// TestProfilesFromRecords: the group stage's engine reads the profile the
// partition engine attached, and does not look it up in its own store.
func TestProfilesFromRecords(t *testing.T) {
	f := newEngine(t, profileRules).Rules()
	e, err := processor.New(processor.Config{Rules: f, ProfilesFromRecords: true})
	require.NoError(t, err)
	require.NoError(t, e.Customer(&ingest.Customer{CustomerID: "c2", Tenant: "acme", UpdatedAt: base, Tier: "gold"}))
	carried := &ingest.Interaction{EventID: "e1", Type: "purchase", CustomerID: "c1", Tenant: "acme", OccurredAt: base.Add(time.Hour),
		Profile: &ingest.Profile{Tenant: "acme", Tier: "gold"}}
	own := &ingest.Interaction{EventID: "e2", Type: "purchase", CustomerID: "c2", Tenant: "acme", OccurredAt: base.Add(time.Hour)}
	require.NoError(t, e.Interaction(carried))
	require.NoError(t, e.Interaction(own))
	require.Equal(t, []string{"gold/c1@" + o("1h")}, firings(e.Output()))
}
