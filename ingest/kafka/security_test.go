package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/internal/kafkatest"
	"github.com/crmpulse/crmpulse/internal/tlsclient"
)

// TestKafkaSecurity runs every kind of connection the pipeline makes —
// admin requests, a producer, a fetcher, a range read, a consumer group —
// against a private real broker's SASL_SSL listener with each SASL
// mechanism, and its SSL listener with a client certificate; then checks
// that a wrong password, an untrusted certificate, a plaintext client on
// the TLS port and a missing client certificate each fail with an error
// that names the broker and the cause.
func TestKafkaSecurity(t *testing.T) {
	b := kafkatest.Start(t)
	trusted := tlsclient.Config{CAFile: b.Certs.CAFile}

	for _, mech := range ikafka.Mechanisms {
		t.Run("every connection works over SASL_SSL with "+mech, func(t *testing.T) {
			sec, err := ikafka.NewSecurity(ikafka.SecurityConfig{
				TLS:  trusted,
				SASL: ikafka.SASLConfig{Mechanism: mech, Username: kafkatest.User, Password: kafkatest.Password},
			})
			require.NoError(t, err)
			require.Equal(t, "SASL_SSL ("+mech+")", sec.String())
			exercise(t, ikafka.Cluster{Brokers: []string{b.SASLSSL}, Security: sec})
		})
	}
	t.Run("every connection works over mutual TLS", func(t *testing.T) {
		sec, err := ikafka.NewSecurity(ikafka.SecurityConfig{TLS: tlsclient.Config{
			CAFile: b.Certs.CAFile, CertFile: b.Certs.ClientCert, KeyFile: b.Certs.ClientKey,
		}})
		require.NoError(t, err)
		require.Equal(t, "SSL", sec.String())
		exercise(t, ikafka.Cluster{Brokers: []string{b.SSL}, Security: sec})
	})

	for _, tc := range []struct {
		name    string
		addr    string
		cfg     *ikafka.SecurityConfig // nil: plaintext
		causes  []string
		dialErr string // what the Dialer path (fetchers, range reads) says
	}{
		{
			name: "a wrong password is named as such",
			addr: b.SASLSSL,
			cfg: &ikafka.SecurityConfig{TLS: trusted, SASL: ikafka.SASLConfig{
				Mechanism: ikafka.MechanismScramSHA512, Username: kafkatest.User, Password: "not-the-password"}},
			causes: []string{"SASL authentication failed", "wrong kafka.sasl.username or password"},
		},
		{
			name: "a wrong PLAIN password is named as such",
			addr: b.SASLSSL,
			cfg: &ikafka.SecurityConfig{TLS: trusted, SASL: ikafka.SASLConfig{
				Mechanism: ikafka.MechanismPlain, Username: kafkatest.User, Password: "not-the-password"}},
			causes: []string{"SASL authentication failed"},
		},
		{
			name: "a certificate signed by an untrusted CA is named as such",
			addr: b.SASLSSL,
			cfg: &ikafka.SecurityConfig{TLS: tlsclient.Config{CAFile: b.Certs.OtherCAFile}, SASL: ikafka.SASLConfig{
				Mechanism: ikafka.MechanismScramSHA256, Username: kafkatest.User, Password: kafkatest.Password}},
			causes: []string{"untrusted CA", "kafka.tls.ca_file", "x509"},
		},
		{
			name: "a certificate for another name is named as such",
			addr: b.SASLSSL,
			cfg: &ikafka.SecurityConfig{TLS: tlsclient.Config{CAFile: b.Certs.CAFile, ServerName: "kafka.example.com"}, SASL: ikafka.SASLConfig{
				Mechanism: ikafka.MechanismScramSHA256, Username: kafkatest.User, Password: kafkatest.Password}},
			causes: []string{"not valid for this host name", "kafka.tls.server_name"},
		},
		{
			name:   "a plaintext client on the TLS port is told to use TLS",
			addr:   b.SASLSSL,
			causes: []string{"it expects TLS on this port", "kafka.tls.enabled"},
		},
		{
			name:   "a TLS client on the plaintext port is told the port is not TLS",
			addr:   b.Plain,
			cfg:    &ikafka.SecurityConfig{TLS: trusted},
			causes: []string{"the port is not a TLS port"},
		},
		{
			name:   "TLS without SASL on the SASL_SSL port is told to set SASL",
			addr:   b.SASLSSL,
			cfg:    &ikafka.SecurityConfig{TLS: trusted},
			causes: []string{"it expects SASL on this port", "kafka.sasl.mechanism"},
		},
		{
			name:   "no client certificate on the mutual TLS port is named as such",
			addr:   b.SSL,
			cfg:    &ikafka.SecurityConfig{TLS: trusted},
			causes: []string{"client certificate missing or not trusted", "kafka.tls.cert_file"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sec *ikafka.Security
			if tc.cfg != nil {
				var err error
				sec, err = ikafka.NewSecurity(*tc.cfg)
				require.NoError(t, err)
			}
			cl := ikafka.Cluster{Brokers: []string{tc.addr}, Security: sec}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// The admin path (kafka-go Transport): what start-up runs first.
			_, err := ikafka.PartitionCounts(ctx, cl, "crm.interactions")
			require.Error(t, err)
			msg := err.Error()
			require.Contains(t, msg, "broker "+tc.addr)
			for _, c := range tc.causes {
				require.Contains(t, msg, c)
			}
			// The Dialer path: fetchers and range reads.
			err = ikafka.ReadRange(ctx, cl, "crm.interactions", 0, 0, 1, func(*kafkago.Message) error { return nil })
			require.Error(t, err)
			msg = err.Error()
			require.Contains(t, msg, "broker "+tc.addr)
			for _, c := range tc.causes {
				require.Contains(t, msg, c)
			}
		})
	}
}

