package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/followup"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
	"github.com/crmpulse/crmpulse/stream"
)

func cmdReplay(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	rulesPath := fs.String("rules", "", "rules file (YAML, SPEC §3)")
	inter := fs.String("interactions", "", "interactions JSON Lines file")
	rec := fs.String("receipts", "", "delivery receipts JSON Lines file")
	cust := fs.String("customers", "", "customer profile versions JSON Lines file (SPEC §1.3), merged by updated_at")
	out := fs.String("out", "", "output directory for alerts.jsonl, resends.jsonl, rejected.jsonl")
	until := fs.String("until", "", "RFC 3339 time the watermark advances to at end of input (default: the highest occurred_at seen)")
	maxLine := fs.Int("max-line-bytes", replay.DefaultMaxLineBytes, "longest input line decoded, in bytes without the newline; a longer line goes to rejected.jsonl as too_large (docs/replay.md)")
	futureSkew := fs.Duration("future-skew", processor.DefaultFutureSkew, "a record more than this far ahead of the watermark is rejected with reason future; 0 disables (docs/limits.md)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	chDSN := fs.String("clickhouse", "", "also compute the aggregates and store them, the alerts, resends and outcomes in ClickHouse at this native-protocol DSN (clickhouse://host:9000/db), migrating its schema first")
	chWindow := fs.Duration("clickhouse-window", time.Hour, "with --clickhouse: window of the revenue, complaint and delivery aggregates")
	chActivity := fs.Duration("clickhouse-activity-window", 24*time.Hour, "with --clickhouse: window of per-customer activity")
	chRaw := fs.Bool("clickhouse-raw-events", false, "with --clickhouse: also store every accepted record in interactions_raw / receipts_raw, contact attributes replaced by an HMAC keyed by $CRMPULSE_CLICKHOUSE_HASH_KEY (or the file $CRMPULSE_CLICKHOUSE_HASH_KEY_FILE)")
	deadLetters := fs.String("privacy-dead-letters", envOr("CRMPULSE_PRIVACY_DEAD_LETTERS", "keep"), "contact attributes in rejected.jsonl: keep, hash (HMAC keyed by $CRMPULSE_CLICKHOUSE_HASH_KEY) or drop; contact attributes are those of $CRMPULSE_CLICKHOUSE_CONTACT_ATTRIBUTES and _PATTERNS (docs/security.md)")
	if code, done := parseFlags(fs, replayUsage, args); done {
		return code
	}
	if *rulesPath == "" || *out == "" || (*inter == "" && *rec == "" && *cust == "") {
		fmt.Fprintln(os.Stderr, "crmpulse replay: --rules, --out and at least one of --interactions, --receipts, --customers are required")
		fmt.Fprintln(os.Stderr)
		printUsage(os.Stderr, fs, replayUsage)
		return exitUsage
	}
	if *maxLine < 1 {
		fmt.Fprintln(os.Stderr, "crmpulse replay: --max-line-bytes must be at least 1")
		return exitUsage
	}
	// Which signal stops the replay decides its exit code; main's context
	// only says that one came.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	rf, err := rules.Load(*rulesPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse replay: %v\n", err)
		return exitUsage
	}
	// The privacy settings come from the environment, as in `crmpulse run`.
	env, err := stream.LoadConfig("", os.Getenv)
	if err == nil {
		err = env.ReadSecretFiles()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse replay: %v\n", err)
		return exitUsage
	}
	env.Privacy.DeadLetters, env.Privacy.Repartition = *deadLetters, "keep" // replay has no repartition topic
	scrub, _, err := env.Scrubbers()
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse replay: --privacy-dead-letters: %v\n", err)
		return exitUsage
	}
	if *futureSkew < 0 {
		fmt.Fprintln(os.Stderr, "crmpulse replay: --future-skew: must not be negative (0 disables the guard)")
		return exitUsage
	}
	cfg := replay.Config{Rules: rf, Interactions: *inter, Receipts: *rec, Customers: *cust, OutDir: *out,
		MaxLineBytes: *maxLine, FutureSkew: *futureSkew, Scrub: scrub}
	// Resend outcomes (did the resent attempt get through?) as aggregate
	// rows, as in streaming; a backtest's metrics are not served anywhere.
	tracker, err := followup.New(followup.Config{}, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse replay: %v\n", err)
		return exitFailure
	}
	cfg.Extra = append(cfg.Extra, followup.NewComponent(tracker))
	if *until != "" {
		t, err := time.Parse(time.RFC3339Nano, *until)
		var re *ingest.RejectError
		if err == nil && errors.As(ingest.CheckTime("until", t), &re) {
			// Past 2262 the engine's nanosecond clock wraps, and no event
			// outside the range is ever accepted anyway.
			err = errors.New(re.Detail)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "crmpulse replay: --until: %v\n", err)
			return exitUsage
		}
		cfg.Until = t
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	var an *analytics
	if *chDSN != "" {
		chCfg := stream.DefaultConfig().ClickHouse
		chCfg.DSN, chCfg.Window, chCfg.ActivityWindow = *chDSN, stream.Duration(*chWindow), stream.Duration(*chActivity)
		chCfg.RawEvents, chCfg.HashKey = *chRaw, env.ClickHouse.HashKey
		chCfg.ContactAttrs, chCfg.ContactPatterns = env.ClickHouse.ContactAttrs, env.ClickHouse.ContactPatterns
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if an, err = openAnalytics(ctx, chCfg, logger, nil); err != nil {
			fmt.Fprintf(os.Stderr, "crmpulse replay: --clickhouse: %v\n", err)
			return exitFailure
		}
		defer an.sink.Close()
		more, _ := an.components(0) // validated by openAnalytics
		cfg.Extra = append(cfg.Extra, more...)
		cfg.OnOutput = an.sink.Write
	}
	sum, err := replayWith(ctx, cfg, an)
	if errors.Is(err, replay.ErrInterrupted) {
		fmt.Println(sum.String())
		fmt.Fprintln(os.Stderr, "crmpulse replay: interrupted; the output files hold what was emitted until then, as whole JSON lines")
		return interruptedExit(sigs)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse replay: %v\n", err)
		if errors.Is(err, replay.ErrInput) {
			return exitUsage
		}
		return exitFailure
	}
	fmt.Println(sum.String())
	return exitOK
}

// interruptedExit is the shell's code for the signal that stopped the
// replay: 128 + its number, 130 for SIGINT, 143 for SIGTERM.
func interruptedExit(sigs <-chan os.Signal) int {
	// The signal reaches sigs and main's context from one loop, so it is
	// here by now or within moments.
	select {
	case s := <-sigs:
		if n, ok := s.(syscall.Signal); ok {
			return 128 + int(n)
		}
	case <-time.After(time.Second):
	}
	return exitInterrupted
}

// replayWith runs the replay with the ClickHouse sink running beside it (if
// any), and returns only when every row it produced is stored.
func replayWith(ctx context.Context, cfg replay.Config, an *analytics) (replay.Summary, error) {
	if an == nil {
		return replay.Run(ctx, cfg)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- an.sink.Run(sctx) }()
	defer func() { stop(); <-done }()
	sum, err := replay.Run(ctx, cfg)
	if err != nil {
		return sum, err
	}
	if err := an.sink.Flush(ctx); err != nil {
		return sum, fmt.Errorf("storing the rows in ClickHouse: %w", err)
	}
	return sum, nil
}

// envOr is the environment variable k, or def when it is empty.
func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
