package replay

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

const customerRules = `
version: 1
defaults: {timezone: UTC, allowed_lateness: 10m}
rules:
  - {name: gold_order, kind: event, source: interactions, match: {type: [purchase], customer.tier: [gold]}, group_by: [tenant, customer_id], customer_labels: [account_manager]}
resend:
  - {name: sms_retry, channel: sms, on: [soft_bounce], max_attempts: 3, backoff: {initial: 5m}}
`

// TestReplayCustomers: --customers is a third input, merged by updated_at;
// on a tie the profile goes first, then the interaction, then the receipt
// (SPEC §5); bad profiles are rejected with source customers; profiles do
// not move the watermark.
func TestReplayCustomers(t *testing.T) {
	dir := t.TempDir()
	cust := write(t, dir, "c.jsonl",
		// Same instant as c1's purchase: the profile is merged first.
		`{"customer_id":"c1","updated_at":"2026-11-02T10:00:00Z","tier":"gold","account_manager":"am1@example.com"}`,
		`{"customer_id":"c9","updated_at":"2026-11-02T10:30:00Z","timezone":"Mars/Olympus_Mons"}`,
		`{"customer_id":"c2","updated_at":"2026-11-02T11:00:00Z","tier":"gold"}`,
		// After c3's purchase: it changes nothing for it.
		`{"customer_id":"c3","updated_at":"2026-11-02T11:45:00Z","tier":"gold"}`,
		// Far ahead: it must not carry the watermark with it.
		`{"customer_id":"c1","updated_at":"2026-12-24T00:00:00Z","tier":"silver"}`,
	)
	inter := write(t, dir, "i.jsonl",
		`{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2026-11-02T10:00:00Z"}`,
		`{"event_id":"e2","type":"purchase","customer_id":"c2","occurred_at":"2026-11-02T11:00:00Z"}`,
		`{"event_id":"e3","type":"purchase","customer_id":"c3","occurred_at":"2026-11-02T11:30:00Z"}`,
		`{"event_id":"e4","type":"unsubscribe","customer_id":"c4","occurred_at":"2026-11-02T12:00:00Z"}`,
	)
	rec := write(t, dir, "r.jsonl",
		// Same instant as the unsubscribe: the interaction goes first, so no resend.
		`{"receipt_id":"r1","message_id":"m1","customer_id":"c4","channel":"sms","status":"soft_bounce","occurred_at":"2026-11-02T12:00:00Z"}`,
	)
	f, err := rules.Parse([]byte(customerRules))
	require.NoError(t, err)
	out := filepath.Join(dir, "out")
	sum, err := Run(context.Background(), Config{Rules: f, Interactions: inter, Receipts: rec, Customers: cust, OutDir: out})
	require.NoError(t, err)
	require.EqualValues(t, 4, sum.Customers)
	require.EqualValues(t, 1, sum.RejectedTotal())
	require.Contains(t, sum.String(), "4 profiles")
	require.Equal(t, time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC), sum.Watermark, "profiles never move the watermark")

	var fired []string
	for _, a := range readJSONL(t, filepath.Join(out, "alerts.jsonl")) {
		l := a["labels"].(map[string]any)
		fired = append(fired, l["customer_id"].(string)+":"+a["state"].(string)+":"+func() string {
			s, _ := l["account_manager"].(string)
			return s
		}())
	}
	require.Equal(t, []string{"c1:firing:am1@example.com", "c2:firing:"}, fired)
	require.Empty(t, readJSONL(t, filepath.Join(out, "resends.jsonl")))

	rej := readJSONL(t, filepath.Join(out, "rejected.jsonl"))
	require.Len(t, rej, 1)
	require.Equal(t, "customers", rej[0]["source"])
	require.Equal(t, "bad_value", rej[0]["reason"])
	require.EqualValues(t, 2, rej[0]["line"])
}

// TestPickTieOrder: the merge takes the earliest head; on a tie the
// profile, then the interaction, then the receipt (the order of
// Config.inputs).
func TestPickTieOrder(t *testing.T) {
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	mk := func(k *kind, t time.Time) *source {
		b := &batch{n: 1, cu: make([]ingest.Customer, batchSize)}
		b.ev[0].OccurredAt, b.rc[0].OccurredAt, b.cu[0].UpdatedAt = t, t, t
		return &source{kind: k, cur: b, ok: true}
	}
	tests := []struct {
		name             string
		inter, rec, cust time.Duration // offsets from at; -1 omits the input
		want             *kind
	}{
		{"all three tie: the profile", 0, 0, 0, customerKind},
		{"interaction and receipt tie: the interaction", 0, 0, -1, interactionKind},
		{"receipt and profile tie: the profile", time.Hour, 0, 0, customerKind},
		{"the earliest wins over the tie order", time.Hour, time.Minute, 2 * time.Minute, receiptKind},
		{"an earlier interaction goes before a profile", 0, time.Hour, time.Minute, interactionKind},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}
			offsets := map[*kind]time.Duration{interactionKind: tc.inter, receiptKind: tc.rec, customerKind: tc.cust}
			if tc.inter >= 0 {
				cfg.Interactions = "i"
			}
			if tc.rec >= 0 {
				cfg.Receipts = "r"
			}
			if tc.cust >= 0 {
				cfg.Customers = "c"
			}
			var heads []*source
			for _, in := range cfg.inputs() {
				heads = append(heads, mk(in.kind, at.Add(offsets[in.kind])))
			}
			require.Same(t, tc.want, pick(heads).kind)
		})
	}
}

// TestGoldenCustomers replays the hand-written scenario in
// testdata/customers (profiles and every kind that reads them, annotated
// in rules.yaml) and compares alerts and resends with its golden file;
// run with -update after checking a change is intended.
func TestGoldenCustomers(t *testing.T) {
	dir := filepath.Join("testdata", "customers")
	rf, err := rules.Load(filepath.Join(dir, "rules.yaml"))
	require.NoError(t, err)
	out := t.TempDir()
	sum, err := Run(context.Background(), Config{Rules: rf, OutDir: out,
		Interactions: filepath.Join(dir, "interactions.jsonl"), Receipts: filepath.Join(dir, "receipts.jsonl"),
		Customers: filepath.Join(dir, "customers.jsonl")})
	require.NoError(t, err)
	require.EqualValues(t, 5, sum.Customers)
	require.EqualValues(t, 1, sum.RejectedTotal(), "the profile with an unknown zone")
	got := append(normalise(t, filepath.Join(out, "alerts.jsonl"), "emitted_at"),
		normalise(t, filepath.Join(out, "resends.jsonl"), "created_at")...)
	golden := filepath.Join(dir, "golden.jsonl")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "no golden file; run go test ./replay -run TestGoldenCustomers -update")
	require.Equal(t, string(want), string(got))
}
