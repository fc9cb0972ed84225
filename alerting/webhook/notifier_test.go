package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
)

func trigger(i int, action string) *processor.Resend {
	return &processor.Resend{
		TriggerID:  fmt.Sprintf("tr-%03d", i),
		Action:     action,
		Policy:     "sms_retry",
		MessageID:  fmt.Sprintf("m-%03d", i),
		CustomerID: fmt.Sprintf("c-%03d", i),
		Tenant:     "t1",
		Channel:    "sms",
		Attempt:    2,
		Reason:     "soft_bounce",
		NotBefore:  time.Date(2026, 11, 22, 9, 5, 0, 0, time.UTC),
	}
}

// start runs a notifier for cfg until the test ends and returns it with a
// function that stops it and waits for Run to return.
func start(t *testing.T, cfg Config, reg prometheus.Registerer) (*Notifier, func()) {
	t.Helper()
	n, err := New(cfg, nil, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return n, stop
}

// dedupReceiver is the receiver side a well-behaved consumer runs: it acts
// on each Idempotency-Key once and acknowledges repeats. fail decides, per
// key and per arrival, how to misbehave.
type dedupReceiver struct {
	mu        sync.Mutex
	arrivals  map[string]int    // requests seen per key
	processed map[string]int    // times acted on per key
	bodies    map[string][]byte // first body per key
	order     []string          // keys in the order they were acted on
	fail      func(key string, arrival int) failure
}

type failure int

const (
	ok              failure = iota
	status500               // answer 500 without acting
	dropBefore              // drop the connection without acting
	dropAfterAction         // act, then drop the connection: the sender never learns
)

func newDedupReceiver(fail func(string, int) failure) *dedupReceiver {
	return &dedupReceiver{arrivals: map[string]int{}, processed: map[string]int{}, bodies: map[string][]byte{}, fail: fail}
}

func (d *dedupReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get(HeaderIdempotencyKey)
	d.mu.Lock()
	d.arrivals[key]++
	mode := d.fail(key, d.arrivals[key])
	if first, seen := d.bodies[key]; seen && string(first) != string(body) {
		d.mu.Unlock()
		http.Error(w, "same key, different body", http.StatusUnprocessableEntity)
		return
	}
	act := mode == ok || mode == dropAfterAction
	if act && d.processed[key] == 0 {
		d.processed[key]++
		d.bodies[key] = body
		d.order = append(d.order, key)
	}
	d.mu.Unlock()
	switch mode {
	case status500:
		http.Error(w, "boom", http.StatusInternalServerError)
	case dropBefore, dropAfterAction:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

func TestResendTriggersExactlyOnceAcrossFailures(t *testing.T) {
	// Each key meets a different sequence of failures before it gets
	// through; the receiver dedups by Idempotency-Key, so it acts on every
	// trigger exactly once only if the keys (and bodies) are stable across
	// retries.
	scripts := [][]failure{
		{ok},
		{status500, ok},
		{dropBefore, ok},
		{dropAfterAction, ok},
		{status500, dropAfterAction, dropBefore, ok},
		{dropAfterAction, status500, dropAfterAction, ok},
	}
	var mu sync.Mutex
	script := map[string][]failure{}
	recv := newDedupReceiver(func(key string, arrival int) failure {
		mu.Lock()
		defer mu.Unlock()
		s := script[key]
		if arrival > len(s) {
			return ok
		}
		return s[arrival-1]
	})
	srv := httptest.NewServer(recv)
	defer srv.Close()

	var deadMu sync.Mutex
	var dead []DeadLetter
	reg := prometheus.NewRegistry()
	n, stop := start(t, Config{
		Name: "resends", URL: srv.URL, Workers: 3, QueueSize: 8, MaxAttempts: 6,
		InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		OnDeadLetter: func(d DeadLetter) { deadMu.Lock(); dead = append(dead, d); deadMu.Unlock() },
	}, reg)

	const triggers = 60
	want := map[string]bool{}
	for i := range triggers {
		recs := []*processor.Resend{trigger(i, processor.ActionResend)}
		if i%5 == 0 {
			recs = append(recs, trigger(i, processor.ActionCancel))
		}
		for _, r := range recs {
			mu.Lock()
			script[r.ID()] = scripts[len(want)%len(scripts)]
			mu.Unlock()
			want[r.ID()] = true
			require.NoError(t, n.Send(context.Background(), r))
		}
	}
	require.Eventually(t, func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return len(recv.processed) == len(want)
	}, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(n.metrics.delivered.WithLabelValues("resends")) == float64(len(want))
	}, 5*time.Second, 5*time.Millisecond)
	stop()

	recv.mu.Lock()
	defer recv.mu.Unlock()
	retried := 0
	for key := range want {
		require.Equal(t, 1, recv.processed[key], "acted on %s exactly once", key)
		if recv.arrivals[key] > 1 {
			retried++
		}
		var r processor.Resend
		require.NoError(t, json.Unmarshal(recv.bodies[key], &r))
		require.Equal(t, key, r.ID(), "Idempotency-Key is trigger_id:action")
		require.False(t, r.CreatedAt.IsZero(), "created_at is stamped")
	}
	require.Len(t, recv.processed, len(want))
	require.Greater(t, retried, len(want)/2, "most keys were retried")
	require.Empty(t, dead)
	// A cancel is never acted on before its resend: they share a worker.
	pos := map[string]int{}
	for i, k := range recv.order {
		pos[k] = i
	}
	for i := 0; i < triggers; i += 5 {
		require.Less(t, pos[trigger(i, processor.ActionResend).ID()], pos[trigger(i, processor.ActionCancel).ID()])
	}
	require.Zero(t, testutil.ToFloat64(n.metrics.queued.WithLabelValues("resends")))
	require.Positive(t, testutil.ToFloat64(n.metrics.requests.WithLabelValues("resends", outcomeServerError)))
	require.Positive(t, testutil.ToFloat64(n.metrics.requests.WithLabelValues("resends", outcomeNetworkError)))
}

func TestAlertRecordHeadersAndHMAC(t *testing.T) {
	secret := "s3cret"
	type got struct {
		header http.Header
		body   []byte
	}
	reqs := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reqs <- got{r.Header.Clone(), body}
	}))
	defer srv.Close()
	n, err := New(Config{URL: srv.URL, Secret: secret, Headers: map[string]string{"Authorization": "Bearer x"}}, nil, nil)
	require.NoError(t, err)

	ends := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a := &processor.Alert{
		Fingerprint: "abc", Rule: "churn", Kind: "inactivity", State: processor.StateResolved,
		Severity: "warning", Labels: map[string]string{"alertname": "churn"}, Annotations: map[string]string{},
		StartsAt: ends.Add(-time.Hour), EndsAt: &ends,
	}
	retry, err := n.Notify(context.Background(), a)
	require.NoError(t, err)
	require.False(t, retry)
	require.True(t, a.EmittedAt.IsZero(), "the caller's record is not modified")
	g := <-reqs

	require.Equal(t, a.ID(), g.header.Get(HeaderIdempotencyKey))
	require.Equal(t, "alert", g.header.Get(HeaderRecord))
	require.Equal(t, "1", g.header.Get(HeaderAttempt))
	require.Equal(t, "application/json", g.header.Get("Content-Type"))
	require.Equal(t, "Bearer x", g.header.Get("Authorization"))

	var rec map[string]any
	require.NoError(t, json.Unmarshal(g.body, &rec))
	for _, f := range []string{"fingerprint", "rule", "kind", "state", "severity", "labels", "annotations", "value",
		"threshold", "starts_at", "ends_at", "window_start", "window_end", "emitted_at"} {
		require.Contains(t, rec, f, "SPEC §4 field")
	}
	require.NotEqual(t, "0001-01-01T00:00:00Z", rec["emitted_at"])

	// The signature is HMAC-SHA256 of the exact body, computed here
	// independently of Sign.
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(g.body)
	require.Equal(t, "sha256="+hex.EncodeToString(m.Sum(nil)), g.header.Get(HeaderSignature))
	require.True(t, Verify([]byte(secret), g.body, g.header.Get(HeaderSignature)))
	require.False(t, Verify([]byte("other"), g.body, g.header.Get(HeaderSignature)))
	require.False(t, Verify([]byte(secret), append(g.body, ' '), g.header.Get(HeaderSignature)))
	require.False(t, Verify([]byte(secret), g.body, strings.TrimPrefix(g.header.Get(HeaderSignature), "sha256=")))
	require.False(t, Verify([]byte(secret), g.body, "sha256=zz"))

	// Without a secret there is no signature header.
	n2, err := New(Config{URL: srv.URL}, nil, nil)
	require.NoError(t, err)
	_, err = n2.Notify(context.Background(), trigger(1, processor.ActionResend))
	require.NoError(t, err)
	g = <-reqs
	require.Empty(t, g.header.Get(HeaderSignature))
	require.Equal(t, "resend", g.header.Get(HeaderRecord))
	require.Equal(t, "tr-001:resend", g.header.Get(HeaderIdempotencyKey))
}

