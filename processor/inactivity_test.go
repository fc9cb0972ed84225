package processor_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

const churnRules = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - name: churn
    kind: inactivity
    source: interactions
    match: {type: [login, purchase]}
    severity: warning
    labels: {team: retention}
    annotations: {summary: "{{ .Labels.customer_id }} idle {{ .Value }}s"}
    key: [tenant, customer_id]
    idle_for: 2h
`

func TestInactivity(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []brief
	}{
		{
			name:  "fires when the watermark passes last activity plus idle_for",
			steps: []step{ev("login", "c1", "10:00"), wm("11:59"), wm("12:00")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("12:00"), Value: 7200}},
		},
		{
			name:  "does not fire before the deadline",
			steps: []step{ev("login", "c1", "10:00"), wm("11:59")},
		},
		{
			name:  "a newer event pushes the deadline",
			steps: []step{ev("login", "c1", "10:00"), ev("login", "c1", "11:00"), wm("12:30"), wm("13:00")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("13:00"), Value: 7200}},
		},
		{
			name:  "an out-of-order older event does not move last activity back",
			steps: []step{ev("login", "c1", "11:00"), ev("login", "c1", "10:00"), wm("12:30"), wm("13:00")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("13:00"), Value: 7200}},
		},
		{
			name:  "non-matching events are not activity",
			steps: []step{ev("login", "c1", "10:00"), ev("visit", "c1", "11:00"), wm("12:00")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("12:00"), Value: 7200}},
		},
		{
			name:  "a later matching event resolves, ends_at is its time, value the idle seconds",
			steps: []step{ev("login", "c1", "10:00"), wm("12:00"), ev("purchase", "c1", "13:00")},
			want: []brief{
				{State: "firing", Key: "c1", Starts: o("12:00"), Value: 7200},
				{State: "resolved", Key: "c1", Starts: o("12:00"), Ends: o("13:00"), Value: 10800},
			},
		},
		{
			name:  "fires at most once per idle period",
			steps: []step{ev("login", "c1", "10:00"), wm("12:00"), wm("20:00"), wm("30h")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("12:00"), Value: 7200}},
		},
		{
			name:  "a new idle period after resolving fires again",
			steps: []step{ev("login", "c1", "10:00"), wm("12:00"), ev("login", "c1", "13:00"), wm("15:00")},
			want: []brief{
				{State: "firing", Key: "c1", Starts: o("12:00"), Value: 7200},
				{State: "resolved", Key: "c1", Starts: o("12:00"), Ends: o("13:00"), Value: 10800},
				{State: "firing", Key: "c1", Starts: o("15:00"), Value: 7200},
			},
		},
		{
			name:  "a watermark jump fires every key in order of their deadlines",
			steps: []step{ev("login", "c2", "10:30"), ev("login", "c1", "10:00"), ev("login", "c3", "11:00"), wm("20:00")},
			want: []brief{
				{State: "firing", Key: "c1", Starts: o("12:00"), Value: 7200},
				{State: "firing", Key: "c2", Starts: o("12:30"), Value: 7200},
				{State: "firing", Key: "c3", Starts: o("13:00"), Value: 7200},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, churnRules, tc.steps...)
			require.Equal(t, tc.want, briefs(out, "customer_id"))
		})
	}
}

func TestInactivityAlertRecord(t *testing.T) {
	out := run(t, churnRules, ev("login", "c1", "10:00"), wm("12:00"))
	require.Len(t, out.Alerts, 1)
	a := out.Alerts[0]
	require.Equal(t, "churn", a.Rule)
	require.Equal(t, "inactivity", a.Kind)
	require.Equal(t, "warning", a.Severity)
	require.Equal(t, map[string]string{"alertname": "churn", "tenant": "acme", "customer_id": "c1", "team": "retention"}, a.Labels)
	require.Equal(t, "c1 idle 7200s", a.Annotations["summary"])
	require.Equal(t, 7200.0, a.Threshold)
	require.Nil(t, a.EndsAt)
	require.Len(t, a.Fingerprint, 16)
	// The fingerprint depends only on the labels: the resolved record shares it.
	out2 := run(t, churnRules, ev("login", "c1", "10:00"), wm("12:00"), ev("login", "c1", "12:30"))
	require.Equal(t, a.Fingerprint, out2.Alerts[1].Fingerprint)
	other := run(t, churnRules, ev("login", "c2", "10:00"), wm("12:00"))
	require.NotEqual(t, a.Fingerprint, other.Alerts[0].Fingerprint)
}

// TestInactivityEdges puts events and watermarks exactly on the documented
// edges (README "Semantics we chose"): a timer due at T fires when the
// watermark reaches T, not a second before; an event at the watermark is
// not late; an event at the deadline itself is newer activity.
func TestInactivityEdges(t *testing.T) {
	const pendingRules = `