// exercise creates a topic, produces to it, reads it back with a fetcher
// and a range read, and joins a consumer group on it, all through cl.
func exercise(t *testing.T, cl ikafka.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := fmt.Sprintf("secure-%s-%d", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), time.Now().UnixNano())
	require.NoError(t, ikafka.EnsureTopics(ctx, cl, ikafka.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: -1}))
	counts, err := ikafka.PartitionCounts(ctx, cl, topic)
	require.NoError(t, err)
	require.Equal(t, 1, counts[topic])

	// The producers' shape (stream/output.go, snapshot.go): a Writer on the
	// shared Transport.
	w := &kafkago.Writer{Addr: kafkago.TCP(cl.Brokers...), Transport: cl.Security.Transport(),
		BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	const n = 3
	for i := range n {
		v := fmt.Sprintf(`{"event_id":"e%d","type":"login","customer_id":"c1","occurred_at":"2026-01-01T00:00:0%dZ"}`, i, i)
		require.NoError(t, w.WriteMessages(ctx, kafkago.Message{Topic: topic, Value: []byte(v)}))
	}
	bounds, err := ikafka.TopicBounds(ctx, cl, topic)
	require.NoError(t, err)
	require.Equal(t, int64(n), bounds[topic][0].End)

	out := make(chan *ikafka.Batch, 16)
	f, err := ikafka.NewFetcher(ikafka.FetcherConfig{
		Brokers: cl.Brokers, Security: cl.Security, Topic: topic, Source: ingest.SourceInteractions,
		Offset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond, Out: out,
	})
	require.NoError(t, err)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(fctx) }()
	var ids []string
	for len(ids) < n {
		select {
		case b := <-out:
			for _, r := range b.Records {
				require.NoError(t, r.Err)
				ids = append(ids, r.I.EventID)
			}
		case <-ctx.Done():
			t.Fatalf("the fetcher read %v of %d records", ids, n)
		}
	}
	stop()
	require.NoError(t, <-done)
	require.Equal(t, []string{"e0", "e1", "e2"}, ids)

	var offsets []int64
	require.NoError(t, ikafka.ReadRange(ctx, cl, topic, 0, 0, n, func(m *kafkago.Message) error {
		offsets = append(offsets, m.Offset)
		return nil
	}))
	require.Equal(t, []int64{0, 1, 2}, offsets)

	// The consumer group (stream/app.go) and a Reader (snapshots, the
	// repartition topic) take the Dialer.
	group, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID: topic, Brokers: cl.Brokers, Dialer: cl.Security.Dialer(), Topics: []string{topic},
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second, JoinGroupBackoff: time.Second,
	})
	require.NoError(t, err)
	defer group.Close()
	// A fresh broker creates __consumer_offsets on the first group: until
	// its partitions are loaded Next reports the coordinator as not
	// available, loading or moved (temporary errors; the group retries).
	var gen *kafkago.Generation
	for gen == nil {
		gen, err = group.Next(ctx)
		var kerr kafkago.Error
		if errors.As(err, &kerr) && kerr.Temporary() {
			continue
		}
		require.NoError(t, err)
	}
	require.Len(t, gen.Assignments[topic], 1)

	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cl.Brokers, Dialer: cl.Security.Dialer(), Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(0), m.Offset)
}