func TestClientErrorIsDeadLetteredAtOnce(t *testing.T) {
	var calls sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := calls.LoadOrStore(r.Header.Get(HeaderIdempotencyKey), new(int))
		*v.(*int)++
		http.Error(w, "bad payload", http.StatusBadRequest)
	}))
	defer srv.Close()
	dead := make(chan DeadLetter, 1)
	n, _ := start(t, Config{URL: srv.URL, InitialBackoff: time.Millisecond, OnDeadLetter: func(d DeadLetter) { dead <- d }}, nil)
	rec := trigger(7, processor.ActionResend)
	require.NoError(t, n.Send(context.Background(), rec))
	d := <-dead
	require.Equal(t, 1, d.Attempts)
	require.Equal(t, rec.ID(), d.Key)
	require.Equal(t, DefaultName, d.Webhook)
	require.ErrorContains(t, d.Err, "unexpected status 400: bad payload")
	require.Equal(t, rec.TriggerID, d.Record.(*processor.Resend).TriggerID)
	require.JSONEq(t, string(mustJSON(t, d.Record)), string(d.Body))
	v, _ := calls.Load(rec.ID())
	require.Equal(t, 1, *v.(*int), "a 4xx is not retried")
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// scriptedTransport answers from a list of statuses (0: network error) and
// records when each attempt came; for synctest.
type scriptedTransport struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header
	at       []time.Time
}

