package clickhouse

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/sink/clickhouse/chdbtest"
)

// modernRelease is the rendering users on a current server get.
var modernRelease = ServerVersion{26, 9, 0}

// modernSchema is every statement Migrate runs on a modern server, in order.
func modernSchema(t *testing.T) []string {
	t.Helper()
	stmts, err := Script(FeaturesOf(modernRelease))
	require.NoError(t, err)
	return stmts
}

// TestModernSchemaOnChDB executes the modern rendering of every migration
// (LowCardinality, codecs) on chDB, twice as Migrate may, sets a TTL on
// every time-partitioned table, and checks that the tables have the
// columns of the 18.16 rendering with the modern types.
func TestModernSchemaOnChDB(t *testing.T) {
	stmts := modernSchema(t)
	require.True(t, slices.ContainsFunc(stmts, func(s string) bool { return strings.Contains(s, "LowCardinality(String)") }),
		"the modern rendering uses LowCardinality")
	require.True(t, slices.ContainsFunc(stmts, func(s string) bool { return strings.Contains(s, "CODEC(") }),
		"the modern rendering uses codecs")
	setup := append(slices.Clone(stmts), stmts...) // idempotent, the version rows too
	var tables []string
	for table := range monthlyTables {
		stmt, err := ttlStatement(table, 90*24*time.Hour)
		require.NoError(t, err)
		setup = append(setup, stmt)
		tables = append(tables, table)
	}
	slices.Sort(tables)
	version, res := chdbtest.Run(t, setup, []string{
		"SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name",
		"SELECT table, name, type FROM system.columns WHERE database = currentDatabase() ORDER BY table, position",
		"SELECT name FROM system.tables WHERE database = currentDatabase() AND create_table_query LIKE '% TTL %' ORDER BY name",
		"SELECT max(version) FROM " + migrationsTable + " FINAL",
	})
	t.Logf("chDB %s", version)
	for _, r := range res {
		require.Empty(t, r.Error)
	}

	// The same tables and columns as the legacy rendering, types aside.
	legacy, err := Migrations(FeaturesOf(ServerVersion{18, 16, 1}))
	require.NoError(t, err)
	var legacyTables []string
	for _, m := range legacy {
		for _, s := range m.Statements {
			if name, ok := createdTable(s); ok {
				legacyTables = append(legacyTables, name)
			}
		}
	}
	require.NotEmpty(t, legacyTables)
	var got []string
	for _, row := range res[0].Rows {
		got = append(got, row[0])
	}
	for _, name := range legacyTables {
		require.Contains(t, got, name)
	}
	var lowCard int
	for _, row := range res[1].Rows {
		if strings.HasPrefix(row[2], "LowCardinality(") {
			lowCard++
		}
	}
	require.Positive(t, lowCard, "dimension columns are LowCardinality on a modern engine")
	var withTTL []string
	for _, row := range res[2].Rows {
		withTTL = append(withTTL, row[0])
	}
	require.Equal(t, tables, withTTL, "every time-partitioned table took its TTL")
	require.Equal(t, [][]string{{strconv.Itoa(LatestVersion())}}, res[3].Rows, "the schema version is recorded")
}

// createdTable returns the table a CREATE TABLE statement creates (not
// views, which carry no data of their own).
func createdTable(stmt string) (string, bool) {
	f := strings.Fields(stmt)
	for i := 0; i+1 < len(f); i++ {
		if strings.EqualFold(f[i], "TABLE") && i > 0 && strings.EqualFold(f[i-1], "CREATE") {
			j := i + 1
			if j+2 < len(f) && strings.EqualFold(f[j], "IF") {
				j += 3
			}
			return strings.Trim(f[j], "`("), true
		}
	}
	return "", false
}
