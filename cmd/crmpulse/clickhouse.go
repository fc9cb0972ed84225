package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmpulse/crmpulse/httpclient"
	"github.com/crmpulse/crmpulse/privacy"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/profilerows"
	"github.com/crmpulse/crmpulse/processor/rawevents"
	"github.com/crmpulse/crmpulse/redact"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
	"github.com/crmpulse/crmpulse/stream"
)

// analytics is what a ClickHouse DSN adds to a pipeline, in `run` and in
// `replay --clickhouse`: the sink, and the components computing the rows
// it stores (per shard: one per input partition in run, one in replay).
type analytics struct {
	cfg  stream.CHConfig
	sink *clickhouse.Sink
}

// openAnalytics builds the sink and brings the schema up to date (or, with
// migrate off, checks that it is), so a pipeline never starts writing rows
// into tables that do not exist or have another shape.
func openAnalytics(ctx context.Context, cfg stream.CHConfig, logger *slog.Logger, reg prometheus.Registerer) (*analytics, error) {
	a, err := openAnalyticsDSN(ctx, cfg, logger, reg)
	// clickhouse-go's DSN errors quote the DSN, password included.
	return a, redact.Error(err, cfg.DSN)
}

func openAnalyticsDSN(ctx context.Context, cfg stream.CHConfig, logger *slog.Logger, reg prometheus.Registerer) (*analytics, error) {
	s, err := clickhouse.New(clickhouse.Config{
		DSN: cfg.DSN, BatchRows: cfg.BatchRows, FlushInterval: cfg.FlushInterval.D(),
		MaxBufferedRows: cfg.MaxBufferedRows,
	}, logger, reg)
	if err != nil {
		return nil, err
	}
	// Refuse a bad window or a missing hash key now, not in a partition's
	// goroutine, and before waiting for the server.
	if _, err := (&analytics{cfg: cfg}).components(0); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	if err := untilReachable(ctx, logger, func(ctx context.Context) error {
		if cfg.Migrate {
			applied, err := clickhouse.MigrateTo(ctx, s.Conn())
			if err != nil {
				return fmt.Errorf("migrating the ClickHouse schema: %w", err)
			}
			if len(applied) > 0 {
				logger.Info("applied ClickHouse migrations", "versions", applied)
			}
			return nil
		}
		v, err := clickhouse.SchemaVersion(ctx, s.Conn())
		if err != nil {
			return fmt.Errorf("reading the ClickHouse schema version: %w", err)
		}
		if v != clickhouse.LatestVersion() {
			return fmt.Errorf("%w: the ClickHouse schema is at version %d, this build needs %d: run `crmpulse migrate` "+
				"(or set clickhouse.migrate: true)", errSchema, v, clickhouse.LatestVersion())
		}
		return nil
	}); err != nil {
		_ = s.Close()
		return nil, err
	}
	return &analytics{cfg: cfg, sink: s}, nil
}

var errSchema = errors.New("schema mismatch")

// errConfig marks an openAnalytics error that is the configuration's
// fault (a usage error), not the server's.
var errConfig = errors.New("bad configuration")

// startupWait is how long a starting pipeline waits for ClickHouse: in a
// compose file or a pod, ClickHouse may start after crmpulse.
const startupWait = time.Minute

