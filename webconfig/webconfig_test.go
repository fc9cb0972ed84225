package webconfig

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/crmpulse/crmpulse/internal/testpki"
)

func TestAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	a := NewAuth(map[string]string{"prom": string(hash)}, "tok")
	req := func(set func(r *http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		set(r)
		return r
	}
	for _, tc := range []struct {
		name string
		set  func(r *http.Request)
		ok   bool
	}{
		{"no credentials", func(*http.Request) {}, false},
		{"the right password", func(r *http.Request) { r.SetBasicAuth("prom", "pw") }, true},
		{"the right password again, from the cache", func(r *http.Request) { r.SetBasicAuth("prom", "pw") }, true},
		{"a cached password for another user", func(r *http.Request) { r.SetBasicAuth("other", "pw") }, false},
		{"a wrong password", func(r *http.Request) { r.SetBasicAuth("prom", "pw2") }, false},
		{"the bearer token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, true},
		{"the bearer token, scheme in lower case", func(r *http.Request) { r.Header.Set("Authorization", "bearer tok") }, true},
		{"a wrong bearer token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok2") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.ok, a.Allowed(req(tc.set)))
		})
	}
	require.True(t, (&Auth{}).Allowed(req(func(*http.Request) {})), "nothing configured lets everything through")
	require.False(t, (*Auth)(nil).Enabled())
}

// TestCertificateIsReloaded: a renewed certificate (new files) is served
// on the next handshake after the change is noticed, without a restart.
func TestCertificateIsReloaded(t *testing.T) {
	a, b := testpki.New(t, "first CA"), testpki.New(t, "second CA")
	cfg, r, err := (&TLSServer{CertFile: a.ServerCert, KeyFile: a.ServerKey}).config()
	require.NoError(t, err)
	first, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	require.Equal(t, a.ServerPair.Certificate[0], first.Certificate[0])

	for _, f := range [][2]string{{b.ServerCert, a.ServerCert}, {b.ServerKey, a.ServerKey}} {
		data, err := os.ReadFile(f[0])
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f[1], data, 0o600))
		later := time.Now().Add(time.Minute) // a distinct mtime whatever the file system's resolution
		require.NoError(t, os.Chtimes(f[1], later, later))
	}
	// The check runs at most once a second; make this handshake the one
	// that checks instead of sleeping.
	r.mu.Lock()
	r.checked = time.Time{}
	r.mu.Unlock()
	second, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	require.Equal(t, b.ServerPair.Certificate[0], second.Certificate[0])
}

func TestTLSServerConfig(t *testing.T) {
	p := testpki.New(t, "CA")
	cfg, err := (&TLSServer{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientCAFile: p.CAFile}).Config()
	require.NoError(t, err)
	require.Equal(t, tls.RequireAndVerifyClientCert, cfg.ClientAuth, "a client CA alone means verify")
	require.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)
	cfg, err = (&TLSServer{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientCAFile: p.CAFile, ClientAuthType: "VerifyClientCertIfGiven", MinVersion: "TLS13"}).Config()
	require.NoError(t, err)
	require.Equal(t, tls.VerifyClientCertIfGiven, cfg.ClientAuth)
	require.Equal(t, uint16(tls.VersionTLS13), cfg.MinVersion)
	_, err = (&TLSServer{CertFile: p.ServerCert, KeyFile: p.ServerKey, MinVersion: "SSL3"}).Config()
	require.ErrorContains(t, err, `min_version: "SSL3"`)
	_, err = (&TLSServer{CertFile: p.ServerCert, KeyFile: p.ClientKey}).Config()
	require.ErrorContains(t, err, "cert_file/key_file")
}
