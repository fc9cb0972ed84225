package stream

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		flags   []string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "defaults",
			yaml: "kafka: {brokers: [127.0.0.1:29092]}\nrules: r.yaml\n",
			check: func(t *testing.T, c Config) {
				require.Equal(t, "crmpulse", c.Kafka.GroupID)
				require.Equal(t, "crm.interactions", c.Topics.Interactions)
				require.Equal(t, "crm.delivery-receipts", c.Topics.Receipts)
				require.Equal(t, "crm.alerts", c.Topics.Alerts)
				require.Equal(t, "crm.resend-triggers", c.Topics.Resends)
				require.Equal(t, "crm.segments", c.Topics.Segments)
				require.Equal(t, "crmpulse.snapshots", c.Topics.Snapshots)
				require.Equal(t, 30*time.Second, c.IdleTimeout.D())
				require.Equal(t, 7*24*time.Hour, c.FutureSkew.D())
				require.Equal(t, time.Second, c.CommitInterval.D())
				require.Equal(t, "127.0.0.1:9464", c.HTTP.Listen)
				require.Equal(t, 2*time.Minute, c.Health.StallTimeout.D())
				require.Equal(t, 10*time.Second, c.Health.SlowStep.D())
				require.Equal(t, 30*time.Second, c.ShutdownTimeout.D())
				require.NoError(t, c.Validate())
			},
		},
		{
			name:  "env overrides the file, flags override both",
			yaml:  "kafka: {brokers: [a:1], group_id: fromfile}\nrules: r.yaml\nidle_timeout: 5s\n",
			env:   map[string]string{"CRMPULSE_KAFKA_BROKERS": "b:1, c:2", "CRMPULSE_KAFKA_GROUP_ID": "fromenv", "CRMPULSE_IDLE_TIMEOUT": "7s"},
			flags: []string{"--kafka.group-id", "fromflag", "--embedded-kafka", "--topics.alerts", "x.alerts"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, []string{"b:1", "c:2"}, c.Kafka.Brokers)
				require.Equal(t, "fromflag", c.Kafka.GroupID)
				require.Equal(t, 7*time.Second, c.IdleTimeout.D())
				require.True(t, c.EmbeddedKafka)
				require.Equal(t, "x.alerts", c.Topics.Alerts)
			},
		},
		{
			name: "topics.customers defaults to crm.customers; the file may empty it to run without profiles",
			yaml: "kafka: {brokers: [a:1]}\nrules: r.yaml\ntopics: {customers: \"\"}\n",
			check: func(t *testing.T, c Config) {
				require.Equal(t, "crm.customers", DefaultConfig().Topics.Customers)
				require.Empty(t, c.Topics.Customers)
				require.NoError(t, c.Validate())
			},
		},
		{
			name:  "topics.customers from the environment and the flag",
			yaml:  "kafka: {brokers: [a:1]}\nrules: r.yaml\n",
			env:   map[string]string{"CRMPULSE_TOPICS_CUSTOMERS": "env.customers"},
			flags: []string{"--topics.customers", "flag.customers"},
			check: func(t *testing.T, c Config) { require.Equal(t, "flag.customers", c.Topics.Customers) },
		},
		{
			name: "topics.customers may not name another topic",
			yaml: "kafka: {brokers: [a:1]}\nrules: r.yaml\ntopics: {customers: crm.interactions}\n",
			check: func(t *testing.T, c Config) {
				require.ErrorContains(t, c.Validate(), `topics.customers: topic "crm.interactions" is also topics.interactions`)
			},
		},
		{
			name: "future_skew from the file, 0 disables",
			yaml: "kafka: {brokers: [a:1]}\nrules: r.yaml\nfuture_skew: 0s\n",
			check: func(t *testing.T, c Config) {
				require.Zero(t, c.FutureSkew.D())
				require.NoError(t, c.Validate())
			},
		},
		{
			name:  "future_skew from the environment",
			yaml:  "kafka: {brokers: [a:1]}\nrules: r.yaml\nfuture_skew: 1h\n",
			env:   map[string]string{"CRMPULSE_FUTURE_SKEW": "48h"},
			check: func(t *testing.T, c Config) { require.Equal(t, 48*time.Hour, c.FutureSkew.D()) },
		},
		{
			name:  "future_skew from the flag",
			yaml:  "kafka: {brokers: [a:1]}\nrules: r.yaml\n",
			env:   map[string]string{"CRMPULSE_FUTURE_SKEW": "48h"},
			flags: []string{"--future-skew", "720h"},
			check: func(t *testing.T, c Config) { require.Equal(t, 720*time.Hour, c.FutureSkew.D()) },
		},
		{
			name:  "health and shutdown keys from the file, the environment and flags",
			yaml:  "kafka: {brokers: [a:1]}\nrules: r.yaml\nhealth: {slow_step: 3s}\n",
			env:   map[string]string{"CRMPULSE_HEALTH_STALL_TIMEOUT": "45s"},
			flags: []string{"--shutdown-timeout", "5s"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, 3*time.Second, c.Health.SlowStep.D())
				require.Equal(t, 45*time.Second, c.Health.StallTimeout.D())
				require.Equal(t, 5*time.Second, c.ShutdownTimeout.D())
				require.NoError(t, c.Validate())
			},
		},
		{
			name: "digest delivery from the file, the environment and flags",
			yaml: "kafka: {brokers: [a:1]}\nrules: r.yaml\nsmtp: {host: mail.example.com, from: pulse@example.com, tls_mode: tls}\n" +
				"digest_email:\n  to_by_digest: {monthly: director@example.com}\n",
			env:   map[string]string{"CRMPULSE_SMTP_PASSWORD": "pw", "CRMPULSE_SMTP_USERNAME": "pulse"},
			flags: []string{"--webhooks.digests", "https://reports.example.com/d", "--digest-delivery.max-backoff", "10s"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "mail.example.com", c.SMTP.Host)
				require.Equal(t, "tls", c.SMTP.Mode)
				require.Equal(t, "pw", c.SMTP.Password)
				require.Equal(t, map[string]string{"monthly": "director@example.com"}, c.DigestEmail.ToByDigest)
				require.Equal(t, "https://reports.example.com/d", c.Webhooks.Digests)
				require.Equal(t, 10*time.Second, c.DigestDelivery.MaxBackoff.D())
				require.Equal(t, "crm.digest-deliveries", c.Topics.DigestDeliveries)
				require.NoError(t, c.Validate())
			},
		},
		{name: "unknown key refused", yaml: "kafka: {brokers: [a:1], grup_id: x}\n", wantErr: "field grup_id not found"},
		{name: "bad duration", yaml: "idle_timeout: soon\n", wantErr: "not a duration"},
		{name: "bad env", yaml: "rules: r\n", env: map[string]string{"CRMPULSE_COMMIT_INTERVAL": "often"}, wantErr: "CRMPULSE_COMMIT_INTERVAL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			require.NoError(t, os.WriteFile(p, []byte(tc.yaml), 0o644))
			c, err := LoadConfig(p, func(k string) string { return tc.env[k] })
			if err == nil {
				fs := flag.NewFlagSet("run", flag.ContinueOnError)
				fv := BindFlags(fs)
				require.NoError(t, fs.Parse(tc.flags))
				err = fv.Apply(&c)
			}
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	c := DefaultConfig()
	c.Topics.Alerts = c.Topics.Interactions
	c.Topics.Segments = c.Topics.Resends
	c.CommitInterval = 0
	c.Kafka.StartOffset = "middle"
	c.FutureSkew = Duration(-time.Hour)
	c.Health.StallTimeout = 0
	c.ShutdownTimeout = -1
	c.SMTP = SMTPConfig{Host: "mail", Password: "pw"}
	c.Topics.DigestDeliveries = c.Topics.Digests
	err := c.Validate()
	require.Error(t, err)
	for _, k := range []string{"kafka.brokers", "topics.alerts", "topics.segments", "commit_interval", "kafka.start_offset", "rules", "future_skew",
		"health.stall_timeout", "shutdown_timeout", "smtp.password", "topics.digest_deliveries"} {
		require.Contains(t, err.Error(), k+":")
	}
}

