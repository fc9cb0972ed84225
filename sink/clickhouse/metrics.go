package clickhouse

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one insert, the outcome label of crmpulse_clickhouse_inserts_total.
const (
	outcomeSuccess = "success"
	outcomeFailure = "failure"
)

type metrics struct {
	rowsWritten *prometheus.CounterVec
	inserts     *prometheus.CounterVec
	buffered    prometheus.Gauge
	flushTime   prometheus.Histogram
	unsupported *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rowsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_clickhouse_rows_written_total",
			Help: "Rows stored in ClickHouse, by table (a row retried after a failed insert counts once).",
		}, []string{"table"}),
		inserts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_clickhouse_inserts_total",
			Help: "Batch inserts into ClickHouse, by table and outcome (success, failure; failures are retried).",
		}, []string{"table", "outcome"}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmpulse_clickhouse_buffered_rows",
			Help: "Rows written to the sink and not yet stored in ClickHouse; Write blocks at max_buffered_rows.",
		}),
		flushTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "crmpulse_clickhouse_flush_duration_seconds",
			Help:    "Duration of one batch insert into ClickHouse, failed ones included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		unsupported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmpulse_clickhouse_unsupported_rows_total",
			Help: "Aggregate rows skipped because the sink has no ClickHouse table for their type, by their table name.",
		}, []string{"table"}),
	}
	for _, t := range Tables {
		m.rowsWritten.WithLabelValues(t)
		for _, o := range []string{outcomeSuccess, outcomeFailure} {
			m.inserts.WithLabelValues(t, o)
		}
	}
	var err error
	m.rowsWritten = register(reg, m.rowsWritten, &err)
	m.inserts = register(reg, m.inserts, &err)
	m.buffered = register(reg, m.buffered, &err)
	m.flushTime = register(reg, m.flushTime, &err)
	m.unsupported = register(reg, m.unsupported, &err)
	return m, err
}

// register registers c on reg (if any) and returns the collector to use: c,
// or an identical one already registered (by another Sink in the process).
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
