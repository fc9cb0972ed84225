package processor_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
)

// allKindsRules has one rule of every detector kind and a resend policy:
// six components, each called for every record and every Advance.
const allKindsRules = `
version: 1
defaults: {timezone: UTC, allowed_lateness: 2m}
rules:
  - {name: churn, kind: inactivity, source: interactions, match: {type: [login, purchase, visit]}, key: [tenant, customer_id], idle_for: 1h}
  - {name: complaints, kind: threshold, source: interactions, match: {type: [complaint]}, group_by: [tenant, customer_id], window: 30m, value: count, op: ">=", threshold: 3}
  - {name: tickets, kind: absence, source: interactions, start: {type: [ticket_opened]}, stop: {type: [complaint_resolved]}, correlate: [tenant, customer_id, attributes.ticket_id], within: 2h}
  - {name: revenue, kind: drop, source: interactions, match: {type: [purchase, refund]}, group_by: [tenant, customer_id], window: 1h, value: sum(amount), baseline: {windows: 3}, drop_pct: 50, min_baseline: 10}
  - {name: sms_failures, kind: ratio, source: receipts, match: {channel: [sms]}, group_by: [tenant, customer_id], window: 1h, numerator: {status: [failed]}, denominator: {status: [delivered, failed]}, op: ">", threshold: 0.5, min_denominator: 2}
resend:
  - {name: sms_retry, channel: sms, on: [failed, undelivered], undelivered_after: 15m, max_attempts: 3, backoff: {initial: 5m, multiplier: 2, max: 1h}, suppress_on: [hard_bounce]}
`

// BenchmarkEngineRecords is the engine's per-record cost with every kind
// of component, the watermark advanced after each record as replay does:
// the figure the pipeline's per-component bookkeeping must not move.
func BenchmarkEngineRecords(b *testing.B) {
	const customers = 10_000
	custs := make([]string, customers)
	for i := range custs {
		custs[i] = "c" + strconv.Itoa(i)
	}
	types := []string{"login", "purchase", "visit", "complaint", "ticket_opened", "complaint_resolved"}
	statuses := []string{"sent", "delivered", "failed", "sent"}
	e := newEngine(b, allKindsRules)
	ev := &ingest.Interaction{Tenant: "acme", Amount: 12}
	r := &ingest.Receipt{Tenant: "acme", Channel: "sms", Attempt: 1}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		at := base.Add(time.Duration(i) * 50 * time.Millisecond)
		c := custs[i%customers]
		if i%2 == 0 {
			ev.EventID, ev.CustomerID, ev.Type, ev.OccurredAt = strconv.Itoa(i), c, types[(i/2)%len(types)], at
			_ = e.Interaction(ev)
		} else {
			r.ReceiptID, r.CustomerID, r.Status, r.OccurredAt = strconv.Itoa(i), c, statuses[(i/2)%len(statuses)], at
			r.MessageID = "m" + strconv.Itoa(i/8)
			_ = e.Receipt(r)
		}
		e.AdvanceFromEvents()
		if i%1024 == 0 {
			e.Output().Reset()
		}
		i++
	}
}
