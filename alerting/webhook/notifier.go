// Package webhook delivers CRM Pulse records, alerts and resend triggers
// (SPEC §4), to an HTTP endpoint: one POST per record with the record's
// JSON as body, an Idempotency-Key header that is the record's stable id (so
// the receiver can drop the duplicates that retries produce), an optional
// HMAC-SHA256 signature, retries with exponential backoff and jitter, and a
// dead-letter callback for what could not be delivered.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/redact"
)

// Request headers.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderSignature      = "X-CRMPulse-Signature"
	HeaderRecord         = "X-CRMPulse-Record"  // "alert" or "resend"
	HeaderAttempt        = "X-CRMPulse-Attempt" // 1 for the first attempt
	signaturePrefix      = "sha256="
	errorBodyLimit       = 512
)

// ErrClosed is returned by Send after Run has returned, and wraps the error
// of records dead-lettered because Run returned before delivering them.
var ErrClosed = errors.New("webhook: notifier stopped")

// Record is what a webhook delivers: *processor.Alert and
// *processor.Resend. ID is the Idempotency-Key.
type Record interface {
	ID() string
}

// DeadLetter is a record given up on.
type DeadLetter struct {
	Webhook  string // Config.Name
	Key      string // the Idempotency-Key
	Record   Record // as sent (EmittedAt/CreatedAt stamped)
	Body     []byte // the JSON that was posted
	Attempts int    // attempts made; 0 if it never left the queue
	Err      error  // the last error
}

// Notifier delivers records to one webhook URL.
type Notifier struct {
	cfg     Config
	label   string // URL with credentials redacted, for logs
	logger  *slog.Logger
	metrics *metrics
	queues  []chan *job // one per worker
	running atomic.Bool
	pending atomic.Int64 // records queued or being delivered

	stopping chan struct{} // closed when Run's context ends
	mu       sync.RWMutex  // Send holds it shared while enqueueing
	closed   bool          // Run has drained the queues; guarded by mu
}

// job is one record on its way.
type job struct {
	rec   Record
	kind  string
	key   string
	order string
	body  []byte
}

// New returns a Notifier for cfg. Metrics are registered on reg if it is not
// nil; logger may be nil.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Notifier, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{
		cfg:      cfg,
		label:    redact.URL(cfg.URL), // password and token parameters masked
		logger:   logger.With("webhook", cfg.Name),
		stopping: make(chan struct{}),
	}
	perWorker := (cfg.QueueSize + cfg.Workers - 1) / cfg.Workers
	for range cfg.Workers {
		n.queues = append(n.queues, make(chan *job, perWorker))
	}
	var err error
	if n.metrics, err = newMetrics(reg, cfg.Name); err != nil {
		return nil, err
	}
	return n, nil
}

// prepare stamps a copy of rec (EmittedAt/CreatedAt, if the engine left
// them zero) and encodes it.
func prepare(rec Record) (*job, error) {
	j := &job{}
	switch r := rec.(type) {
	case *processor.Alert:
		c := *r
		if c.EmittedAt.IsZero() {
			c.EmittedAt = time.Now().UTC()
		}
		j.rec, j.kind, j.order = &c, "alert", c.Fingerprint
	case *processor.Resend:
		c := *r
		if c.CreatedAt.IsZero() {
			c.CreatedAt = time.Now().UTC()
		}
		j.rec, j.kind, j.order = &c, "resend", c.TriggerID
	default:
		j.rec = rec
	}
	j.key = j.rec.ID()
	if j.order == "" {
		j.order = j.key
	}
	body, err := json.Marshal(j.rec)
	if err != nil {
		return nil, fmt.Errorf("encoding record %s: %w", j.key, err)
	}
	j.body = body
	return j, nil
}

// Send queues rec for delivery. It blocks while the queue is full, until ctx
// ends (returning ctx.Err()) or Run returns (ErrClosed).
func (n *Notifier) Send(ctx context.Context, rec Record) error {
	j, err := prepare(rec)
	if err != nil {
		return err
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return ErrClosed
	}
	q := n.queues[shard(j.order, len(n.queues))]
	select {
	case q <- j:
		n.pending.Add(1)
		n.metrics.queued.WithLabelValues(n.cfg.Name).Inc()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queueing record %s: %w", j.key, ctx.Err())
	case <-n.stopping:
		return ErrClosed
	}
}

