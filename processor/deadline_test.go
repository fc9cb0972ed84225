package processor_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

// base is 2026-11-02T00:00Z, so an invoice due "2026-11-12T00:00:00Z" is
// due at offset 10d.
const deadlineRules = `
version: 1
defaults: {timezone: Asia/Shanghai, allowed_lateness: 1h}
rules:
  - name: invoice
    kind: deadline
    source: interactions
    severity: info
    start: {type: [invoice_issued]}
    stop: {type: [invoice_paid]}
    correlate: [tenant, customer_id, attributes.invoice_id]
    due: attributes.due_at
    stages:
      - {name: upcoming, at: -3d}
      - {name: due, at: 0s, severity: warning}
      - {name: overdue, at: 7d, severity: critical}
    annotations: {summary: "due {{ .Due }} for {{ .Labels.account_manager }}"}
    customer_labels: [account_manager]
  - name: task
    kind: deadline
    source: interactions
    start: {type: [task_created]}
    stop: {type: [task_done]}
    correlate: [tenant, customer_id]
    due_after: 2h
    stages:
      - {name: due, at: 0s}
      - {name: late, at: 1h}
`

func TestDeadline(t *testing.T) {
	issue := func(when, due string) step {
		return ev("invoice_issued", "c1", when, attr("invoice_id", "i1"), attr("due_at", due))
	}
	paid := func(when string) step { return ev("invoice_paid", "c1", when, attr("invoice_id", "i1")) }
	const due10 = "2026-11-12T00:00:00Z"
	const d = 24 * 3600.0
	tests := []struct {
		name  string
		steps []step
		want  []brief
	}{
		{
			name:  "each stage fires at due + at, and the previous stage resolves at the same instant",
			steps: []step{issue("00:00", due10), wm("7d"), wm("10d"), wm("17d")},
			want: []brief{
				{State: "firing", Key: "upcoming", Starts: o("7d"), Value: -3 * d},
				{State: "resolved", Key: "upcoming", Starts: o("7d"), Ends: o("10d"), Value: -3 * d},
				{State: "firing", Key: "due", Starts: o("10d"), Value: 0},
				{State: "resolved", Key: "due", Starts: o("10d"), Ends: o("17d"), Value: 0},
				{State: "firing", Key: "overdue", Starts: o("17d"), Value: 7 * d},
			},
		},
		{
			name:  "nothing fires before the watermark passes a stage instant",
			steps: []step{issue("00:00", due10), wm("6d23h59m")},
		},
		{
			name:  "a stop resolves the firing stage at its occurred_at and closes the deadline: no later stage fires",
			steps: []step{issue("00:00", due10), wm("7d"), paid("8d"), wm("30d")},
			want: []brief{
				{State: "firing", Key: "upcoming", Starts: o("7d"), Value: -3 * d},
				{State: "resolved", Key: "upcoming", Starts: o("7d"), Ends: o("8d"), Value: -3 * d},
			},
		},
		{
			name:  "a stop before the first stage closes it without an alert",
			steps: []step{issue("00:00", due10), paid("1d"), wm("30d")},
		},
		{
			name:  "stage instants earlier than the start do not fire, except the latest, at the start's occurred_at",
			steps: []step{issue("11d", due10), wm("11d"), wm("17d")},
			want: []brief{
				{State: "firing", Key: "due", Starts: o("11d"), Value: 0},
				{State: "resolved", Key: "due", Starts: o("11d"), Ends: o("17d"), Value: 0},
				{State: "firing", Key: "overdue", Starts: o("17d"), Value: 7 * d},
			},
		},
		{
			name:  "a deadline entered after its last stage starts in it",
			steps: []step{issue("20d", due10), wm("40d")},
			want:  []brief{{State: "firing", Key: "overdue", Starts: o("20d"), Value: 7 * d}},
		},
		{
			name:  "records take effect in time order: a stop that arrives before its earlier start still closes it",
			steps: []step{paid("00:30"), issue("00:10", due10), wm("30d")},
		},
		{
			name:  "a stop earlier than the start does not correlate",
			steps: []step{issue("00:30", due10), paid("00:10"), wm("7d")},
			want:  []brief{{State: "firing", Key: "upcoming", Starts: o("7d"), Value: -3 * d}},
		},
		{
			name:  "a stop at a stage's instant closes the deadline before that stage fires",
			steps: []step{issue("00:00", due10), wm("7d"), paid("10d"), wm("30d")},
			want: []brief{
				{State: "firing", Key: "upcoming", Starts: o("7d"), Value: -3 * d},
				{State: "resolved", Key: "upcoming", Starts: o("7d"), Ends: o("10d"), Value: -3 * d},
			},
		},
		{
			name:  "a date due is 00:00 that day in the customer's timezone",
			steps: []step{prof("c1", "00:00", zone("Europe/Paris")), issue("00:00", "2026-11-12"), wm("9d23h")},
			want:  []brief{{State: "firing", Key: "upcoming", Starts: o("6d23h"), Value: -3 * d}, {State: "resolved", Key: "upcoming", Starts: o("6d23h"), Ends: o("9d23h"), Value: -3 * d}, {State: "firing", Key: "due", Starts: o("9d23h"), Value: 0}},
		},
		{
			name:  "without a profile timezone, a date is 00:00 in defaults.timezone",
			steps: []step{issue("00:00", "2026-11-12"), wm("6d16h")},
			want:  []brief{{State: "firing", Key: "upcoming", Starts: o("6d16h"), Value: -3 * d}},
		},
		{
			name:  "a start whose due is missing or unparsable is ignored",
			steps: []step{ev("invoice_issued", "c1", "00:00", attr("invoice_id", "i1")), ev("invoice_issued", "c1", "00:01", attr("invoice_id", "i2"), attr("due_at", "soon")), wm("30d")},
		},
		{
			name:  "a new start that puts the deadline in the stage already firing: that alert goes on firing",
			steps: []step{issue("00:00", due10), wm("7d"), issue("8d", "2026-11-12T12:00:00Z"), wm("10d"), wm("10d12h")},
			want: []brief{
				{State: "firing", Key: "upcoming", Starts: o("7d"), Value: -3 * d},
				{State: "resolved", Key: "upcoming", Starts: o("7d"), Ends: o("10d12h"), Value: -3 * d},
				{State: "firing", Key: "due", Starts: o("10d12h"), Value: 0},
			},
		},
		{
			name:  "otherwise the firing stage resolves at the new start's occurred_at, and the new one's stage fires then",
			steps: []step{issue("00:00", due10), wm("7d"), issue("8d", "2026-11-07T00:00:00Z"), wm("8d"), wm("12d")},
			want: []brief{
				{State: "firing", Key: "upcoming", Starts: o("7d"), Value: -3 * d},
				{State: "resolved", Key: "upcoming", Starts: o("7d"), Ends: o("8d"), Value: -3 * d},
				{State: "firing", Key: "due", Starts: o("8d"), Value: 0},
				{State: "resolved", Key: "due", Starts: o("8d"), Ends: o("12d"), Value: 0},
				{State: "firing", Key: "overdue", Starts: o("12d"), Value: 7 * d},
			},
		},
		{
			name:  "a new start with a later due resolves the firing stage and waits for its own",
			steps: []step{issue("00:00", due10), wm("7d"), issue("8d", "2026-11-22T00:00:00Z"), wm("16d"), wm("17d")},
			want: []brief{
				{State: "firing", Key: "upcoming", Starts: o("7d"), Value: -3 * d},
				{State: "resolved", Key: "upcoming", Starts: o("7d"), Ends: o("8d"), Value: -3 * d},
				{State: "firing", Key: "upcoming", Starts: o("17d"), Value: -3 * d},
			},
		},
		{
			name:  "a start earlier than the open deadline's start is ignored (in time order, it came first)",
			steps: []step{issue("00:30", due10), issue("00:10", "2026-11-30T00:00:00Z"), wm("7d")},
			want:  []brief{{State: "firing", Key: "upcoming", Starts: o("7d"), Value: -3 * d}},
		},
		{
			name:  "due_after: the due time is the start's occurred_at + due_after",
			steps: []step{ev("task_created", "c2", "01:00"), wm("03:00"), wm("04:00")},
			want: []brief{
				{State: "firing", Key: "due", Starts: o("03:00"), Value: 0},
				{State: "resolved", Key: "due", Starts: o("03:00"), Ends: o("04:00"), Value: 0},
				{State: "firing", Key: "late", Starts: o("04:00"), Value: 3600},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, deadlineRules, tc.steps...)
			require.Equal(t, tc.want, briefs(out, "stage"))
			for _, a := range out.Alerts {
				require.Equal(t, "deadline", a.Kind)
				require.Zero(t, a.Threshold)
				require.Nil(t, a.WindowStart)
				require.Nil(t, a.WindowEnd)
			}
		})
	}
}

