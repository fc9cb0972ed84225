package delivery

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/alerting/webhook"
	"github.com/crmpulse/crmpulse/httpclient"
	"github.com/crmpulse/crmpulse/internal/testpki"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/stream"
)

// TestSinkDeliversAndFlushWaits: alerts reach Alertmanager and the alert
// webhook, resends reach theirs, Flush returns only once every webhook
// record is delivered, and a record the webhook refuses is dead-lettered
// to the file.
func TestSinkDeliversAndFlushWaits(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]int{}
	var amPosts atomic.Int64
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		amPosts.Add(int64(len(body)))
	}))
	defer am.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(10 * time.Millisecond)
		k := r.Header.Get("Idempotency-Key")
		if k == "refused:resend" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		mu.Lock()
		keys[k]++
		mu.Unlock()
	}))
	defer hook.Close()
	dl := filepath.Join(t.TempDir(), "dead.jsonl")
	s, err := New(Config{AlertmanagerURLs: []string{am.URL}, AlertWebhook: hook.URL + "/alerts",
		ResendWebhook: hook.URL + "/resends", DeadLetterFile: dl}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	out := &processor.Output{
		Alerts: []processor.Alert{{Fingerprint: "f1", Rule: "r", State: processor.StateFiring, StartsAt: at, Labels: map[string]string{"alertname": "r"}}},
		Resends: []processor.Resend{
			{TriggerID: "t1", Action: processor.ActionResend}, {TriggerID: "t2", Action: processor.ActionResend},
			{TriggerID: "refused", Action: processor.ActionResend},
		},
	}
	require.NoError(t, s.Write(ctx, out))
	out.Reset() // the pipeline reuses its output; the sink must have copied
	require.NoError(t, s.Flush(ctx))
	mu.Lock()
	require.Equal(t, map[string]int{out0ID(at): 1, "t1:resend": 1, "t2:resend": 1}, keys)
	mu.Unlock()
	require.Eventually(t, func() bool { return amPosts.Load() >= 1 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	data, err := os.ReadFile(dl)
	require.NoError(t, err)
	var d map[string]any
	require.NoError(t, json.Unmarshal(data, &d))
	require.Equal(t, "refused:resend", d["key"])
}

func out0ID(at time.Time) string {
	a := processor.Alert{Fingerprint: "f1", State: processor.StateFiring, StartsAt: at}
	return a.ID()
}

// TestSinkForwardsOwnersToAlertmanagerOnly: the firing alerts a partition
// restored are re-posted to Alertmanager but not to the alert webhook, and
// when the partition is revoked its alerts (restored or written since) are
// no longer re-posted, while other owners' are.
func TestSinkForwardsOwnersToAlertmanagerOnly(t *testing.T) {
	var mu sync.Mutex
	posted := map[string]int{}
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []struct {
			Labels map[string]string `json:"labels"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		for _, a := range body {
			posted[a.Labels["customer_id"]]++
		}
		mu.Unlock()
	}))
	defer am.Close()
	var hooked atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hooked.Add(1)
	}))
	defer hook.Close()
	s, err := New(Config{AlertmanagerURLs: []string{am.URL}, AlertWebhook: hook.URL}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	alert := func(customer string) processor.Alert {
		labels := map[string]string{"alertname": "churn", "customer_id": customer}
		return processor.Alert{Fingerprint: processor.Fingerprint(labels), Rule: "churn", State: processor.StateFiring, StartsAt: at, Labels: labels}
	}
	s.Assigned("3", []processor.Alert{alert("restored")})
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return posted["restored"] > 0 }, 5*time.Second, 10*time.Millisecond,
		"restored alerts are posted to Alertmanager at once")
	require.NoError(t, s.Write(stream.WithOutputOwner(ctx, "3"), &processor.Output{Alerts: []processor.Alert{alert("new")}}))
	require.NoError(t, s.Write(stream.WithOutputOwner(ctx, "4"), &processor.Output{Alerts: []processor.Alert{alert("other")}}))
	require.NoError(t, s.Flush(ctx))
	require.Equal(t, int64(2), hooked.Load(), "the webhook gets the written alerts, not the restored one")
	require.Len(t, s.am.Active(), 3)

	s.Revoked("3")
	active := s.am.Active()
	require.Len(t, active, 1, "partition 3's alerts are no longer re-posted")
	for _, labels := range active {
		require.Equal(t, "other", labels["customer_id"])
	}
	require.Equal(t, int64(2), hooked.Load(), "a revocation posts nothing to the webhook")
}

// TestWebhooksAndAlertmanagerUseTheirClientConfigs: with TLS servers
// signed by a private CA, the webhook posts carry the webhook's bearer
// token and the Alertmanager posts its basic auth, each trusting the CA
// it was given; a webhook whose CA is not given cannot deliver and
// dead-letters with the certificate error.
func TestWebhooksAndAlertmanagerUseTheirClientConfigs(t *testing.T) {
	pki := testpki.New(t, "delivery test CA")
	var hookAuth, amUser atomic.Value
	hook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookAuth.Store(r.Header.Get("Authorization"))
	}))
	hook.TLS = &tls.Config{Certificates: []tls.Certificate{pki.ServerPair}}
	hook.StartTLS()
	defer hook.Close()
	am := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && p == "am-pass" {
			amUser.Store(u)
		}
	}))
	am.TLS = &tls.Config{Certificates: []tls.Certificate{pki.ServerPair}}
	am.StartTLS()
	defer am.Close()

	dl := filepath.Join(t.TempDir(), "dead.jsonl")
	s, err := New(Config{
		AlertmanagerURLs: []string{am.URL}, AlertWebhook: hook.URL + "/alerts", DeadLetterFile: dl,
		AlertmanagerClient: httpclient.Config{Username: "crm", Password: "am-pass", TLS: httpclient.TLSConfig{CAFile: pki.CAFile}},
		WebhookClient:      httpclient.Config{BearerToken: "hook-token", TLS: httpclient.TLSConfig{CAFile: pki.CAFile}},
	}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	out := &processor.Output{Alerts: []processor.Alert{{Fingerprint: "f1", Rule: "r", State: processor.StateFiring, StartsAt: at, Labels: map[string]string{"alertname": "r"}}}}
	require.NoError(t, s.Write(ctx, out))
	require.NoError(t, s.Flush(ctx))
	require.Equal(t, "Bearer hook-token", hookAuth.Load())
	require.Eventually(t, func() bool { return amUser.Load() == "crm" }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	_, err = os.Stat(dl)
	require.True(t, os.IsNotExist(err) || fileSize(t, dl) == 0, "nothing dead-lettered")

	// The same webhook without the CA: the attempt fails on the
	// certificate, and the dead letter says so and names the webhook.
	client, err := httpclient.New("webhooks", httpclient.Config{BearerToken: "hook-token"}, nil)
	require.NoError(t, err)
	dead := make(chan webhook.DeadLetter, 1)
	n, err := webhook.New(webhook.Config{Name: "alerts", URL: hook.URL + "/alerts", Client: client, MaxAttempts: 1,
		OnDeadLetter: func(d webhook.DeadLetter) { dead <- d }}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- n.Run(ctx) }()
	a := out.Alerts[0]
	require.NoError(t, n.Send(ctx, &a))
	d := <-dead
	require.ErrorContains(t, d.Err, "x509: certificate signed by unknown authority")
	require.ErrorContains(t, d.Err, hook.URL)
	require.NotContains(t, d.Err.Error(), "hook-token")
	cancel()
	require.NoError(t, <-done)
}

func fileSize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Size()
}
