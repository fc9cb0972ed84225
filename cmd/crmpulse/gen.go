package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/datagen"
)

func cmdGen(_ context.Context, args []string) int {
	def := datagen.DefaultConfig()
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("out", ".", "directory for interactions.jsonl, receipts.jsonl and customers.jsonl")
	seed := fs.Int64("seed", 42, "random seed: the same seed and sizes give the same bytes")
	customers := fs.Int("customers", def.Customers, "number of customers")
	days := fs.Int("days", def.Days, "days of history")
	start := fs.String("start", def.Start.Format(time.RFC3339), "first day (RFC 3339)")
	malformed := fs.Float64("malformed-rate", def.MalformedRate, "share of malformed lines")
	duplicates := fs.Float64("duplicate-rate", def.DuplicateRate, "share of duplicated records")
	late := fs.Float64("late-rate", def.LateRate, "share of records beyond the allowed lateness")
	if code, done := parseFlags(fs, genUsage, args); done {
		return code
	}
	cfg := def
	cfg.Seed, cfg.Customers, cfg.Days = *seed, *customers, *days
	cfg.MalformedRate, cfg.DuplicateRate, cfg.LateRate = *malformed, *duplicates, *late
	t, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse gen: --start: %v\n", err)
		return exitUsage
	}
	cfg.Start = t
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse gen: %v\n", err)
		return exitFailure
	}
	began := time.Now()
	_, stats, err := datagen.WriteFiles(cfg, *out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse gen: %v\n", err)
		return exitFailure
	}
	report := stats.Report()
	if !strings.HasSuffix(report, "\n") {
		report += "\n"
	}
	fmt.Fprint(os.Stderr, report)
	fmt.Printf("gen: %s into %s in %s\n", stats.String(), *out, time.Since(began).Round(time.Millisecond))
	return exitOK
}
