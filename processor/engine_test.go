package processor_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

const allKinds = `
version: 1
defaults: {timezone: Asia/Shanghai, allowed_lateness: 10m}
rules:
  - {name: churn, kind: inactivity, source: interactions, match: {type: [login, purchase]}, key: [tenant, customer_id], idle_for: 6h, customer_labels: [account_manager, tier]}
  - {name: big_gold, kind: event, source: interactions, match: {type: [purchase], customer.tier: [gold]}, group_by: [tenant, customer_id], lasts: 2h, customer_labels: [account_manager]}
  - {name: by_manager, kind: threshold, source: interactions, match: {type: [complaint]}, group_by: [tenant, customer.account_manager], window: 1h, value: count, op: ">=", threshold: 2}
  - {name: revenue, kind: drop, source: interactions, match: {type: [purchase, refund]}, group_by: [tenant, segment], window: 1h, value: sum(amount), baseline: {windows: 3}, drop_pct: 40, min_baseline: 50, for: 2}
  - {name: seasonal, kind: drop, source: interactions, group_by: [tenant], window: 1h, value: count, baseline: {season: 4h, seasons: 2}, drop_pct: 50, min_baseline: 5}
  - {name: burst, kind: threshold, source: interactions, match: {type: [complaint]}, group_by: [tenant, region], window: 30m, value: count, op: ">=", threshold: 3, for: 5m, keep_firing_for: 10m}
  - {name: burst_plain, kind: threshold, source: interactions, match: {type: [complaint]}, group_by: [tenant], window: 30m, value: count, op: ">=", threshold: 4}
  - {name: complainers, kind: threshold, source: interactions, match: {type: [complaint]}, group_by: [tenant], window: 1h, value: distinct(customer_id), op: ">=", threshold: 3}
  - {name: failures, kind: ratio, source: receipts, group_by: [tenant, channel], window: 1h, numerator: {status: [failed, soft_bounce]}, denominator: {status: [sent]}, op: ">", threshold: 0.3, min_denominator: 3, for: 2, resolve_threshold: 0.2}
  - {name: followup, kind: deadline, source: interactions, start: {type: [complaint]}, stop: {type: [complaint_resolved]}, correlate: [tenant, customer_id], due_after: 1h, stages: [{name: soon, at: -30m}, {name: due, at: 0s}, {name: late, at: 2h}], customer_labels: [tier]}
  - {name: birthday, kind: calendar, source: customers, match: {tier: [gold, silver]}, date: attributes.birthday, repeat: yearly, at: "09:00", lasts: 6h, customer_labels: [account_manager]}
  - {name: unresolved, kind: absence, source: interactions, start: {type: [complaint]}, stop: {type: [complaint_resolved]}, correlate: [tenant, customer_id], within: 2h}
  - {name: slipping, kind: threshold, source: segments, match: {to: [at_risk]}, group_by: [tenant, segment_set], window: 2h, value: count, op: ">=", threshold: 3}
resend:
  - name: sms_retry
    channel: sms
    on: [soft_bounce, failed, undelivered]
    undelivered_after: 15m
    max_attempts: 3
    backoff: {initial: 5m, multiplier: 2, max: 1h}
    quiet_hours: {start: "22:00", end: "08:00"}
    suppress_on: [hard_bounce, complained, unsubscribed]
    suppress_on_interactions: [unsubscribe, complaint]
    frequency_cap: {max: 3, per: 24h}
    fallback: {after_attempts: 2, channel: email}
digests:
  - name: am_daily
    schedule: {every: day, at: "09:00", timezone: Asia/Shanghai}
    group_by: [tenant, customer.account_manager]
    alerts: [churn, big_gold, by_manager, birthday, followup]
    metrics:
      - {name: revenue, source: interactions, match: {type: [purchase, refund]}, value: sum(amount)}
      - {name: complainers, source: interactions, match: {type: [complaint]}, value: distinct(customer_id)}
      - {name: failures, source: receipts, match: {status: [failed, soft_bounce]}, value: count}
    segments: lifecycle
  - name: tenant_weekly
    schedule: {every: week, at: "00:30", timezone: Europe/Paris}
    group_by: [tenant]
    alerts: [revenue, failures, unresolved]
segments:
  - name: lifecycle
    key: [tenant, customer_id]
    track: {type: [purchase, login, visit]}
    purchase: {type: [purchase, refund]}
    window: 6h
    classes:
      - {name: potential, max_total: 0}
      - {name: new, tenure_under: 2h}
      - {name: loyal, min_count: 4, recency_under: 3h}
      - {name: big, min_amount: 500}
      - {name: active, recency_under: 4h}
      - {name: lapsed, recency_over: 8h, max_count: 0}
      - {name: at_risk}
  - name: regional
    key: [customer_id, region]
    window: 1h
    classes:
      - {name: busy, min_count: 2}
      - {name: quiet}
`

// record is one input of a random scenario.
type record struct {
	i    *ingest.Interaction
	r    *ingest.Receipt
	c    *ingest.Customer
	drop string // a tombstone for this customer_id
}

