package followup

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// TestComponentInEngine follows a trigger the engine emits to the receipts
// of the resent attempt, and emits each outcome once as an aggregate row.
func TestComponentInEngine(t *testing.T) {
	f, err := rules.Parse([]byte(`
version: 1
defaults: {allowed_lateness: 0s}
resend:
  - {name: sms_retry, channel: sms, on: [soft_bounce], max_attempts: 3, backoff: {initial: 5m}}
`))
	require.NoError(t, err)
	tr, err := New(Config{}, prometheus.NewRegistry())
	require.NoError(t, err)
	e, err := processor.New(processor.Config{Rules: f, Extra: []processor.Component{NewComponent(tr)}})
	require.NoError(t, err)
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	n := 0
	rc := func(status string, attempt int, min int) *ingest.Receipt {
		n++
		return &ingest.Receipt{ReceiptID: string(rune('a' + n)), MessageID: "m1", CustomerID: "c1", Tenant: "acme",
			Channel: "sms", Status: status, Attempt: attempt, OccurredAt: at.Add(time.Duration(min) * time.Minute)}
	}
	var outcomes []Outcome
	feed := func(r *ingest.Receipt) {
		require.NoError(t, e.Receipt(r))
		e.AdvanceFromEvents()
		for _, a := range e.Output().Aggregates {
			ev := a.(Event)
			require.Equal(t, Table, ev.Table())
			outcomes = append(outcomes, ev.Outcome)
		}
		e.Output().Reset()
	}
	feed(rc("soft_bounce", 1, 0))
	feed(rc("sent", 2, 6))
	feed(rc("delivered", 2, 7))
	feed(rc("delivered", 2, 8)) // a repeat changes nothing
	require.Equal(t, []Outcome{OutcomeTriggered, OutcomeSent, OutcomeDelivered}, outcomes)

	// The component's state rides in the engine snapshot.
	snap, err := e.Snapshot()
	require.NoError(t, err)
	tr2, err := New(Config{}, prometheus.NewRegistry())
	require.NoError(t, err)
	e2, err := processor.New(processor.Config{Rules: f, Extra: []processor.Component{NewComponent(tr2)}})
	require.NoError(t, err)
	require.NoError(t, e2.Restore(snap))
	require.Equal(t, tr.Len(), tr2.Len())
}
