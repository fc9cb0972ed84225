package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The secret values of these tests: none may appear in any output.
const (
	amPassword    = "am-url-pass-7Qx"
	amFlagPass    = "am-flag-pass-9Kd"
	chPassword    = "ch-dsn-pass-4Zr"
	hookSecret    = "hook-sign-secret-2Lm"
	hookToken     = "hook-query-token-5Vb"
	hashKey       = "hash-key-secret-0123456789abcdef0123"
	httpBearer    = "http-bearer-secret-8Jt"
	envFileSecret = "webhook-secret-from-file-3Np"
)

var allSecrets = []string{amPassword, amFlagPass, chPassword, hookSecret, hookToken, hashKey, httpBearer, envFileSecret}

// runCrmpulse runs the binary to its end and returns its exit code and
// everything it wrote.
func runCrmpulse(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(crmpulseBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}

func requireNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range allSecrets {
		require.NotContains(t, out, s, "%s leaks %q:\n%s", what, s, out)
	}
}

// TestSecretsNeverPrinted: failing `crmpulse run`s given secrets as flags,
// in URLs, in a DSN, in the environment and in files print errors that
// name what is wrong without the secrets; a secret flag is warned about;
// --help shows no secret from the environment; and a running instance's
// logs and /metrics hold none either.
func TestSecretsNeverPrinted(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(envFileSecret+"\n"), 0o600))
	base := []string{"run", "--kafka.brokers", "127.0.0.1:1", "--rules", "../../examples/rules.yaml", "--http.listen", "127.0.0.1:0"}
	secretFlags := []string{"--alertmanager.username", "crm", "--alertmanager.password", amFlagPass,
		"--webhooks.secret", hookSecret, "--clickhouse.hash-key", hashKey, "--http.bearer-token", httpBearer}

	t.Run("an Alertmanager URL that does not parse", func(t *testing.T) {
		code, out := runCrmpulse(t, nil, append(append(base, secretFlags...),
			"--alertmanager.urls", "http://crm:"+amPassword+"%zz@127.0.0.1:1")...)
		require.Equal(t, exitUsage, code, out)
		require.Contains(t, out, "alertmanager: urls[0]")
		require.Contains(t, out, "crm:xxxxx@127.0.0.1:1")
		require.Contains(t, out, "level=WARN")
		require.Contains(t, out, "--alertmanager.password")
		require.Contains(t, out, "--clickhouse.hash-key")
		requireNoSecret(t, "a bad Alertmanager URL", out)
	})
	t.Run("a ClickHouse DSN that does not parse", func(t *testing.T) {
		code, out := runCrmpulse(t, nil, append(append(base, secretFlags...),
			"--clickhouse.dsn", "clickhouse://default:"+chPassword+"%zz@127.0.0.1:1/db")...)
		require.NotEqual(t, 0, code, out)
		require.Contains(t, out, "dsn")
		require.Contains(t, out, "default:xxxxx@127.0.0.1:1")
		requireNoSecret(t, "a bad ClickHouse DSN", out)
	})
	t.Run("a hash key that is too short names the key, not the value", func(t *testing.T) {
		code, out := runCrmpulse(t, []string{"CRMPULSE_CLICKHOUSE_HASH_KEY=" + hashKey[:20]}, base...)
		require.Equal(t, exitUsage, code, out)
		require.Contains(t, out, "clickhouse.hash_key: must be at least 32 bytes, got 20")
		require.NotContains(t, out, hashKey[:20])
	})
	t.Run("a secret given twice, value and file", func(t *testing.T) {
		code, out := runCrmpulse(t, []string{"CRMPULSE_WEBHOOKS_SECRET=" + hookSecret, "CRMPULSE_WEBHOOKS_SECRET_FILE=" + secretFile}, base...)
		require.Equal(t, exitUsage, code, out)
		require.Contains(t, out, "webhooks.secret and webhooks.secret_file are both set")
		requireNoSecret(t, "a doubly given secret", out)
	})
	t.Run("--help with secrets in the environment", func(t *testing.T) {
		code, out := runCrmpulse(t, []string{"CRMPULSE_WEBHOOKS_SECRET=" + hookSecret, "CRMPULSE_CLICKHOUSE_HASH_KEY=" + hashKey,
			"CRMPULSE_CLICKHOUSE_DSN=clickhouse://u:" + chPassword + "@h:9000/db"}, "run", "--help")
		require.Equal(t, exitOK, code, out)
		require.Contains(t, out, "webhooks.secret_file")
		requireNoSecret(t, "--help", out)
	})

	t.Run("a running instance's logs and /metrics", func(t *testing.T) {
		addr := freeAddr(t) // run_test.go
		dir := t.TempDir()
		cmd := exec.Command(crmpulseBinary(t), "run", "--embedded-kafka", "--kafka.brokers", freeAddr(t), "--rules", "../../examples/rules.yaml",
			"--http.listen", addr, "--alertmanager.urls", "http://crm:"+amPassword+"@127.0.0.1:1",
			"--webhooks.alerts", "http://127.0.0.1:1/hook?token="+hookToken, "--webhooks.dead-letter-file", filepath.Join(dir, "dl.jsonl"),
			"--clickhouse.hash-key", hashKey, "--privacy.dead-letters", "hash")
		cmd.Env = append(os.Environ(), "CRMPULSE_WEBHOOKS_SECRET_FILE="+secretFile)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		var metrics string
		require.Eventually(t, func() bool {
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			metrics = string(b)
			// The target's metrics carry its URL, redacted.
			return strings.Contains(metrics, `crmpulse_alertmanager_alerts_posted_total{url="http://crm:xxxxx@127.0.0.1:1"}`) &&
				strings.Contains(out.String(), "pipeline starting")
		}, time.Minute, 100*time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		_ = cmd.Wait()
		requireNoSecret(t, "/metrics", metrics)
		requireNoSecret(t, "the logs", out.String())
		require.Contains(t, out.String(), "--clickhouse.hash-key", "the secret flag is warned about")
	})
}
