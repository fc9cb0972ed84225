package clickhouse

import (
	"context"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/sink/clickhouse/chtest"
)

// The integration tests run on the real server that `make test` starts
// (deploy/local/clickhouse.sh), each in a database of its own; chtest says
// how, and skips them when CRMPULSE_CLICKHOUSE_DSN is not set.
var (
	serverDSN    = chtest.ServerDSN
	open         = chtest.Open
	testDatabase = chtest.Database
)

// migrated is testDatabase with the schema applied.
func migrated(t testing.TB) (string, driver.Conn) {
	t.Helper()
	dsn, conn := testDatabase(t)
	require.NoError(t, Migrate(context.Background(), conn))
	return dsn, conn
}
