package followup

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	outcomes *prometheus.CounterVec
	recovery *prometheus.HistogramVec
	tracked  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_resend_outcomes_total",
			Help: "Outcomes of resent attempts, each counted once per trigger; " +
				`recovery rate = outcome="delivered" / outcome="triggered".`,
		}, []string{"channel", "policy", "reason", "outcome"}),
		recovery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmpulse_resend_recovery_seconds",
			Help:    "Event time from a trigger's not_before to the delivery of the resent attempt.",
			Buckets: []float64{60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 3 * 86400},
		}, []string{"channel", "policy"}),
		tracked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmpulse_resend_followups",
			Help: "Resend triggers whose resent attempt is being followed.",
		}),
	}
	var err error
	m.outcomes = register(reg, m.outcomes, &err)
	m.recovery = register(reg, m.recovery, &err)
	m.tracked = register(reg, m.tracked, &err)
	return m, err
}

// register registers c on reg (if any) and returns the collector to use: c,
// or the identical one already registered by the Tracker of another
// partition.
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
