// Package alertmanager delivers CRM Pulse alerts to Prometheus Alertmanager
// through its v2 API, so that its routing tree, grouping, silences and
// inhibition work on them as they do on Prometheus alerts (SPEC §4).
//
// The Notifier keeps the set of active alerts, keyed by fingerprint, and
// treats it as the truth: a state change is posted promptly, every firing
// alert is re-posted each ResendDelay with endsAt = now + 4×ResendDelay (as
// Prometheus does, so Alertmanager resolves them by itself if the pipeline
// dies), and a resolution is kept until every Alertmanager has accepted it.
// While an Alertmanager is unreachable its posts are retried with
// exponential backoff, and the first post that gets through carries the
// whole current state, so nothing is lost across an outage or a restart of
// Alertmanager (which keeps alerts in memory only).
//
// Each entry remembers its owner: the partition worker or group stage whose
// engine state holds the alert. Assign re-announces the firing alerts an
// owner restored (from a snapshot written by this or another instance), and
// Release forgets an owner's firing alerts without resolving them when the
// owner moves away, so that an instance re-posts only the alerts of the
// state it owns and the owner's next instance takes over (docs/run.md,
// "Alerts across restarts and rebalances").
package alertmanager

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/redact"
)

// Notifier posts alerts to one or more Alertmanagers. Notify may be called
// from any goroutine, before or while Run runs.
type Notifier struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	targets []*target
	running atomic.Bool

	mu     sync.Mutex
	alerts map[string]*entry // firing alerts and resolutions some target still owes
	firing int               // entries in alerts that are firing
}

// entry is one alert of the active set.
type entry struct {
	fp    string
	owner string        // who holds the alert's state; "" for none
	start time.Time     // the record's starts_at, before any clamping
	base  postableAlert // EndsAt is zero while firing
	// owed[i] is true while target i has not accepted this resolution;
	// owing counts them. Both are unused while firing.
	owed  []bool
	owing int
}

func (e *entry) resolved() bool { return !e.base.EndsAt.IsZero() }

// target is one Alertmanager and its delivery state.
type target struct {
	idx      int
	endpoint string // .../api/v2/alerts
	label    string // base URL, credentials redacted, for logs and metrics
	wake     chan struct{}

	// Guarded by Notifier.mu.
	pending map[string]struct{} // fingerprints changed since the last post
	full    bool                // the next post carries the whole active set
}

// item is one alert of a batch, with the entry it was taken from so that
// delivery can be acknowledged.
type item struct {
	e *entry
	a postableAlert
}

// New returns a Notifier for cfg. Metrics are registered on reg if it is not
// nil; logger may be nil.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Notifier, error) {
	cfg = cfg.withDefaults()
	endpoints, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{cfg: cfg, logger: logger, alerts: map[string]*entry{}}
	labels := make([]string, len(cfg.URLs))
	for i, raw := range cfg.URLs {
		labels[i] = redact.URL(raw)
		n.targets = append(n.targets, &target{
			idx:      i,
			endpoint: endpoints[i],
			label:    labels[i],
			wake:     make(chan struct{}, 1),
			pending:  map[string]struct{}{},
			full:     true,
		})
	}
	if n.metrics, err = newMetrics(reg, labels); err != nil {
		return nil, err
	}
	return n, nil
}

// Notify records state changes of alerts without an owner; see NotifyFor.
func (n *Notifier) Notify(alerts ...processor.Alert) { n.NotifyFor("", alerts...) }

// NotifyFor records state changes of alerts produced by owner; it never
// blocks on the network. A firing alert joins (or updates) the active set;
// a resolved one replaces it until every Alertmanager has accepted the
// resolution. Records of other states are ignored.
func (n *Notifier) NotifyFor(owner string, alerts ...processor.Alert) {
	n.update(owner, false, alerts)
}

// Assign re-announces the firing alerts that owner restored with its state,
// at once, and makes owner theirs. A restored alert does not replace a
// resolution of it still being delivered unless it started later: that
// resolution is newer than the restored state.
func (n *Notifier) Assign(owner string, firing []processor.Alert) {
	if len(firing) > 0 {
		n.logger.Info("re-posting the firing alerts of restored state", "owner", owner, "alerts", len(firing))
	}
	n.update(owner, true, firing)
}

// Release forgets owner's firing alerts without resolving them: owner's
// state moved to another instance (or this one, later), which re-announces
// them; resolving them here would flap them. They stay active in
// Alertmanager until their endsAt. Resolutions still owed are delivered.
func (n *Notifier) Release(owner string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	released := 0
	for fp, e := range n.alerts {
		if e.owner == owner && !e.resolved() {
			delete(n.alerts, fp)
			released++
		}
	}
	n.firing -= released
	n.metrics.active.Set(float64(n.firing))
	if released > 0 {
		n.logger.Info("no longer re-posting the firing alerts of revoked state", "owner", owner, "alerts", released)
	}
}

