package processor_test

import (
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// manyAttemptsRules lets one message be resent almost without end, so that
// every attempt of a long message history can trigger, cancel or be skipped.
const manyAttemptsRules = `
version: 1
defaults: {timezone: UTC, allowed_lateness: 30m}
resend:
  - name: sms_forever
    channel: sms
    on: [soft_bounce, failed, undelivered]
    undelivered_after: 15m
    max_attempts: 100
    backoff: {initial: 30m, multiplier: 2, max: 6h}
`

// oneMessageHistory is n receipts of one message: attempts numbered up to
// about n/3 (at most 100), each getting a few receipts of mixed statuses, the attempt
// numbers visited out of order and the times jittered within the allowed
// lateness (a few beyond it, so some are refused as late).
func oneMessageHistory(n int, seed uint64) []ingest.Receipt {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	statuses := []string{"sent", "sent", "soft_bounce", "failed", "delivered", "opened"}
	attempts := min(max(n/3, 1), 100) // within the max_attempts limit (docs/limits.md)
	out := make([]ingest.Receipt, n)
	for i := range out {
		out[i] = ingest.Receipt{
			ReceiptID: "r" + strconv.Itoa(i), MessageID: "m1", CustomerID: "c1", Tenant: "default",
			Channel: "sms", Status: statuses[rng.IntN(len(statuses))],
			Attempt:    1 + rng.IntN(attempts),
			OccurredAt: base.Add(time.Duration(i)*time.Minute - time.Duration(rng.IntN(40))*time.Minute),
		}
	}
	return out
}

// replayReceipts feeds receipts to e as replay does (advancing from events
// after each) and appends every resend record's JSON line to got.
func replayReceipts(t testing.TB, e *processor.Engine, rcs []ingest.Receipt, got []byte) []byte {
	t.Helper()
	for i := range rcs {
		_ = e.Receipt(&rcs[i]) // late and duplicate receipts are part of the history
		e.AdvanceFromEvents()
		for k := range e.Output().Resends {
			var err error
			got, err = e.Output().Resends[k].AppendJSON(got)
			require.NoError(t, err)
			got = append(got, '\n')
		}
		e.Output().Reset()
	}
	return got
}

// TestResendManyAttemptsOfOneMessage pins the resend records of a message
// with hundreds of attempts to a golden file written by the engine before
// attempts were indexed, straight through and across a snapshot and
// restore half-way (the index is not part of the snapshot).
func TestResendManyAttemptsOfOneMessage(t *testing.T) {
	f, err := rules.Parse([]byte(manyAttemptsRules))
	require.NoError(t, err)
	rcs := oneMessageHistory(1500, 10)
	end := rcs[len(rcs)-1].OccurredAt.Add(24 * time.Hour)
	golden := filepath.Join("testdata", "resend_many_attempts.golden")

	e, err := processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	straight := replayReceipts(t, e, rcs, nil)
	e.Advance(end)
	straight = replayReceipts(t, e, nil, straight)
	if *update {
		require.NoError(t, os.WriteFile(golden, straight, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Greater(t, len(want), 0)
	require.Equal(t, string(want), string(straight), "resend records differ from the golden file")

	e, err = processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	restored := replayReceipts(t, e, rcs[:len(rcs)/2], nil)
	snap, err := e.Snapshot()
	require.NoError(t, err)
	e, err = processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	require.NoError(t, e.Restore(snap))
	restored = replayReceipts(t, e, rcs[len(rcs)/2:], restored)
	e.Advance(end)
	restored = replayReceipts(t, e, nil, restored)
	require.Equal(t, string(want), string(restored), "resend records differ after a snapshot and restore")
}

// BenchmarkResendReceiptsOneMessage reports the engine's cost per receipt
// when every receipt is about one message, at growing message histories,
// under the example rules' sms policy. "attempt-each" gives every receipt
// its own attempt number (the history that used to cost quadratic time);
// "one-attempt" keeps them all on attempt 1. Flat ns/receipt across the
// sizes is linear time.
func BenchmarkResendReceiptsOneMessage(b *testing.B) {
	data, err := os.ReadFile("../examples/rules.yaml")
	if err != nil {
		b.Fatal(err)
	}
	f, err := rules.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	statuses := []string{"sent", "soft_bounce", "delivered", "failed"}
	for _, shape := range []string{"attempt-each", "one-attempt"} {
		for _, n := range []int{10_000, 20_000, 40_000, 80_000} {
			rcs := make([]ingest.Receipt, n)
			for i := range rcs {
				rcs[i] = ingest.Receipt{ReceiptID: "r" + strconv.Itoa(i), MessageID: "m1", CustomerID: "c1",
					Tenant: "default", Channel: "sms", Status: statuses[i%len(statuses)], Attempt: 1,
					OccurredAt: base.Add(time.Duration(i) * time.Second)}
				if shape == "attempt-each" {
					rcs[i].Attempt = i + 1
				}
			}
			b.Run(shape+"/"+strconv.Itoa(n), func(b *testing.B) {
				for range b.N {
					e, err := processor.New(processor.Config{Rules: f})
					if err != nil {
						b.Fatal(err)
					}
					for i := range rcs {
						_ = e.Receipt(&rcs[i])
						e.AdvanceFromEvents()
						e.Output().Reset()
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/receipt")
			})
		}
	}
}
