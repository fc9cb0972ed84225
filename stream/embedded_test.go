package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