func TestDeadlineRecords(t *testing.T) {
	out := run(t, deadlineRules, prof("c1", "00:00", am("am1@x")),
		ev("invoice_issued", "c1", "00:00", attr("invoice_id", "i1"), attr("due_at", "2026-11-12T08:00:00+08:00")), wm("10d"))
	require.Len(t, out.Alerts, 3)
	up, due := out.Alerts[0], out.Alerts[2]
	require.Equal(t, "info", up.Severity, "a stage without severity has the rule's")
	require.Equal(t, "warning", due.Severity, "a stage's own severity wins")
	require.Equal(t, map[string]string{"alertname": "invoice", "tenant": "acme", "customer_id": "c1", "invoice_id": "i1",
		"stage": "upcoming", "account_manager": "am1@x"}, up.Labels)
	require.Equal(t, "due 2026-11-12T00:00:00Z for am1@x", up.Annotations["summary"], "{{ .Due }} is the due time in RFC 3339 UTC")
	require.Equal(t, up.Labels, out.Alerts[1].Labels, "the resolved stage carries the firing labels")
	require.NotEqual(t, up.Fingerprint, due.Fingerprint, "each stage is its own alert")

	e := newEngine(t, deadlineRules)
	require.NoError(t, e.Interaction(&ingest.Interaction{EventID: "x", Type: "invoice_issued", CustomerID: "c1", Tenant: "acme", OccurredAt: base,
		Attributes: map[string]string{"invoice_id": "i1", "due_at": "next week"}}))
	require.Equal(t, int64(1), e.Stats().Ignored, "an unparsable due is counted")
	require.Equal(t, processor.Stats{Interactions: 1, Ignored: 1}, e.Stats())
}