func (s *scriptedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, time.Now())
	code := http.StatusOK
	if len(s.statuses) > 0 {
		code, s.statuses = s.statuses[0], s.statuses[1:]
	}
	if code == 0 {
		return nil, errors.New("connection reset by peer")
	}
	return &http.Response{StatusCode: code, Header: s.header.Clone(), Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

func TestBackoffWithJitterThenDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &scriptedTransport{statuses: []int{500, 0, 429, 503, 502, 500, 500, 500}}
		dead := make(chan DeadLetter, 1)
		n, _ := start(t, Config{
			URL: "http://hook.example/x", MaxAttempts: 6, InitialBackoff: time.Second, MaxBackoff: 8 * time.Second,
			Client: &http.Client{Transport: tr}, OnDeadLetter: func(d DeadLetter) { dead <- d },
		}, nil)
		require.NoError(t, n.Send(context.Background(), trigger(1, processor.ActionResend)))
		d := <-dead
		require.Equal(t, 6, d.Attempts)
		require.ErrorContains(t, d.Err, "giving up after 6 attempts")
		require.Len(t, tr.at, 6)
		// Nominal waits 1s, 2s, 4s, 8s, 8s, each jittered into [d/2, d].
		nominal := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
		for i, want := range nominal {
			wait := tr.at[i+1].Sub(tr.at[i])
			require.GreaterOrEqual(t, wait, want/2, "wait %d", i)
			require.LessOrEqual(t, wait, want, "wait %d", i)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &scriptedTransport{statuses: []int{429, 200}, header: http.Header{"Retry-After": {"5"}}}
		n, _ := start(t, Config{URL: "http://hook.example/x", InitialBackoff: 10 * time.Millisecond, Client: &http.Client{Transport: tr}}, nil)
		require.NoError(t, n.Send(context.Background(), trigger(1, processor.ActionResend)))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Len(t, tr.at, 2)
		require.Equal(t, 5*time.Second, tr.at[1].Sub(tr.at[0]))
	})
}

