package followup

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func resend(msg string, attempt int, action string) *processor.Resend {
	return &processor.Resend{
		TriggerID: msg + "-" + string(rune('0'+attempt)), Action: action, Policy: "sms_retry",
		MessageID: msg, CustomerID: "c1", Tenant: "t1", Channel: "sms", Attempt: attempt,
		Reason: "soft_bounce", NotBefore: t0, CreatedAt: time.Now(),
	}
}

func receipt(msg string, attempt int, status string, at time.Duration) *ingest.Receipt {
	return &ingest.Receipt{
		ReceiptID: msg + status, MessageID: msg, CustomerID: "c1", Channel: "sms",
		Status: status, Attempt: attempt, Tenant: "t1", OccurredAt: t0.Add(at),
	}
}

// step is one input to a Tracker: a trigger, a receipt or a watermark.
type step struct {
	trigger *processor.Resend
	receipt *ingest.Receipt
	advance time.Duration // watermark t0+advance when > 0
}

func outcomes(evs []Event) []Outcome {
	var out []Outcome
	for _, e := range evs {
		out = append(out, e.Outcome)
	}
	return out
}

func TestTracker(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		want  []Outcome
	}{
		{
			name: "delivered, opened, clicked",
			steps: []step{
				{trigger: resend("m1", 2, processor.ActionResend)},
				{receipt: receipt("m1", 2, "sent", time.Minute)},
				{receipt: receipt("m1", 2, "delivered", 2*time.Minute)},
				{receipt: receipt("m1", 2, "opened", 3*time.Minute)},
				{receipt: receipt("m1", 2, "clicked", 4*time.Minute)},
				{advance: 100 * time.Hour},
			},
			want: []Outcome{OutcomeTriggered, OutcomeSent, OutcomeDelivered, OutcomeOpened, OutcomeClicked},
		},
		{
			name: "a click alone implies the funnel before it",
			steps: []step{
				{trigger: resend("m1", 2, processor.ActionResend)},
				{receipt: receipt("m1", 2, "clicked", time.Minute)},
				{receipt: receipt("m1", 2, "delivered", time.Minute)},
			},
			want: []Outcome{OutcomeTriggered, OutcomeSent, OutcomeDelivered, OutcomeOpened, OutcomeClicked},
		},
		{
			name: "receipts of other attempts and messages are not ours",
			steps: []step{
				{trigger: resend("m1", 2, processor.ActionResend)},
				{receipt: receipt("m1", 1, "delivered", time.Minute)},
				{receipt: receipt("m1", 3, "delivered", time.Minute)},
				{receipt: receipt("m2", 2, "delivered", time.Minute)},
			},
			want: []Outcome{OutcomeTriggered},
		},
		{
			name: "failed, then expired",
			steps: []step{
				{trigger: resend("m1", 2, processor.ActionResend)},
				{receipt: receipt("m1", 2, "soft_bounce", time.Minute)},
				{receipt: receipt("m1", 2, "failed", 2*time.Minute)},
				{advance: 72*time.Hour - time.Second},
				{advance: 72 * time.Hour},
			},
			want: []Outcome{OutcomeTriggered, OutcomeFailed, OutcomeExpired},
		},
		{
			name: "failed, then delivered after all: recovered, not expired",
			steps: []step{
				{trigger: resend("m1", 2, processor.ActionResend)},
				{receipt: receipt("m1", 2, "failed", time.Minute)},
				{receipt: receipt("m1", 2, "delivered", time.Hour)},
				{receipt: receipt("m1", 2, "hard_bounce", 2*time.Hour)},
				{advance: 100 * time.Hour},
			},
			want: []Outcome{OutcomeTriggered, OutcomeFailed, OutcomeSent, OutcomeDelivered},
		},
		{
			name: "delivered after the window is too late",
			steps: []step{
				{trigger: resend("m1", 2, processor.ActionResend)},
				{advance: 73 * time.Hour},
				{receipt: receipt("m1", 2, "delivered", 73*time.Hour)},
			},
			want: []Outcome{OutcomeTriggered, OutcomeExpired},
		},
		{
			name: "cancelled: later receipts and the deadline say nothing",
			steps: []step{
				{trigger: resend("m1", 2, processor.ActionResend)},
				{trigger: resend("m1", 2, processor.ActionCancel)},
				{receipt: receipt("m1", 2, "delivered", time.Minute)},
				{advance: 100 * time.Hour},
			},
			want: []Outcome{OutcomeTriggered, OutcomeCancelled},
		},
		{
			name: "a replayed trigger and repeated receipts count once",
			steps: []step{
				{trigger: resend("m1", 2, processor.ActionResend)},
				{receipt: receipt("m1", 2, "delivered", time.Minute)},
				{trigger: resend("m1", 2, processor.ActionResend)},
				{receipt: receipt("m1", 2, "delivered", time.Minute)},
				{trigger: resend("m1", 2, processor.ActionCancel)},
			},
			want: []Outcome{OutcomeTriggered, OutcomeSent, OutcomeDelivered},
		},
		{
			name: "a cancel for an unknown trigger is ignored",
			steps: []step{
				{trigger: resend("m9", 2, processor.ActionCancel)},
			},
		},
		{
			name: "attempt defaults to 1 on receipts",
			steps: []step{
				{trigger: resend("m1", 1, processor.ActionResend)},
				{receipt: receipt("m1", 0, "delivered", time.Minute)},
			},
			want: []Outcome{OutcomeTriggered, OutcomeSent, OutcomeDelivered},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New(Config{}, nil)
			require.NoError(t, err)
			var got []Outcome
			for _, s := range tc.steps {
				switch {
				case s.trigger != nil:
					got = append(got, outcomes(tr.Track(s.trigger))...)
				case s.receipt != nil:
					got = append(got, outcomes(tr.Observe(s.receipt))...)
				default:
					got = append(got, outcomes(tr.Advance(t0.Add(s.advance)))...)
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestEventsAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr, err := New(Config{Window: time.Hour}, reg)
	require.NoError(t, err)
	other, err := New(Config{}, reg)
	require.NoError(t, err, "trackers of several partitions share the registry")

	evs := tr.Track(resend("m1", 2, processor.ActionResend))
	require.Len(t, evs, 1)
	require.Equal(t, Event{
		TriggerID: "m1-2", Policy: "sms_retry", MessageID: "m1", CustomerID: "c1", Tenant: "t1", Channel: "sms",
		Attempt: 2, Reason: "soft_bounce", Outcome: OutcomeTriggered, NotBefore: t0, At: t0,
	}, evs[0])
	require.Equal(t, "m1-2:triggered", evs[0].ID())
	require.Equal(t, "resend_outcomes", evs[0].Table())

	evs = tr.Observe(receipt("m1", 2, "delivered", 10*time.Minute))
	require.Equal(t, []Outcome{OutcomeSent, OutcomeDelivered}, outcomes(evs))
	require.Equal(t, 10*time.Minute, evs[1].Latency)
	require.Equal(t, t0.Add(10*time.Minute), evs[1].At)

	other.Track(resend("m2", 2, processor.ActionResend))
	require.Equal(t, 2, tr.Len()+other.Len())
	require.Equal(t, 2.0, testutil.ToFloat64(tr.metrics.tracked))
	require.Equal(t, 2.0, testutil.ToFloat64(tr.metrics.outcomes.WithLabelValues("sms", "sms_retry", "soft_bounce", "triggered")))
	require.Equal(t, 1.0, testutil.ToFloat64(tr.metrics.outcomes.WithLabelValues("sms", "sms_retry", "soft_bounce", "delivered")))
	n, err := testutil.GatherAndCount(reg, "crmpulse_resend_recovery_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, n)

	require.Empty(t, tr.Advance(t0.Add(2*time.Hour)), "delivered: nothing expires")
	require.Zero(t, tr.Len())
	require.Equal(t, 1.0, testutil.ToFloat64(tr.metrics.tracked))
}

func TestSnapshotRestore(t *testing.T) {
	a, err := New(Config{}, nil)
	require.NoError(t, err)
	a.Track(resend("m1", 2, processor.ActionResend))
	a.Track(resend("m2", 3, processor.ActionResend))
	a.Observe(receipt("m1", 2, "sent", time.Minute))
	snap, err := a.MarshalState()
	require.NoError(t, err)

	b, err := New(Config{}, nil)
	require.NoError(t, err)
	b.Track(resend("m9", 2, processor.ActionResend))
	require.NoError(t, b.UnmarshalState(snap))
	require.Equal(t, 2, b.Len())

	// The restored tracker continues exactly where the original was.
	for _, tr := range []*Tracker{a, b} {
		require.Empty(t, tr.Track(resend("m1", 2, processor.ActionResend)))
		require.Equal(t, []Outcome{OutcomeDelivered}, outcomes(tr.Observe(receipt("m1", 2, "delivered", time.Hour))))
		require.Equal(t, []Outcome{OutcomeExpired}, outcomes(tr.Advance(t0.Add(100*time.Hour))))
		require.Zero(t, tr.Len())
	}
	require.Error(t, b.UnmarshalState([]byte("{")))
	_, err = New(Config{Window: -time.Second}, nil)
	require.ErrorContains(t, err, "window")
}
