// Package chtest gives tests outside sink/clickhouse a database of their own
// on the real ClickHouse that `make test` starts (as httptest gives them a
// server). Without CRMPULSE_CLICKHOUSE_DSN tests skip, or fail under make test
// (internal/testenv).
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

// DSNEnv names the server's DSN; deploy/local/clickhouse.sh env prints it.
const DSNEnv = "CRMPULSE_CLICKHOUSE_DSN"

// ServerDSN is the server's DSN; without it the test skips (fails under
// make test: testenv).
func ServerDSN(t testing.TB) string {
	t.Helper()
	return testenv.Env(t, DSNEnv, `start a server with deploy/local/clickhouse.sh start and `+
		`eval "$(deploy/local/clickhouse.sh env)" (make test does both)`)
}

// Open connects to dsn for the rest of the test.
func Open(t testing.TB, dsn string) driver.Conn {
	t.Helper()
	opts, err := ch.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parsing %s: %v", dsn, err)
	}
	conn, err := ch.Open(opts)
	if err != nil {
		t.Fatalf("opening %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Database creates an empty database for the test, dropped when it ends,
// and returns its DSN and a connection to it.
func Database(t testing.TB) (string, driver.Conn) {
	t.Helper()
	dsn := ServerDSN(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "crmpulse_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Open(t, dsn).Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("creating database %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A fresh connection: the test may have restarted the server.
		opts, err := ch.ParseDSN(dsn)
		if err != nil {
			return
		}
		conn, err := ch.Open(opts)
		if err != nil {
			return
		}
		defer conn.Close()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Logf("dropping test database %s: %v", db, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parsing %s: %v", dsn, err)
	}
	u.Path = "/" + db
	return u.String(), Open(t, u.String())
}
