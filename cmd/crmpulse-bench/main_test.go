package main

import (
	"testing"

	"github.com/stretchr/testify/require"

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
