package stream

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/crmpulse/crmpulse/webconfig"
)

// OpenPaths are served without credentials even when http auth is on:
// /healthz is what liveness probes hit, and kubelets and load balancers
// carry no credentials. It says only that the process runs. /readyz
// (partition counts) and /metrics (topic names, rates, everything the
// registry holds) need credentials, as does any path added later: the
// list is of what is open, not of what is closed.
var OpenPaths = []string{"/healthz"}

// httpSecurity is what http.web_config_file and http.bearer_token add to
// the listener: TLS, and credentials on every path but OpenPaths.
type httpSecurity struct {
	tls  *tls.Config
	auth *webconfig.Auth
}

// loadHTTPSecurity reads the web config file of cfg (if any).
func loadHTTPSecurity(cfg HTTPConfig) (*httpSecurity, error) {
	s := &httpSecurity{}
	var users map[string]string
	if cfg.WebConfigFile != "" {
		f, err := webconfig.Load(cfg.WebConfigFile)
		if err != nil {
			return nil, fmt.Errorf("http.web_config_file: %w", err)
		}
		users = f.BasicAuthUsers
		if f.TLSServerConfig != nil {
			if s.tls, err = f.TLSServerConfig.Config(); err != nil {
				return nil, fmt.Errorf("http.web_config_file: %w", err)
			}
		}
	}
	s.auth = webconfig.NewAuth(users, cfg.BearerToken)
	return s, nil
}

// listener wraps ln in TLS when configured.
func (s *httpSecurity) listener(ln net.Listener) net.Listener {
	if s == nil || s.tls == nil {
		return ln
	}
	return tls.NewListener(ln, s.tls)
}

// handler puts h behind the configured credentials.
func (s *httpSecurity) handler(h http.Handler) http.Handler {
	if s == nil {
		return h
	}
	return s.auth.Wrap(h, func(path string) bool {
		for _, p := range OpenPaths {
			if path == p {
				return true
			}
		}
		return false
	})
}