// randomInput makes a seeded, roughly time-ordered mix of every record kind
// the rules above look at, with some disorder, duplicates and late records.
func randomInput(seed uint64, n int) []record {
	rng := rand.New(rand.NewPCG(seed, 7))
	types := []string{"login", "purchase", "refund", "complaint", "complaint_resolved", "visit", "unsubscribe"}
	statuses := []string{"sent", "sent", "delivered", "soft_bounce", "failed", "hard_bounce", "opened"}
	t := base
	var out []record
	for k := 0; k < n; k++ {
		t = t.Add(time.Duration(rng.IntN(120)) * time.Second)
		at := t.Add(-time.Duration(rng.IntN(8)) * time.Minute) // disorder within lateness
		if rng.IntN(50) == 0 {
			at = t.Add(-2 * time.Hour) // late
		}
		cust := fmt.Sprintf("c%d", rng.IntN(40))
		if rng.IntN(8) == 0 {
			// Profiles, some behind the watermark, some ahead of the events.
			pat := t.Add(time.Duration(rng.IntN(240)-180) * time.Minute)
			out = append(out, record{c: &ingest.Customer{CustomerID: cust, Tenant: "acme", UpdatedAt: pat,
				AccountManager: []string{"", "am1@x", "am2@x"}[rng.IntN(3)], Tier: []string{"gold", "silver", "unknown"}[rng.IntN(3)],
				Segment: "unknown", Region: "unknown", Timezone: []string{"", "Europe/Paris", "America/New_York"}[rng.IntN(3)],
				Deleted:    rng.IntN(15) == 0,
				Attributes: map[string]string{"birthday": fmt.Sprintf("11-%02d", 2+rng.IntN(3))}}})
			if rng.IntN(30) == 0 {
				out = append(out, record{drop: cust})
			}
			continue
		}
		if rng.IntN(3) == 0 {
			msg := fmt.Sprintf("m%d", rng.IntN(200))
			out = append(out, record{r: &ingest.Receipt{ReceiptID: fmt.Sprintf("r%d", k), MessageID: msg, CustomerID: cust,
				Channel: []string{"sms", "email"}[rng.IntN(2)], Status: statuses[rng.IntN(len(statuses))], OccurredAt: at,
				Attempt: 1 + rng.IntN(3), Tenant: "acme"}})
		} else {
			out = append(out, record{i: &ingest.Interaction{EventID: fmt.Sprintf("e%d", k), Type: types[rng.IntN(len(types))],
				CustomerID: cust, OccurredAt: at, Tenant: "acme", Segment: []string{"smb", "enterprise"}[rng.IntN(2)],
				Region: []string{"apac", "emea"}[rng.IntN(2)], Amount: float64(rng.IntN(200))}})
		}
		if rng.IntN(20) == 0 {
			out = append(out, out[len(out)-1]) // duplicate delivery
		}
	}
	return out
}

func feed(e *processor.Engine, recs []record) {
	for _, r := range recs {
		switch {
		case r.i != nil:
			_ = e.Interaction(r.i)
		case r.r != nil:
			_ = e.Receipt(r.r)
		case r.c != nil:
			_ = e.Customer(r.c)
		default:
			e.DropCustomer(r.drop)
		}
		e.AdvanceFromEvents()
	}
}

func newEngine(t testing.TB, yaml string) *processor.Engine {
	t.Helper()
	f, err := rules.Parse([]byte(yaml))
	require.NoError(t, err)
	e, err := processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	return e
}