version: 1
defaults: {allowed_lateness: 0s}
rules:
  - name: churn
    kind: inactivity
    source: interactions
    match: {type: [login]}
    key: [tenant, customer_id]
    idle_for: 2h
    for: 30m
`
	tests := []struct {
		name  string
		rules string
		steps []step
		want  []brief
	}{
		{
			name:  "one second before last activity plus idle_for nothing fires",
			rules: churnRules,
			steps: []step{ev("login", "c1", "10:00"), wm("11h59m59s")},
		},
		{
			name:  "the watermark exactly at last activity plus idle_for fires",
			rules: churnRules,
			steps: []step{ev("login", "c1", "10:00"), wm("11h59m59s"), wm("12:00")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("12:00"), Value: 7200}},
		},
		{
			name:  "an event exactly at the deadline is newer activity and moves it",
			rules: churnRules,
			steps: []step{ev("login", "c1", "10:00"), ev("login", "c1", "12:00"), wm("12:00"), wm("13h59m59s"), wm("14:00")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("14:00"), Value: 7200}},
		},
		{
			name:  "an event exactly at the watermark is not late and resolves at its time",
			rules: churnRules,
			steps: []step{ev("login", "c1", "10:00"), wm("12:00"), ev("login", "c1", "12:00")},
			want: []brief{
				{State: "firing", Key: "c1", Starts: o("12:00"), Value: 7200},
				{State: "resolved", Key: "c1", Starts: o("12:00"), Ends: o("12:00"), Value: 7200},
			},
		},
		{
			name:  "an event one second before the watermark is late and changes nothing",
			rules: churnRules,
			steps: []step{ev("login", "c1", "10:00"), wm("12:00"), late(ev("login", "c1", "11h59m59s"))},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("12:00"), Value: 7200}},
		},
		{
			name:  "with for, one second before idle_for plus for nothing fires",
			rules: pendingRules,
			steps: []step{ev("login", "c1", "10:00"), wm("12:00"), wm("12h29m59s")},
		},
		{
			name:  "with for, the watermark exactly at idle_for plus for fires, starting when the idleness began",
			rules: pendingRules,
			steps: []step{ev("login", "c1", "10:00"), wm("12h29m59s"), wm("12:30")},
			want:  []brief{{State: "firing", Key: "c1", Starts: o("12:00"), Value: 9000}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, tc.rules, tc.steps...)
			require.Equal(t, tc.want, briefs(out, "customer_id"))
		})
	}
}

// Group keys are kept whole however long they are: one long customer id is
// one tracked key (firing once), and two that share their first 64 KiB (the
// length keys used to be cut at) are two. A snapshot keeps them whole too.
func TestInactivityLongKeys(t *testing.T) {
	prefix := strings.Repeat("c", 70<<10)
	alice, bob := prefix+"-alice", prefix+"-bob"
	names := map[string]string{alice: "alice", bob: "bob"}
	short := func(bs []brief) []brief {
		for i := range bs {
			bs[i].Key = names[bs[i].Key]
		}
		return bs
	}
	steps := []step{ev("login", alice, "10:00"), ev("login", bob, "10:30"), ev("login", alice, "11:00"), ev("login", alice, "11:30")}
	want := []brief{
		{State: "firing", Key: "bob", Starts: o("12:30"), Value: 7200},
		{State: "firing", Key: "alice", Starts: o("13:30"), Value: 7200},
	}
	out := run(t, churnRules, append(steps, wm("20:00"))...)
	require.Equal(t, want, short(briefs(out, "customer_id")))

	f, err := rules.Parse([]byte(churnRules))
	require.NoError(t, err)
	e1, err := processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	for _, s := range steps {
		require.NoError(t, e1.Interaction(s.i))
	}
	require.Equal(t, 2, e1.StateKeys()-e1.DedupKeys(), "one tracked key per customer")
	snap, err := e1.Snapshot()
	require.NoError(t, err)
	e2, err := processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	require.NoError(t, e2.Restore(snap))
	e2.Advance(mustAt("20:00"))
	require.Equal(t, want, short(briefs(e2.Output(), "customer_id")))
}
