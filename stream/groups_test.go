package stream_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
)

const groupRulesFile = "testdata/group-rules.yaml"

func TestKfakeGroupRulesEqualReplay(t *testing.T) {
	testGroupRules(t, newKfake(t), genConfig{customers: 300, days: 3, seed: 3})
}

// TestKfakeGroupRulesIgnoreOtherDeployments: records another consumer
// group left in a shared repartition topic — markers far in the future and
// a purchase — change nothing.
func TestKfakeGroupRulesIgnoreOtherDeployments(t *testing.T) {
	testGroupRulesWith(t, newKfake(t), genConfig{customers: 300, days: 3, seed: 3}, func(brokers []string, tp topics) {
		ctx := context.Background()
		require.NoError(t, ikafka.EnsureTopics(ctx, ikafka.Plain(brokers), ikafka.TopicSpec{Name: tp.cfg.Repartition, Partitions: 1, ReplicationFactor: -1}))
		w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), RequiredAcks: kafkago.RequireAll}
		defer w.Close()
		future := strconv.FormatInt(time.Now().Add(24*time.Hour).UnixNano(), 10)
		var msgs []kafkago.Message
		for p := range 4 {
			msgs = append(msgs, kafkago.Message{Topic: tp.cfg.Repartition, Headers: []kafkago.Header{
				{Key: "crmpulse-upstream-partition", Value: []byte(strconv.Itoa(p))},
				{Key: "crmpulse-watermark", Value: []byte(future)},
				{Key: "crmpulse-group", Value: []byte("another-deployment")},
			}})
		}
		msgs = append(msgs, kafkago.Message{Topic: tp.cfg.Repartition, Value: []byte(
			`{"event_id":"x1","type":"purchase","customer_id":"c1","occurred_at":"` + time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339) + `","tenant":"acme","segment":"smb","amount":99999}`),
			Headers: []kafkago.Header{
				{Key: "crmpulse-upstream-partition", Value: []byte("0")},
				{Key: "crmpulse-source", Value: []byte("interactions")},
				{Key: "crmpulse-group", Value: []byte("another-deployment")},
			}})
		require.NoError(t, w.WriteMessages(ctx, msgs...))
	})
}

func TestKafkaGroupRulesEqualReplay(t *testing.T) {
	testGroupRules(t, realBrokers(t), genConfig{customers: 1000, days: 3, seed: 4})
}

// testGroupRules: with rules grouping across customers (per segment, per
// tenant), the streaming output over 4 partitions equals replay's: the
// group stage sees every partition's records, each group has one owner,
// and no group alert is emitted per partition.
func testGroupRules(t *testing.T, brokers []string, gc genConfig) {
	testGroupRulesWith(t, brokers, gc, nil)
}

func testGroupRulesWith(t *testing.T, brokers []string, gc genConfig, before func([]string, topics)) {
	ds := generate(t, gc)
	want := replayOutputsWith(t, ds, groupRulesFile)
	groupAlerts := map[string]int{}
	for _, v := range want.alerts {
		var m struct {
			Labels map[string]string `json:"labels"`
		}
		require.NoError(t, json.Unmarshal([]byte(v), &m))
		if _, perCustomer := m.Labels["customer_id"]; !perCustomer {
			groupAlerts[m.Labels["alertname"]]++
		}
	}
	require.NotEmpty(t, groupAlerts["segment_revenue_drop"], "the data set should make a segment's revenue drop")
	require.NotEmpty(t, groupAlerts["tenant_purchases"], "the data set should cross the tenant purchase threshold")
	require.NotEmpty(t, groupAlerts["tenant_at_risk"], "the data set should put enough of a tenant's customers at risk")
	require.NotEmpty(t, want.segments, "the segment set should see customers change class")
	t.Logf("group-level alerts in replay: %v", groupAlerts)
	// The digest reports what spans partitions: churn alerts, which the
	// partition engines emit, and class counts over every partition's keys.
	var listed, counted int
	for _, v := range want.digests {
		var d struct {
			Alerts   map[string][]json.RawMessage `json:"alerts"`
			Segments map[string]int               `json:"segments"`
		}
		require.NoError(t, json.Unmarshal([]byte(v), &d))
		listed += len(d.Alerts["fired"]) + len(d.Alerts["open"])
		for _, n := range d.Segments {
			counted += n
		}
	}
	require.GreaterOrEqual(t, len(want.digests), 4, "a daily digest per tenant over three days")
	require.Positive(t, listed, "the digests list alerts")
	require.Positive(t, counted, "the digests count keys per class")

	tp := newTopics(t)
	createInputs(t, brokers, tp, 4)
	if before != nil {
		before(brokers, tp)
	}
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = groupRulesFile
	startApp(t, cfg, "a")
	c.waitEqual(t, want, 2*time.Minute)
	// The group stage computes the segment set too, for tenant_at_risk:
	// its transitions are the partitions' own and must not be written again.
	c.requireNoDups(t)
}
