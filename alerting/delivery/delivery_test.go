package delivery

import (
	"context"
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

	"github.com/crmpulse/crmpulse/processor"
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
