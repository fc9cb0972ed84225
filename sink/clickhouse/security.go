package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/crmpulse/crmpulse/internal/tlsclient"
)

// ErrAccess marks a connection failure that waiting will not cure: the
// server refused the user or password, or its certificate is not trusted.
// A starting pipeline gives up on it at once instead of retrying.
var ErrAccess = errors.New("access to ClickHouse refused")

// ClickHouse error codes of a refused login.
const (
	codeUnknownUser      = 192
	codeWrongPassword    = 193
	codeRequiredPassword = 194
	codeAuthFailed       = 516
)

// Ping connects (TLS handshake and login included) and, when that fails,
// says which server and why in operator terms.
func (s *Sink) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return s.explain(err)
	}
	return nil
}

// explain adds the server and the likely cause to err; refused logins and
// certificate failures also wrap ErrAccess.
func (s *Sink) explain(err error) error {
	server := strings.Join(s.addrs, ",")
	var ex *ch.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case codeUnknownUser, codeWrongPassword, codeRequiredPassword, codeAuthFailed:
			return fmt.Errorf("clickhouse %s: %w: wrong user or password (user %q; clickhouse.username, clickhouse.password or password_file, or the DSN's): %w",
				server, ErrAccess, s.user, err)
		}
		return fmt.Errorf("clickhouse %s: %w", server, err)
	}
	if cause := tlsclient.Cause(err, "clickhouse.tls"); cause != "" {
		return fmt.Errorf("clickhouse %s: %w: %s: %w", server, ErrAccess, cause, err)
	}
	if !s.tls && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("clickhouse %s: the server closed the connection: a TLS port? (set clickhouse.tls.enabled, or use the plaintext port): %w", server, err)
	}
	return fmt.Errorf("clickhouse %s: %w", server, err)
}
