package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/crmpulse/crmpulse/alerting/followup"
	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
	"github.com/crmpulse/crmpulse/stream"
)

func cmdReplay(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	rulesPath := fs.String("rules", "", "rules file (YAML, SPEC §3)")
	inter := fs.String("interactions", "", "interactions JSON Lines file")
	rec := fs.String("receipts", "", "delivery receipts JSON Lines file")
	out := fs.String("out", "", "output directory for alerts.jsonl, resends.jsonl, rejected.jsonl")
	until := fs.String("until", "", "RFC 3339 time the watermark advances to at end of input (default: the highest occurred_at seen)")
	futureSkew := fs.Duration("future-skew", processor.DefaultFutureSkew, "a record more than this far ahead of the watermark is rejected with reason future; 0 disables (docs/limits.md)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	chDSN := fs.String("clickhouse", "", "also compute the aggregates and store them, the alerts, resends and outcomes in ClickHouse at this native-protocol DSN (clickhouse://host:9000/db), migrating its schema first")
	chWindow := fs.Duration("clickhouse-window", time.Hour, "with --clickhouse: window of the revenue, complaint and delivery aggregates")
	chActivity := fs.Duration("clickhouse-activity-window", 24*time.Hour, "with --clickhouse: window of per-customer activity")
	chRaw := fs.Bool("clickhouse-raw-events", false, "with --clickhouse: also store every accepted record in interactions_raw / receipts_raw, contact attributes replaced by an HMAC keyed by $CRMPULSE_CLICKHOUSE_HASH_KEY")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *rulesPath == "" || *out == "" || (*inter == "" && *rec == "") {
		fmt.Fprintln(os.Stderr, "crmpulse replay: --rules, --out and at least one of --interactions, --receipts are required")
		fs.Usage()
		return exitUsage
	}
	rf, err := rules.Load(*rulesPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse replay: %v\n", err)
		return exitUsage
	}
	if *futureSkew < 0 {
		fmt.Fprintln(os.Stderr, "crmpulse replay: --future-skew: must not be negative (0 disables the guard)")
		return exitUsage
	}
	cfg := replay.Config{Rules: rf, Interactions: *inter, Receipts: *rec, OutDir: *out, FutureSkew: *futureSkew}
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
		chCfg.RawEvents, chCfg.HashKey = *chRaw, os.Getenv("CRMPULSE_CLICKHOUSE_HASH_KEY")
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
