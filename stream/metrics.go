package stream

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

// metrics are the streaming driver's; names follow
// crmpulse_<subsystem>_<name>_<unit> and labels come from fixed sets.
type metrics struct {
	consumed       *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	duplicates     prometheus.Counter
	tombstones     prometheus.Counter
	late           prometheus.Counter
	lag            *prometheus.GaugeVec
	watermark      prometheus.Gauge
	partWatermark  *prometheus.GaugeVec
	stateKeys      *prometheus.GaugeVec
	snapshotBytes  *prometheus.GaugeVec
	snapshotTime   prometheus.Histogram
	checkpointTime prometheus.Histogram
	checkpoints    *prometheus.CounterVec
	restores       *prometheus.CounterVec
	outputs        *prometheus.CounterVec
	assigned       prometheus.Gauge
	rebalances     prometheus.Counter
	workerErrors   prometheus.Counter
	reloads        *prometheus.CounterVec
	reloadOK       prometheus.Gauge
	reloadTime     prometheus.Gauge
	rulesHash      prometheus.Gauge
	partBusy       *prometheus.GaugeVec
	partStalled    *prometheus.GaugeVec
	slowSteps      prometheus.Counter
	fetches        *prometheus.CounterVec
	reconnects     *prometheus.CounterVec
}

// Output kinds counted by crmpulse_stream_outputs_total.
const (
	kindAlert      = "alert"
	kindResend     = "resend"
	kindDeadLetter = "dead_letter"
)

func newMetrics(reg prometheus.Registerer, topics []string) *metrics {
	m := &metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "consumed_records_total",
			Help: "Records read from an input topic, valid or not.",
		}, []string{"topic"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "rejected_records_total",
			Help: "Records dead-lettered, by reason code.",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "duplicate_records_total",
			Help: "Records whose event_id or receipt_id was already accepted; counted, not dead-lettered.",
		}),
		tombstones: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "profile_tombstones_total",
			Help: "Kafka tombstones (null values) of the customers topic applied: every version of the customer's profile dropped.",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "late_records_total",
			Help: "Records older than the watermark (also counted as rejected with reason late).",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "partition_lag_records",
			Help: "Records of an assigned topic-partition not yet processed, as of its last fetch.",
		}, []string{"topic", "partition"}),
		watermark: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "watermark_seconds",
			Help: "The instance's pipeline watermark (SPEC §2), Unix seconds.",
		}),
		partWatermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "partition_watermark_seconds",
			Help: "Watermark of an assigned partition's engine, Unix seconds.",
		}, []string{"partition"}),
		stateKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "state_keys",
			Help: "Keys an assigned partition's engine holds: customers, groups, messages, open windows and record ids remembered for deduplication.",
		}, []string{"partition"}),
		snapshotBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "snapshot_bytes",
			Help: "Size of an assigned partition's last state snapshot.",
		}, []string{"partition"}),
		snapshotTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "snapshot_duration_seconds",
			Help:    "Time to serialise one partition's engine state (the partition does not process meanwhile).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		checkpointTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "checkpoint_duration_seconds",
			Help:    "Time from a snapshot to its offsets being committed: output acknowledgements, sink flushes, the snapshot write and the commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "checkpoints_total",
			Help: "Partition checkpoints (snapshot written, offsets committed), by outcome.",
		}, []string{"outcome"}),
		restores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "restores_total",
			Help: "Partition assignments, by how the engine started: snapshot, empty (no snapshot) or failed.",
		}, []string{"outcome"}),
		outputs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "outputs_total",
			Help: "Records produced, by kind: alert, resend (triggers and cancels), dead_letter.",
		}, []string{"kind"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "assigned_partitions",
			Help: "Partition numbers this instance owns.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "generations_total",
			Help: "Consumer group generations this instance joined (each rebalance starts one).",
		}),
		workerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "partition_failures_total",
			Help: "Partition workers that stopped on an error; the group rejoins and the partition restarts from its snapshot.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "rules", Name: "reloads_total",
			Help: "Rules reloads, by outcome: success, failure (the running rules stay), unchanged.",
		}, []string{"outcome"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "rules", Name: "last_reload_successful",
			Help: "1 if the last rules reload succeeded (or was unchanged), 0 if it was refused.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "rules", Name: "last_reload_success_timestamp_seconds",
			Help: "When rules were last loaded successfully, Unix seconds.",
		}),
		rulesHash: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "rules", Name: "config_hash",
			Help: "Hash of the running rules file (its first 48 bits), to tell instances' versions apart.",
		}),
		partBusy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "partition_busy_seconds",
			Help: "How long a partition worker has been on its current step (a record, a watermark advance, an output flush) without finishing it; 0 while it waits for input.",
		}, []string{"partition"}),
		partStalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "partition_stalled",
			Help: "1 while a partition worker has made no progress for health.stall_timeout with work to do (/healthz fails meanwhile), else 0.",
		}, []string{"partition"}),
		slowSteps: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "stream", Name: "slow_steps_total",
			Help: "Steps of a partition worker that took longer than health.slow_step (each is logged once at WARN with the rule it was in).",
		}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "kafka", Name: "fetches_total",
			Help: "Fetch responses read from an input topic, with records or empty after kafka.max_wait.",
		}, []string{"topic"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "kafka", Name: "reconnects_total",
			Help: "Input connections dropped after a failed fetch, or dials retried; 0 on a healthy cluster.",
		}, []string{"topic"}),
	}
	for _, t := range topics {
		m.consumed.WithLabelValues(t)
		m.fetches.WithLabelValues(t)
		m.reconnects.WithLabelValues(t)
	}
	for _, r := range ingest.Reasons {
		m.rejected.WithLabelValues(string(r))
	}
	for _, k := range []string{kindAlert, kindResend, kindDeadLetter} {
		m.outputs.WithLabelValues(k)
	}
	for _, o := range []string{"success", "failure", "unchanged"} {
		m.reloads.WithLabelValues(o)
	}
	for _, o := range []string{"success", "failure"} {
		m.checkpoints.WithLabelValues(o)
	}
	for _, o := range []string{"snapshot", "empty", "failed"} {
		m.restores.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.rejected, m.duplicates, m.tombstones, m.late, m.lag, m.watermark, m.partWatermark,
			m.stateKeys, m.snapshotBytes, m.snapshotTime, m.checkpointTime, m.checkpoints, m.restores,
			m.outputs, m.assigned, m.rebalances, m.workerErrors, m.reloads, m.reloadOK, m.reloadTime, m.rulesHash,
			m.partBusy, m.partStalled, m.slowSteps, m.fetches, m.reconnects)
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "crmpulse", Subsystem: "engine", Name: "saturated_sums_total",
			Help: "Sums held at ±MaxFloat64 (or a revenue row at ±MaxMoney) instead of overflowing, all engines of the process.",
		}, func() float64 { return float64(processor.SaturatedSums()) }))
	}
	return m
}
