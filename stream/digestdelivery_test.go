package stream_test

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/mailpittest"
	"github.com/crmpulse/crmpulse/stream"
)

// deliveryMetric sums crmpulse_digest_deliveries_total{outcome}.
func deliveryMetric(t *testing.T, r *running, outcome string) float64 {
	return labelled(t, r.reg, "crmpulse_digest_deliveries_total", "outcome", outcome)
}

// TestKafkaDigestsEmailedToTheirOwners is the seeds' daily list for each
// account manager, end to end: the pipeline on the real Kafka makes the
// digests of the customer rules (grouped by customer.account_manager), and
// each reaches its owner's mailbox on a real SMTP server (a Mailpit of
// the test's own), once. A second deployment with another consumer group
// then processes everything again and writes every digest a second time
// to the same digests topic; the ledger keeps it from sending any again.
func TestKafkaDigestsEmailedToTheirOwners(t *testing.T) {
	brokers := realBrokers(t)
	mp := mailpittest.Private(t)
	ds := generate(t, genConfig{customers: 300, days: 2, seed: 11})
	addProfiles(t, ds)
	want := replayOutputsWith(t, ds, customerRulesFile)
	owner := map[string]string{} // digest_id → its account manager's address
	unknown := 0
	for id, v := range want.digests {
		var d struct {
			Group map[string]string `json:"group"`
		}
		require.NoError(t, json.Unmarshal([]byte(v), &d))
		if am := d.Group["account_manager"]; strings.Contains(am, "@") {
			owner[id] = am
		} else {
			unknown++ // customers without a profile: refused, logged
		}
	}
	require.Greater(t, len(owner), 3, "digests for several owners")
	t.Logf("%d digests with an owner, %d without", len(owner), unknown)

	tp := withCustomers(newTopics(t))
	createInputs(t, brokers, tp, 4)
	produce(t, brokers, tp, ds)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = customerRulesFile
	host, port, err := net.SplitHostPort(mp.SMTP)
	require.NoError(t, err)
	cfg.SMTP.Host, cfg.SMTP.Mode, cfg.SMTP.From = host, "none", "CRM Pulse <pulse@example.com>"
	cfg.SMTP.Port, err = strconv.Atoi(port)
	require.NoError(t, err)
	cfg.DigestDelivery.MaxBackoff = stream.Duration(time.Second)

	a := startApp(t, cfg, "a")
	var got []mailpittest.Message
	require.Eventually(t, func() bool {
		got, err = mp.All()
		require.NoError(t, err)
		return len(got) >= len(owner)
	}, 3*time.Minute, 500*time.Millisecond, "every digest with an owner emailed")
	a.stop(t)
	check := func() {
		t.Helper()
		got, err = mp.All()
		require.NoError(t, err)
		seen := map[string]bool{}
		for _, m := range got {
			id := strings.TrimSuffix(m.MessageID, "@crmpulse")
			require.False(t, seen[id], "digest %s emailed twice", id)
			seen[id] = true
			require.Contains(t, owner, id, "an email for a digest replay did not make: %s", m.Subject)
			require.Equal(t, []string{owner[id]}, m.To, "digest %s went to the wrong mailbox", id)
			require.Contains(t, m.Text, id)
		}
		require.Len(t, seen, len(owner))
	}
	check()

	// Again, from scratch, as another deployment: the same digests are
	// made and written again, read again, and found in the ledger.
	cfg.Kafka.GroupID += "-again"
	b := startApp(t, cfg, "b")
	require.Eventually(t, func() bool {
		return deliveryMetric(t, b, "duplicate") >= float64(len(want.digests))
	}, 3*time.Minute, 500*time.Millisecond, "the second run read every digest and found it delivered")
	require.Zero(t, deliveryMetric(t, b, "sent"))
	b.stop(t)
	check()
}
