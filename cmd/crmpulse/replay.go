package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/crmpulse/crmpulse/alerting/followup"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
)

func cmdReplay(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	rulesPath := fs.String("rules", "", "rules file (YAML, SPEC §3)")
	inter := fs.String("interactions", "", "interactions JSON Lines file")
	rec := fs.String("receipts", "", "delivery receipts JSON Lines file")
	out := fs.String("out", "", "output directory for alerts.jsonl, resends.jsonl, rejected.jsonl")
	until := fs.String("until", "", "RFC 3339 time the watermark advances to at end of input (default: the highest occurred_at seen)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
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
	cfg := replay.Config{Rules: rf, Interactions: *inter, Receipts: *rec, OutDir: *out}
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
		if err != nil {
			fmt.Fprintf(os.Stderr, "crmpulse replay: --until: %v\n", err)
			return exitUsage
		}
		cfg.Until = t
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	sum, err := replay.Run(ctx, cfg)
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
