package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/processor/rulestest"
)

const rulesUsage = `Usage: crmpulse rules check FILE
       crmpulse rules test [--run REGEXP] [-v] FILE...   (docs/rules-test.md)

check validates a rules file: exit 0, or 1 with every error, each naming the rule and the
field. test runs promtool-style unit tests of rules files.
`

func cmdRules(_ context.Context, args []string) int {
	if len(args) > 0 && args[0] == "test" {
		return cmdRulesTest(args[1:], os.Stdout, os.Stderr)
	}
	if len(args) > 0 && isHelp(args[len(args)-1]) {
		fmt.Fprint(os.Stdout, rulesUsage)
		return exitOK
	}
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprint(os.Stderr, rulesUsage)
		return exitUsage
	}
	f, err := rules.Load(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return exitFailure
	}
	fmt.Printf("%s: OK: %d rules, %d resend policies, %d segment sets, %d digests\n", args[1], len(f.Rules), len(f.Resend), len(f.Segments), len(f.Digests))
	return exitOK
}

// cmdRulesTest runs rules unit test files. Exit codes: 0 every test
// passed, 1 a test failed, 2 bad usage or a test file (or the rules it
// names) that cannot be used. Every file is run even after a bad one.
func cmdRulesTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	runPat := fs.String("run", "", "run only the tests whose name matches this regular expression")
	verbose := fs.Bool("v", false, "print passing tests too")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, rulesUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, rulesUsage)
		fs.PrintDefaults()
		return exitUsage
	}
	opts := rulestest.Options{Verbose: *verbose}
	if *runPat != "" {
		re, err := regexp.Compile(*runPat)
		if err != nil {
			fmt.Fprintf(stderr, "crmpulse rules test: --run: %v\n", err)
			return exitUsage
		}
		opts.Run = re
	}
	code := exitOK
	for _, path := range fs.Args() {
		res, err := rulestest.Run(path, stdout, opts)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "%v\n", err)
			code = exitUsage
		case res.Failed > 0 && code == exitOK:
			code = exitFailure
		}
	}
	return code
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }
