package webhook

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one attempt, the values of the outcome label.
const (
	outcomeSuccess      = "success"
	outcomeClientError  = "client_error"  // 4xx other than 429: dead-lettered
	outcomeServerError  = "server_error"  // 5xx or 429: retried
	outcomeNetworkError = "network_error" // no response: retried
)

var outcomes = []string{outcomeSuccess, outcomeClientError, outcomeServerError, outcomeNetworkError}

type metrics struct {
	requests    *prometheus.CounterVec
	delivered   *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	queued      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_webhook_requests_total",
			Help: "Delivery attempts to a webhook, by outcome.",
		}, []string{"webhook", "outcome"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_webhook_delivered_total",
			Help: "Records a webhook accepted.",
		}, []string{"webhook"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_webhook_dead_letters_total",
			Help: "Records given up on: refused, out of attempts, or pending at shutdown.",
		}, []string{"webhook"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmpulse_webhook_request_duration_seconds",
			Help:    "Duration of one delivery attempt, whatever its outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"webhook"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crmpulse_webhook_queued_records",
			Help: "Records accepted by Send and not yet delivered or dead-lettered.",
		}, []string{"webhook"}),
	}
	var err error
	m.requests = register(reg, m.requests, &err)
	m.delivered = register(reg, m.delivered, &err)
	m.deadLetters = register(reg, m.deadLetters, &err)
	m.duration = register(reg, m.duration, &err)
	m.queued = register(reg, m.queued, &err)
	if err != nil {
		return nil, err
	}
	for _, o := range outcomes {
		m.requests.WithLabelValues(name, o)
	}
	m.delivered.WithLabelValues(name)
	m.deadLetters.WithLabelValues(name)
	m.duration.WithLabelValues(name)
	m.queued.WithLabelValues(name)
	return m, nil
}

// register registers c on reg (if any) and returns the collector to use: c,
// or the identical one already registered (the alert and resend webhooks
// share the series, told apart by their webhook label).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		*errp = errors.Join(*errp, err)
	}
	return c
}
