package clickhouse

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned (wrapped) by Migrate when the database was
// migrated by a newer build: writing to a schema this build does not know
// could lose or misplace data, so it refuses.
var ErrSchemaTooNew = errors.New("database schema is newer than this build")

// migrationsTable records the applied migrations. It is created outside the
// versioned migrations, before them, and never changes.
const migrationsTable = "schema_migrations"

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS ` + migrationsTable + ` (
    version    UInt32,
    name       String,
    applied_at DateTime
) ENGINE = ReplacingMergeTree()
ORDER BY version`

// Migration is one versioned schema change: the statements of
// migrations/NNNN_name.sql rendered for a server.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// ServerVersion is a ClickHouse server's release, from SELECT version().
type ServerVersion struct{ Major, Minor, Patch int }

func (v ServerVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is major.minor or newer.
func (v ServerVersion) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// ParseServerVersion reads "18.16.1" or "23.8.2.7".
func ParseServerVersion(s string) (ServerVersion, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 4)
	var n [3]int
	for i := range n {
		if i >= len(parts) {
			break
		}
		v, err := strconv.Atoi(parts[i])
		if err != nil || v < 0 {
			return ServerVersion{}, fmt.Errorf("parsing ClickHouse version %q", s)
		}
		n[i] = v
	}
	if len(parts) < 2 {
		return ServerVersion{}, fmt.Errorf("parsing ClickHouse version %q", s)
	}
	return ServerVersion{n[0], n[1], n[2]}, nil
}

// Features are the optional niceties a server supports. The schema works
// without them (18.16 has none); with them, modern servers store the same
// columns more compactly.
type Features struct {
	// LowCardinality dictionary-encodes the dimension columns (tenant,
	// channel, status...). Experimental before 19.x; we use it from 20.3.
	LowCardinality bool
	// Codecs compress timestamps with Delta + ZSTD and long texts with ZSTD.
	Codecs bool
	// TTL lets SetTTL replace DropPartitionsOlderThan.
	TTL bool
}

// FeaturesOf returns what v supports. The cut is 20.3 for all three: the
// first LTS release where each is stable, long before the 23.8 users run.
func FeaturesOf(v ServerVersion) Features {
	modern := v.AtLeast(20, 3)
	return Features{LowCardinality: modern, Codecs: modern, TTL: modern}
}

// DetectServer asks the server for its version.
func DetectServer(ctx context.Context, conn driver.Conn) (ServerVersion, error) {
	var s string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&s); err != nil {
		return ServerVersion{}, fmt.Errorf("querying the ClickHouse version: %w", err)
	}
	return ParseServerVersion(s)
}

// templateData is what migration templates see.
type templateData struct {
	Dim       string // type of dimension columns
	TimeCodec string // codec clause for non-key DateTime columns, with its leading space
	TextCodec string // codec clause for long text columns
}

func dataFor(f Features) templateData {
	d := templateData{Dim: "String"}
	if f.LowCardinality {
		d.Dim = "LowCardinality(String)"
	}
	if f.Codecs {
		d.TimeCodec = " CODEC(Delta, ZSTD(1))"
		d.TextCodec = " CODEC(ZSTD(1))"
	}
	return d
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations returns every migration rendered for a server with f, in
// version order.
func Migrations(f Features) ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		src, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(e.Name()).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("parsing migration %s: %w", e.Name(), err)
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, dataFor(f)); err != nil {
			return nil, fmt.Errorf("rendering migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: m[2], Statements: SplitStatements(buf.String())})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must be 1, 2, 3...: found %d at position %d", m.Version, i+1)
		}
	}
	return ms, nil
}

// LatestVersion is the newest schema version this build knows.
func LatestVersion() int {
	ms, err := Migrations(Features{})
	if err != nil {
		panic(err) // the embedded files are fixed at build time; tests catch this
	}
	return len(ms)
}

// SplitStatements splits SQL in the layout of the migrations (and of
// deploy/clickhouse/cluster.sql) into statements: each ends with ';' at the
// end of a line; lines that are only a comment are dropped.
func SplitStatements(src string) []string {
	var stmts []string
	var cur strings.Builder
	for line := range strings.SplitSeq(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// SchemaVersion is the newest migration recorded in conn's database, 0 when
// none (or when the database has no migrations table yet).
func SchemaVersion(ctx context.Context, conn driver.Conn) (int, error) {
	var exists uint8
	if err := conn.QueryRow(ctx,
		"SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = ?",
		migrationsTable).Scan(&exists); err != nil {
		return 0, fmt.Errorf("looking for %s: %w", migrationsTable, err)
	}
	if exists == 0 {
		return 0, nil
	}
	var v uint32
	if err := conn.QueryRow(ctx, "SELECT max(version) FROM "+migrationsTable).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return int(v), nil
}

// Migrate brings conn's database (the DSN's) to the latest schema version,
// rendered for the server's features. It is idempotent: at the latest
// version it changes nothing. A database at a version newer than this
// build's latest is refused with an error wrapping ErrSchemaTooNew.
//
// Two instances migrating at once are harmless: every statement is
// idempotent, and a version recorded twice collapses in the
// ReplacingMergeTree. On a cluster, apply deploy/clickhouse/cluster.sql
// instead; it records its version, so Migrate then finds nothing to do.
func Migrate(ctx context.Context, conn driver.Conn) error {
	_, err := MigrateTo(ctx, conn)
	return err
}

// MigrateTo is Migrate, also returning the versions it applied.
func MigrateTo(ctx context.Context, conn driver.Conn) ([]int, error) {
	sv, err := DetectServer(ctx, conn)
	if err != nil {
		return nil, err
	}
	ms, err := Migrations(FeaturesOf(sv))
	if err != nil {
		return nil, err
	}
	cur, err := SchemaVersion(ctx, conn)
	if err != nil {
		return nil, err
	}
	if cur > len(ms) {
		return nil, fmt.Errorf("%w: the database is at schema version %d, this build knows versions up to %d; "+
			"run a crmpulse at least as new as the one that migrated it", ErrSchemaTooNew, cur, len(ms))
	}
	if cur == len(ms) {
		return nil, nil
	}
	if err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("creating %s: %w", migrationsTable, err)
	}
	var applied []int
	for _, m := range ms[cur:] {
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("applying migration %d (%s), statement %d on ClickHouse %s: %w",
					m.Version, m.Name, i+1, sv, err)
			}
		}
		if err := recordMigration(ctx, conn, m.Version, m.Name, time.Now()); err != nil {
			return applied, fmt.Errorf("recording migration %d (%s): %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// recordMigration adds a row to schema_migrations. A batch, not
// INSERT ... VALUES through Exec: clickhouse-go waits forever for 18.16's
// answer to the latter.
func recordMigration(ctx context.Context, conn driver.Conn, version int, name string, at time.Time) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+migrationsTable+" (version, name, applied_at)")
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	if err := b.Append(uint32(version), name, at); err != nil {
		return err
	}
	return b.Send()
}

// Script is what Migrate does to an empty database of a server with f, as
// plain SQL statements: the migrations table, every migration, and the
// rows recording them. It is for running the schema where the driver
// cannot go (clickhouse-client, chDB in tests); Migrate stays the way to
// bring an existing database up to date.
func Script(f Features) ([]string, error) {
	ms, err := Migrations(f)
	if err != nil {
		return nil, err
	}
	out := []string{createMigrationsTable}
	for _, m := range ms {
		out = append(out, m.Statements...)
		out = append(out, fmt.Sprintf("INSERT INTO %s (version, name, applied_at) VALUES (%d, '%s', now())",
			migrationsTable, m.Version, strings.ReplaceAll(m.Name, "'", "\\'")))
	}
	return out, nil
}
