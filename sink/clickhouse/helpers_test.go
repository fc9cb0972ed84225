package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"
)

// dsnEnv names the ClickHouse the integration tests use; `make test` sets it
// from deploy/local/clickhouse.sh env.
const dsnEnv = "CRMPULSE_CLICKHOUSE_DSN"

// serverDSN returns the DSN of the real server, skipping the test when none
// is configured.
func serverDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skipf("%s is not set: start a server with deploy/local/clickhouse.sh start and "+
			`eval "$(deploy/local/clickhouse.sh env)" (make test does both)`, dsnEnv)
	}
	return dsn
}

// withDatabase returns dsn pointing at database db.
func withDatabase(t testing.TB, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Path = "/" + db
	return u.String()
}

func open(t testing.TB, dsn string) driver.Conn {
	t.Helper()
	opts, err := ch.ParseDSN(dsn)
	require.NoError(t, err)
	conn, err := ch.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// testDatabase creates a database of its own for the test (dropped at its
// end) and returns its DSN and a connection to it.
func testDatabase(t testing.TB) (string, driver.Conn) {
	t.Helper()
	dsn := serverDSN(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "crmpulse_test_" + hex.EncodeToString(b[:])
	admin := open(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, admin.Exec(ctx, "CREATE DATABASE "+db))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A fresh connection: the test may have stopped and restarted the
		// server under the old one.
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
	dbDSN := withDatabase(t, dsn, db)
	return dbDSN, open(t, dbDSN)
}

// migrated is testDatabase with the schema applied.
func migrated(t testing.TB) (string, driver.Conn) {
	t.Helper()
	dsn, conn := testDatabase(t)
	require.NoError(t, Migrate(context.Background(), conn))
	return dsn, conn
}
