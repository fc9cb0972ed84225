package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseServerVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    ServerVersion
		modern  bool
		wantErr bool
	}{
		{in: "18.16.1", want: ServerVersion{18, 16, 1}},
		{in: "23.8.2.7", want: ServerVersion{23, 8, 2}, modern: true},
		{in: "20.3", want: ServerVersion{20, 3, 0}, modern: true},
		{in: "20.2.9", want: ServerVersion{20, 2, 9}},
		{in: "24.12.1.1614\n", want: ServerVersion{24, 12, 1}, modern: true},
		{in: "x.1", wantErr: true},
		{in: "23", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			v, err := ParseServerVersion(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, v)
			require.Equal(t, Features{tc.modern, tc.modern, tc.modern}, FeaturesOf(v))
		})
	}
}

// TestMigrationsRender checks both renderings: plain types for 18.16,
// LowCardinality and codecs for modern servers, and nothing left of the
// templates.
func TestMigrationsRender(t *testing.T) {
	old, err := Migrations(Features{})
	require.NoError(t, err)
	modern, err := Migrations(FeaturesOf(ServerVersion{23, 8, 0}))
	require.NoError(t, err)
	require.Len(t, modern, len(old))
	require.Equal(t, len(old), LatestVersion())
	for i := range old {
		require.Equal(t, i+1, old[i].Version)
		require.Len(t, modern[i].Statements, len(old[i].Statements))
		for j, s := range old[i].Statements {
			require.NotContains(t, s, "{{")
			require.NotContains(t, s, "LowCardinality")
			require.NotContains(t, s, "CODEC")
			require.NotContains(t, s, "--")
			require.False(t, strings.HasSuffix(s, ";"))
			m := modern[i].Statements[j]
			require.Equal(t, strings.Count(s, "String"), strings.Count(m, "String"), "same columns")
		}
	}
	all := strings.Join(modern[0].Statements, "\n")
	require.Contains(t, all, "tenant       LowCardinality(String)")
	require.Contains(t, all, "DateTime CODEC(Delta, ZSTD(1))")
	// One CREATE per table the sink writes, in some migration.
	var every []string
	for _, m := range old {
		every = append(every, m.Statements...)
	}
	for _, table := range Tables {
		require.Equal(t, 1, strings.Count(strings.Join(every, "\n"), "CREATE TABLE IF NOT EXISTS "+table+" ("), table)
	}
}

func TestSplitStatements(t *testing.T) {
	got := SplitStatements("-- c\nCREATE a (\n  x -- inline stays\n);\n\n  -- c2\nSELECT 1;\nSELECT 2")
	require.Equal(t, []string{"CREATE a (\n  x -- inline stays\n)", "SELECT 1", "SELECT 2"}, got)
}

// TestMigrateTwice: the second run applies nothing and changes no table.
func TestMigrateTwice(t *testing.T) {
	_, conn := testDatabase(t)
	ctx := context.Background()
	v, err := SchemaVersion(ctx, conn)
	require.NoError(t, err)
	require.Zero(t, v)

	applied, err := MigrateTo(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3}, applied)
	schema := func() map[string]string {
		rows, err := conn.Query(ctx, "SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase()")
		require.NoError(t, err)
		defer rows.Close()
		m := map[string]string{}
		for rows.Next() {
			var name, q string
			require.NoError(t, rows.Scan(&name, &q))
			m[name] = q
		}
		require.NoError(t, rows.Err())
		return m
	}
	before := schema()
	for _, table := range append([]string{migrationsTable}, Tables...) {
		require.Contains(t, before, table)
	}

	applied, err = MigrateTo(ctx, conn)
	require.NoError(t, err)
	require.Empty(t, applied)
	require.NoError(t, Migrate(ctx, conn))
	require.Equal(t, before, schema())
	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+migrationsTable).Scan(&n))
	require.Equal(t, uint64(LatestVersion()), n, "one row per migration")
	v, err = SchemaVersion(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, LatestVersion(), v)
}

// TestMigrateRefusesNewerSchema: a database migrated by a newer build is
// refused with a message that says what to do.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	_, conn := migrated(t)
	ctx := context.Background()
	require.NoError(t, recordMigration(ctx, conn, LatestVersion()+1, "from_the_future", time.Now()))
	err := Migrate(ctx, conn)
	require.ErrorIs(t, err, ErrSchemaTooNew)
	require.ErrorContains(t, err, fmt.Sprintf("schema version %d, this build knows versions up to %d",
		LatestVersion()+1, LatestVersion()))
}
