package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/stream"
)

// The benchmark's topics make a configuration the pipeline accepts: a
// topic the pipeline came to require (digests did) fails here, not in the
// middle of a benchmark run.
func TestTopicsMakeAValidConfig(t *testing.T) {
	cfg := stream.DefaultConfig()
	cfg.Kafka.Brokers = []string{"127.0.0.1:9092"}
	cfg.Rules = "../../stream/testdata/rules.yaml"
	cfg.Topics = topicsFor("bench-x")
	require.NoError(t, cfg.Validate())
	_, err := stream.New(cfg, nil, nil)
	require.NoError(t, err)
}

// The latency run with the five-detector set beside its threshold rule
// loads as a rules file.
func TestMergeRules(t *testing.T) {
	b, err := mergeRules([]byte(latencyRules), "../../stream/testdata/rules.yaml")
	require.NoError(t, err)
	rf, err := rules.Parse(b)
	require.NoError(t, err)
	require.Equal(t, "complaint_burst", rf.Rules[0].Name)
	require.Greater(t, len(rf.Rules), 5)
	require.NotEmpty(t, rf.Resend)
}
