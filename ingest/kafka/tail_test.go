package kafka_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/internal/testenv"
)

// TestKafkaTopicBoundsAndReadRange against the real Kafka that `make test`
// starts: the bounds of every partition, and exactly the records of a
// range, in order.
func TestKafkaTopicBoundsAndReadRange(t *testing.T) {
	b := testenv.Env(t, "CRMPULSE_KAFKA_BROKERS", "this test needs the real Kafka that `make test` starts")
	brokers := strings.Split(b, ",")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := fmt.Sprintf("ingest-kafka-tail-%06x", rand.Uint32()&0xffffff)
	require.NoError(t, ikafka.EnsureTopics(ctx, ikafka.Plain(brokers), ikafka.TopicSpec{Name: topic, Partitions: 2, ReplicationFactor: -1}))
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.RoundRobin{},
		RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	var msgs []kafkago.Message
	for i := range 20 {
		msgs = append(msgs, kafkago.Message{Value: []byte(fmt.Sprint(i))})
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))

	bounds, err := ikafka.TopicBounds(ctx, ikafka.Plain(brokers), topic, topic+"-missing")
	require.NoError(t, err)
	require.NotContains(t, bounds, topic+"-missing")
	require.Len(t, bounds[topic], 2)
	total := int64(0)
	for _, pb := range bounds[topic] {
		require.Zero(t, pb.First)
		total += pb.End
	}
	require.Equal(t, int64(20), total)

	for _, tc := range []struct {
		name     string
		from, to int64
	}{
		{"a range inside the partition", 2, 7},
		{"the whole partition", 0, bounds[topic][0].End},
		{"an empty range", 5, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			require.NoError(t, ikafka.ReadRange(ctx, ikafka.Plain(brokers), topic, 0, tc.from, tc.to, func(m *kafkago.Message) error {
				got = append(got, m.Offset)
				return nil
			}))
			var want []int64
			for o := tc.from; o < tc.to; o++ {
				want = append(want, o)
			}
			require.Equal(t, want, got)
		})
	}
}
