// Command crmpulse turns CRM event streams into early warnings: alerts,
// resend triggers and aggregates. See the README for the subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `crmpulse — early warnings from CRM event streams

Usage:
  crmpulse run [--config FILE] [--embedded-kafka] [flags]   (see 'crmpulse run --help')
  crmpulse replay --rules FILE [--interactions FILE] [--receipts FILE] --out DIR [--until T] [--max-line-bytes N] [--clickhouse DSN]
  crmpulse migrate [--dsn DSN]   (ClickHouse schema; see docs/clickhouse.md)
  crmpulse rules check FILE
  crmpulse rules test [--run RE] [-v] FILE...
  crmpulse demo [--customers N] [--days N]   (embedded Kafka, generated data, live alerts)
  crmpulse gen [--out DIR] [--customers N] [--days N] [--seed N]
  crmpulse version
  crmpulse help

Run 'crmpulse COMMAND --help' for a command's flags.
`

// Exit codes: 0 success, 1 failure at run time, 2 bad usage, a bad rules
// file or unreadable input (SPEC §5), 128 + the signal's number when a
// signal stopped a replay (130 for SIGINT, 143 for SIGTERM).
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 128 + int(syscall.SIGINT)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:])
	case "replay":
		return cmdReplay(ctx, args[1:])
	case "rules":
		return cmdRules(ctx, args[1:])
	case "migrate":
		return cmdMigrate(ctx, args[1:])
	case "gen":
		return cmdGen(ctx, args[1:])
	case "demo":
		return cmdDemo(ctx, args[1:])
	case "version", "--version":
		return cmdVersion(os.Stdout, args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "crmpulse: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
