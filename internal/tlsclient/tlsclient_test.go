package tlsclient_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testcerts"
	"github.com/crmpulse/crmpulse/internal/tlsclient"
)

func TestBuild(t *testing.T) {
	certs := testcerts.Write(t, t.TempDir())
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	for _, tc := range []struct {
		name  string
		cfg   tlsclient.Config
		nilTC bool
		err   string
		check func(t *testing.T, c tlsclient.Config)
	}{
		{name: "the zero value is no TLS", nilTC: true},
		{name: "enabled alone trusts the system roots", cfg: tlsclient.Config{Enabled: true}},
		{name: "a CA file implies TLS and becomes the roots", cfg: tlsclient.Config{CAFile: certs.CAFile}},
		{name: "a client certificate and key are loaded", cfg: tlsclient.Config{CertFile: certs.ClientCert, KeyFile: certs.ClientKey}},
		{name: "a CA file without PEM is refused by name", cfg: tlsclient.Config{CAFile: notPEM}, err: "CA file " + notPEM + ": no PEM certificate in it"},
		{name: "a missing CA file is named", cfg: tlsclient.Config{CAFile: "/nonexistent/ca.pem"}, err: "reading CA file: open /nonexistent/ca.pem"},
		{name: "a certificate without its key is refused", cfg: tlsclient.Config{CertFile: certs.ClientCert}, err: "set both or neither"},
		{name: "a key that is not the certificate's is refused", cfg: tlsclient.Config{CertFile: certs.ClientCert, KeyFile: certs.ServerKey},
			err: "client certificate " + certs.ClientCert + " with key " + certs.ServerKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.Build()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			if tc.nilTC {
				require.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			require.Equal(t, tc.cfg.CAFile != "", got.RootCAs != nil)
			require.Equal(t, tc.cfg.CertFile != "", len(got.Certificates) == 1)
			require.False(t, got.InsecureSkipVerify)
		})
	}
}
