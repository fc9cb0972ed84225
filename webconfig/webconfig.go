// Package webconfig secures our own HTTP endpoints with the web config file
// of the Prometheus exporter-toolkit (the --web.config.file of Prometheus,
// Alertmanager and the exporters), so an operator writes the same file for
// crmpulse as for the rest of the monitoring stack:
//
//	tls_server_config:
//	  cert_file: /etc/crmpulse/tls/tls.crt
//	  key_file: /etc/crmpulse/tls/tls.key
//	  client_ca_file: /etc/crmpulse/tls/ca.crt   # optional: mutual TLS
//	  client_auth_type: RequireAndVerifyClientCert
//	  min_version: TLS12
//	basic_auth_users:
//	  prometheus: $2y$10$...   # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\n')
//
// The subset implemented is the one above; any other key is refused by name
// rather than ignored, so a setting one relies on is never silently off.
// The exporter-toolkit module itself is not a dependency: it was not among
// the modules known to be served here. One difference: client_ca_file
// without client_auth_type means RequireAndVerifyClientCert here (the
// toolkit then asks for no certificate, leaving the CA unused).
package webconfig

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// File is a web config file.
type File struct {
	TLSServerConfig *TLSServer        `yaml:"tls_server_config"`
	BasicAuthUsers  map[string]string `yaml:"basic_auth_users"`
}

// TLSServer is the tls_server_config section.
type TLSServer struct {
	CertFile       string `yaml:"cert_file"`
	KeyFile        string `yaml:"key_file"`
	ClientCAFile   string `yaml:"client_ca_file"`
	ClientAuthType string `yaml:"client_auth_type"`
	MinVersion     string `yaml:"min_version"`
}

// Load reads and checks the file at path: certificates load, hashes are
// bcrypt hashes.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("web config: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("web config %s: %w (crmpulse supports tls_server_config: cert_file, key_file, "+
			"client_ca_file, client_auth_type, min_version; and basic_auth_users)", path, err)
	}
	for user, hash := range f.BasicAuthUsers {
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("web config %s: basic_auth_users: %s: not a bcrypt hash: %w", path, user, err)
		}
	}
	if f.TLSServerConfig != nil {
		if _, err := f.TLSServerConfig.Config(); err != nil {
			return nil, fmt.Errorf("web config %s: tls_server_config: %w", path, err)
		}
	}
	return &f, nil
}

var clientAuthTypes = map[string]tls.ClientAuthType{
	"NoClientCert":               tls.NoClientCert,
	"RequestClientCert":          tls.RequestClientCert,
	"RequireAnyClientCert":       tls.RequireAnyClientCert,
	"VerifyClientCertIfGiven":    tls.VerifyClientCertIfGiven,
	"RequireAndVerifyClientCert": tls.RequireAndVerifyClientCert,
}

var tlsVersions = map[string]uint16{"TLS10": tls.VersionTLS10, "TLS11": tls.VersionTLS11, "TLS12": tls.VersionTLS12, "TLS13": tls.VersionTLS13}

// Config is the server's tls.Config. The certificate is read again when
// its files change (checked at most once a second, on a handshake), so a
// renewed certificate (cert-manager, a mounted secret) is served without a
// restart.
func (t *TLSServer) Config() (*tls.Config, error) {
	cfg, _, err := t.config()
	return cfg, err
}

