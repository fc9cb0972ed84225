package alertmanager

// Tests against a private real Alertmanager (the prometheus-alertmanager
// binary that deploy/local/alertmanager.sh installs) started with a
// --web.config.file demanding TLS and basic auth. It runs on a port of its
// own with its own storage, so the shared instance is never touched, and
// is stopped by its PID when the test ends.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/crmpulse/crmpulse/httpclient"
	"github.com/crmpulse/crmpulse/internal/testpki"
)

const (
	secureUser     = "crmpulse"
	securePassword = "am-secret-3f9a1c"
)

// secureAM is a private Alertmanager behind TLS and basic auth.
type secureAM struct {
	base string // https://127.0.0.1:port
	pki  *testpki.PKI
}

func startSecureAM(t *testing.T) *secureAM {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		t.Skip("prometheus-alertmanager not installed: run deploy/local/alertmanager.sh install (make test does)")
	}
	pki := testpki.New(t, "crmpulse alertmanager test CA")
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(securePassword), bcrypt.MinCost)
	require.NoError(t, err)
	web := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(web, fmt.Appendf(nil,
		"tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %s\n",
		pki.ServerCert, pki.ServerKey, secureUser, hash), 0o600))
	cfg := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("route:\n  receiver: none\nreceivers:\n  - name: none\n"), 0o600))

	// A free port: taken, then released for Alertmanager to bind.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--web.config.file="+web, "--cluster.listen-address=", "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		// Stopped by the PID we started, never by name.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager (pid %d) output:\n%s", pid, logs.String())
		}
	})
	am := &secureAM{base: "https://" + addr, pki: pki}
	client := am.client(t, httpclient.Config{Username: secureUser, Password: securePassword})
	require.Eventually(t, func() bool {
		resp, err := client.Get(am.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "alertmanager did not become ready")
	return am
}

func (am *secureAM) client(t *testing.T, cfg httpclient.Config) *http.Client {
	t.Helper()
	if cfg.TLS.CAFile == "" {
		cfg.TLS.CAFile = am.pki.CAFile
	}
	c, err := httpclient.New("alertmanager", cfg, nil)
	require.NoError(t, err)
	return c
}

// alerts are the alertnames Alertmanager holds for tenant, read with the
// right credentials.
func (am *secureAM) alerts(t *testing.T, tenant string) []string {
	t.Helper()
	q := url.Values{"filter": {fmt.Sprintf("tenant=%q", tenant)}}
	resp, err := am.client(t, httpclient.Config{Username: secureUser, Password: securePassword}).
		Get(am.base + "/api/v2/alerts?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got []struct {
		Labels map[string]string `json:"labels"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	var names []string
	for _, a := range got {
		names = append(names, a.Labels["alertname"])
	}
	return names
}

// syncBuffer is a log sink the notifier's goroutines write concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// notify runs a notifier for urls with client, posts one alert of tenant
// and returns the notifier's log once until says it has seen enough.
func notify(t *testing.T, urls []string, client *http.Client, tenant, rule string, until func(log string) bool) string {
	t.Helper()
	var logs syncBuffer
	n, err := New(Config{URLs: urls, Client: client, MaxBackoff: 200 * time.Millisecond},
		slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	n.Notify(alertFor(tenant, rule, "warning", "c1", time.Now()))
	require.Eventually(t, func() bool { return until(logs.String()) }, 20*time.Second, 50*time.Millisecond,
		"notifier log so far:\n%s", logs.String())
	cancel()
	require.NoError(t, <-done)
	return logs.String()
}

func TestIntegrationSecureAlertmanager(t *testing.T) {
	am := startSecureAM(t)

	t.Run("alerts posted with the right credentials over TLS arrive", func(t *testing.T) {
		tenant, rule := testTenant(t), testRule("secure")
		client := am.client(t, httpclient.Config{Username: secureUser, Password: securePassword})
		var got []string
		notify(t, []string{am.base}, client, tenant, rule, func(string) bool {
			got = am.alerts(t, tenant)
			return len(got) > 0
		})
		require.Equal(t, []string{rule}, got)
	})

	t.Run("a wrong password is a clear, retried error naming the redacted target", func(t *testing.T) {
		tenant, rule := testTenant(t), testRule("wrongpw")
		// The password rides in the URL here, as some deployments write it.
		u := strings.Replace(am.base, "https://", "https://"+secureUser+":not-the-password-77@", 1)
		log := notify(t, []string{u}, am.client(t, httpclient.Config{}), tenant, rule, func(log string) bool {
			return strings.Count(log, "status 401") >= 2 // retried, not dropped
		})
		require.Contains(t, log, "credentials refused")
		require.Contains(t, log, "url=https://"+secureUser+":xxxxx@"+strings.TrimPrefix(am.base, "https://"))
		require.NotContains(t, log, "not-the-password-77")
		require.Empty(t, am.alerts(t, tenant), "nothing got in")
	})

	t.Run("an untrusted CA is a clear error naming the target and the certificate", func(t *testing.T) {
		tenant, rule := testTenant(t), testRule("badca")
		other := testpki.New(t, "an unrelated CA")
		client := am.client(t, httpclient.Config{Username: secureUser, Password: securePassword, TLS: httpclient.TLSConfig{CAFile: other.CAFile}})
		log := notify(t, []string{am.base}, client, tenant, rule, func(log string) bool {
			return strings.Contains(log, "posting to Alertmanager failed")
		})
		require.Contains(t, log, "x509: certificate signed by unknown authority")
		require.Contains(t, log, "url="+am.base)
		require.NotContains(t, log, securePassword)
		require.Empty(t, am.alerts(t, tenant))
	})

	t.Run("plain HTTP against the TLS port is refused", func(t *testing.T) {
		resp, err := http.Get(strings.Replace(am.base, "https://", "http://", 1) + "/api/v2/alerts")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "Go's TLS server answers plain HTTP with 400")
	})

	t.Run("a TLS client that skips verification still needs the password", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := c.Get(am.base + "/api/v2/alerts")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
}
