package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/crmpulse/crmpulse/redact"
)

// Defaults of Config, in one place.
const (
	DefaultName           = "webhook"
	DefaultTimeout        = 10 * time.Second
	DefaultMaxAttempts    = 8
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultQueueSize      = 1024
	DefaultWorkers        = 4
)

// Config says where and how records are delivered.
type Config struct {
	// Name tells this webhook apart in metrics and logs ("alerts",
	// "resends"); it should come from a fixed set. Default "webhook".
	Name string
	// URL receives one POST per record.
	URL string
	// Secret, if set, signs every body: the header X-CRMPulse-Signature
	// carries sha256=<hex HMAC-SHA256 of the body keyed with Secret>.
	Secret string
	// Headers are added to every request (an Authorization header, say).
	Headers map[string]string
	// Timeout bounds one attempt. Default 10s.
	Timeout time.Duration
	// MaxAttempts is the number of attempts in total before a record is
	// dead-lettered. Default 8.
	MaxAttempts int
	// InitialBackoff is the wait after the first failed attempt; it doubles
	// after each failure up to MaxBackoff, and each wait is jittered down
	// by up to half. Defaults 500ms and 30s.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// QueueSize bounds the records waiting for delivery; Send blocks when
	// it is full. Default 1024.
	QueueSize int
	// Workers deliver in parallel. Records with the same order key (an
	// alert's fingerprint, a trigger's trigger_id) go to the same worker,
	// so a resolution never overtakes its firing and a cancel never
	// overtakes its resend. Default 4.
	Workers int
	// OnDeadLetter, if set, receives every record that could not be
	// delivered: refused (a 4xx other than 429), out of attempts, or still
	// queued when Run returned. It is called from a worker goroutine.
	OnDeadLetter func(DeadLetter)
	// Client is the HTTP client to use: httpclient.New builds one with
	// basic auth or a bearer token and TLS (CA, client certificate).
	// Default: a plain client of its own.
	Client *http.Client
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = DefaultInitialBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	return c
}

// validate checks c after defaults, naming the field at fault.
func (c *Config) validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("webhook: url: required"))
	case err != nil:
		// net/url's errors quote the URL in full, password included.
		errs = append(errs, redact.Error(fmt.Errorf("webhook: url: %w", err), c.URL))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("webhook: url: %q: scheme must be http or https", redact.URL(u.String())))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("webhook: url: %q: no host", redact.URL(u.String())))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", c.Timeout}, {"initial_backoff", c.InitialBackoff}, {"max_backoff", c.MaxBackoff}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("webhook: %s: must not be negative, got %s", d.name, d.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"max_attempts", c.MaxAttempts}, {"queue_size", c.QueueSize}, {"workers", c.Workers}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("webhook: %s: must not be negative, got %d", n.name, n.v))
		}
	}
	if c.QueueSize < c.Workers {
		errs = append(errs, fmt.Errorf("webhook: queue_size: %d is less than workers (%d)", c.QueueSize, c.Workers))
	}
	return errors.Join(errs...)
}
