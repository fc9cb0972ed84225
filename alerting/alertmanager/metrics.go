package alertmanager

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one POST, the values of the outcome label.
const (
	outcomeSuccess      = "success"
	outcomeClientError  = "client_error"  // 4xx other than 429: the batch is dropped
	outcomeServerError  = "server_error"  // 5xx or 429: retried
	outcomeNetworkError = "network_error" // no response (refused, reset, timeout): retried
)

var outcomes = []string{outcomeSuccess, outcomeClientError, outcomeServerError, outcomeNetworkError}

type metrics struct {
	posts        *prometheus.CounterVec
	alertsPosted *prometheus.CounterVec
	postDuration *prometheus.HistogramVec
	up           *prometheus.GaugeVec
	active       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, urls []string) (*metrics, error) {
	m := &metrics{
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_alertmanager_posts_total",
			Help: "POSTs of alert batches to an Alertmanager, by outcome.",
		}, []string{"url", "outcome"}),
		alertsPosted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_alertmanager_alerts_posted_total",
			Help: "Alerts accepted by an Alertmanager (re-posts included).",
		}, []string{"url"}),
		postDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmpulse_alertmanager_post_duration_seconds",
			Help:    "Duration of POSTs to an Alertmanager, whatever their outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"url"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crmpulse_alertmanager_up",
			Help: "1 if the last POST to an Alertmanager succeeded, 0 if it failed.",
		}, []string{"url"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmpulse_alertmanager_active_alerts",
			Help: "Firing alerts held for (re-)posting to Alertmanager.",
		}),
	}
	var err error
	m.posts = register(reg, m.posts, &err)
	m.alertsPosted = register(reg, m.alertsPosted, &err)
	m.postDuration = register(reg, m.postDuration, &err)
	m.up = register(reg, m.up, &err)
	m.active = register(reg, m.active, &err)
	if err != nil {
		return nil, err
	}
	// Pre-create the series so that rate() sees a zero before the first
	// failure.
	for _, u := range urls {
		for _, o := range outcomes {
			m.posts.WithLabelValues(u, o)
		}
		m.alertsPosted.WithLabelValues(u)
		m.postDuration.WithLabelValues(u)
	}
	return m, nil
}

// register registers c on reg (if any) and returns the collector to use: c,
// or the identical one already registered (several notifiers in one process
// share the series, told apart by their url label).
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
