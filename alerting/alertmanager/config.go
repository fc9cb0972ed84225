package alertmanager

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/redact"
)

// Defaults of Config, in one place.
const (
	DefaultResendDelay  = time.Minute
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBackoff   = 30 * time.Second
	DefaultMaxBatchSize = 256

	// initialBackoff is the first wait after a failed post; it doubles up
	// to MaxBackoff.
	initialBackoff = 500 * time.Millisecond
	// expiryFactor × ResendDelay is how long Alertmanager keeps a firing
	// alert without hearing from us again, as Prometheus does: a few lost
	// re-posts do not resolve it, a dead pipeline does.
	expiryFactor = 4
	// apiPath is the v2 endpoint that receives alerts, under a base URL.
	apiPath = "/api/v2/alerts"
)

// Config says where and how alerts are posted.
type Config struct {
	// URLs are the base URLs of the Alertmanagers, e.g.
	// http://alertmanager:9093 (a route prefix is kept: .../am/ posts to
	// .../am/api/v2/alerts). An HA cluster is listed member by member:
	// every member receives every alert and is retried independently, as
	// Prometheus does; the cluster deduplicates notifications.
	URLs []string
	// ResendDelay is how often firing alerts are re-posted. Each post sets
	// endsAt to now + 4×ResendDelay. Default 1m.
	ResendDelay time.Duration
	// Timeout bounds one POST. Default 10s.
	Timeout time.Duration
	// MaxBackoff caps the wait between retries while an Alertmanager is
	// unreachable. Default 30s.
	MaxBackoff time.Duration
	// MaxBatchSize is the most alerts in one POST. Default 256.
	MaxBatchSize int
	// GeneratorURL, if set, gives the generatorURL of an alert (a link
	// back to the pipeline's view of the rule).
	GeneratorURL func(a *processor.Alert) string
	// Client is the HTTP client to use: httpclient.New builds one with
	// basic auth or a bearer token and TLS (CA, client certificate).
	// Default: a plain client of its own; Timeout applies either way.
	Client *http.Client
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.ResendDelay == 0 {
		c.ResendDelay = DefaultResendDelay
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBatchSize == 0 {
		c.MaxBatchSize = DefaultMaxBatchSize
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	return c
}

// validate checks c (after defaults) and returns the v2 endpoints of its URLs.
func (c *Config) validate() ([]string, error) {
	if len(c.URLs) == 0 {
		return nil, errors.New("alertmanager: urls: at least one URL is required")
	}
	var errs []error
	seen := map[string]bool{}
	endpoints := make([]string, 0, len(c.URLs))
	for i, raw := range c.URLs {
		// Errors quote the URL redacted: it may carry a password
		// (net/url's own errors quote it in full).
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			errs = append(errs, redact.Error(fmt.Errorf("alertmanager: urls[%d]: %w", i, err), raw))
			continue
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("alertmanager: urls[%d]: %q: scheme must be http or https", i, redact.URL(raw)))
			continue
		case u.Host == "":
			errs = append(errs, fmt.Errorf("alertmanager: urls[%d]: %q: no host", i, redact.URL(raw)))
			continue
		case seen[raw]:
			errs = append(errs, fmt.Errorf("alertmanager: urls[%d]: %q listed twice", i, redact.URL(raw)))
			continue
		}
		seen[raw] = true
		endpoints = append(endpoints, u.JoinPath(apiPath).String())
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"resend_delay", c.ResendDelay}, {"timeout", c.Timeout}, {"max_backoff", c.MaxBackoff}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("alertmanager: %s: must not be negative, got %s", d.name, d.v))
		}
	}
	if c.MaxBatchSize < 0 {
		errs = append(errs, fmt.Errorf("alertmanager: max_batch_size: must not be negative, got %d", c.MaxBatchSize))
	}
	return endpoints, errors.Join(errs...)
}
