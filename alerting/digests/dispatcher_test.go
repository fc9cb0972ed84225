package digests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/alerting/webhook"
	"github.com/crmpulse/crmpulse/record"
)

// digestJSON is a digest record as the pipeline writes it.
func digestRecord(t testing.TB, id, am string) []byte {
	t.Helper()
	end := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)
	ends := end.Add(-time.Hour)
	d := &record.Digest{
		DigestID: id, Digest: "account_manager_daily",
		Group:       map[string]string{"tenant": "acme", "account_manager": am},
		PeriodStart: end.Add(-24 * time.Hour), PeriodEnd: end,
		Fired: []record.DigestAlert{{Fingerprint: "f1", Rule: "customer_churn", Labels: map[string]string{"customer_id": "c1", "tenant": "acme"},
			StartsAt: end.Add(-5 * time.Hour), Value: 7776000}},
		Resolved: []record.DigestAlert{{Fingerprint: "f2", Rule: "customer_churn", Labels: map[string]string{"customer_id": "<c2>"},
			StartsAt: end.Add(-20 * time.Hour), EndsAt: &ends, Value: 1}},
		Open:     []record.DigestAlert{},
		Metrics:  map[string]float64{"revenue": 1234.5, "complaints": 0},
		Segments: map[string]int{"loyal": 3, "churned": 1},
	}
	b, err := d.AppendJSON(nil)
	require.NoError(t, err)
	return b
}

// fakeMail plays an SMTP server: each send takes the next outcome.
type fakeMail struct {
	mu       sync.Mutex
	outcomes []outcome
	sent     []string // digest ids of the sends that reached the server
	attempts int
	render   func(*record.Digest) (*message, error)
}

func (f *fakeMail) renderMsg(d *record.Digest) (*message, error) {
	if f.render != nil {
		return f.render(d)
	}
	return &message{to: []string{"<" + d.Group["account_manager"] + ">"}}, nil
}

type fakeMailer struct{ f *fakeMail }

func (m fakeMailer) render(d *record.Digest) (*message, error) { return m.f.renderMsg(d) }
func (m fakeMailer) send(_ context.Context, msg *message, before func() error) (outcome, error) {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	out := outSent
	if len(f.outcomes) > 0 {
		out, f.outcomes = f.outcomes[0], f.outcomes[1:]
	}
	if out == outRetry && f.attempts%2 == 1 {
		// Half the retries fail before the connection: no sending mark.
		return outRetry, errors.New("connection refused")
	}
	if err := before(); err != nil {
		return outRetry, err
	}
	if out == outSent || out == outAmbiguous {
		f.sent = append(f.sent, msg.to[0])
	}
	if out == outSent {
		return outSent, nil
	}
	return out, fmt.Errorf("outcome %d", out)
}

func newTestDispatcher(t *testing.T, f *fakeMail, l Ledger) (*Dispatcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d, err := New(Config{Webhook: nil, Ledger: l, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Registerer: reg})
	require.Error(t, err, "neither channel is refused")
	d, err = New(Config{Email: &Email{}, Ledger: l, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Registerer: reg})
	require.NoError(t, err)
	d.mail = fakeMailer{f}
	return d, reg
}

func TestEmailOnceAcrossRuns(t *testing.T) {
	raw := digestRecord(t, "d1", "am1@example.com")
	tests := []struct {
		name     string
		before   map[string]Entry // the ledger as a previous run left it
		outcomes []outcome
		sends    int      // messages the server got
		puts     []string // ledger writes, in order
		outcome  string   // crmpulse_digest_deliveries_total's label
	}{
		{name: "first delivery", sends: 1, puts: []string{"email/d1=sending", "email/d1=sent"}, outcome: OutcomeSent},
		{name: "sent before: not again", before: map[string]Entry{"email/d1": {State: StateSent}}, outcome: OutcomeDuplicate},
		{name: "refused before: not again", before: map[string]Entry{"email/d1": {State: StateRefused}}, outcome: OutcomeDuplicate},
		{name: "a run stopped while sending: not again", before: map[string]Entry{"email/d1": {State: StateSending}}, outcome: OutcomeUncertain},
		{name: "pending before: delivered now", before: map[string]Entry{"email/d1": {State: StatePending}}, sends: 1,
			puts: []string{"email/d1=sending", "email/d1=sent"}, outcome: OutcomeSent},
		{name: "server down, then up", outcomes: []outcome{outRetry, outRetry, outRetry, outSent}, sends: 1,
			// attempts 1 and 3 fail before connecting, 2 after the mark.
			puts: []string{"email/d1=sending", "email/d1=pending", "email/d1=sending", "email/d1=sent"}, outcome: OutcomeSent},
		{name: "refused for good", outcomes: []outcome{outRefused},
			puts: []string{"email/d1=sending", "email/d1=refused"}, outcome: OutcomeRefused},
		{name: "answer lost after the data: never again", outcomes: []outcome{outAmbiguous}, sends: 1,
			puts: []string{"email/d1=sending"}, outcome: OutcomeUncertain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &MemLedger{m: tt.before}
			f := &fakeMail{outcomes: tt.outcomes}
			d, _ := newTestDispatcher(t, f, l)
			require.NoError(t, d.Deliver(context.Background(), raw))
			require.Len(t, f.sent, tt.sends)
			require.Equal(t, tt.puts, l.Puts)
			require.Equal(t, 1.0, testutil.ToFloat64(d.deliveries.WithLabelValues(ChannelEmail, tt.outcome)))
			// A second run with the ledger this one left sends nothing.
			d2, _ := newTestDispatcher(t, f, l)
			require.NoError(t, d2.Deliver(context.Background(), raw))
			require.Len(t, f.sent, tt.sends, "a later run sent it again")
		})
	}
}