func (t *TLSServer) config() (*tls.Config, *certReloader, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, nil, errors.New("cert_file and key_file are required")
	}
	certs := &certReloader{certFile: t.CertFile, keyFile: t.KeyFile}
	if err := certs.load(); err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	if t.MinVersion != "" {
		v, ok := tlsVersions[t.MinVersion]
		if !ok {
			return nil, nil, fmt.Errorf("min_version: %q is not TLS10, TLS11, TLS12 or TLS13", t.MinVersion)
		}
		cfg.MinVersion = v
	}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("client_ca_file: %w", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("client_ca_file %s: no PEM certificate in it", t.ClientCAFile)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if t.ClientAuthType != "" {
		a, ok := clientAuthTypes[t.ClientAuthType]
		if !ok {
			return nil, nil, fmt.Errorf("client_auth_type: %q is not one of NoClientCert, RequestClientCert, "+
				"RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert", t.ClientAuthType)
		}
		if (a == tls.VerifyClientCertIfGiven || a == tls.RequireAndVerifyClientCert) && cfg.ClientCAs == nil {
			return nil, nil, fmt.Errorf("client_auth_type %s needs client_ca_file", t.ClientAuthType)
		}
		cfg.ClientAuth = a
	}
	return cfg, certs, nil
}

type certReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	modTime           time.Time
	checked           time.Time
}

func (r *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("cert_file/key_file: %w", err)
	}
	r.cert, r.modTime = &cert, r.stamp()
	return nil
}

func (r *certReloader) stamp() time.Time {
	var latest time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return latest
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= time.Second {
		r.checked = now
		if r.stamp() != r.modTime {
			// A half-written renewal fails to load: keep serving the old one.
			_ = r.load()
		}
	}
	return r.cert, nil
}

// Auth checks the credentials of requests: basic auth against bcrypt
// hashes, or a bearer token. The zero Auth (nothing configured) lets every
// request through.
type Auth struct {
	users  map[string][]byte
	bearer []byte // sha256 of the token, compared in constant time

	mu sync.Mutex
	ok map[[32]byte]bool // sha256(user, password) of checks that passed
}

// cacheSize bounds the remembered good credentials: a bcrypt check costs
// tens of milliseconds, and Prometheus scrapes with the same ones every
// time. Only successes are remembered, so a guesser pays bcrypt each try.
const cacheSize = 64

// NewAuth returns an Auth for the users (name → bcrypt hash) and bearer
// token; both may be empty.
func NewAuth(users map[string]string, bearer string) *Auth {
	a := &Auth{users: map[string][]byte{}, ok: map[[32]byte]bool{}}
	for u, h := range users {
		a.users[u] = []byte(h)
	}
	if bearer != "" {
		sum := sha256.Sum256([]byte(bearer))
		a.bearer = sum[:]
	}
	return a
}

// Enabled reports whether a checks anything.
func (a *Auth) Enabled() bool { return a != nil && (len(a.users) > 0 || a.bearer != nil) }

// Allowed reports whether r carries valid credentials.
func (a *Auth) Allowed(r *http.Request) bool {
	if !a.Enabled() {
		return true
	}
	if a.bearer != nil {
		if tok, ok := bearerToken(r); ok {
			sum := sha256.Sum256([]byte(tok))
			return subtle.ConstantTimeCompare(sum[:], a.bearer) == 1
		}
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hash, known := a.users[user]
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	a.mu.Lock()
	hit := a.ok[key]
	a.mu.Unlock()
	if hit && known {
		return true
	}
	if !known {
		// Spend the same time as for a known user, so timing does not
		// tell which user names exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pass))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.ok) >= cacheSize {
		clear(a.ok)
	}
	a.ok[key] = true
	a.mu.Unlock()
	return true
}

// dummyHash is made on first use: bcrypt is slow on purpose, and most
// binaries importing this package never check a password.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("crmpulse"), bcrypt.DefaultCost)
	return h
})

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) > len(prefix) && (h[:len(prefix)] == prefix || h[:len(prefix)] == "bearer ") {
		return h[len(prefix):], true
	}
	return "", false
}

// Wrap returns h behind a: requests whose path open accepts pass without
// credentials, others get 401 without them.
func (a *Auth) Wrap(h http.Handler, open func(path string) bool) http.Handler {
	if !a.Enabled() {
		return h
	}
	challenge := `Basic realm="crmpulse", charset="UTF-8"`
	if len(a.users) == 0 {
		challenge = `Bearer realm="crmpulse"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (open != nil && open(r.URL.Path)) || a.Allowed(r) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	})
}
