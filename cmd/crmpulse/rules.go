package main

import (
	"context"
	"fmt"
	"os"

	"github.com/crmpulse/crmpulse/processor/rules"
)

func cmdRules(_ context.Context, args []string) int {
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprintln(os.Stderr, "usage: crmpulse rules check FILE")
		return exitUsage
	}
	f, err := rules.Load(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return exitFailure
	}
	fmt.Printf("%s: OK: %d rules, %d resend policies\n", args[1], len(f.Rules), len(f.Resend))
	return exitOK
}
