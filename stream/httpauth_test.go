package stream

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/crmpulse/crmpulse/api"
	"github.com/crmpulse/crmpulse/internal/testpki"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// serveSecured serves the App's real handler on a real listener behind the
// security that cfg configures, as serveHTTP does, and returns its base URL.
func serveSecured(t *testing.T, cfg HTTPConfig) string {
	t.Helper()
	sec, err := loadHTTPSecurity(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a := &App{gatherer: prometheus.NewRegistry(), health: newHealth(), firing: newFiringTracker(), rules: &rules.File{}}
	a.api, err = api.New(api.Config{Alerts: a, Rules: api.RulesFunc(a.currentRules)})
	require.NoError(t, err)
	srv := &http.Server{Handler: sec.handler(a.handler())}
	go func() { _ = srv.Serve(sec.listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	scheme := "http"
	if sec.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String()
}

func writeWebConfig(t *testing.T, pki *testpki.PKI, mutual bool, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	require.NoError(t, err)
	y := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", pki.ServerCert, pki.ServerKey)
	if mutual {
		y += fmt.Sprintf("  client_ca_file: %s\n  client_auth_type: RequireAndVerifyClientCert\n", pki.CAFile)
	}
	y += fmt.Sprintf("basic_auth_users:\n  %s: %s\n", user, hash)
	p := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(p, []byte(y), 0o600))
	return p
}

// TestHTTPEndpointsBehindTLSAndAuth: with a web config, every endpoint
// but /healthz needs credentials; wrong ones get 401; plain HTTP and
// clients without the CA or the required client certificate get nowhere.
func TestHTTPEndpointsBehindTLSAndAuth(t *testing.T) {
	pki := testpki.New(t, "http test CA")
	base := serveSecured(t, HTTPConfig{WebConfigFile: writeWebConfig(t, pki, false, "prom", "scrape-pw"), BearerToken: "tok-9"})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool()}}}
	get := func(path string, auth func(*http.Request)) int {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		if auth != nil {
			auth(req)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	for _, tc := range []struct {
		name string
		path string
		auth func(*http.Request)
		want int
	}{
		{"/healthz is open for probes", "/healthz", nil, 200},
		{"/metrics without credentials is refused", "/metrics", nil, 401},
		{"/metrics with the right password is served", "/metrics", basic("prom", "scrape-pw"), 200},
		{"/metrics with the right password again (cached) is served", "/metrics", basic("prom", "scrape-pw"), 200},
		{"/metrics with a wrong password is refused", "/metrics", basic("prom", "nope"), 401},
		{"/metrics with an unknown user is refused", "/metrics", basic("eve", "scrape-pw"), 401},
		{"/metrics with the bearer token is served", "/metrics", bearer("tok-9"), 200},
		{"/metrics with a wrong bearer token is refused", "/metrics", bearer("tok-8"), 401},
		{"/readyz without credentials is refused", "/readyz", nil, 401},
		{"/readyz with credentials answers (not ready: no partitions)", "/readyz", basic("prom", "scrape-pw"), 503},
		{"the query API without credentials is refused", "/api/v1/alerts", nil, 401},
		{"the query API with the bearer token is served", "/api/v1/alerts", bearer("tok-9"), 200},
		{"the OpenAPI document without credentials is refused", "/api/v1/openapi.yaml", nil, 401},
		{"an unknown path is refused before it is a 404", "/api/anything", nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, get(tc.path, tc.auth))
		})
	}

	t.Run("a 401 says which scheme to use", func(t *testing.T) {
		resp, err := client.Get(base + "/metrics")
		require.NoError(t, err)
		resp.Body.Close()
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
	})
	t.Run("a client without the CA does not connect", func(t *testing.T) {
		_, err := http.Get(base + "/healthz")
		require.ErrorContains(t, err, "certificate signed by unknown authority")
	})
	t.Run("plain HTTP on the TLS port gets nothing served", func(t *testing.T) {
		resp, err := http.Get("http://" + base[len("https://"):] + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func TestHTTPMutualTLS(t *testing.T) {
	pki := testpki.New(t, "http mtls CA")
	base := serveSecured(t, HTTPConfig{WebConfigFile: writeWebConfig(t, pki, true, "prom", "pw")})
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool(), Certificates: []tls.Certificate{pki.ClientPair}}}}
	resp, err := withCert.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	without := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool()}}}
	_, err = without.Get(base + "/healthz")
	require.Error(t, err, "no client certificate, no connection")
	require.Contains(t, err.Error(), "certificate required")
}

func TestHTTPWithoutWebConfigIsOpen(t *testing.T) {
	base := serveSecured(t, HTTPConfig{})
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
}

func TestHTTPWebConfigErrors(t *testing.T) {
	pki := testpki.New(t, "errors CA")
	write := func(y string) string {
		p := filepath.Join(t.TempDir(), "web.yml")
		require.NoError(t, os.WriteFile(p, []byte(y), 0o600))
		return p
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"an unsupported key is refused by name", "http_server_config:\n  http2: false\n", "field http_server_config not found"},
		{"a password in clear instead of a hash", "basic_auth_users:\n  prom: hunter22\n", "basic_auth_users: prom: not a bcrypt hash"},
		{"a missing key file", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n", pki.ServerCert), "cert_file and key_file are required"},
		{"a bad client auth type", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_auth_type: Maybe\n", pki.ServerCert, pki.ServerKey), `client_auth_type: "Maybe"`},
		{"verification without a CA", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_auth_type: RequireAndVerifyClientCert\n", pki.ServerCert, pki.ServerKey), "needs client_ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadHTTPSecurity(HTTPConfig{WebConfigFile: write(tc.yaml)})
			require.ErrorContains(t, err, "http.web_config_file")
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "hunter22")
		})
	}
}