func TestRenderFailureRefusesAndGoesOn(t *testing.T) {
	l := &MemLedger{}
	f := &fakeMail{render: func(d *record.Digest) (*message, error) { return nil, errors.New("no recipient") }}
	d, _ := newTestDispatcher(t, f, l)
	require.NoError(t, d.Deliver(context.Background(), digestRecord(t, "d2", "unknown")))
	require.Equal(t, []string{"email/d2=refused"}, l.Puts)
	require.Zero(t, f.attempts)
}

func TestBadRecordIsCountedAndSkipped(t *testing.T) {
	l := &MemLedger{}
	d, _ := newTestDispatcher(t, &fakeMail{}, l)
	for _, raw := range []string{`not json`, `{"digest":"x"}`, `{"digest_id":"d","digest":"x"}`} {
		require.NoError(t, d.Deliver(context.Background(), []byte(raw)))
	}
	require.Equal(t, 3.0, testutil.ToFloat64(d.deliveries.WithLabelValues("", OutcomeBad)))
	require.Empty(t, l.Puts)
}

func TestStopWhileWaitingLeavesTheDigestUndone(t *testing.T) {
	l := &MemLedger{}
	f := &fakeMail{outcomes: []outcome{outRetry, outRetry, outRetry, outRetry, outRetry, outRetry, outRetry, outRetry}}
	d, _ := newTestDispatcher(t, f, l)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for testutil.ToFloat64(d.retries.WithLabelValues(ChannelEmail)) < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	require.ErrorIs(t, d.Deliver(ctx, digestRecord(t, "d3", "am@example.com")), context.Canceled)
	e, ok, _ := l.Get(context.Background(), "email/d3")
	require.True(t, !ok || e.State == StatePending, "a digest not delivered is left to the next run, got %+v", e)
}

// The webhook channel, against a real HTTP server: a 503 is retried with
// the same Idempotency-Key, the body is the record as read, and a later
// run does not post it again.
func TestWebhookOnce(t *testing.T) {
	raw := digestRecord(t, "d4", "am@example.com")
	var mu sync.Mutex
	var keys []string
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, r.Header.Get(webhook.HeaderIdempotencyKey))
		bodies = append(bodies, string(b))
		if len(keys) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	hook, err := webhook.New(webhook.Config{Name: "digests", URL: srv.URL}, nil, nil)
	require.NoError(t, err)
	l := &MemLedger{}
	for range 2 {
		d, err := New(Config{Webhook: hook, Ledger: l, InitialBackoff: time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, d.Deliver(context.Background(), raw))
	}
	require.Equal(t, []string{"d4", "d4"}, keys)
	require.JSONEq(t, string(raw), bodies[1])
	require.Equal(t, []string{"webhook/d4=sent"}, l.Puts)

	refusing, err := webhook.New(webhook.Config{Name: "digests2", URL: srv.URL + "/refuse"}, nil, nil)
	require.NoError(t, err)
	d, err := New(Config{Webhook: refusing, Ledger: l, InitialBackoff: time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, d.Deliver(context.Background(), digestRecord(t, "d5", "am@example.com")))
	require.Equal(t, []string{"webhook/d4=sent", "webhook/d5=refused"}, l.Puts)
}

// With MaxAge, a digest whose period ended longer ago is skipped (turning
// delivery on does not mail a week of old digests); one just inside is
// delivered.
func TestMaxAgeSkipsOldDigests(t *testing.T) {
	l := &MemLedger{}
	f := &fakeMail{}
	end := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC) // digestRecord's period end
	d, err := New(Config{Email: &Email{}, Ledger: l, MaxAge: 48 * time.Hour, Now: func() time.Time { return end.Add(48*time.Hour + time.Second) }})
	require.NoError(t, err)
	d.mail = fakeMailer{f}
	require.NoError(t, d.Deliver(context.Background(), digestRecord(t, "old", "am@example.com")))
	require.Empty(t, f.sent)
	require.Empty(t, l.Puts, "a skipped digest is not recorded: it stays skipped")
	require.Equal(t, 1.0, testutil.ToFloat64(d.deliveries.WithLabelValues("", OutcomeStale)))
	d.cfg.Now = func() time.Time { return end.Add(47 * time.Hour) }
	require.NoError(t, d.Deliver(context.Background(), digestRecord(t, "recent", "am@example.com")))
	require.Len(t, f.sent, 1)
}
