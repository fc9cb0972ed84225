package embeddedkafka

import (
	"testing"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

// TestStartSeedsTopics: the broker listens where it says, with every topic
// pre-created with the asked partitions, and stop closes it.
func TestStartSeedsTopics(t *testing.T) {
	addrs, stop, err := Start("127.0.0.1:0", 3, "in", "receipts")
	require.NoError(t, err)
	require.Len(t, addrs, 1)
	conn, err := kafkago.Dial("tcp", addrs[0])
	require.NoError(t, err)
	parts, err := conn.ReadPartitions("in", "receipts")
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	count := map[string]int{}
	for _, p := range parts {
		count[p.Topic]++
	}
	require.Equal(t, map[string]int{"in": 3, "receipts": 3}, count)
	stop()
	_, err = kafkago.Dial("tcp", addrs[0])
	require.Error(t, err, "the broker is closed after stop")
}

func TestStartRefuses(t *testing.T) {
	tests := []struct {
		name, addr string
		partitions int
		want       string
	}{
		{"an address that is not host:port is refused", "localhost", 1, "address"},
		{"a non-loopback host is refused: the broker has no authentication", "0.0.0.0:0", 1, "loopback only"},
		{"a name other than localhost is refused", "example.com:0", 1, "loopback only"},
		{"a port that is not a number is refused", "127.0.0.1:kafka", 1, "port"},
		{"topics need at least one partition", "127.0.0.1:0", 0, "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stop, err := Start(tt.addr, tt.partitions, "in")
			require.ErrorContains(t, err, tt.want)
			require.Nil(t, stop)
		})
	}
}
