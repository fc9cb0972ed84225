// Package clickhouse_test keeps deploy/clickhouse/cluster.sql, the cluster
// variant of the schema, in step with the single-node migrations of
// sink/clickhouse, and checks the SQL of docs/clickhouse.md on the real
// server.
//
// Offline it compares the texts: every table of every migration (rendered
// for 18.16) has a <table>_local in cluster.sql with the same columns,
// PARTITION BY and ORDER BY, a replicated engine, and a Distributed table
// whose sharding key uses only ORDER BY columns; every migration version is
// recorded. With CRMPULSE_CLICKHOUSE_DSN set it also sends the file to the
// real 18.16 server, which has no ZooKeeper and no cluster, so it checks
// only what such a server can: that every statement parses and that each
// sharding key is valid for its table (the server checks both before it
// looks for the cluster), and that the _local tables, with the replicated
// engine swapped for its plain twin, come out exactly as Migrate creates
// them.
package clickhouse_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
	sink "github.com/crmpulse/crmpulse/sink/clickhouse"
)

const (
	clusterFile = "cluster.sql"
	// database is the database cluster.sql creates; README.md renames it
	// with sed, as the live test does.
	database = "crmpulse"
	// onCluster is the clause every DDL statement of cluster.sql carries.
	onCluster = " ON CLUSTER '{cluster}'"
	// migrationsTable is sink/clickhouse's schema_migrations, created
	// outside the versioned migrations. Its definition is unexported there,
	// so migrationsDDL repeats it; TestClusterSchemaOnServer compares the
	// result with what Migrate creates on the real server.
	migrationsTable = "schema_migrations"
	migrationsDDL   = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    applied_at DateTime
) ENGINE = ReplacingMergeTree()
ORDER BY version`
)

// column is one column of a CREATE TABLE.
type column struct{ Name, Type string }

// table is what the tests compare of a CREATE TABLE statement.
type table struct {
	Name        string
	OnCluster   bool
	Columns     []column
	Engine      string
	PartitionBy string
	OrderBy     string
	// As and Distributed are set for CREATE TABLE x AS y ENGINE = Distributed(...).
	As          string
	Distributed *distributed
	stmt        int // index of the statement
}

// distributed is the arguments of a Distributed engine.
type distributed struct{ Cluster, Database, Table, ShardingKey string }

var (
	createTable    = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS ([\w.]+)( ON CLUSTER '\{cluster\}')?\s+(.*)$`)
	asDistributed  = regexp.MustCompile(`(?s)^AS ([\w.]+)\s+ENGINE = Distributed\(('[^']*'|\w+), (\w+), (\w+), (.+)\)$`)
	engineClause   = regexp.MustCompile(`^\)\s*ENGINE = (.+)$`)
	mergeTreeCall  = regexp.MustCompile(`^(\w*MergeTree)\((.*)\)$`)
	identifier     = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*(\s*\()?`)
	recordedRow    = regexp.MustCompile(`\((\d+), '([a-z0-9_]+)', now\(\)\)`)
	createDatabase = "CREATE DATABASE IF NOT EXISTS " + database + onCluster
)

// parseTable reads a CREATE TABLE statement in the layout the migrations
// and cluster.sql use: one column per line, then one clause per line.
func parseTable(stmt string) (table, error) {
	m := createTable.FindStringSubmatch(stmt)
	if m == nil {
		return table{}, errors.New("not a CREATE TABLE IF NOT EXISTS statement")
	}
	t := table{Name: m[1], OnCluster: m[2] != ""}
	rest := m[3]
	if d := asDistributed.FindStringSubmatch(rest); d != nil {
		t.As = d[1]
		t.Distributed = &distributed{Cluster: d[2], Database: d[3], Table: d[4], ShardingKey: d[5]}
		return t, nil
	}
	if !strings.HasPrefix(rest, "(") {
		return table{}, fmt.Errorf("table %s: expected a column list or AS ... ENGINE = Distributed(...)", t.Name)
	}
	lines := strings.Split(rest, "\n")
	i := 1
	for ; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), ")"); i++ {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(lines[i]), ","))
		if len(f) < 2 {
			return table{}, fmt.Errorf("table %s: column line %q", t.Name, lines[i])
		}
		t.Columns = append(t.Columns, column{Name: f[0], Type: strings.Join(f[1:], " ")})
	}
	for ; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case engineClause.MatchString(line):
			t.Engine = engineClause.FindStringSubmatch(line)[1]
		case strings.HasPrefix(line, "PARTITION BY "):
			t.PartitionBy = strings.TrimPrefix(line, "PARTITION BY ")
		case strings.HasPrefix(line, "ORDER BY "):
			t.OrderBy = strings.TrimPrefix(line, "ORDER BY ")
		default:
			return table{}, fmt.Errorf("table %s: clause %q is not one this test knows; teach it", t.Name, line)
		}
	}
	if t.Engine == "" || t.OrderBy == "" {
		return table{}, fmt.Errorf("table %s: no ENGINE or ORDER BY", t.Name)
	}
	return t, nil
}

// keyColumns lists the columns of an ORDER BY clause.
func keyColumns(orderBy string) []string {
	var cols []string
	for c := range strings.SplitSeq(strings.Trim(orderBy, "()"), ",") {
		cols = append(cols, strings.TrimSpace(c))
	}
	return cols
}

// columnsOf lists the columns an expression reads (identifiers that are
// not function names).
func columnsOf(expr string) []string {
	var cols []string
	for _, id := range identifier.FindAllString(expr, -1) {
		if !strings.HasSuffix(id, "(") {
			cols = append(cols, id)
		}
	}
	return cols
}

// replicated is the engine a single-node engine becomes on the cluster.
func replicated(tableName, engine string) (string, error) {
	m := mergeTreeCall.FindStringSubmatch(engine)
	if m == nil {
		return "", fmt.Errorf("engine %q is not a MergeTree family engine", engine)
	}
	args := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", database, tableName)
	if m[2] != "" {
		args += ", " + m[2]
	}
	return "Replicated" + m[1] + "(" + args + ")", nil
}

// singleNode is the reference schema: schema_migrations and every table of
// every migration rendered for 18.16, with the migration that creates it.
type singleNode struct {
	tables     []table
	migrations []sink.Migration
}

func loadSingleNode(t *testing.T) singleNode {
	t.Helper()
	ms, err := sink.Migrations(sink.FeaturesOf(sink.ServerVersion{Major: 18, Minor: 16, Patch: 1}))
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	mt, err := parseTable(migrationsDDL)
	require.NoError(t, err)
	s := singleNode{tables: []table{mt}, migrations: ms}
	for _, m := range ms {
		for i, stmt := range m.Statements {
			tb, err := parseTable(stmt)
			require.NoError(t, err, "migration %d (%s), statement %d: only CREATE TABLE is handled; "+
				"extend cluster.sql and this test for other statements", m.Version, m.Name, i+1)
			s.tables = append(s.tables, tb)
		}
	}
	return s
}

// clusterSchema is cluster.sql, parsed.
type clusterSchema struct {
	src    string
	stmts  []string
	tables map[string]table
}

func loadCluster(t *testing.T) clusterSchema {
	t.Helper()
	src, err := os.ReadFile(clusterFile)
	require.NoError(t, err)
	c := clusterSchema{src: string(src), stmts: sink.SplitStatements(string(src)), tables: map[string]table{}}
	for i, stmt := range c.stmts {
		if !strings.HasPrefix(stmt, "CREATE TABLE ") {
			continue
		}
		tb, err := parseTable(stmt)
		require.NoError(t, err, "cluster.sql statement %d", i+1)
		tb.stmt = i
		require.NotContains(t, c.tables, tb.Name, "cluster.sql creates %s twice", tb.Name)
		c.tables[tb.Name] = tb
	}
	return c
}

// TestClusterSchemaMatchesMigrations compares cluster.sql with the
// single-node schema, table by table.
func TestClusterSchemaMatchesMigrations(t *testing.T) {
	ref := loadSingleNode(t)
	c := loadCluster(t)

	require.NotEmpty(t, c.stmts)
	require.Equal(t, createDatabase, c.stmts[0], "the file starts by creating the database on every host")
	for _, banned := range []string{"LowCardinality", "CODEC", "TTL", "{{"} {
		require.NotContains(t, strings.Join(c.stmts, "\n"), banned, "the base file runs on 18.16: no %s", banned)
	}

	want := map[string]bool{}
	for _, ref := range ref.tables {
		t.Run(ref.Name, func(t *testing.T) {
			localName := database + "." + ref.Name + "_local"
			distName := database + "." + ref.Name
			want[localName], want[distName] = true, true

			local, ok := c.tables[localName]
			require.True(t, ok, "cluster.sql has no %s", localName)
			require.True(t, local.OnCluster, "%s: created ON CLUSTER '{cluster}'", localName)
			require.Equal(t, ref.Columns, local.Columns, "%s: the columns of %s, in order", localName, ref.Name)
			require.Equal(t, ref.PartitionBy, local.PartitionBy, "%s: PARTITION BY", localName)
			require.Equal(t, ref.OrderBy, local.OrderBy, "%s: ORDER BY", localName)
			engine, err := replicated(ref.Name, ref.Engine)
			require.NoError(t, err)
			require.Equal(t, engine, local.Engine, "%s: engine", localName)

			dist, ok := c.tables[distName]
			require.True(t, ok, "cluster.sql has no Distributed table %s", distName)
			require.True(t, dist.OnCluster, "%s: created ON CLUSTER '{cluster}'", distName)
			require.NotNil(t, dist.Distributed, "%s: AS %s ENGINE = Distributed(...)", distName, localName)
			require.Equal(t, localName, dist.As, "%s: same columns as the local table", distName)
			require.Equal(t, distributed{
				Cluster: "'{cluster}'", Database: database, Table: ref.Name + "_local", ShardingKey: dist.Distributed.ShardingKey,
			}, *dist.Distributed)
			require.Greater(t, dist.stmt, local.stmt, "%s is created after %s", distName, localName)

			// The same row must always land on the same shard, or its
			// copies never collapse: the key reads ORDER BY columns only.
			key := keyColumns(local.OrderBy)
			used := columnsOf(dist.Distributed.ShardingKey)
			require.NotEmpty(t, used, "%s: the sharding key reads a column", distName)
			for _, col := range used {
				require.Contains(t, key, col, "%s: sharding key %s reads %s, which is not in ORDER BY %s",
					distName, dist.Distributed.ShardingKey, col, local.OrderBy)
			}
		})
	}
	for name := range c.tables {
		require.True(t, want[name], "cluster.sql creates %s, which the single-node schema does not have", name)
	}

	// Every version is recorded, once, after schema_migrations exists.
	var inserts []int
	var recorded [][2]string
	for i, stmt := range c.stmts {
		if strings.HasPrefix(stmt, "INSERT INTO ") {
			require.True(t, strings.HasPrefix(stmt, "INSERT INTO "+database+"."+migrationsTable+" (version, name, applied_at) VALUES "),
				"statement %d: the only insert records the versions", i+1)
			inserts = append(inserts, i)
			for _, m := range recordedRow.FindAllStringSubmatch(stmt, -1) {
				recorded = append(recorded, [2]string{m[1], m[2]})
			}
		}
	}
	require.Len(t, inserts, 1, "one INSERT records the versions")
	require.Greater(t, inserts[0], c.tables[database+"."+migrationsTable].stmt)
	require.Equal(t, "SET insert_distributed_sync = 1", c.stmts[inserts[0]-1],
		"the versions are on their shard when the script ends")
	var wantRecorded [][2]string
	for _, m := range ref.migrations {
		wantRecorded = append(wantRecorded, [2]string{fmt.Sprint(m.Version), m.Name})
	}
	require.Equal(t, wantRecorded, recorded, "cluster.sql records every migration version (and name)")
	require.Equal(t, sink.LatestVersion(), len(recorded))

	// Nothing else: the database, the tables, the SET and the INSERT.
	for i, stmt := range c.stmts {
		switch {
		case stmt == createDatabase, strings.HasPrefix(stmt, "CREATE TABLE "),
			strings.HasPrefix(stmt, "SET "), strings.HasPrefix(stmt, "INSERT "):
		default:
			t.Errorf("cluster.sql statement %d is of a kind this test does not check: %.60q", i+1, stmt)
		}
	}
}

func TestParseTable(t *testing.T) {
	tb, err := parseTable("CREATE TABLE IF NOT EXISTS db.x ON CLUSTER '{cluster}' (\n    a   String,\n    b Decimal(18, 4)\n" +
		") ENGINE = ReplacingMergeTree(v)\nPARTITION BY toYYYYMM(b)\nORDER BY (a, b)")
	require.NoError(t, err)
	require.Equal(t, table{Name: "db.x", OnCluster: true, Columns: []column{{"a", "String"}, {"b", "Decimal(18, 4)"}},
		Engine: "ReplacingMergeTree(v)", PartitionBy: "toYYYYMM(b)", OrderBy: "(a, b)"}, tb)

	tb, err = parseTable("CREATE TABLE IF NOT EXISTS db.x AS db.x_local\nENGINE = Distributed('{cluster}', db, x_local, cityHash64(a, b))")
	require.NoError(t, err)
	require.Equal(t, &distributed{"'{cluster}'", "db", "x_local", "cityHash64(a, b)"}, tb.Distributed)
	require.Equal(t, []string{"a", "b"}, columnsOf(tb.Distributed.ShardingKey))
	require.Equal(t, []string{"version"}, columnsOf("version"))

	_, err = parseTable("CREATE TABLE IF NOT EXISTS x (\n a String\n) ENGINE = MergeTree()\nORDER BY a\nTTL a + 1")
	require.ErrorContains(t, err, "teach it")
	_, err = parseTable("ALTER TABLE x ADD COLUMN y String")
	require.Error(t, err)

	e, err := replicated("t", "ReplacingMergeTree()")
	require.NoError(t, err)
	require.Equal(t, "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/t', '{replica}')", e)
}

// dsnEnv names the real server; `make test` sets it from
// deploy/local/clickhouse.sh env.
const dsnEnv = "CRMPULSE_CLICKHOUSE_DSN"

// server is the real ClickHouse of deploy/local, reached by clickhouse-go
// and by clickhouse-client (cluster.sql is meant for the latter).
type server struct {
	dsn    *url.URL
	client string // path of clickhouse-client
}

func realServer(t *testing.T) server {
	t.Helper()
	dsn := testenv.Env(t, dsnEnv, `deploy/local/clickhouse.sh start; eval "$(deploy/local/clickhouse.sh env)" (make test does both)`)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	client := testenv.Tool(t, "clickhouse-client", "deploy/local/clickhouse.sh install brings it")
	return server{dsn: u, client: client}
}

// open connects to database db.
func (s server) open(t *testing.T, db string) driver.Conn {
	t.Helper()
	u := *s.dsn
	u.Path = "/" + db
	opts, err := ch.ParseDSN(u.String())
	require.NoError(t, err)
	conn, err := ch.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// database creates a database for the test, dropped at its end.
func (s server) database(t *testing.T) (string, driver.Conn) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "crmpulse_test_" + hex.EncodeToString(b[:])
	admin := s.open(t, "default")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, admin.Exec(ctx, "CREATE DATABASE "+db))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Logf("dropping test database %s: %v", db, err)
		}
	})
	return db, s.open(t, db)
}

// run feeds sql to clickhouse-client --multiquery in database db and
// returns its output (TabSeparated).
func (s server) run(t *testing.T, db, sql string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"--multiquery", "--host", s.dsn.Hostname(), "--database", db}
	if p := s.dsn.Port(); p != "" {
		args = append(args, "--port", p)
	}
	if s.dsn.User != nil {
		args = append(args, "--user", s.dsn.User.Username())
		if pw, ok := s.dsn.User.Password(); ok {
			args = append(args, "--password", pw)
		}
	}
	cmd := exec.CommandContext(ctx, s.client, args...)
	cmd.Stdin = strings.NewReader(sql)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("clickhouse-client: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// renamed is cluster.sql for database db: the README's sed.
func renamed(src, db string) string {
	return regexp.MustCompile(`\b`+database+`\b`).ReplaceAllString(src, db)
}

var (
	replicatedEngine  = regexp.MustCompile(`(?m)ENGINE = Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?(.*)\)$`)
	distributedEngine = regexp.MustCompile(`ENGINE = Distributed\('\{cluster\}', (\w+), (\w+), .*\)$`)
)

// TestClusterSchemaOnServer sends cluster.sql to the real 18.16 server. The
// server has no ZooKeeper, no cluster and no macros, so nothing of the file
// can run as it is. What it checks:
//  1. every statement as written parses (the error is about the missing
//     cluster macro, never a syntax error);
//  2. every Distributed statement, without ON CLUSTER, fails only because
//     the cluster is unknown: 18.16 checks the sharding key against the
//     local table's columns (and that it is an integer) before that, as
//     the control case with a broken key shows;
//  3. the file with ON CLUSTER removed, the replicated engines swapped for
//     their plain twins and each Distributed table replaced by a Merge
//     table over its _local table (all of it through clickhouse-client
//     --multiquery, as README.md applies it) creates _local tables
//     identical to the tables Migrate creates (columns, types, partition
//     and sorting keys), and records the schema version so that Migrate
//     then has nothing to do.
//
// Not checked here: replication, the ZooKeeper paths and macros, inserts
// and reads through Distributed tables.
func TestClusterSchemaOnServer(t *testing.T) {
	s := realServer(t)
	ctx := context.Background()
	c := loadCluster(t)
	db, conn := s.database(t)
	refDB, refConn := s.database(t)
	require.NoError(t, sink.Migrate(ctx, refConn))

	stmts := sink.SplitStatements(renamed(c.src, db))

	// 1. As written, every DDL statement parses.
	for i, stmt := range stmts {
		if !strings.HasPrefix(stmt, "CREATE ") {
			continue
		}
		err := conn.Exec(ctx, stmt)
		require.Error(t, err, "statement %d ran on a server without a cluster", i+1)
		require.NotContains(t, err.Error(), "Syntax error", "statement %d: %.80q", i+1, stmt)
		require.Contains(t, err.Error(), "No macro cluster", "statement %d fails only for the cluster", i+1)
	}

	// 3. (first half) The _local tables, created for real.
	dists := applyLocally(t, s, db, stmts)

	// 2. The Distributed statements, against the local tables just made
	// (under another name: IF NOT EXISTS would skip them for the Merge
	// tables of the same name).
	checkName := func(stmt string) string {
		return strings.Replace(stmt, "IF NOT EXISTS "+db+".", "IF NOT EXISTS "+db+".check_", 1)
	}
	for _, stmt := range dists {
		err := conn.Exec(ctx, checkName(stmt))
		require.Error(t, err)
		require.Contains(t, err.Error(), "No macro cluster", "%.100q: the sharding key is valid", stmt)
	}
	bad := distributedEngine.ReplaceAllString(dists[0], `ENGINE = Distributed('{cluster}', $1, $2, cityHash64(no_such_column))`)
	err := conn.Exec(ctx, checkName(bad))
	require.ErrorContains(t, err, "no_such_column", "control: a broken sharding key fails before the cluster lookup")

	// 3. (second half) Same tables as Migrate makes.
	ref := schemaOf(t, refConn, refDB)
	got := schemaOf(t, conn, db)
	require.NotEmpty(t, ref)
	for name, want := range ref {
		l, ok := got[name+"_local"]
		require.True(t, ok, "no %s_local", name)
		require.Equal(t, want, l, "%s_local is %s with a replicated engine", name, name)
		m, ok := got[name]
		require.True(t, ok, "no %s", name)
		require.Equal(t, want.columns, m.columns, "%s has the columns of %s_local", name, name)
	}
	v, err := sink.SchemaVersion(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, sink.LatestVersion(), v, "cluster.sql records the latest version")
	applied, err := sink.MigrateTo(ctx, conn)
	require.NoError(t, err)
	require.Empty(t, applied, "Migrate finds nothing to do after cluster.sql")

	// Applying it again changes nothing and records nothing new.
	applyLocally(t, s, db, stmts)
	require.NoError(t, conn.Exec(ctx, "OPTIMIZE TABLE "+migrationsTable+"_local FINAL"))
	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+migrationsTable).Scan(&n))
	require.Equal(t, uint64(sink.LatestVersion()), n)
}

// applyLocally applies the statements of cluster.sql (renamed to database
// db) to a server without a cluster: ON CLUSTER removed, each replicated
// engine swapped for its plain twin and each Distributed table for a Merge
// table over its _local table, through clickhouse-client --multiquery. It
// returns the Distributed statements without ON CLUSTER.
func applyLocally(t *testing.T, s server, db string, stmts []string) []string {
	t.Helper()
	var local strings.Builder
	var dists []string
	for _, stmt := range stmts {
		stmt = strings.Replace(stmt, onCluster, "", 1)
		switch {
		case strings.HasPrefix(stmt, "CREATE DATABASE "):
			continue // the test's database exists
		case distributedEngine.MatchString(stmt):
			dists = append(dists, stmt)
			stmt = distributedEngine.ReplaceAllString(stmt, `ENGINE = Merge($1, '^$2$$')`)
		case strings.HasPrefix(stmt, "INSERT INTO "+db+"."+migrationsTable+" "):
			// A Merge table takes no inserts; on one shard the local table
			// gets the same rows.
			stmt = strings.Replace(stmt, migrationsTable+" ", migrationsTable+"_local ", 1)
		default:
			stmt = replicatedEngine.ReplaceAllString(stmt, `ENGINE = $1($2)`)
		}
		local.WriteString(stmt + ";\n")
	}
	// A replicated table that fails to start (no ZooKeeper) leaves its
	// data directory behind on 18.16: never send one.
	require.NotContains(t, local.String(), "Replicated")
	_, err := s.run(t, db, local.String())
	require.NoError(t, err, "the single-server rendering of cluster.sql:\n%s", local.String())
	return dists
}

// tableSchema is what the server says about a table.
type tableSchema struct {
	columns                       []column
	engine, partitionKey, sortKey string
}

func schemaOf(t *testing.T, conn driver.Conn, db string) map[string]tableSchema {
	t.Helper()
	ctx := context.Background()
	out := map[string]tableSchema{}
	rows, err := conn.Query(ctx, "SELECT name, engine, partition_key, sorting_key FROM system.tables WHERE database = ?", db)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		var ts tableSchema
		require.NoError(t, rows.Scan(&name, &ts.engine, &ts.partitionKey, &ts.sortKey))
		if ts.engine == "Merge" {
			ts.partitionKey, ts.sortKey = "", ""
		}
		out[name] = ts
	}
	require.NoError(t, errors.Join(rows.Err(), rows.Close()))
	// 18.16's system.columns has no position; it lists a table's columns
	// in order.
	rows, err = conn.Query(ctx, "SELECT table, name, type FROM system.columns WHERE database = ?", db)
	require.NoError(t, err)
	for rows.Next() {
		var tbl string
		var col column
		require.NoError(t, rows.Scan(&tbl, &col.Name, &col.Type))
		ts := out[tbl]
		ts.columns = append(ts.columns, col)
		out[tbl] = ts
	}
	require.NoError(t, errors.Join(rows.Err(), rows.Close()))
	return out
}

// repoPath is a path from the repository root.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{"..", ".."}, elem...)...)
}