// TestSnapshotRestoreContinues cuts a run at several points, snapshots,
// restores into a fresh engine and continues: the output must be exactly
// that of the uninterrupted run (no lost timer, no different record).
func TestSnapshotRestoreContinues(t *testing.T) {
	input := randomInput(1, 3000)
	whole := newEngine(t, allKinds)
	feed(whole, input)
	whole.Advance(whole.MaxEventTime().Add(48 * time.Hour))
	want := *whole.Output()
	require.NotEmpty(t, want.Alerts)
	require.NotEmpty(t, want.Resends)
	require.NotEmpty(t, want.Digests)
	digestLists := map[string]bool{}
	for _, d := range want.Digests {
		digestLists["fired"] = digestLists["fired"] || len(d.Fired) > 0
		digestLists["resolved"] = digestLists["resolved"] || len(d.Resolved) > 0
		digestLists["open"] = digestLists["open"] || len(d.Open) > 0
	}
	for _, d := range want.Digests {
		if d.Digest == "am_daily" {
			for _, n := range d.Segments {
				digestLists["segments"] = digestLists["segments"] || n > 0
			}
		}
	}
	require.Len(t, digestLists, 4)
	require.True(t, digestLists["fired"] && digestLists["resolved"] && digestLists["open"] && digestLists["segments"],
		"digests list alerts and class counts: %v", digestLists)
	require.Greater(t, len(want.Transitions), 100)
	kinds := map[string]bool{}
	for _, a := range want.Alerts {
		kinds[a.Kind+"/"+a.State] = true
	}
	for _, k := range []string{"inactivity", "drop", "threshold", "ratio", "absence", "event", "deadline", "calendar"} {
		require.True(t, kinds[k+"/firing"], "scenario should fire %s", k)
	}
	labelled := map[string]bool{}
	for _, a := range want.Alerts {
		labelled[a.Rule] = labelled[a.Rule] || a.Labels["account_manager"] != ""
	}
	require.True(t, labelled["churn"] && labelled["big_gold"] && labelled["by_manager"] && labelled["birthday"], "profiles reach the alerts: %v", labelled)

	for _, cut := range []int{1, 500, 1234, 2999} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			first := newEngine(t, allKinds)
			feed(first, input[:cut])
			snap, err := first.Snapshot()
			require.NoError(t, err)
			second := newEngine(t, allKinds)
			require.NoError(t, second.Restore(snap))
			feed(second, input[cut:])
			second.Advance(second.MaxEventTime().Add(48 * time.Hour))
			got := processor.Output{
				Alerts:  append(append([]processor.Alert{}, first.Output().Alerts...), second.Output().Alerts...),
				Resends: append(append([]processor.Resend{}, first.Output().Resends...), second.Output().Resends...),
				Transitions: append(append([]processor.Transition{}, first.Output().Transitions...),
					second.Output().Transitions...),
			}
			require.Equal(t, want.Alerts, got.Alerts)
			require.Equal(t, want.Resends, got.Resends)
			require.Equal(t, want.Digests, append(append([]processor.Digest{}, first.Output().Digests...), second.Output().Digests...))
			require.Equal(t, want.Transitions, got.Transitions)
			require.Equal(t, whole.Stats(), second.Stats())
		})
	}
}

func TestDeterministic(t *testing.T) {
	input := randomInput(2, 2000)
	a, b := newEngine(t, allKinds), newEngine(t, allKinds)
	feed(a, input)
	feed(b, input)
	require.Equal(t, a.Output(), b.Output())
}

func TestLateAndDuplicates(t *testing.T) {
	e := newEngine(t, allKinds)
	ev := &ingest.Interaction{EventID: "e1", Type: "login", CustomerID: "c1", Tenant: "acme", OccurredAt: base.Add(time.Hour)}
	require.NoError(t, e.Interaction(ev))
	require.ErrorIs(t, e.Interaction(ev), processor.ErrDuplicate)
	e.AdvanceFromEvents()
	require.Equal(t, base.Add(50*time.Minute), e.Watermark(), "watermark = max occurred_at − allowed_lateness")

	within := &ingest.Interaction{EventID: "e2", Type: "login", CustomerID: "c2", Tenant: "acme", OccurredAt: base.Add(50 * time.Minute)}
	require.NoError(t, e.Interaction(within), "an event at the watermark is within the allowed lateness")
	beyond := &ingest.Interaction{EventID: "e3", Type: "login", CustomerID: "c3", Tenant: "acme", OccurredAt: base.Add(49 * time.Minute)}
	err := e.Interaction(beyond)
	var re *ingest.RejectError
	require.ErrorAs(t, err, &re)
	require.Equal(t, ingest.ReasonLate, re.Reason)
	require.Contains(t, re.Error(), "before the watermark")

	rc := &ingest.Receipt{ReceiptID: "e1", MessageID: "m", CustomerID: "c1", Channel: "sms", Status: "sent", Attempt: 1, OccurredAt: base.Add(time.Hour)}
	require.NoError(t, e.Receipt(rc), "receipt ids and event ids are separate namespaces")
	require.Equal(t, processor.Stats{Interactions: 2, Receipts: 1, Duplicates: 1, Late: 1}, e.Stats())
}

// TestDedupMemoryIsBounded: ids are forgotten once the watermark passes
// them, so memory follows the allowed lateness, not the total volume.
func TestDedupMemoryIsBounded(t *testing.T) {
	e := newEngine(t, "version: 1\ndefaults: {allowed_lateness: 10m}\n")
	for k := 0; k < 100000; k++ {
		at := base.Add(time.Duration(k) * time.Second)
		require.NoError(t, e.Interaction(&ingest.Interaction{EventID: fmt.Sprint(k), Type: "visit", CustomerID: "c", OccurredAt: at}))
		e.AdvanceFromEvents()
	}
	// 10 minutes of one event per second, plus at most two partial buckets.
	require.LessOrEqual(t, e.DedupKeys(), 600+120)
	require.GreaterOrEqual(t, e.DedupKeys(), 600)
}

// TestStateKeys: the key count covers the detectors' state, not only the
// dedup ids, and shrinks when state is forgotten.
func TestStateKeys(t *testing.T) {
	e := newEngine(t, allKinds)
	require.Zero(t, e.StateKeys())
	recs := randomInput(5, 2000)
	feed(e, recs)
	busy := e.StateKeys()
	require.Greater(t, busy, e.DedupKeys(), "detector keys are counted besides dedup ids")
	e.Advance(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Less(t, e.StateKeys(), busy, "years later, windows are closed and idle state forgotten")
}
