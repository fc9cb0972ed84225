package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKafkaPasswordNeverPrinted: a `crmpulse run` that cannot reach its
// brokers, given the SASL and ClickHouse passwords as flags or files,
// fails naming the broker, warns about the secret flags, and prints
// neither password; --help does not show them from the environment.
func TestKafkaPasswordNeverPrinted(t *testing.T) {
	const kafkaPass, chPass = "kafka-sasl-pass-6Hw", "ch-pass-flag-1Qy"
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(kafkaPass+"\n"), 0o600))
	base := []string{"run", "--kafka.brokers", "127.0.0.1:1", "--rules", "../../examples/rules.yaml", "--http.listen", "127.0.0.1:0",
		"--kafka.tls.enabled=true", "--kafka.sasl.mechanism", "SCRAM-SHA-512", "--kafka.sasl.username", "crmpulse"}

	t.Run("as flags", func(t *testing.T) {
		// No ClickHouse DSN: the failure must be the broker's, not the database's.
		code, out := runCrmpulse(t, []string{"CRMPULSE_CLICKHOUSE_DSN="}, append(base, "--kafka.sasl.password", kafkaPass, "--clickhouse.password", chPass)...)
		require.NotEqual(t, exitOK, code, out)
		require.Contains(t, out, "broker 127.0.0.1:1")
		require.Contains(t, out, "--kafka.sasl.password")
		require.Contains(t, out, "--clickhouse.password")
		require.NotContains(t, out, kafkaPass)
		require.NotContains(t, out, chPass)
	})
	t.Run("from a file", func(t *testing.T) {
		code, out := runCrmpulse(t, []string{"CRMPULSE_KAFKA_SASL_PASSWORD_FILE=" + pwFile}, base...)
		require.NotEqual(t, exitOK, code, out)
		require.Contains(t, out, "broker 127.0.0.1:1")
		require.NotContains(t, out, kafkaPass)
	})
	t.Run("--help with the passwords in the environment", func(t *testing.T) {
		code, out := runCrmpulse(t, []string{"CRMPULSE_KAFKA_SASL_PASSWORD=" + kafkaPass, "CRMPULSE_CLICKHOUSE_PASSWORD=" + chPass}, "run", "--help")
		require.Equal(t, exitOK, code, out)
		require.Contains(t, out, "kafka.sasl.password_file")
		require.NotContains(t, out, kafkaPass)
		require.NotContains(t, out, chPass)
	})
}
