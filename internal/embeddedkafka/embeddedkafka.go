// Package embeddedkafka is the in-process Kafka-protocol broker (franz-go
// kfake) behind `crmpulse demo`, `crmpulse run --embedded-kafka` and the
// tests. It is a package of its own so that the streaming driver does not
// link kfake: cmd/crmpulse hands Start to stream.Config.EmbeddedBroker, and
// internal/archtest checks that stream itself never imports kfake.
package embeddedkafka

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Start starts a one-broker cluster listening on addr (host:port; port 0
// picks a free one) with topics pre-created, partitions each. It returns
// the addresses the broker listens on and the function that stops it.
// Only loopback addresses are accepted: the broker has no authentication
// and keeps everything in memory, it is for demos and tests.
func Start(addr string, partitions int, topics ...string) (addrs []string, stop func(), err error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("embedded kafka address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, nil, fmt.Errorf("embedded kafka listens on loopback only, not %q", host)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, nil, fmt.Errorf("embedded kafka port %q: %w", portText, err)
	}
	if partitions < 1 {
		return nil, nil, fmt.Errorf("embedded kafka on %s: %d partitions per topic, want at least 1", addr, partitions)
	}
	opts := []kfake.Opt{kfake.Ports(port)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(partitions), topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("starting embedded kafka on %s: %w", addr, err)
	}
	return c.ListenAddrs(), c.Close, nil
}
