package rules

import (
	"testing"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/stretchr/testify/require"
)

const digestHead = "version: 1\nrules:\n  - {name: churn, kind: inactivity, source: interactions, key: [tenant, customer_id], idle_for: 1h}\ndigests:\n"

func TestParseRefusesBadDigests(t *testing.T) {
	ok := `schedule: {every: day, at: "09:00"}, group_by: [tenant]`
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown field", digestHead + "  - {name: d, " + ok + ", alerts: [churn], colour: red}\n", []string{`digest "d"`, "field colour: unknown field"}},
		{"missing schedule", digestHead + "  - {name: d, group_by: [tenant], alerts: [churn]}\n", []string{`digest "d"`, "field schedule", "missing"}},
		{"unknown schedule field", digestHead + "  - {name: d, schedule: {every: day, at: '09:00', when: x}, group_by: [tenant], alerts: [churn]}\n", []string{`digest "d"`, "schedule", "field when: unknown field"}},
		{"bad period", digestHead + "  - {name: d, schedule: {every: year, at: '09:00'}, group_by: [tenant], alerts: [churn]}\n", []string{`digest "d"`, "field schedule.every", `"year"`}},
		{"missing period", digestHead + "  - {name: d, schedule: {at: '09:00'}, group_by: [tenant], alerts: [churn]}\n", []string{"field schedule.every", "missing"}},
		{"bad time of day", digestHead + "  - {name: d, schedule: {every: day, at: '9am'}, group_by: [tenant], alerts: [churn]}\n", []string{`digest "d"`, "field schedule.at", `"9am"`}},
		{"missing time of day", digestHead + "  - {name: d, schedule: {every: day}, group_by: [tenant], alerts: [churn]}\n", []string{"field schedule.at", "missing"}},
		{"bad zone", digestHead + "  - {name: d, schedule: {every: day, at: '09:00', timezone: Mars/Olympus}, group_by: [tenant], alerts: [churn]}\n", []string{`digest "d"`, "field schedule.timezone", "Mars/Olympus"}},
		{"unknown group field", digestHead + "  - {name: d, " + ok[:len(ok)-len("[tenant]")] + "[colour], alerts: [churn]}\n", []string{`digest "d"`, "field group_by", `"colour"`}},
		{"bad customer field", digestHead + "  - {name: d, schedule: {every: day, at: '09:00'}, group_by: [customer.shoe_size], alerts: [churn]}\n", []string{`digest "d"`, "field group_by", "shoe_size"}},
		{"two paths give one label", digestHead + "  - {name: d, schedule: {every: day, at: '09:00'}, group_by: [segment, customer.segment], alerts: [churn]}\n", []string{`digest "d"`, "field group_by", `label "segment"`}},
		{"unknown rule in alerts", digestHead + "  - {name: d, " + ok + ", alerts: [churn, nope]}\n", []string{`digest "d"`, "field alerts[1]", `no rule named "nope"`}},
		{"nothing to report", digestHead + "  - {name: d, " + ok + "}\n", []string{`digest "d"`, "must report something"}},
		{"bad name", digestHead + "  - {name: Daily, " + ok + ", alerts: [churn]}\n", []string{`digest "Daily"`, "field name"}},
		{"duplicate name", digestHead + "  - {name: d, " + ok + ", alerts: [churn]}\n  - {name: d, " + ok + ", alerts: [churn]}\n", []string{`digest "d"`, "duplicate digest name"}},
		{"metric without name", digestHead + "  - {name: d, " + ok + ", metrics: [{source: interactions, value: count}]}\n", []string{`digest "d"`, "field metrics[0].name", "missing"}},
		{"duplicate metric", digestHead + "  - {name: d, " + ok + ", metrics: [{name: n, source: interactions, value: count}, {name: n, source: receipts, value: count}]}\n", []string{"field metrics[1].name", "duplicate metric"}},
		{"metric bad source", digestHead + "  - {name: d, " + ok + ", metrics: [{name: n, source: customers, value: count}]}\n", []string{`digest "d"`, "field metrics[0].source", `"customers"`}},
		{"metric bad value", digestHead + "  - {name: d, " + ok + ", metrics: [{name: n, source: interactions, value: avg(amount)}]}\n", []string{`digest "d"`, "field metrics[0].value", "avg(amount)"}},
		{"metric missing value", digestHead + "  - {name: d, " + ok + ", metrics: [{name: n, source: interactions}]}\n", []string{"field metrics[0].value", "missing"}},
		{"metric sum of text", digestHead + "  - {name: d, " + ok + ", metrics: [{name: n, source: interactions, value: sum(region)}]}\n", []string{"field metrics[0].value", "not numeric"}},
		{"metric bad match", digestHead + "  - {name: d, " + ok + ", metrics: [{name: n, source: receipts, match: {type: [purchase]}, value: count}]}\n", []string{"field metrics[0].match", `"type" for source receipts`}},
		{"metric unknown field", digestHead + "  - {name: d, " + ok + ", metrics: [{name: n, source: receipts, value: count, filter: x}]}\n", []string{"metrics #1", "field filter: unknown field"}},
		{"segment set without a segments section", digestHead + "  - {name: d, " + ok + ", segments: lifecycle}\n", []string{`digest "d"`, "field segments", `no segment set named "lifecycle"`}},
		{"segment set not in the file", "version: 1\nsegments:\n  - {name: lifecycle}\ndigests:\n  - {name: d, " + ok + ", segments: value_tiers}\n", []string{`digest "d"`, "field segments", `"value_tiers"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseCompilesDigests(t *testing.T) {
	f, err := Parse([]byte(`
version: 1
defaults: {timezone: America/New_York}
rules:
  - {name: churn, kind: inactivity, source: interactions, key: [tenant, customer_id], idle_for: 1h}
segments:
  - {name: lifecycle, key: [tenant, customer_id], classes: [{name: new, tenure_under: 30d}, {name: churned}]}
digests:
  - name: d
    schedule: {every: week, at: "07:30"}
    group_by: [tenant, customer.account_manager, type]
    alerts: [churn]
    segments: lifecycle
    metrics:
      - {name: revenue, source: interactions, match: {type: [purchase, refund]}, value: sum(amount)}
      - {name: senders, source: receipts, value: distinct(customer_id)}
`))
	require.NoError(t, err)
	require.Len(t, f.Digests, 1)
	d := f.Digests[0]
	require.Equal(t, "America/New_York", d.Schedule.Location.String(), "the zone defaults to defaults.timezone")
	require.Equal(t, 7*60+30, d.Schedule.AtMin)
	require.Equal(t, "lifecycle", d.Segments)
	require.Len(t, d.Fields, 3)
	require.Equal(t, []string{"tenant", "account_manager", "type"}, []string{d.Fields[0].Label, d.Fields[1].Label, d.Fields[2].Label})
	require.True(t, d.Fields[1].Customer)
	require.NotNil(t, d.Fields[1].Profile)

	rc := Event{R: &ingest.Receipt{Tenant: "acme", Profile: &ingest.Profile{AccountManager: "am@x"}}}
	require.Equal(t, "acme", d.Fields[0].Value(rc))
	require.Equal(t, "am@x", d.Fields[1].Value(rc))
	require.Equal(t, ingest.UnknownDim, d.Fields[2].Value(rc), "type does not exist on receipts: unknown")
	in := Event{I: &ingest.Interaction{Tenant: "acme", Type: "refund", Amount: 5}}
	require.Equal(t, ingest.UnknownDim, d.Fields[1].Value(in), "no profile reads unknown")
	require.Equal(t, "refund", d.Fields[2].Value(in))
	require.Equal(t, -5.0, d.Metrics[0].Agg.Num(in), "refunds subtract in sum(amount)")
	require.Equal(t, "distinct", d.Metrics[1].Agg.Op)
	require.True(t, d.Metrics[0].Matcher.Match(in))
}