func (n *Notifier) update(owner string, restored bool, alerts []processor.Alert) {
	if len(alerts) == 0 {
		return
	}
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range alerts {
		a := &alerts[i]
		if a.State != processor.StateFiring && a.State != processor.StateResolved {
			n.logger.Warn("ignoring alert with unknown state", "fingerprint", a.Fingerprint, "state", a.State)
			continue
		}
		if restored && a.State != processor.StateFiring {
			continue // only firing alerts are restored
		}
		e := &entry{fp: a.Fingerprint, owner: owner, start: a.StartsAt, base: n.postable(a, now)}
		if e.fp == "" {
			e.fp = processor.Fingerprint(a.Labels)
		}
		old := n.alerts[e.fp]
		if restored && old != nil && old.resolved() && !a.StartsAt.After(old.start) {
			continue
		}
		wasFiring := old != nil && !old.resolved()
		if e.resolved() {
			e.owed = make([]bool, len(n.targets))
			for j := range e.owed {
				e.owed[j] = true
			}
			e.owing = len(n.targets)
			if wasFiring {
				n.firing--
			}
		} else if !wasFiring {
			n.firing++
		}
		n.alerts[e.fp] = e
		for _, t := range n.targets {
			t.pending[e.fp] = struct{}{}
		}
	}
	n.metrics.active.Set(float64(n.firing))
	for _, t := range n.targets {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// postable converts a to the Alertmanager model. Times are clamped so that
// Alertmanager accepts and acts on them whatever the skew between event
// time and the wall clock: a resolution whose ends_at lies ahead of now
// would otherwise keep the alert firing until then, and startsAt must not
// be after endsAt.
func (n *Notifier) postable(a *processor.Alert, now time.Time) postableAlert {
	p := postableAlert{
		Labels:      make(map[string]string, len(a.Labels)+2),
		Annotations: make(map[string]string, len(a.Annotations)),
		StartsAt:    a.StartsAt.UTC(),
	}
	for k, v := range a.Labels {
		p.Labels[labelName(k)] = v
	}
	if _, ok := p.Labels["alertname"]; !ok && a.Rule != "" {
		p.Labels["alertname"] = a.Rule
	}
	if _, ok := p.Labels["severity"]; !ok && a.Severity != "" {
		p.Labels["severity"] = a.Severity
	}
	for k, v := range a.Annotations {
		p.Annotations[labelName(k)] = v
	}
	if n.cfg.GeneratorURL != nil {
		p.GeneratorURL = n.cfg.GeneratorURL(a)
	}
	if a.State == processor.StateResolved {
		p.EndsAt = now.UTC()
		if a.EndsAt != nil && a.EndsAt.Before(now) {
			p.EndsAt = a.EndsAt.UTC()
		}
		if p.StartsAt.IsZero() || p.StartsAt.After(p.EndsAt) {
			p.StartsAt = p.EndsAt
		}
	}
	return p
}

// labelName makes s a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*),
// which Alertmanager requires of label and annotation names, by replacing
// other characters with '_'.
func labelName(s string) string {
	valid := s != ""
	for i := 0; i < len(s) && valid; i++ {
		valid = isNameChar(s[i], i)
	}
	if valid {
		return s
	}
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i := range b {
		if !isNameChar(b[i], i) {
			b[i] = '_'
		}
	}
	return string(b)
}

func isNameChar(c byte, i int) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
}

// Run delivers alerts until ctx ends, one goroutine per Alertmanager. Before
// returning it makes one last, time-capped attempt to post pending changes
// (resolutions, mostly). It returns nil when ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("alertmanager: Run called twice")
	}
	var wg sync.WaitGroup
	for _, t := range n.targets {
		wg.Go(func() { n.runTarget(ctx, t) })
	}
	wg.Wait()
	return nil
}

func (n *Notifier) runTarget(ctx context.Context, t *target) {
	log := n.logger.With("url", t.label)
	resend := time.NewTimer(n.cfg.ResendDelay)
	defer resend.Stop()
	var backoff time.Duration
	for ctx.Err() == nil {
		full, err := n.flush(ctx, t, log)
		switch {
		case err != nil && ctx.Err() != nil:
			// Shutting down; the final flush below has a go.
		case err != nil:
			backoff = nextBackoff(backoff, n.cfg.MaxBackoff)
			log.Warn("posting to Alertmanager failed; will retry with the full state", "err", err, "backoff", backoff)
			wait := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
			case <-wait.C:
			}
			wait.Stop()
			continue
		default:
			if backoff > 0 {
				log.Info("Alertmanager reachable again; current state re-posted")
			}
			backoff = 0
			if full {
				resend.Reset(n.cfg.ResendDelay)
			}
		}
		select {
		case <-ctx.Done():
		case <-t.wake:
		case <-resend.C:
			n.setFull(t)
		}
	}
	// A last try without the cancelled context, so that resolutions seen
	// just before shutdown reach Alertmanager instead of waiting for the
	// firing alerts to expire there.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.Timeout)
	defer cancel()
	if _, err := n.flush(final, t, log); err != nil {
		log.Warn("final post to Alertmanager failed; its firing alerts will expire by their endsAt", "err", err)
	}
}

