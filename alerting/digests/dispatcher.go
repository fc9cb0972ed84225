// Package digests delivers digest records (SPEC §3.4, §4) to people: by
// email, rendered from templates the user can replace, and by webhook.
// Each digest_id is delivered at most once per channel, across restarts:
// a Ledger records each delivery before and after it leaves.
package digests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmpulse/crmpulse/alerting/webhook"
	"github.com/crmpulse/crmpulse/record"
)

// Channels, as they appear in ledger keys and metrics.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// Outcomes in crmpulse_digest_deliveries_total.
const (
	OutcomeSent      = "sent"
	OutcomeDuplicate = "duplicate" // the ledger had it as sent or refused
	OutcomeUncertain = "uncertain" // the ledger had it as sending: not sent again
	OutcomeRefused   = "refused"
	OutcomeBad       = "bad_record"
	OutcomeStale     = "stale" // older than Config.MaxAge: skipped
)

// Defaults of Config.
const (
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = time.Minute
)

// mailer renders and sends digest emails (*Email).
type mailer interface {
	render(d *record.Digest) (*message, error)
	send(ctx context.Context, m *message, before func() error) (outcome, error)
}

// Poster makes one webhook delivery attempt (webhook.Notifier.Notify).
type Poster interface {
	Notify(ctx context.Context, rec webhook.Record) (retry bool, err error)
}

