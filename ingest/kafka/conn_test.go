package kafka_test

import (
	"testing"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/internal/tlsclient"
)

func TestNewSecurity(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ikafka.SecurityConfig
		want string // String(), or the error
		err  bool
	}{
		{name: "TLS alone is SSL", cfg: ikafka.SecurityConfig{TLS: tlsclient.Config{Enabled: true}}, want: "SSL"},
		{name: "SASL alone is SASL_PLAINTEXT", cfg: ikafka.SecurityConfig{SASL: ikafka.SASLConfig{Mechanism: "plain", Username: "u", Password: "p"}},
			want: "SASL_PLAINTEXT (PLAIN)"},
		{name: "both are SASL_SSL", cfg: ikafka.SecurityConfig{TLS: tlsclient.Config{Enabled: true},
			SASL: ikafka.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}}, want: "SASL_SSL (SCRAM-SHA-512)"},
		{name: "an unknown mechanism is refused", cfg: ikafka.SecurityConfig{SASL: ikafka.SASLConfig{Mechanism: "GSSAPI", Username: "u"}},
			err: true, want: `kafka.sasl.mechanism: "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{name: "a mechanism without a user is refused", cfg: ikafka.SecurityConfig{SASL: ikafka.SASLConfig{Mechanism: "SCRAM-SHA-256", Password: "p"}},
			err: true, want: "kafka.sasl.username: required"},
		{name: "a password without a mechanism is refused", cfg: ikafka.SecurityConfig{SASL: ikafka.SASLConfig{Username: "u", Password: "p"}},
			err: true, want: "kafka.sasl.mechanism: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ikafka.NewSecurity(tc.cfg)
			if tc.err {
				require.ErrorContains(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, s.String())
			d := s.Dialer()
			require.Equal(t, tc.cfg.TLS.On(), d.TLS != nil)
			require.Equal(t, tc.cfg.SASL.Mechanism != "", d.SASLMechanism != nil)
			tr, ok := s.Transport().(*kafkago.Transport)
			require.True(t, ok)
			require.Equal(t, d.TLS, tr.TLS)
			require.Equal(t, d.SASLMechanism, tr.SASL)
		})
	}
}

func TestNilSecurityIsPlaintext(t *testing.T) {
	var s *ikafka.Security
	require.Equal(t, "PLAINTEXT", s.String())
	require.Nil(t, s.Dialer().TLS)
	require.Nil(t, s.Dialer().SASLMechanism)
	require.Equal(t, kafkago.DefaultTransport, s.Transport())
	require.False(t, s.Insecure())
}
