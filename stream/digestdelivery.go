package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/crmpulse/crmpulse/alerting/digests"
	"github.com/crmpulse/crmpulse/alerting/webhook"
	"github.com/crmpulse/crmpulse/httpclient"
	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
)

// Digests to people (docs/run.md). The group stage writes each digest to
// the digests topic once; a consumer of its own group reads that topic
// and hands each record to alerting/digests, which emails and posts it.
// A record's offset is committed once it is settled. What was delivered
// is kept in a compacted ledger topic (key channel/digest_id), written
// before a message leaves and after it was accepted, so a restart, a
// crash, or the same digest read again never sends it twice.

// deliveryGroupSuffix names the consumer group of digest delivery:
// kafka.group_id + this.
const deliveryGroupSuffix = ".digest-delivery"

// ledgerTopicConfigs: the ledger is compacted, so it holds the latest
// state of each delivery for as long as the topic lives.
var ledgerTopicConfigs = map[string]string{"cleanup.policy": "compact"}

func (c *Config) deliversDigests() bool { return c.SMTP.Host != "" || c.Webhooks.Digests != "" }

// newDigestDispatcher builds the email and webhook channels of cfg; nil
// when neither is configured. The ledger is set by Run.
func newDigestDispatcher(cfg Config, ledger digests.Ledger, logger *slog.Logger, reg prometheus.Registerer) (*digests.Dispatcher, error) {
	if !cfg.deliversDigests() {
		return nil, nil
	}
	dc := digests.Config{Ledger: ledger, MaxBackoff: cfg.DigestDelivery.MaxBackoff.D(), MaxAge: cfg.DigestDelivery.MaxAge.D(),
		Now: cfg.Now, Logger: logger.With("component", "digest delivery"), Registerer: reg}
	if s := cfg.SMTP; s.Host != "" {
		password, err := httpclient.ReadSecret("smtp.password", s.Password, s.PasswordFile)
		if err != nil {
			return nil, err
		}
		tc, err := s.TLS.Build()
		if err != nil {
			return nil, fmt.Errorf("smtp.tls: %w", err)
		}
		if s.TLS.InsecureSkipVerify {
			logger.Warn("smtp.tls.insecure_skip_verify is set: the SMTP server's certificate is NOT verified; for tests only")
		}
		ec := digests.EmailConfig{
			SMTP: digests.SMTPConfig{Host: s.Host, Port: s.Port, Username: s.Username, Password: password, TLS: s.Mode,
				TLSConfig: tc, From: s.From, Timeout: s.Timeout.D()},
			To: cfg.DigestEmail.To, ToByDigest: cfg.DigestEmail.ToByDigest, Subject: cfg.DigestEmail.Subject,
		}
		for _, f := range []struct {
			key, path string
			into      *string
		}{{"digest_email.html_template", cfg.DigestEmail.HTMLTemplate, &ec.HTML}, {"digest_email.text_template", cfg.DigestEmail.TextTemplate, &ec.Text}} {
			if f.path == "" {
				continue
			}
			b, err := os.ReadFile(f.path)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.key, err)
			}
			*f.into = string(b)
		}
		if dc.Email, err = digests.NewEmail(ec); err != nil {
			return nil, err
		}
	}
	if u := cfg.Webhooks.Digests; u != "" {
		client, err := httpclient.New("webhooks.digests", cfg.Webhooks.ClientConfig.HTTP(), logger)
		if err != nil {
			return nil, err
		}
		secret, err := httpclient.ReadSecret("webhooks.secret", cfg.Webhooks.Secret, cfg.Webhooks.SecretFile)
		if err != nil {
			return nil, err
		}
		if dc.Webhook, err = webhook.New(webhook.Config{Name: "digests", URL: u, Secret: secret, Client: client}, logger, nil); err != nil {
			return nil, fmt.Errorf("webhooks.digests: %w", err)
		}
	}
	return digests.New(dc)
}

// kafkaLedger is a digests.Ledger on a compacted single-partition topic.
// It holds every entry in memory: one per digest and channel, a few per
// group and day.
type kafkaLedger struct {
	cl    ikafka.Cluster
	topic string
	w     *kafkago.Writer

	mu   sync.Mutex
	m    map[string]digests.Entry
	next int64 // offset up to which the topic has been read
}