// nextBackoff doubles b, from initialBackoff up to limit.
func nextBackoff(b, limit time.Duration) time.Duration {
	return min(max(initialBackoff, 2*b), limit)
}

// flush posts what t has not yet received, in batches of MaxBatchSize. full
// says whether that was the whole active set. On a retryable error the rest
// is left and the next flush posts the whole set again.
func (n *Notifier) flush(ctx context.Context, t *target, log *slog.Logger) (full bool, err error) {
	items, full := n.take(t, time.Now())
	for len(items) > 0 {
		batch := items[:min(len(items), n.cfg.MaxBatchSize)]
		items = items[len(batch):]
		retry, err := n.postBatch(ctx, t, batch)
		if err != nil && retry {
			n.setFull(t)
			return full, err
		}
		if err != nil {
			// Refused for good (a 4xx): retrying the same batch cannot help.
			// Firing alerts are still in the active set and are offered
			// again with the next full post.
			log.Error("Alertmanager refused alerts; dropping this batch", "err", err, "alerts", len(batch))
		}
		n.delivered(t, batch)
	}
	return full, nil
}

func (n *Notifier) postBatch(ctx context.Context, t *target, batch []item) (retry bool, err error) {
	alerts := make([]postableAlert, len(batch))
	for i := range batch {
		alerts[i] = batch[i].a
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	start := time.Now()
	retry, err = post(ctx, n.cfg.Client, t.endpoint, alerts)
	n.metrics.postDuration.WithLabelValues(t.label).Observe(time.Since(start).Seconds())
	outcome := outcomeSuccess
	var se *statusError
	switch {
	case err == nil:
		n.metrics.alertsPosted.WithLabelValues(t.label).Add(float64(len(alerts)))
	case errors.As(err, &se) && retry:
		outcome = outcomeServerError
	case errors.As(err, &se):
		outcome = outcomeClientError
	default:
		outcome = outcomeNetworkError
	}
	n.metrics.posts.WithLabelValues(t.label, outcome).Inc()
	up := 0.0
	if err == nil {
		up = 1
	}
	n.metrics.up.WithLabelValues(t.label).Set(up)
	return retry, err
}

// take returns what t should receive now: the whole active set if t.full,
// else the alerts changed since t's last post. Firing alerts get endsAt =
// now + 4×ResendDelay.
func (n *Notifier) take(t *target, now time.Time) (items []item, full bool) {
	validUntil := now.Add(expiryFactor * n.cfg.ResendDelay).UTC()
	add := func(e *entry) {
		if e.resolved() && !e.owed[t.idx] {
			return
		}
		a := e.base
		if !e.resolved() {
			a.EndsAt = validUntil
			if a.StartsAt.IsZero() || a.StartsAt.After(now) {
				a.StartsAt = now.UTC() // event time ahead of the wall clock
			}
		}
		items = append(items, item{e: e, a: a})
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	full = t.full
	if full {
		items = make([]item, 0, len(n.alerts))
		for _, e := range n.alerts {
			add(e)
		}
	} else {
		for fp := range t.pending {
			if e := n.alerts[fp]; e != nil {
				add(e)
			}
		}
	}
	t.full = false
	clear(t.pending)
	return items, full
}

// delivered acknowledges a batch accepted (or refused for good) by t: a
// resolution that every target has had leaves the active set.
func (n *Notifier) delivered(t *target, batch []item) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, it := range batch {
		e := it.e
		if !e.resolved() || !e.owed[t.idx] {
			continue
		}
		e.owed[t.idx] = false
		e.owing--
		if e.owing == 0 && n.alerts[e.fp] == e {
			delete(n.alerts, e.fp)
		}
	}
}

func (n *Notifier) setFull(t *target) {
	n.mu.Lock()
	t.full = true
	n.mu.Unlock()
}

// Active returns copies of the labels of the firing alerts in the active
// set, keyed by fingerprint: what Alertmanager should be told is firing.
func (n *Notifier) Active() map[string]map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]map[string]string, n.firing)
	for fp, e := range n.alerts {
		if !e.resolved() {
			out[fp] = maps.Clone(e.base.Labels)
		}
	}
	return out
}
