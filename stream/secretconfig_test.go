package stream

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSecretKeysHaveFileTwins(t *testing.T) {
	names := map[string]bool{}
	for _, k := range Keys {
		names[k.Name] = true
	}
	var secrets []string
	for _, k := range Keys {
		if k.Secret {
			secrets = append(secrets, k.Name)
			require.True(t, names[k.Name+"_file"], "%s has no _file twin", k.Name)
			require.Empty(t, k.Default(), "a secret shows no default")
		}
	}
	require.Subset(t, secrets, []string{"webhooks.secret", "clickhouse.dsn", "clickhouse.hash_key", "alertmanager.password",
		"alertmanager.bearer_token", "webhooks.password", "webhooks.bearer_token", "http.bearer_token"})
}

func TestReadSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(v), 0o600))
		return p
	}
	env := map[string]string{
		"CRMPULSE_CLICKHOUSE_HASH_KEY_FILE":   write("key", "k-0123456789abcdef0123456789abcdef\n"),
		"CRMPULSE_ALERTMANAGER_PASSWORD_FILE": write("am", "am-pw\r\n"),
		"CRMPULSE_CLICKHOUSE_DSN_FILE":        write("dsn", "clickhouse://u:p@h:9000/db\n"),
		"CRMPULSE_WEBHOOKS_BEARER_TOKEN_FILE": write("tok", "tok"),
		"CRMPULSE_HTTP_BEARER_TOKEN_FILE":     write("http", "http-tok\n"),
		"CRMPULSE_WEBHOOKS_SECRET":            "inline",
	}
	cfg, err := LoadConfig("", func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NoError(t, cfg.ReadSecretFiles())
	require.Equal(t, "k-0123456789abcdef0123456789abcdef", cfg.ClickHouse.HashKey)
	require.Equal(t, "am-pw", cfg.Alertmanager.Password)
	require.Equal(t, "clickhouse://u:p@h:9000/db", cfg.ClickHouse.DSN)
	require.Equal(t, "tok", cfg.Webhooks.BearerToken)
	require.Equal(t, "http-tok", cfg.HTTP.BearerToken)
	require.Equal(t, "inline", cfg.Webhooks.Secret)
	require.Empty(t, cfg.ClickHouse.HashKeyFile, "the file key is consumed")

	env["CRMPULSE_WEBHOOKS_SECRET_FILE"] = write("sec", "x")
	cfg, err = LoadConfig("", func(k string) string { return env[k] })
	require.NoError(t, err)
	require.ErrorContains(t, cfg.ReadSecretFiles(), "webhooks.secret and webhooks.secret_file are both set")

	cfg = DefaultConfig()
	cfg.Alertmanager.PasswordFile = filepath.Join(dir, "missing")
	require.ErrorContains(t, cfg.ReadSecretFiles(), "alertmanager.password_file")
}

func TestSecretFlagsAreReported(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fv := BindFlags(fs)
	require.NoError(t, fs.Parse([]string{"--webhooks.secret", "s", "--clickhouse.dsn", "clickhouse://h:9000/db",
		"--alertmanager.urls", "http://u:pw1@am:9093", "--webhooks.alerts", "http://hook/", "--kafka.group-id", "g",
		"--http.bearer-token-file", "/run/secrets/t"}))
	require.ElementsMatch(t, []string{"--webhooks.secret", "--alertmanager.urls"}, fv.SecretFlags(),
		"secrets and URLs carrying passwords; not a DSN without password, nor a file path")
}

func TestValidateHashKeyAndPrivacy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(c *Config)
		wantErr string
	}{
		{"a short hash key", func(c *Config) { c.ClickHouse.HashKey = "short" }, "clickhouse.hash_key: must be at least 32 bytes, got 5"},
		{"an unknown privacy mode", func(c *Config) { c.Privacy.DeadLetters = "shred" }, `privacy.dead_letters: "shred" is not keep, hash or drop`},
		{"hash without a key", func(c *Config) { c.Privacy.Repartition = "hash" }, "privacy.repartition: hash needs clickhouse.hash_key"},
		{"a bad contact pattern", func(c *Config) { c.ClickHouse.ContactPatterns = []string{"[x"} }, "contact_patterns[0]"},
		{"drop needs no key", func(c *Config) { c.Privacy.DeadLetters, c.Privacy.Repartition = "drop", "drop" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Kafka.Brokers, c.Rules = []string{"k:9092"}, "rules.yaml"
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			require.NotContains(t, err.Error(), `"short"`, "the key itself is not quoted")
		})
	}
}

func TestClientAndPrivacyKeysInYAML(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`
alertmanager:
  urls: [https://am:9093]
  username: crm
  password_file: /run/secrets/am
  tls:
    ca_file: /etc/ca.pem
    server_name: am.internal
webhooks:
  alerts: https://hook/
  bearer_token_file: /run/secrets/hook
  tls:
    cert_file: /etc/c.pem
    key_file: /etc/k.pem
http:
  web_config_file: /etc/web.yml
clickhouse:
  contact_patterns: ["*loyalty*"]
privacy:
  dead_letters: hash
  repartition: drop
`), 0o600))
	cfg, err := LoadConfig(p, func(k string) string {
		return map[string]string{"CRMPULSE_ALERTMANAGER_TLS_INSECURE_SKIP_VERIFY": "true"}[k]
	})
	require.NoError(t, err)
	require.Equal(t, "crm", cfg.Alertmanager.Username)
	require.Equal(t, "/run/secrets/am", cfg.Alertmanager.PasswordFile)
	require.Equal(t, "am.internal", cfg.Alertmanager.TLS.ServerName)
	require.True(t, cfg.Alertmanager.TLS.InsecureSkipVerify, "from the environment")
	require.Equal(t, "/run/secrets/hook", cfg.Webhooks.BearerTokenFile)
	require.Equal(t, "/etc/k.pem", cfg.Webhooks.HTTP().TLS.KeyFile)
	require.Equal(t, "/etc/web.yml", cfg.HTTP.WebConfigFile)
	require.Equal(t, []string{"*loyalty*"}, cfg.ClickHouse.ContactPatterns)
	require.Equal(t, PrivacyConfig{DeadLetters: "hash", Repartition: "drop"}, cfg.Privacy)
}
