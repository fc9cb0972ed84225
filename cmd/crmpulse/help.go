package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// parseFlags parses a subcommand's flags. --help (or -h) prints usage — a
// "Usage: crmpulse …" line and what the command does — and the flags to
// stdout and ends the command with exit 0, as every subcommand's --help
// does; a bad flag prints the error and the usage to stderr (exit 2).
func parseFlags(fs *flag.FlagSet, usage string, args []string) (code int, done bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		printUsage(os.Stdout, fs, usage)
		return exitOK, true
	default:
		fmt.Fprintf(os.Stderr, "crmpulse %s: %v\n\n", fs.Name(), err)
		printUsage(os.Stderr, fs, usage)
		return exitUsage, true
	}
}

func printUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprint(w, usage)
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

const replayUsage = `Usage: crmpulse replay --rules FILE [--interactions FILE] [--receipts FILE] [--customers FILE] --out DIR [--until T]

Runs the engine over JSON Lines files, merged by event time, and writes alerts.jsonl,
resends.jsonl, segments.jsonl, digests.jsonl and rejected.jsonl to DIR (docs/replay.md).
This is also the backtest. Exit 0; 2 on a bad rules file or unreadable input; 130/143 when
interrupted.
`

const demoUsage = `Usage: crmpulse demo [--customers N] [--days N] [--seed N] [--out DIR]

Generated CRM history produced into an embedded Kafka broker and consumed by the real
streaming pipeline; alerts (with who they go to) and resend triggers are printed as they come.
`

const genUsage = `Usage: crmpulse gen [--out DIR] [--customers N] [--days N] [--seed N]

Writes a realistic, seeded data set: interactions.jsonl, receipts.jsonl and customers.jsonl,
with injected churn, revenue drops, complaint bursts, reminders and malformed records.
`