func newKafkaLedger(cl ikafka.Cluster, topic string, logger kafkago.Logger) *kafkaLedger {
	return &kafkaLedger{cl: cl, topic: topic, m: map[string]digests.Entry{}, w: &kafkago.Writer{
		Addr: kafkago.TCP(cl.Brokers...), Transport: cl.Security.Transport(), Topic: topic,
		RequiredAcks: kafkago.RequireAll, BatchSize: 1, BatchTimeout: time.Millisecond, MaxAttempts: 10, ErrorLogger: logger,
	}}
}

// catchUp reads what was written to the ledger since the last call.
func (l *kafkaLedger) catchUp(ctx context.Context) error {
	first, end, err := ikafka.PartitionBounds(ctx, l.cl, l.topic, 0)
	if err != nil {
		return fmt.Errorf("digest ledger %s: %w", l.topic, err)
	}
	from := max(l.next, first)
	if from >= end {
		return nil
	}
	err = ikafka.ReadRange(ctx, l.cl, l.topic, 0, from, end, func(m *kafkago.Message) error {
		l.next = m.Offset + 1
		if m.Value == nil {
			delete(l.m, string(m.Key))
			return nil
		}
		var e digests.Entry
		if err := json.Unmarshal(m.Value, &e); err != nil {
			return fmt.Errorf("digest ledger %s offset %d: %w", l.topic, m.Offset, err)
		}
		l.m[string(m.Key)] = e
		return nil
	})
	if err != nil {
		return err
	}
	l.next = max(l.next, end)
	return nil
}

// Get implements digests.Ledger: it first reads what another instance
// may have written since (after a rebalance moved a digests partition).
func (l *kafkaLedger) Get(ctx context.Context, key string) (digests.Entry, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.catchUp(ctx); err != nil {
		return digests.Entry{}, false, err
	}
	e, ok := l.m[key]
	return e, ok, nil
}

// Put implements digests.Ledger; it returns once the broker has the
// entry on every in-sync replica.
func (l *kafkaLedger) Put(ctx context.Context, key string, e digests.Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := l.w.WriteMessages(ctx, kafkago.Message{Key: []byte(key), Value: b}); err != nil {
		return fmt.Errorf("digest ledger %s: writing %s=%s: %w", l.topic, key, e.State, err)
	}
	l.mu.Lock()
	l.m[key] = e
	l.mu.Unlock()
	return nil
}

func (l *kafkaLedger) close() error { return l.w.Close() }

// ledgerRef is the Dispatcher's ledger, built in New (which checks the
// configuration) before Run knows the brokers.
type ledgerRef struct{ l atomic.Pointer[kafkaLedger] }

func (r *ledgerRef) Get(ctx context.Context, key string) (digests.Entry, bool, error) {
	return r.l.Load().Get(ctx, key)
}

func (r *ledgerRef) Put(ctx context.Context, key string, e digests.Entry) error {
	return r.l.Load().Put(ctx, key, e)
}

// deliverDigests consumes the digests topic until ctx ends.
func (a *App) deliverDigests(ctx context.Context) error {
	ledger := newKafkaLedger(a.cluster(), a.cfg.Topics.DigestDeliveries, a.kafkaLog)
	defer ledger.close()
	a.digestLedger.l.Store(ledger)
	group := a.cfg.Kafka.GroupID + deliveryGroupSuffix
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: a.brokers, Dialer: a.sec.Dialer(), GroupID: group, Topic: a.cfg.Topics.Digests,
		StartOffset: kafkago.FirstOffset, MinBytes: 1, MaxBytes: 2 * maxDigestBytes,
		MaxWait: readerMaxWait(a.cfg.Kafka.MaxWait.D()), SessionTimeout: a.cfg.Kafka.SessionTimeout.D(),
		ErrorLogger: a.kafkaLog,
	})
	defer r.Close()
	a.log.Info("digest delivery starting", "group", group, "topic", a.cfg.Topics.Digests, "ledger", a.cfg.Topics.DigestDeliveries)
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("digest delivery: reading %s: %w", a.cfg.Topics.Digests, err)
		}
		if err := a.digests.Deliver(ctx, m.Value); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("digest delivery: %s offset %d: %w", a.cfg.Topics.Digests, m.Offset, err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The ledger has the delivery: reading it again sends nothing.
			a.log.Warn("digest delivery: committing an offset failed; the record will be read again and found in the ledger",
				"topic", m.Topic, "partition", m.Partition, "offset", strconv.FormatInt(m.Offset, 10), "err", err)
		}
	}
}
