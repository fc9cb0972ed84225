package stream_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const groupRulesFile = "testdata/group-rules.yaml"

func TestKfakeGroupRulesEqualReplay(t *testing.T) {
	testGroupRules(t, newKfake(t), genConfig{customers: 300, days: 3, seed: 3})
}

func TestKafkaGroupRulesEqualReplay(t *testing.T) {
	testGroupRules(t, realBrokers(t), genConfig{customers: 1000, days: 3, seed: 4})
}

// testGroupRules: with rules grouping across customers (per segment, per
// tenant), the streaming output over 4 partitions equals replay's: the
// group stage sees every partition's records, each group has one owner,
// and no group alert is emitted per partition.
func testGroupRules(t *testing.T, brokers []string, gc genConfig) {
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
	t.Logf("group-level alerts in replay: %v", groupAlerts)

	tp := newTopics(t)
	createInputs(t, brokers, tp, 4)
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = groupRulesFile
	startApp(t, cfg, "a")
	c.waitEqual(t, want, 2*time.Minute)
}
