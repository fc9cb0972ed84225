// Package tlsclient turns the TLS settings of a client connection (a CA
// file, a client certificate and key, a server name) into a *tls.Config.
// Kafka and ClickHouse take the same keys, so they share this one reading
// of them and the same error messages.
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// Config is the TLS settings of one client. The zero value is "no TLS".
type Config struct {
	// Enabled turns TLS on. Setting any file below implies it.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs that sign the server's
	// certificate; empty trusts the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that demand mutual TLS. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server's certificate must carry; empty
	// takes the host of the address dialled.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For tests only:
	// it makes the connection open to anyone in the middle.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// On reports whether the settings ask for TLS.
func (c Config) On() bool {
	return c.Enabled || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != "" || c.InsecureSkipVerify
}

// Check reports settings that cannot work, without reading the files; key
// prefixes each message (e.g. "kafka.tls").
func (c Config) Check(key string) error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%s.cert_file and %s.key_file: set both or neither", key, key)
	}
	return nil
}

// Build reads the files and returns the *tls.Config, or nil when TLS is
// off. Errors name the file and what is wrong with it.
func (c Config) Build() (*tls.Config, error) {
	if !c.On() {
		return nil, nil
	}
	if err := c.Check("tls"); err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // documented as test-only; the caller warns at start
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Cause names, in words an operator can act on, why a TLS handshake with a
// server failed; "" when err is not a TLS failure it knows. keyPrefix
// names the configuration keys to look at (e.g. "kafka.tls").
func Cause(err error, keyPrefix string) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.As(err, &unknown):
		return "the server's TLS certificate is signed by an untrusted CA (set " + keyPrefix + ".ca_file to the CA that signed it)"
	case errors.As(err, &host):
		return "the server's TLS certificate is not valid for this host name (" + keyPrefix + ".server_name, or connect by a name the certificate carries)"
	case errors.As(err, &invalid):
		return "the server's TLS certificate is invalid (expired, or not for server use)"
	case errors.As(err, &record):
		return "the server did not answer in TLS: a plaintext port? (use the server's TLS port, or turn " + keyPrefix + " off)"
	case errors.As(err, &op) && op.Op == "remote error":
		// The server sent a TLS alert: with TLS 1.3 a missing or unknown
		// client certificate surfaces like this, on the first read.
		return "the server refused the TLS session (" + op.Err.Error() + "): a client certificate missing or not trusted? (" + keyPrefix + ".cert_file, " + keyPrefix + ".key_file)"
	}
	return ""
}
