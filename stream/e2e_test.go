package stream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

// realBrokers returns the broker of the real Kafka that `make test`
// starts (deploy/local/kafka.sh), or skips the test.
func realBrokers(t *testing.T) []string {
	t.Helper()
	b := testenv.Env(t, "CRMPULSE_KAFKA_BROKERS", "this test needs the real Kafka that `make test` starts "+
		`(deploy/local/kafka.sh start; eval "$(deploy/local/kafka.sh env)")`)
	return strings.Split(b, ",")
}

// small is the data set of the fast tests.
var small = genConfig{customers: 150, days: 2, seed: 1}

func TestKfakeStreamingEqualsReplay(t *testing.T) { testEqualsReplay(t, newKfake(t), small) }

func TestKafkaStreamingEqualsReplay(t *testing.T) {
	testEqualsReplay(t, realBrokers(t), genConfig{customers: 1000, days: 3, seed: 2})
}

// testEqualsReplay: the streaming outputs, deduplicated by id, equal
// replay's on the same data, and malformed and late records are
// dead-lettered with the reasons replay gives them.
func testEqualsReplay(t *testing.T, brokers []string, gc genConfig) {
	ds := generate(t, gc)
	want := replayOutputs(t, ds)
	require.NotEmpty(t, want.segments, "the segment set of the rules should see customers change class")
	require.NotZero(t, countAlerts(t, want, "loyal_slipping"), "the data set should make a loyal customer slip")
	tp := newTopics(t)
	createInputs(t, brokers, tp, 4)
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	startApp(t, appConfig(brokers, tp, tp.prefix), "a")
	c.waitEqual(t, want, 2*time.Minute)
	c.requireNoDups(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	require.NotEmpty(t, c.dlqHdr)
	for _, h := range c.dlqHdr {
		require.NotEmpty(t, h["crmpulse-error"])
		require.Contains(t, []string{tp.cfg.Interactions, tp.cfg.Receipts}, h["crmpulse-source-topic"])
		require.NotEmpty(t, h["crmpulse-source-offset"])
	}
}
