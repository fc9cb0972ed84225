// Package delivery plugs the notifiers into the streaming pipeline: every
// batch of engine output goes to Alertmanager (alerts), to the alert and
// resend webhooks, and through the resend follow-up tracker. It is a
// stream.OutputSink: the pipeline commits Kafka offsets only after Flush,
// which waits until every webhook record is delivered or dead-lettered, and
// a stream.AlertStateSink: the firing alerts a partition restored are
// re-posted to Alertmanager, and a partition that moves away stops
// re-posting its alerts (docs/run.md, "Alerts across restarts and
// rebalances").
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/crmpulse/crmpulse/alerting/alertmanager"
	"github.com/crmpulse/crmpulse/alerting/webhook"
	"github.com/crmpulse/crmpulse/httpclient"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/stream"
)

// Config says where alerts and resend triggers are delivered. Every part is
// optional; an empty Config delivers nothing (the Kafka topics still get
// every record).
type Config struct {
	// AlertmanagerURLs are the Alertmanager instances (HA: each gets every alert).
	AlertmanagerURLs []string
	// ResendDelay is how often firing alerts are re-posted; default 1m.
	ResendDelay time.Duration
	// AlertWebhook and ResendWebhook receive one POST per record.
	AlertWebhook, ResendWebhook string
	// WebhookSecret signs webhook bodies (X-CRMPulse-Signature).
	WebhookSecret string
	// DeadLetterFile, if set, receives a JSON line per record a webhook
	// could not deliver after its last retry.
	DeadLetterFile string
	// AlertmanagerClient and WebhookClient are how the posts authenticate
	// (basic auth, bearer token) and check the server (TLS); the zero
	// value is a plain client.
	AlertmanagerClient, WebhookClient httpclient.Config
}

// Enabled reports whether cfg delivers anywhere.
func (c Config) Enabled() bool {
	return len(c.AlertmanagerURLs) > 0 || c.AlertWebhook != "" || c.ResendWebhook != ""
}

// Sink delivers engine output to the configured notifiers.
type Sink struct {
	am      *alertmanager.Notifier
	alerts  *webhook.Notifier
	resends *webhook.Notifier
	log     *slog.Logger
	dlMu    sync.Mutex
	dl      *os.File
}

// New builds the notifiers of cfg; Run must be running for them to deliver.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Sink, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{log: logger}
	var err error
	if len(cfg.AlertmanagerURLs) > 0 {
		client, err := httpclient.New("alertmanager", cfg.AlertmanagerClient, logger)
		if err != nil {
			return nil, err
		}
		s.am, err = alertmanager.New(alertmanager.Config{URLs: cfg.AlertmanagerURLs, ResendDelay: cfg.ResendDelay, Client: client}, logger, reg)
		if err != nil {
			return nil, err // its errors start with "alertmanager:"
		}
	}
	var hookClient *http.Client
	if cfg.AlertWebhook != "" || cfg.ResendWebhook != "" {
		if hookClient, err = httpclient.New("webhooks", cfg.WebhookClient, logger); err != nil {
			return nil, err
		}
	}
	if cfg.DeadLetterFile != "" {
		if s.dl, err = os.OpenFile(cfg.DeadLetterFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return nil, fmt.Errorf("opening webhook dead-letter file: %w", err)
		}
	}
	mk := func(name, url string) (*webhook.Notifier, error) {
		if url == "" {
			return nil, nil
		}
		return webhook.New(webhook.Config{Name: name, URL: url, Secret: cfg.WebhookSecret, OnDeadLetter: s.deadLetter, Client: hookClient}, logger, reg)
	}
	if s.alerts, err = mk("alerts", cfg.AlertWebhook); err != nil {
		return nil, err
	}
	if s.resends, err = mk("resends", cfg.ResendWebhook); err != nil {
		return nil, err
	}
	return s, nil
}

// deadLetter keeps what a webhook gave up on, so an operator can replay it.
func (s *Sink) deadLetter(d webhook.DeadLetter) {
	if s.dl == nil {
		return
	}
	line, _ := json.Marshal(struct {
		Webhook  string          `json:"webhook"`
		Key      string          `json:"key"`
		Attempts int             `json:"attempts"`
		Error    string          `json:"error"`
		Body     json.RawMessage `json:"body"`
	}{d.Webhook, d.Key, d.Attempts, fmt.Sprint(d.Err), d.Body})
	s.dlMu.Lock()
	defer s.dlMu.Unlock()
	if _, err := s.dl.Write(append(line, '\n')); err != nil {
		s.log.Error("writing webhook dead letter", "key", d.Key, "err", err)
	}
}

// Run runs the notifiers until ctx ends.
func (s *Sink) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if s.am != nil {
		g.Go(func() error { return s.am.Run(ctx) })
	}
	for _, n := range []*webhook.Notifier{s.alerts, s.resends} {
		if n != nil {
			g.Go(func() error { return n.Run(ctx) })
		}
	}
	err := g.Wait()
	if s.dl != nil {
		err = errors.Join(err, s.dl.Close())
	}
	return err
}

var _ stream.AlertStateSink = (*Sink)(nil)

// Write hands a batch to the notifiers. Alertmanager takes it at once (its
// active set is the truth it re-posts), as alerts of the batch's owner
// (stream.OutputOwner); webhooks queue it and may block while their queues
// are full, which is the pipeline's backpressure.
func (s *Sink) Write(ctx context.Context, out *processor.Output) error {
	if s.am != nil && len(out.Alerts) > 0 {
		s.am.NotifyFor(stream.OutputOwner(ctx), out.Alerts...)
	}
	if s.alerts != nil {
		for i := range out.Alerts {
			a := out.Alerts[i] // the engine reuses out after Write returns
			if err := s.alerts.Send(ctx, &a); err != nil {
				return fmt.Errorf("queueing alert %s: %w", a.ID(), err)
			}
		}
	}
	if s.resends != nil {
		for i := range out.Resends {
			r := out.Resends[i]
			if err := s.resends.Send(ctx, &r); err != nil {
				return fmt.Errorf("queueing resend %s: %w", r.ID(), err)
			}
		}
	}
	return nil
}

// Assigned re-posts the firing alerts owner restored to Alertmanager at
// once. Webhooks get nothing: each of their records is one state change,
// already delivered (or dead-lettered) before the checkpoint that holds it
// was written; resolutions that happened after that checkpoint are produced
// again as owner re-reads its input, and are delivered then.
func (s *Sink) Assigned(owner string, firing []processor.Alert) {
	if s.am != nil {
		s.am.Assign(owner, firing)
	}
}

// Revoked makes Alertmanager stop re-posting owner's firing alerts, without
// resolving them: their next owner re-posts them.
func (s *Sink) Revoked(owner string) {
	if s.am != nil {
		s.am.Release(owner)
	}
}

// Flush returns once every webhook record written so far is delivered or
// dead-lettered.
func (s *Sink) Flush(ctx context.Context) error {
	for _, n := range []*webhook.Notifier{s.alerts, s.resends} {
		if n != nil {
			if err := n.Wait(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}
