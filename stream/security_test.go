package stream_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/kafkatest"
	"github.com/crmpulse/crmpulse/stream"
)

// TestKafkaSASLSSLStreamingEqualsReplay runs the whole pipeline (consumer
// group, fetchers, producers, snapshots, the repartition topic, the admin
// requests at start) against a private real broker's SASL_SSL listener
// with SCRAM-SHA-512, the password read from a file: its outputs equal
// replay's, rules grouping across customers (the group stage, fed through
// the repartition topic) included. The test itself produces and reads on the broker's plaintext
// listener, so only the pipeline goes through TLS and SASL.
func TestKafkaSASLSSLStreamingEqualsReplay(t *testing.T) {
	b := kafkatest.Start(t)
	plain := []string{b.Plain}
	ds := generate(t, genConfig{customers: 300, days: 3, seed: 3})
	want := replayOutputsWith(t, ds, groupRulesFile)
	groupAlerts := 0
	for _, v := range want.alerts {
		if !strings.Contains(v, `"customer_id"`) {
			groupAlerts++
		}
	}
	require.NotZero(t, groupAlerts, "the data set should give group-level alerts")
	tp := newTopics(t)
	createInputs(t, plain, tp, 2)
	produce(t, plain, tp, ds)
	c := collect(t, plain, tp)

	pwFile := filepath.Join(t.TempDir(), "kafka-password")
	require.NoError(t, os.WriteFile(pwFile, []byte(kafkatest.Password+"\n"), 0o600))
	cfg := appConfig([]string{b.SASLSSL}, tp, tp.prefix)
	cfg.Rules = groupRulesFile
	cfg.Kafka.TLS.CAFile = b.Certs.CAFile
	cfg.Kafka.SASL = stream.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: kafkatest.User, PasswordFile: pwFile}
	startApp(t, cfg, "sasl_ssl")
	c.waitEqual(t, want, 2*time.Minute)
	c.requireNoDups(t)
}

// TestKafkaSecurityConfig: the keys come from the environment like the
// others, the password file is read at start, and insecure_skip_verify is
// warned about loudly.
func TestKafkaSecurityConfig(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("from-file\n"), 0o600))
	rulesPath, err := filepath.Abs(rulesFile)
	require.NoError(t, err)
	env := map[string]string{
		"CRMPULSE_KAFKA_BROKERS":                  "127.0.0.1:1",
		"CRMPULSE_RULES":                          rulesPath,
		"CRMPULSE_HTTP_LISTEN":                    "",
		"CRMPULSE_KAFKA_TLS_INSECURE_SKIP_VERIFY": "true",
		"CRMPULSE_KAFKA_TLS_SERVER_NAME":          "kafka.internal",
		"CRMPULSE_KAFKA_SASL_MECHANISM":           "SCRAM-SHA-256",
		"CRMPULSE_KAFKA_SASL_USERNAME":            "svc",
		"CRMPULSE_KAFKA_SASL_PASSWORD_FILE":       pw,
	}
	cfg, err := stream.LoadConfig("", func(k string) string { return env[k] })
	require.NoError(t, err)
	require.True(t, cfg.Kafka.TLS.InsecureSkipVerify)
	require.Equal(t, "kafka.internal", cfg.Kafka.TLS.ServerName)
	require.Equal(t, stream.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "svc", PasswordFile: pw}, cfg.Kafka.SASL)
	cfg.HTTP.Listen = ""

	var logs bytes.Buffer
	_, err = stream.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	require.Contains(t, logs.String(), "level=WARN")
	require.Contains(t, logs.String(), "insecure_skip_verify")
	require.Contains(t, logs.String(), "NOT verified")

	for _, tc := range []struct {
		name string
		edit func(*stream.Config)
		want string
	}{
		{"an unknown mechanism names the key and the choices", func(c *stream.Config) { c.Kafka.SASL.Mechanism = "GSSAPI" },
			`kafka.sasl.mechanism: "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"a mechanism without a user names the user key", func(c *stream.Config) { c.Kafka.SASL.Username = "" },
			"kafka.sasl.username: required"},
		{"a password and a password file are refused together", func(c *stream.Config) { c.Kafka.SASL.Password = "x" },
			"kafka.sasl.password: set kafka.sasl.password or kafka.sasl.password_file, not both"},
		{"a missing password file is named", func(c *stream.Config) { c.Kafka.SASL.PasswordFile = filepath.Join(dir, "nope") },
			"kafka.sasl.password_file: open " + filepath.Join(dir, "nope")},
		{"a client certificate without its key is refused", func(c *stream.Config) { c.Kafka.TLS.CertFile = "client.crt" },
			"kafka.tls.cert_file and kafka.tls.key_file: set both or neither"},
		{"a missing CA file is named", func(c *stream.Config) { c.Kafka.TLS.CAFile = filepath.Join(dir, "ca.crt") },
			"kafka.tls: reading CA file: open " + filepath.Join(dir, "ca.crt")},
		{"an embedded broker cannot take TLS or SASL", func(c *stream.Config) { c.EmbeddedKafka = true },
			"embedded_kafka: the embedded broker is plaintext"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			tc.edit(&c)
			_, err := stream.New(c, nil, nil)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "from-file")
		})
	}
}

// TestSecurityYAML: the TLS and SASL keys nest in the YAML as their names
// say, for Kafka and ClickHouse.
func TestSecurityYAML(t *testing.T) {
	p := filepath.Join(t.TempDir(), "crmpulse.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`
kafka:
  brokers: [b-1.example.com:9096]
  tls:
    enabled: true
    ca_file: /etc/ca.pem
    cert_file: /etc/c.pem
    key_file: /etc/k.pem
    server_name: kafka.example.com
  sasl:
    mechanism: SCRAM-SHA-512
    username: crmpulse
    password_file: /run/secrets/kafka
clickhouse:
  dsn: clickhouse://ch:9440/crmpulse
  username: app
  password_file: /run/secrets/ch
  tls:
    ca_file: /etc/ch-ca.pem
rules: rules.yaml
`), 0o600))
	cfg, err := stream.LoadConfig(p, func(string) string { return "" })
	require.NoError(t, err)
	require.Equal(t, "kafka.example.com", cfg.Kafka.TLS.ServerName)
	require.Equal(t, "/etc/ca.pem", cfg.Kafka.TLS.CAFile)
	require.Equal(t, "/etc/k.pem", cfg.Kafka.TLS.KeyFile)
	require.Equal(t, stream.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "crmpulse", PasswordFile: "/run/secrets/kafka"}, cfg.Kafka.SASL)
	require.Equal(t, "app", cfg.ClickHouse.Username)
	require.Equal(t, "/run/secrets/ch", cfg.ClickHouse.PasswordFile)
	require.Equal(t, "/etc/ch-ca.pem", cfg.ClickHouse.TLS.CAFile)
	require.NoError(t, cfg.Validate())
}