// untilReachable runs f until it succeeds, fails for a reason other than
// reaching the server, or startupWait has passed.
func untilReachable(ctx context.Context, logger *slog.Logger, f func(context.Context) error) error {
	deadline := time.Now().Add(startupWait)
	pause := 500 * time.Millisecond
	for {
		fctx, cancel := context.WithTimeout(ctx, startupWait)
		err := f(fctx)
		cancel()
		if err == nil || errors.Is(err, errSchema) || errors.Is(err, clickhouse.ErrSchemaTooNew) ||
			ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			return err
		}
		logger.Warn("waiting for ClickHouse", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// components are the engine components of one shard.
func (a *analytics) components(shard int) ([]processor.Component, error) {
	agg, err := aggregate.New(aggregate.Config{
		Window: a.cfg.Window.D(), ActivityWindow: a.cfg.ActivityWindow.D(), Shard: shard,
	})
	if err != nil {
		return nil, err
	}
	if a.cfg.HashKey != "" {
		// Named as the key it is: the customers table checks it even when
		// the raw tables are off.
		if err := privacy.CheckHashKey(a.cfg.HashKey); err != nil {
			return nil, fmt.Errorf("clickhouse.%w", err)
		}
	}
	// The customers table, always: profiles are few and small. It follows
	// the raw tables' contact setting; without a hash key, contact
	// attributes are left out of it rather than hashed.
	prof, err := profilerows.New(profilerows.Config{HashKey: a.cfg.HashKey, ContactAttributes: a.cfg.ContactAttrs,
		ContactPatterns: a.cfg.ContactPatterns})
	if err != nil {
		return nil, fmt.Errorf("clickhouse customers table: %w", err)
	}
	cs := []processor.Component{agg, prof}
	if a.cfg.RawEvents {
		raw, err := rawevents.New(rawevents.Config{HashKey: a.cfg.HashKey, ContactAttributes: a.cfg.ContactAttrs,
			ContactPatterns: a.cfg.ContactPatterns, Shard: shard})
		if err != nil {
			return nil, fmt.Errorf("clickhouse.raw_events: %w", err)
		}
		cs = append(cs, raw)
	}
	return cs, nil
}

const migrateUsage = `Usage: crmpulse migrate [--dsn DSN]

Brings the ClickHouse schema of the DSN's database up to date: applies the
migrations it lacks (rendered for the server's version) and records them in
schema_migrations. Running it again changes nothing; a database migrated by
a newer crmpulse is refused. 'crmpulse run' does the same at start unless
clickhouse.migrate is false. See docs/clickhouse.md.

Flags:
`

func cmdMigrate(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The default is read after parsing, not given to the flag: the flag
	// package would print it (password included) in --help.
	dsn := fs.String("dsn", "",
		"ClickHouse native-protocol DSN, clickhouse://host:9000/db; default: $CRMPULSE_CLICKHOUSE_DSN, or the file $CRMPULSE_CLICKHOUSE_DSN_FILE")
	usage := func(w io.Writer) {
		fmt.Fprint(w, migrateUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(os.Stdout)
			return exitOK
		}
		fmt.Fprintf(os.Stderr, "crmpulse migrate: %v\n\n", err)
		usage(os.Stderr)
		return exitUsage
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "dsn" })
	if !given {
		env := stream.CHConfig{DSN: os.Getenv("CRMPULSE_CLICKHOUSE_DSN"), DSNFile: os.Getenv("CRMPULSE_CLICKHOUSE_DSN_FILE")}
		v, err := httpclient.ReadSecret("clickhouse.dsn", env.DSN, env.DSNFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "crmpulse migrate: %v\n", err)
			return exitUsage
		}
		*dsn = v
	} else if len(redact.Secrets(*dsn)) > 0 {
		slog.Warn("a DSN given as a flag is visible to every user of this machine (ps, /proc); use CRMPULSE_CLICKHOUSE_DSN or CRMPULSE_CLICKHOUSE_DSN_FILE")
	}
	if *dsn == "" {
		fmt.Fprint(os.Stderr, "crmpulse migrate: --dsn is required\n\n")
		usage(os.Stderr)
		return exitUsage
	}
	s, err := clickhouse.New(clickhouse.Config{DSN: *dsn}, nil, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse migrate: %v\n", err)
		return exitUsage
	}
	defer s.Close()
	mctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	applied, err := clickhouse.MigrateTo(mctx, s.Conn())
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse migrate: %v\n", err)
		return exitFailure
	}
	if len(applied) == 0 {
		fmt.Printf("schema is up to date at version %d\n", clickhouse.LatestVersion())
		return exitOK
	}
	fmt.Printf("applied migrations %v; schema is at version %d\n", applied, clickhouse.LatestVersion())
	return exitOK
}
