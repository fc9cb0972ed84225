package httpclient

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testpki"
)

// server is a TLS server signed by pki that answers 200 only to the
// credentials want, and records the Authorization header it saw.
func server(t *testing.T, pki *testpki.PKI, mutual bool, want func(*http.Request) bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !want(r) {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.ServerPair}}
	if mutual {
		srv.TLS.ClientAuth, srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, pki.Pool()
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func basic(user, pass string) func(*http.Request) bool {
	return func(r *http.Request) bool { u, p, ok := r.BasicAuth(); return ok && u == user && p == pass }
}

func secretFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestClientAuthenticatesAndChecksTheServer(t *testing.T) {
	pki := testpki.New(t, "test CA")
	other := testpki.New(t, "some other CA")
	bearer := func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer tok-123" }
	tests := []struct {
		name    string
		cfg     Config
		mutual  bool
		want    func(*http.Request) bool
		status  int
		wantErr string
	}{
		{name: "basic auth over TLS with the private CA is accepted", want: basic("crm", "pw"),
			cfg: Config{Username: "crm", Password: "pw", TLS: TLSConfig{CAFile: pki.CAFile}}, status: 204},
		{name: "the password can come from a file, its newline trimmed", want: basic("crm", "pw"),
			cfg: Config{Username: "crm", PasswordFile: secretFile(t, "pw\n"), TLS: TLSConfig{CAFile: pki.CAFile}}, status: 204},
		{name: "a wrong password gets the server's 401", want: basic("crm", "pw"),
			cfg: Config{Username: "crm", Password: "nope", TLS: TLSConfig{CAFile: pki.CAFile}}, status: 401},
		{name: "a bearer token from a file is sent", want: bearer,
			cfg: Config{BearerTokenFile: secretFile(t, "tok-123\n"), TLS: TLSConfig{CAFile: pki.CAFile}}, status: 204},
		{name: "a client certificate passes mutual TLS", mutual: true, want: bearer,
			cfg: Config{BearerToken: "tok-123", TLS: TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}}, status: 204},
		{name: "without a client certificate mutual TLS fails", mutual: true, want: bearer,
			cfg: Config{BearerToken: "tok-123", TLS: TLSConfig{CAFile: pki.CAFile}}, wantErr: "certificate required"},
		{name: "a server signed by another CA is refused", want: bearer,
			cfg: Config{BearerToken: "tok-123", TLS: TLSConfig{CAFile: other.CAFile}}, wantErr: "x509: certificate signed by unknown authority"},
		{name: "a server name the certificate lacks is refused", want: bearer,
			cfg: Config{BearerToken: "tok-123", TLS: TLSConfig{CAFile: pki.CAFile, ServerName: "am.example.com"}}, wantErr: "am.example.com"},
		{name: "insecure_skip_verify accepts any certificate", want: bearer,
			cfg: Config{BearerToken: "tok-123", TLS: TLSConfig{InsecureSkipVerify: true}}, status: 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, pki, tc.mutual, tc.want)
			c, err := New("test target", tc.cfg, nil)
			require.NoError(t, err)
			resp, err := c.Get(srv.URL)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
		})
	}
}

func TestNewRefusesBadConfigs(t *testing.T) {
	pki := testpki.New(t, "test CA")
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"basic auth and a bearer token at once", Config{Username: "u", Password: "p", BearerToken: "t"}, "target: username and bearer_token are both set"},
		{"a password without a user", Config{Password: "p"}, "target: password is set without username"},
		{"a password given twice", Config{Username: "u", Password: "p", PasswordFile: secretFile(t, "p")}, "password and password_file are both set"},
		{"a missing token file", Config{BearerTokenFile: "/nonexistent/token"}, "bearer_token_file: open /nonexistent/token"},
		{"a CA file that is not PEM", Config{TLS: TLSConfig{CAFile: secretFile(t, "not pem")}}, "target: tls: ca_file"},
		{"a certificate without its key", Config{TLS: TLSConfig{CertFile: pki.ClientCert}}, "cert_file and key_file go together"},
		{"a key that is not the certificate's", Config{TLS: TLSConfig{CertFile: pki.ClientCert, KeyFile: pki.ServerKey}}, "cert_file/key_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New("target", tc.cfg, nil)
			require.ErrorContains(t, err, tc.wantErr)
			require.NotContains(t, err.Error(), "not pem", "file contents are not echoed")
		})
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	var buf bytes.Buffer
	_, err := New("alertmanager", Config{TLS: TLSConfig{InsecureSkipVerify: true}}, slog.New(slog.NewTextHandler(&buf, nil)))
	require.NoError(t, err)
	require.Contains(t, buf.String(), "level=WARN")
	require.Contains(t, buf.String(), "verification is OFF")
	require.Contains(t, buf.String(), "target=alertmanager")
}
