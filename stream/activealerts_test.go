package stream

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

func testAlert(rule, customer, state string, at time.Time) processor.Alert {
	labels := map[string]string{"alertname": rule, "customer_id": customer}
	a := processor.Alert{Fingerprint: processor.Fingerprint(labels), Rule: rule, State: state, Labels: labels,
		Annotations: map[string]string{"summary": customer}, StartsAt: at}
	if state == processor.StateResolved {
		ends := at.Add(time.Hour)
		a.EndsAt = &ends
	}
	return a
}

func fingerprints(as []processor.Alert) []string {
	out := make([]string, len(as))
	for i := range as {
		out[i] = as[i].Labels["alertname"] + "/" + as[i].Labels["customer_id"]
	}
	return out
}

func TestActiveAlertsFollowEveryEmittedStateChange(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newActiveAlerts("7")
	out := &processor.Output{Alerts: []processor.Alert{
		testAlert("churn", "c1", processor.StateFiring, at),
		testAlert("churn", "c2", processor.StateFiring, at),
		testAlert("churn", "c3", processor.StateFiring, at),
	}}
	ctx := s.observe(context.Background(), out)
	require.Equal(t, "7", OutputOwner(ctx), "the sinks learn whose output it is")
	require.Equal(t, "", OutputOwner(context.Background()))
	// The engine reuses its output: the set keeps copies.
	out.Alerts[0].Labels["customer_id"] = "changed"
	out.Alerts[0].StartsAt = at.Add(time.Minute)

	out = &processor.Output{Alerts: []processor.Alert{
		testAlert("churn", "c2", processor.StateResolved, at),
		testAlert("churn", "c3", processor.StateFiring, at.Add(time.Hour)), // fired again: the last record counts
		testAlert("churn", "c4", processor.StateResolved, at),              // never seen firing
	}}
	s.observe(context.Background(), out)
	got := s.list()
	require.Equal(t, []string{"churn/c1", "churn/c3"}, sortedNames(got))
	for _, a := range got {
		if a.Labels["customer_id"] == "c1" {
			require.Equal(t, at, a.StartsAt)
		} else {
			require.Equal(t, at.Add(time.Hour), a.StartsAt)
		}
	}

	ctx = context.Background()
	require.Equal(t, ctx, s.observe(ctx, &processor.Output{}), "output without alerts keeps the context as it is")
}

func sortedNames(as []processor.Alert) []string {
	n := fingerprints(as)
	slices.Sort(n)
	return n
}

func TestActiveAlertsRoundTripThroughACheckpoint(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rf := &rules.File{Rules: []*rules.Rule{{Name: "churn"}, {Name: "complaints"}}}
	tests := []struct {
		name  string
		alert []processor.Alert
		rules *rules.File
		want  []string
	}{
		{"an empty set is stored as nothing", nil, rf, []string{}},
		{"every firing alert comes back", []processor.Alert{
			testAlert("churn", "c1", processor.StateFiring, at),
			testAlert("complaints", "c2", processor.StateFiring, at),
		}, rf, []string{"churn/c1", "complaints/c2"}},
		{"alerts of rules that were removed are dropped", []processor.Alert{
			testAlert("churn", "c1", processor.StateFiring, at),
			testAlert("gone", "c2", processor.StateFiring, at),
		}, rf, []string{"churn/c1"}},
		{"without rules nothing is restored", []processor.Alert{
			testAlert("churn", "c1", processor.StateFiring, at),
		}, nil, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newActiveAlerts("groups")
			s.observe(context.Background(), &processor.Output{Alerts: tc.alert})
			b, err := s.marshal()
			require.NoError(t, err)
			if len(tc.alert) == 0 {
				require.Nil(t, b)
			}
			r := newActiveAlerts("groups")
			r.firing["stale"] = processor.Alert{Rule: "churn"}
			require.NoError(t, r.restore(b, tc.rules))
			require.Equal(t, tc.want, sortedNames(r.list()))
			for _, a := range r.list() {
				require.Equal(t, processor.Fingerprint(a.Labels), a.Fingerprint)
				require.Equal(t, a.Labels["customer_id"], a.Annotations["summary"])
			}
		})
	}
}

func TestActiveAlertsRestoreFromASnapshotWithoutThem(t *testing.T) {
	s := newActiveAlerts("0")
	s.firing["x"] = processor.Alert{Rule: "churn"}
	require.NoError(t, s.restore(nil, &rules.File{Rules: []*rules.Rule{{Name: "churn"}}}))
	require.Empty(t, s.list(), "a snapshot written before the set existed restores an empty set")
	require.ErrorContains(t, s.restore([]byte("not gob"), nil), "decoding the firing alerts of 0")
}

// stateSink records what an AlertStateSink is told.
type stateSink struct {
	OutputSink
	calls []string
}

func (s *stateSink) Assigned(owner string, firing []processor.Alert) {
	s.calls = append(s.calls, "assigned "+owner+" "+joinNames(firing))
}
func (s *stateSink) Revoked(owner string) { s.calls = append(s.calls, "revoked "+owner) }

func joinNames(as []processor.Alert) string {
	out := ""
	for _, n := range sortedNames(as) {
		out += n + ";"
	}
	return out
}

func TestActiveAlertsTellOnlySinksThatKeepAlertState(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newActiveAlerts("2")
	s.observe(context.Background(), &processor.Output{Alerts: []processor.Alert{testAlert("churn", "c1", processor.StateFiring, at)}})
	st := &stateSink{}
	sinks := []OutputSink{plainSink{}, st}
	s.assigned(sinks)
	s.revoked(sinks)
	require.Equal(t, []string{"assigned 2 churn/c1;", "revoked 2"}, st.calls)
}

type plainSink struct{}

func (plainSink) Write(context.Context, *processor.Output) error { return nil }
func (plainSink) Flush(context.Context) error                    { return nil }
