package stream_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/embeddedkafka"
	"github.com/crmpulse/crmpulse/stream"
)

// TestEmbeddedKafka: --embedded-kafka starts a broker in-process with the
// input topics pre-created; records produced to it are processed. (They
// arrive live here, after the pipeline started, so the outputs are not
// replay's: see testEqualsReplay for that.)
func TestEmbeddedKafka(t *testing.T) {
	ds := generate(t, small)
	want := replayOutputs(t, ds)
	tp := newTopics(t)
	cfg := appConfig([]string{"127.0.0.1:0"}, tp, "embedded")
	cfg.EmbeddedKafka = true
	cfg.EmbeddedBroker = embeddedkafka.Start
	cfg.Kafka.EmbeddedPartitions = 3
	// Partitions must not go idle (and move to the wall clock, which is
	// days past this data) before the records arrive.
	cfg.IdleTimeout = stream.Duration(time.Hour)
	r := startApp(t, cfg, "a")
	require.Eventually(t, func() bool { return len(r.app.Brokers()) == 1 && r.app.Brokers()[0] != "127.0.0.1:0" },
		30*time.Second, 10*time.Millisecond)
	brokers := r.app.Brokers()
	require.Eventually(t, r.app.Ready, 30*time.Second, 10*time.Millisecond)
	c := collect(t, brokers, tp)
	produce(t, brokers, tp, ds)
	require.Eventually(t, func() bool {
		got, _ := c.result()
		return len(got.alerts) > 100 && got.rejected["not_json"] == want.rejected["not_json"] &&
			got.rejected["missing_field"] == want.rejected["missing_field"]
	}, time.Minute, 50*time.Millisecond)
	require.Equal(t, 3.0, gauge(t, r.reg, "crmpulse_stream_assigned_partitions"))
}

// TestEmbeddedKafkaNeedsABroker: stream does not link a broker of its own
// (internal/archtest), so embedded_kafka without Config.EmbeddedBroker is
// an error from Run that names the setting, not a hang on an absent broker.
func TestEmbeddedKafkaNeedsABroker(t *testing.T) {
	cfg := appConfig([]string{"127.0.0.1:0"}, newTopics(t), "embedded-none")
	cfg.EmbeddedKafka = true
	cfg.HTTP.Listen = ""
	app, err := stream.New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = app.Run(ctx)
	require.ErrorContains(t, err, "embedded_kafka")
	require.Equal(t, []string{"127.0.0.1:0"}, app.Brokers(), "no broker was started: the configured address is left")
}
