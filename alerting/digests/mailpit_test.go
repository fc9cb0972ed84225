package digests_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/alerting/digests"
	"github.com/crmpulse/crmpulse/internal/mailpittest"
	"github.com/crmpulse/crmpulse/record"
)

func randomHex(t *testing.T) string {
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func digest(t *testing.T, id, am string) []byte {
	t.Helper()
	end := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)
	d := &record.Digest{
		DigestID: id, Digest: "account_manager_daily",
		Group:       map[string]string{"tenant": "acme", "account_manager": am},
		PeriodStart: end.Add(-24 * time.Hour), PeriodEnd: end,
		Fired: []record.DigestAlert{{Fingerprint: "f-" + id, Rule: "customer_churn", Labels: map[string]string{"customer_id": "c-" + id},
			StartsAt: end.Add(-5 * time.Hour), Value: 7776000}},
		Metrics: map[string]float64{"revenue": 10},
	}
	b, err := d.AppendJSON(nil)
	require.NoError(t, err)
	return b
}

func email(t *testing.T, smtpAddr string) *digests.Email {
	t.Helper()
	host, port, err := net.SplitHostPort(smtpAddr)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	e, err := digests.NewEmail(digests.EmailConfig{SMTP: digests.SMTPConfig{
		Host: host, Port: p, TLS: digests.TLSNone, From: "CRM Pulse <pulse@example.com>", Timeout: 5 * time.Second}})
	require.NoError(t, err)
	return e
}

// mailbox waits until addr has n messages and returns them; it then
// waits a little more to see that no other arrives.
func mailbox(t *testing.T, mp *mailpittest.Server, addr string, n int) []mailpittest.Message {
	t.Helper()
	var got []mailpittest.Message
	require.Eventually(t, func() bool {
		var err error
		got, err = mp.To(addr)
		require.NoError(t, err)
		return len(got) >= n
	}, 30*time.Second, 100*time.Millisecond, "%d messages for %s", n, addr)
	time.Sleep(500 * time.Millisecond)
	got, err := mp.To(addr)
	require.NoError(t, err)
	require.Len(t, got, n, "messages for %s", addr)
	return got
}

// The right mailbox gets the right digest, and a second run with the same
// ledger (a restart) does not send it again.
func TestEmailToTheRightMailbox(t *testing.T) {
	mp := mailpittest.Shared(t)
	run := randomHex(t)
	am1, am2 := "am1-"+run+"@example.com", "am2-"+run+"@example.com"
	ledger := &digests.MemLedger{}
	for range 2 {
		d, err := digests.New(digests.Config{Email: email(t, mp.SMTP), Ledger: ledger})
		require.NoError(t, err)
		require.NoError(t, d.Deliver(context.Background(), digest(t, "d1-"+run, am1)))
		require.NoError(t, d.Deliver(context.Background(), digest(t, "d2-"+run, am2)))
	}
	for addr, id := range map[string]string{am1: "d1-" + run, am2: "d2-" + run} {
		got := mailbox(t, mp, addr, 1)
		m := got[0]
		require.Equal(t, []string{addr}, m.To)
		require.Equal(t, id+"@crmpulse", m.MessageID)
		require.Equal(t, []string{id}, m.Headers["X-Crmpulse-Digest-Id"])
		require.Contains(t, m.Subject, "account_manager_daily")
		require.Contains(t, m.Text, "c-"+id, "the digest's own alert is in it")
		require.Contains(t, m.HTML, "c-"+id)
		require.NoError(t, mp.Delete(m.ID))
	}
	require.Equal(t, []string{"email/d1-" + run + "=sending", "email/d1-" + run + "=sent",
		"email/d2-" + run + "=sending", "email/d2-" + run + "=sent"}, ledger.Puts)
}

// An SMTP outage delays a digest and loses nothing: the dispatcher retries
// while the server is down and delivers once when it is back.
func TestSMTPOutageDelaysButLosesNothing(t *testing.T) {
	mp := mailpittest.Private(t)
	mp.Stop()
	reg := prometheus.NewRegistry()
	d, err := digests.New(digests.Config{Email: email(t, mp.SMTP), Ledger: &digests.MemLedger{},
		InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Registerer: reg})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- d.Deliver(context.Background(), digest(t, "outage", "am@example.com")) }()
	retries := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "crmpulse_digest_delivery_retries_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	require.Eventually(t, func() bool { return retries() >= 3 }, 20*time.Second, 20*time.Millisecond, "retries while the server is down")
	select {
	case err := <-done:
		t.Fatalf("Deliver returned while the server was down: %v", err)
	default:
	}
	mp.Start()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("not delivered after the server came back")
	}
	m := mailbox(t, mp, "am@example.com", 1)
	require.Equal(t, "outage@crmpulse", m[0].MessageID)
}