// TestDocsListEveryKey keeps docs/run.md and the key table in step.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/run.md")
	require.NoError(t, err)
	for _, k := range Keys {
		for _, s := range []string{"`" + k.Name + "`", "`" + k.Env() + "`", "`--" + k.Flag() + "`"} {
			require.True(t, strings.Contains(string(doc), s), "docs/run.md does not mention %s", s)
		}
	}
}

// A digest delivery that cannot work stops New, naming the key.
func TestNewRefusesABrokenDigestDelivery(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.tmpl")
	require.NoError(t, os.WriteFile(bad, []byte("{{range}}"), 0o644))
	tests := []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"no sender", func(c *Config) { c.SMTP.Host = "mail" }, "smtp.from: required"},
		{"missing template file", func(c *Config) {
			c.SMTP.Host, c.SMTP.From, c.DigestEmail.TextTemplate = "mail", "a@b.c", filepath.Join(t.TempDir(), "none")
		}, "digest_email.text_template"},
		{"template that does not parse", func(c *Config) { c.SMTP.Host, c.SMTP.From, c.DigestEmail.HTMLTemplate = "mail", "a@b.c", bad }, "email.html_template"},
		{"bad tls mode", func(c *Config) { c.SMTP.Host, c.SMTP.From, c.SMTP.Mode = "mail", "a@b.c", "ssl" }, "smtp.tls"},
		{"bad webhook", func(c *Config) { c.Webhooks.Digests = "ftp://x" }, "webhooks.digests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Kafka.Brokers = []string{"127.0.0.1:1"}
			c.Rules = "../examples/rules.yaml"
			tt.set(&c)
			_, err := New(c, nil, nil)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
