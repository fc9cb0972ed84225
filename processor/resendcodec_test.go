package processor

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// busyResender is a resender after random traffic of a few hundred
// messages: failures, resends, deliveries, unsubscribes.
func busyResender(t testing.TB) *resender {
	t.Helper()
	f, err := rules.Parse([]byte(`version: 1
defaults: {timezone: UTC, allowed_lateness: 1m}
rules: []
resend:
  - name: sms_retry
    channel: sms
    on: [soft_bounce, failed, undelivered]
    undelivered_after: 15m
    max_attempts: 3
    backoff: {initial: 5m, multiplier: 2, max: 1h}
    suppress_on: [hard_bounce, complained, unsubscribed]
    frequency_cap: {max: 5, per: 24h}
  - name: email_retry
    channel: email
    on: [soft_bounce]
    max_attempts: 2
    backoff: {initial: 10m}
`))
	require.NoError(t, err)
	r := newResender(f)
	rng := rand.New(rand.NewPCG(3, 4))
	var out Output
	at := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	statuses := []string{"sent", "delivered", "soft_bounce", "failed", "hard_bounce", "complained", "opened"}
	for i := range 3000 {
		at = at.Add(time.Duration(rng.IntN(20)) * time.Second)
		msg := fmt.Sprintf("m%d", rng.IntN(400))
		rc := ingest.Receipt{ReceiptID: fmt.Sprintf("r%d", i), MessageID: msg, CustomerID: "c" + msg[1:2],
			Channel: []string{"sms", "email"}[rng.IntN(2)], Status: statuses[rng.IntN(len(statuses))],
			OccurredAt: at, Attempt: 1 + rng.IntN(3), Tenant: "acme", RecipientTZ: []string{"", "Asia/Shanghai"}[rng.IntN(2)]}
		r.Receipt(&rc, &out)
		if i%50 == 0 {
			ev := ingest.Interaction{EventID: fmt.Sprintf("e%d", i), Type: "unsubscribe", CustomerID: "c" + msg[1:2], OccurredAt: at, Tenant: "acme"}
			r.Interaction(&ev, &out)
		}
		if i%10 == 0 {
			r.Advance(at.Add(-time.Minute), &out)
		}
	}
	require.NotEmpty(t, out.Resends, "the traffic should trigger resends")
	require.NotEmpty(t, r.timers, "and leave undelivered timers")
	return r
}

func TestResendStateRoundTrip(t *testing.T) {
	r := busyResender(t)
	b, err := r.MarshalState()
	require.NoError(t, err)
	back := newResender(r.file)
	require.NoError(t, back.UnmarshalState(b))
	require.Equal(t, r.msgs, back.msgs)
	require.Equal(t, r.custs, back.custs)
	require.Equal(t, r.sweep, back.sweep)
	require.ElementsMatch(t, r.timers, back.timers)

	// A snapshot written by gob, before the codec, is still read.
	var old bytes.Buffer
	require.NoError(t, gob.NewEncoder(&old).Encode(resendState{Msgs: r.msgs, Custs: r.custs, Timers: r.timers, Sweep: r.sweep}))
	fromGob := newResender(r.file)
	require.NoError(t, fromGob.UnmarshalState(old.Bytes()))
	require.Equal(t, r.msgs, fromGob.msgs)
	require.Equal(t, r.custs, fromGob.custs)

	// Every truncation is an error, never a panic or a silent partial state.
	for n := len(resendMagic); n < len(b); n += 1 + n/50 {
		require.Error(t, newResender(r.file).UnmarshalState(b[:n]), "truncated at %d of %d", n, len(b))
	}
}

func BenchmarkResendState(b *testing.B) {
	r := busyResender(b)
	b.Run("codec", func(b *testing.B) {
		for b.Loop() {
			_, _ = r.MarshalState()
		}
	})
	b.Run("gob", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			_ = gob.NewEncoder(&buf).Encode(resendState{Msgs: r.msgs, Custs: r.custs, Timers: r.timers, Sweep: r.sweep})
		}
	})
}

func FuzzResendState(f *testing.F) {
	r := busyResender(f)
	b, _ := r.MarshalState()
	f.Add(b[:min(len(b), 4096)])
	f.Add(append([]byte(nil), resendMagic...))
	f.Fuzz(func(t *testing.T, data []byte) {
		x := newResender(r.file)
		if err := x.UnmarshalState(append(append([]byte(nil), resendMagic...), data...)); err != nil {
			return
		}
		again, err := x.MarshalState()
		require.NoError(t, err)
		y := newResender(r.file)
		require.NoError(t, y.UnmarshalState(again), "a decoded state encodes to a decodable one")
		require.Equal(t, x.msgs, y.msgs)
	})
}