// Config is a Dispatcher's.
type Config struct {
	Email   *Email // nil: no email
	Webhook Poster // nil: no webhook
	Ledger  Ledger // required
	// A failed attempt is retried after InitialBackoff, doubling up to
	// MaxBackoff, without end: an outage delays digests, it loses none.
	InitialBackoff, MaxBackoff time.Duration
	// MaxAge, if positive, skips a digest whose period ended longer ago
	// when it is read: so that turning delivery on for a pipeline that
	// has been writing digests for a week does not mail that week. 0
	// delivers every digest, however late.
	MaxAge time.Duration
	// Now is the clock MaxAge is judged by; time.Now when nil.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Dispatcher delivers digests one at a time.
type Dispatcher struct {
	cfg        Config
	mail       mailer // cfg.Email; a fake in unit tests
	log        *slog.Logger
	deliveries *prometheus.CounterVec
	retries    *prometheus.CounterVec
	waiting    prometheus.Gauge
}

// New checks cfg and registers the metrics.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Ledger == nil {
		return nil, errors.New("digest delivery: no ledger")
	}
	if cfg.Email == nil && cfg.Webhook == nil {
		return nil, errors.New("digest delivery: neither email nor webhook configured")
	}
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = DefaultInitialBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.InitialBackoff)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dispatcher{
		cfg: cfg,
		log: cfg.Logger,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_digest_deliveries_total",
			Help: "Digests handled by delivery, by channel and outcome (sent, duplicate, uncertain, refused, bad_record, stale).",
		}, []string{"channel", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_digest_delivery_retries_total",
			Help: "Failed delivery attempts that will be retried (the server down, a temporary refusal), by channel.",
		}, []string{"channel"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmpulse_digest_delivery_waiting",
			Help: "1 while a digest waits for its server to come back, else 0.",
		}),
	}
	if cfg.Email != nil {
		d.mail = cfg.Email
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{d.deliveries, d.retries, d.waiting} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("digest delivery metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Deliver delivers the digest record raw (its SPEC §4 JSON) on every
// configured channel. It returns nil once the digest is settled on each
// (sent, found in the ledger, or refused for good: those are logged and
// counted) and an error only when ctx ended first; the caller then must
// not consider raw handled.
func (d *Dispatcher) Deliver(ctx context.Context, raw []byte) error {
	dg, err := record.ParseDigest(raw)
	if err != nil {
		d.log.Error("digest record cannot be delivered", "err", err)
		d.deliveries.WithLabelValues("", OutcomeBad).Inc()
		return nil
	}
	if age := d.cfg.Now().Sub(dg.PeriodEnd); d.cfg.MaxAge > 0 && age > d.cfg.MaxAge {
		d.log.Info("digest older than max_age: not delivered", "digest_id", dg.DigestID, "digest", dg.Digest,
			"period_end", dg.PeriodEnd, "age", age.Round(time.Second), "max_age", d.cfg.MaxAge)
		d.deliveries.WithLabelValues("", OutcomeStale).Inc()
		return nil
	}
	if d.cfg.Email != nil {
		if err := d.email(ctx, dg); err != nil {
			return err
		}
	}
	if d.cfg.Webhook != nil {
		if err := d.webhook(ctx, dg, raw); err != nil {
			return err
		}
	}
	return nil
}

// seen reports whether key is settled in the ledger, counting it so.
func (d *Dispatcher) seen(ctx context.Context, channel, key string, dg *record.Digest) (bool, error) {
	for attempt := 0; ; attempt++ {
		e, ok, err := d.cfg.Ledger.Get(ctx, key)
		if err == nil {
			if !ok || !e.final() {
				return false, nil
			}
			switch e.State {
			case StateSending:
				d.log.Warn("digest may have been delivered by a run that stopped while sending it: not sent again",
					"channel", channel, "digest_id", dg.DigestID, "digest", dg.Digest, "to", e.To, "since", e.At)
				d.deliveries.WithLabelValues(channel, OutcomeUncertain).Inc()
			default:
				d.deliveries.WithLabelValues(channel, OutcomeDuplicate).Inc()
			}
			return true, nil
		}
		d.log.Warn("digest ledger unreadable; retrying", "key", key, "err", err)
		if !d.sleep(ctx, channel, attempt) {
			return false, ctx.Err()
		}
	}
}

// put writes the ledger, retrying until it is stored or ctx ends.
func (d *Dispatcher) put(ctx context.Context, key string, e Entry) error {
	for attempt := 0; ; attempt++ {
		err := d.cfg.Ledger.Put(ctx, key, e)
		if err == nil {
			return nil
		}
		d.log.Warn("digest ledger write failed; retrying", "key", key, "state", e.State, "err", err)
		if !d.sleep(ctx, "ledger", attempt) {
			return fmt.Errorf("recording %s as %s: %w", key, e.State, errors.Join(ctx.Err(), err))
		}
	}
}

func (d *Dispatcher) email(ctx context.Context, dg *record.Digest) error {
	key := Key(ChannelEmail, dg.DigestID)
	if done, err := d.seen(ctx, ChannelEmail, key, dg); done || err != nil {
		return err
	}
	m, err := d.mail.render(dg)
	if err != nil {
		return d.refuse(ctx, ChannelEmail, key, dg, nil, err)
	}
	for attempt := 0; ; attempt++ {
		sending := false
		out, err := d.mail.send(ctx, m, func() error {
			sending = true
			return d.put(ctx, key, Entry{State: StateSending, At: time.Now().UTC(), To: m.to})
		})
		switch out {
		case outSent:
			d.waiting.Set(0)
			if err := d.put(ctx, key, Entry{State: StateSent, At: time.Now().UTC(), To: m.to}); err != nil {
				return err
			}
			d.log.Info("digest emailed", "digest_id", dg.DigestID, "digest", dg.Digest, "to", m.to)
			d.deliveries.WithLabelValues(ChannelEmail, OutcomeSent).Inc()
			return nil
		case outAmbiguous:
			d.waiting.Set(0)
			// StateSending stays: a later run does not send it again.
			d.log.Error("digest email may or may not have been accepted: not sent again; check the mail server's log",
				"digest_id", dg.DigestID, "digest", dg.Digest, "to", m.to, "err", err)
			d.deliveries.WithLabelValues(ChannelEmail, OutcomeUncertain).Inc()
			return nil
		case outRefused:
			d.waiting.Set(0)
			return d.refuse(ctx, ChannelEmail, key, dg, m.to, err)
		}
		if sending {
			if perr := d.put(ctx, key, Entry{State: StatePending, At: time.Now().UTC(), To: m.to, Reason: err.Error()}); perr != nil {
				return perr
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.log.Warn("digest email not delivered yet; retrying", "digest_id", dg.DigestID, "to", m.to, "attempt", attempt+1, "err", err)
		if !d.sleep(ctx, ChannelEmail, attempt) {
			return ctx.Err()
		}
	}
}

// rawDigest posts the record exactly as it was read.
type rawDigest struct {
	id   string
	body json.RawMessage
}

func (r rawDigest) ID() string                   { return r.id }
func (r rawDigest) MarshalJSON() ([]byte, error) { return r.body, nil }

// webhook posts the digest until the receiver answers 2xx. Every attempt
// carries Idempotency-Key = digest_id, so a receiver that honours it sees
// one digest even when an answer was lost; after a 2xx the ledger keeps
// later runs from posting it again.
func (d *Dispatcher) webhook(ctx context.Context, dg *record.Digest, raw []byte) error {
	key := Key(ChannelWebhook, dg.DigestID)
	if done, err := d.seen(ctx, ChannelWebhook, key, dg); done || err != nil {
		return err
	}
	rec := rawDigest{id: dg.DigestID, body: raw}
	for attempt := 0; ; attempt++ {
		retry, err := d.cfg.Webhook.Notify(ctx, rec)
		if err == nil {
			d.waiting.Set(0)
			if err := d.put(ctx, key, Entry{State: StateSent, At: time.Now().UTC()}); err != nil {
				return err
			}
			d.log.Info("digest posted", "digest_id", dg.DigestID, "digest", dg.Digest)
			d.deliveries.WithLabelValues(ChannelWebhook, OutcomeSent).Inc()
			return nil
		}
		if !retry {
			d.waiting.Set(0)
			return d.refuse(ctx, ChannelWebhook, key, dg, nil, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.log.Warn("digest webhook not delivered yet; retrying", "digest_id", dg.DigestID, "attempt", attempt+1, "err", err)
		if !d.sleep(ctx, ChannelWebhook, attempt) {
			return ctx.Err()
		}
	}
}

func (d *Dispatcher) refuse(ctx context.Context, channel, key string, dg *record.Digest, to []string, cause error) error {
	d.log.Error("digest cannot be delivered", "channel", channel, "digest_id", dg.DigestID, "digest", dg.Digest,
		"group", dg.Group, "to", to, "err", cause)
	d.deliveries.WithLabelValues(channel, OutcomeRefused).Inc()
	return d.put(ctx, key, Entry{State: StateRefused, At: time.Now().UTC(), To: to, Reason: cause.Error()})
}

// sleep waits the backoff of attempt (0-based), jittered down by up to a
// quarter; false if ctx ended first.
func (d *Dispatcher) sleep(ctx context.Context, channel string, attempt int) bool {
	d.retries.WithLabelValues(channel).Inc()
	d.waiting.Set(1)
	wait := d.cfg.InitialBackoff << min(attempt, 30)
	if wait <= 0 || wait > d.cfg.MaxBackoff {
		wait = d.cfg.MaxBackoff
	}
	wait -= time.Duration(rand.Int64N(int64(wait)/4 + 1))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