func shard(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Wait returns once every record Sent before the call has been delivered or
// dead-lettered, or when ctx ends. The pipeline calls it before committing
// the Kafka offsets the records came from, so a crash cannot lose a record
// that was queued but not yet sent.
func (n *Notifier) Wait(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d webhook deliveries: %w", n.pending.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Notify makes one delivery attempt of rec, bypassing the queue, and says
// whether a failure is worth retrying, as Alertmanager's notifiers do.
func (n *Notifier) Notify(ctx context.Context, rec Record) (retry bool, err error) {
	j, err := prepare(rec)
	if err != nil {
		return false, err
	}
	retry, _, err = n.attempt(ctx, j, 1)
	return retry, err
}

// Run delivers queued records until ctx ends. Then the record each worker
// holds and those still queued are dead-lettered with ErrClosed, and later
// Sends fail with ErrClosed. It returns nil.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("webhook: Run called twice")
	}
	var wg sync.WaitGroup
	for _, q := range n.queues {
		wg.Go(func() { n.work(ctx, q) })
	}
	<-ctx.Done()
	close(n.stopping)
	wg.Wait()
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	for _, q := range n.queues {
		for {
			select {
			case j := <-q:
				n.deadLetter(j, 0, ErrClosed)
				continue
			default:
			}
			break
		}
	}
	return nil
}

func (n *Notifier) work(ctx context.Context, q chan *job) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-q:
			n.deliver(ctx, j)
		}
	}
}

// deliver tries j until it is accepted, refused, out of attempts, or ctx
// ends.
func (n *Notifier) deliver(ctx context.Context, j *job) {
	for attempt := 1; ; attempt++ {
		retry, retryAfter, err := n.attempt(ctx, j, attempt)
		if err == nil {
			n.metrics.delivered.WithLabelValues(n.cfg.Name).Inc()
			n.metrics.queued.WithLabelValues(n.cfg.Name).Dec()
			n.pending.Add(-1)
			return
		}
		switch {
		case ctx.Err() != nil:
			n.deadLetter(j, attempt, errors.Join(ErrClosed, err))
			return
		case !retry:
			n.deadLetter(j, attempt, err)
			return
		case attempt >= n.cfg.MaxAttempts:
			n.deadLetter(j, attempt, fmt.Errorf("giving up after %d attempts: %w", attempt, err))
			return
		}
		wait := n.backoff(attempt)
		if retryAfter > wait {
			wait = min(retryAfter, n.cfg.MaxBackoff)
		}
		n.logger.Debug("webhook delivery failed; retrying", "key", j.key, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			n.deadLetter(j, attempt, errors.Join(ErrClosed, err))
			return
		case <-t.C:
		}
	}
}

// backoff is the wait after the attempt-th failure: InitialBackoff doubled
// per earlier failure, capped at MaxBackoff, then jittered into
// [d/2, d] so that many records failing together do not retry in step.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.cfg.InitialBackoff
	for i := 1; i < attempt && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

func (n *Notifier) deadLetter(j *job, attempts int, err error) {
	defer n.pending.Add(-1)
	n.metrics.deadLetters.WithLabelValues(n.cfg.Name).Inc()
	n.metrics.queued.WithLabelValues(n.cfg.Name).Dec()
	n.logger.Error("webhook delivery failed; dead-lettering the record", "key", j.key, "attempts", attempts, "err", err)
	if n.cfg.OnDeadLetter != nil {
		n.cfg.OnDeadLetter(DeadLetter{Webhook: n.cfg.Name, Key: j.key, Record: j.rec, Body: j.body, Attempts: attempts, Err: err})
	}
}

// attempt POSTs j once. retryAfter is the server's Retry-After, if any.
func (n *Notifier) attempt(ctx context.Context, j *job, attempt int) (retry bool, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(j.body))
	if err != nil {
		return false, 0, fmt.Errorf("building request for %s: %w", j.key, err)
	}
	for k, v := range n.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "crmpulse")
	req.Header.Set(HeaderIdempotencyKey, j.key)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	if j.kind != "" {
		req.Header.Set(HeaderRecord, j.kind)
	}
	if n.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign([]byte(n.cfg.Secret), j.body))
	}

	start := time.Now()
	resp, err := n.cfg.Client.Do(req)
	n.metrics.duration.WithLabelValues(n.cfg.Name).Observe(time.Since(start).Seconds())
	if err != nil {
		n.metrics.requests.WithLabelValues(n.cfg.Name, outcomeNetworkError).Inc()
		// net/http's error quotes the URL, with its token parameters.
		return true, 0, redact.Error(fmt.Errorf("posting %s to %s: %w", j.key, n.label, err), n.cfg.URL)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		n.metrics.requests.WithLabelValues(n.cfg.Name, outcomeSuccess).Inc()
		return false, 0, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	err = fmt.Errorf("posting %s to %s: unexpected status %d: %s", j.key, n.label, resp.StatusCode, strings.TrimSpace(string(msg)))
	if resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests {
		n.metrics.requests.WithLabelValues(n.cfg.Name, outcomeServerError).Inc()
		return true, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), err
	}
	n.metrics.requests.WithLabelValues(n.cfg.Name, outcomeClientError).Inc()
	return false, 0, err
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Sign returns the X-CRMPulse-Signature value for body: "sha256=" and the
// hex HMAC-SHA256 of body keyed with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return signaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature (an X-CRMPulse-Signature value) is the
// signature of body under secret, in constant time. Receivers written in Go
// can use it as is.
func Verify(secret, body []byte, signature string) bool {
	got, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return false
	}
	mac, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(mac, m.Sum(nil))
}
