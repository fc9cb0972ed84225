// Package httpclient builds the HTTP clients that post to Alertmanager and
// to webhooks: basic auth or a bearer token on every request, and TLS with
// a private CA, a client certificate (mutual TLS) and a server name. The
// settings mirror Prometheus' http_config (basic_auth, authorization,
// tls_config), so an operator who has secured Alertmanager for Prometheus
// sets the same values here.
package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
)

// Config is how a client authenticates and checks the server. The zero
// Config is a plain client with the system's roots.
type Config struct {
	// Username and Password are sent as HTTP basic auth when Username is
	// set. PasswordFile, if set, holds the password instead (trailing
	// newline trimmed); read once, by New.
	Username, Password, PasswordFile string
	// BearerToken, or the content of BearerTokenFile, is sent as
	// "Authorization: Bearer <token>". Exclusive with basic auth.
	BearerToken, BearerTokenFile string
	TLS                          TLSConfig
}

// TLSConfig checks the server's certificate and presents ours.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the server's
	// certificate; empty: the system roots.
	CAFile string
	// CertFile and KeyFile are our certificate and key (PEM) for servers
	// that demand mutual TLS; both or neither.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry, when
	// it is not the host of the URL (an IP, a proxy).
	ServerName string
	// InsecureSkipVerify accepts any server certificate: anyone on the
	// path can then read and change the traffic. For tests only; New
	// logs a warning.
	InsecureSkipVerify bool
}

// Enabled reports whether c asks for anything beyond a plain client.
func (c Config) Enabled() bool { return c != Config{} }

// ReadSecret is the value of a secret given either directly or as a file
// (whose trailing newline is trimmed, as `echo secret > file` writes one).
// Both at once is an error: which one wins would be a guess.
func ReadSecret(name, value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", fmt.Errorf("%s and %s_file are both set: set one", name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// New returns a client for cfg. what names the target in errors and in the
// insecure_skip_verify warning ("alertmanager", "webhooks.alerts").
func New(what string, cfg Config, logger *slog.Logger) (*http.Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	password, err := ReadSecret("password", cfg.Password, cfg.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	token, err := ReadSecret("bearer_token", cfg.BearerToken, cfg.BearerTokenFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case cfg.Username != "" && token != "":
		return nil, fmt.Errorf("%s: username and bearer_token are both set: choose basic auth or a bearer token", what)
	case cfg.Username == "" && password != "":
		return nil, fmt.Errorf("%s: password is set without username", what)
	}
	tlsCfg, err := cfg.TLS.client()
	if err != nil {
		return nil, fmt.Errorf("%s: tls: %w", what, err)
	}
	if cfg.TLS.InsecureSkipVerify {
		logger.Warn("TLS certificate verification is OFF (insecure_skip_verify): anyone on the network path can "+
			"impersonate the server and read its credentials; use it in tests only", "target", what)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsCfg
	var rt http.RoundTripper = base
	switch {
	case cfg.Username != "":
		rt = &authTransport{next: base, set: func(r *http.Request) { r.SetBasicAuth(cfg.Username, password) }}
	case token != "":
		h := "Bearer " + token
		rt = &authTransport{next: base, set: func(r *http.Request) { r.Header.Set("Authorization", h) }}
	}
	return &http.Client{Transport: rt}, nil
}

// client is the tls.Config of c.
func (c TLSConfig) client() (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", c.CAFile)
		}
	}
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	case c.CertFile != "" || c.KeyFile != "":
		return nil, errors.New("cert_file and key_file go together: set both or neither")
	}
	return t, nil
}

// authTransport adds credentials to every request. It clones the request
// first, as a RoundTripper must not change the one it was given.
type authTransport struct {
	next http.RoundTripper
	set  func(*http.Request)
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	t.set(r)
	return t.next.RoundTrip(r)
}
