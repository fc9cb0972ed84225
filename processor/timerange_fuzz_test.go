package processor_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// FuzzEngineTimeRange drives every detector kind and the resend policy
// with records anywhere in the time range the decoders accept, edges
// included, and checks that no instant the engine emits has wrapped: the
// engine adds windows, idle periods and backoffs to int64 nanoseconds,
// which end in 2262 and restart in 1677. A record at the last supported
// instant plus any rule's horizon must stay far from both.
func FuzzEngineTimeRange(f *testing.F) {
	f.Add(uint8(0), []byte{0, 1, 9, 2, 17, 3, 3, 30, 4, 0})
	f.Add(uint8(1), []byte{3, 60, 3, 1, 3, 1, 3, 1, 11, 200, 12, 5})
	f.Add(uint8(2), []byte{8, 0, 9, 0, 10, 0, 24, 255, 3, 255})
	f.Add(uint8(3), []byte{0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255})
	rf, err := rules.Parse([]byte(allKinds))
	require.NoError(f, err)
	// The record times start from one of these anchors, then move by the
	// input's steps, clamped to the supported range.
	anchors := []time.Time{ingest.MinTime, base, ingest.MaxTime.Add(-time.Nanosecond), ingest.MaxTime.Add(-processor.DefaultFutureSkew)}
	types := []string{"login", "purchase", "refund", "complaint", "complaint_resolved", "unsubscribe"}
	statuses := []string{"sent", "soft_bounce", "failed", "delivered", "hard_bounce"}
	lo, hi := time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, anchor uint8, steps []byte) {
		e, err := processor.New(processor.Config{Rules: rf, FutureSkew: processor.DefaultFutureSkew})
		require.NoError(t, err)
		at := anchors[int(anchor)%len(anchors)]
		for i := 0; i+1 < len(steps) && i < 400; i += 2 {
			op, arg := steps[i], steps[i+1]
			d := time.Duration(arg) * time.Minute
			if op&0x80 != 0 {
				d = -d / 4 // a little disorder
			}
			at = at.Add(d)
			if at.Before(ingest.MinTime) {
				at = ingest.MinTime
			}
			if !at.Before(ingest.MaxTime) {
				at = ingest.MaxTime.Add(-time.Nanosecond)
			}
			cust := fmt.Sprintf("c%d", (op>>4)&3)
			if k := int(op & 0x0f); k < len(types) {
				_ = e.Interaction(&ingest.Interaction{EventID: fmt.Sprintf("e%d", i), Type: types[k], CustomerID: cust,
					OccurredAt: at, Tenant: "acme", Segment: "smb", Region: "apac", Amount: float64(arg)})
			} else {
				_ = e.Receipt(&ingest.Receipt{ReceiptID: fmt.Sprintf("r%d", i), MessageID: fmt.Sprintf("m%d", op>>6),
					CustomerID: cust, Channel: "sms", Status: statuses[(k-len(types))%len(statuses)], OccurredAt: at,
					Attempt: 1 + int(arg%3), Tenant: "acme"})
			}
			e.AdvanceFromEvents()
		}
		// Past every timer of the rules (the longest is 6h idle_for plus
		// resend backoffs): everything due fires. (Not to MaxTime itself:
		// walking two centuries of hourly windows is slow, not wrong.)
		if mx := e.MaxEventTime(); !mx.IsZero() {
			e.Advance(mx.Add(48 * time.Hour))
		}
		inRange := func(what string, tm time.Time) {
			require.True(t, !tm.Before(lo) && tm.Before(hi), "%s %s has wrapped", what, tm.Format(time.RFC3339Nano))
		}
		out := e.Output()
		for _, a := range out.Alerts {
			inRange(a.Rule+" starts_at", a.StartsAt)
			for name, p := range map[string]*time.Time{"ends_at": a.EndsAt, "window_start": a.WindowStart, "window_end": a.WindowEnd} {
				if p != nil {
					inRange(a.Rule+" "+name, *p)
				}
			}
		}
		for _, r := range out.Resends {
			inRange("resend not_before", r.NotBefore)
			require.False(t, r.NotBefore.Before(r.FailedAt), "not_before %s before the failure %s", r.NotBefore, r.FailedAt)
		}
	})
}