func TestShutdownDeadLettersWhatIsLeft(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	var mu sync.Mutex
	var dead []DeadLetter
	n, stop := start(t, Config{URL: srv.URL, Workers: 1, QueueSize: 4, OnDeadLetter: func(d DeadLetter) {
		mu.Lock()
		dead = append(dead, d)
		mu.Unlock()
	}}, nil)
	for i := range 4 {
		require.NoError(t, n.Send(context.Background(), trigger(i, processor.ActionResend)))
	}
	// The queue holds 4: the worker has taken one, so one more fits, then
	// Send blocks until its context ends.
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		return n.Send(ctx, trigger(4, processor.ActionResend)) == nil
	}, time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, n.Send(ctx, trigger(5, processor.ActionResend)), context.DeadlineExceeded)

	stop()
	require.ErrorIs(t, n.Send(context.Background(), trigger(6, processor.ActionResend)), ErrClosed)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, dead, 5, "the in-flight record and the 4 queued ones")
	keys := map[string]bool{}
	for _, d := range dead {
		require.ErrorIs(t, d.Err, ErrClosed)
		keys[d.Key] = true
	}
	for i := range 5 {
		require.True(t, keys[trigger(i, processor.ActionResend).ID()])
	}
	require.Zero(t, testutil.ToFloat64(n.metrics.queued.WithLabelValues(DefaultName)))
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		require.Equal(t, tc.want, parseRetryAfter(tc.in, now), tc.in)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{name: "ok", cfg: Config{URL: "https://hooks.example/crm"}},
		{name: "no url", cfg: Config{}, err: "url: required"},
		{name: "bad scheme", cfg: Config{URL: "ftp://x"}, err: "scheme"},
		{name: "no host", cfg: Config{URL: "http:///x"}, err: "no host"},
		{name: "negative", cfg: Config{URL: "http://x", MaxBackoff: -1}, err: "max_backoff"},
		{name: "queue below workers", cfg: Config{URL: "http://x", Workers: 8, QueueSize: 2}, err: "queue_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, nil, nil)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestRunTwice(t *testing.T) {
	n, _ := start(t, Config{URL: "http://127.0.0.1:1"}, nil)
	require.Eventually(t, func() bool { return n.running.Load() }, time.Second, time.Millisecond)
	require.Error(t, n.Run(context.Background()))
}

// A receiver checks the signature over the raw body before anything else,
// then acts on each Idempotency-Key once.
func ExampleVerify() {
	secret := []byte("s3cret")
	seen := map[string]bool{}
	handler := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || !Verify(secret, body, r.Header.Get(HeaderSignature)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		key := r.Header.Get(HeaderIdempotencyKey)
		if !seen[key] {
			seen[key] = true
			// act on the record in body
		}
		w.WriteHeader(http.StatusNoContent) // a repeat is acknowledged, not redone
	}

	body := []byte(`{"trigger_id":"t1","action":"resend"}`)
	for range 2 { // the same delivery, retried
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(string(body)))
		req.Header.Set(HeaderSignature, Sign(secret, body))
		req.Header.Set(HeaderIdempotencyKey, "t1:resend")
		rec := httptest.NewRecorder()
		handler(rec, req)
		fmt.Println(rec.Code, len(seen))
	}
	// Output:
	// 204 1
	// 204 1
}

func TestWaitReturnsOnceDelivered(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		got.Add(1)
	}))
	defer srv.Close()
	n, err := New(Config{URL: srv.URL, Workers: 2}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = n.Run(ctx) }()
	for i := range 10 {
		require.NoError(t, n.Send(ctx, &processor.Resend{TriggerID: fmt.Sprint(i), Action: processor.ActionResend}))
	}
	require.NoError(t, n.Wait(ctx))
	require.EqualValues(t, 10, got.Load(), "Wait returned before every record was delivered")
}
