// Command testreport reads `go test -json` and keeps `make test` readable.
//
//	go test -json ./... | testreport -tee out/test/main.json
//
// copies the events to the file and prints what plain `go test` prints:
// the package lines (ok, FAIL, no test files), build errors, and the
// output of failed tests only. It exits 1 when a test or a build failed,
// so a pipeline under pipefail fails with go test. Lines that are not
// JSON (scripts/fuzz.sh's headers) are printed as they are.
//
//	testreport -summary out/test/*.json
//
// prints, per file (one per phase of make test) and in total, how many
// tests ran, passed, failed and were skipped, subtests included, then
// every skipped test with its reason (what it logged before t.Skip) and
// every failed one.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	FailedBuild string
	ImportPath  string
}

func main() {
	tee := flag.String("tee", "", "copy the JSON events to this file and print go test's usual lines")
	summary := flag.Bool("summary", false, "print the counts and skips of the JSON files given as arguments")
	flag.Parse()
	switch {
	case *tee != "" && !*summary:
		f, err := os.Create(*tee)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
		failed, err := live(os.Stdin, f, os.Stdout)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
		if failed {
			os.Exit(1)
		}
	case *summary && *tee == "":
		var phases []phase
		for _, name := range flag.Args() {
			p, err := readPhase(name)
			if err != nil {
				fmt.Fprintln(os.Stderr, "testreport:", err)
				os.Exit(2)
			}
			phases = append(phases, p)
		}
		if !report(os.Stdout, phases) {
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: testreport -tee FILE < go-test-json | testreport -summary FILE...")
		os.Exit(2)
	}
}

// live copies r to file and prints to out what go test prints without
// -json. It reports whether anything failed.
func live(r io.Reader, file, out io.Writer) (failed bool, err error) {
	pending := map[string][]string{} // output of tests still running, by package and test
	key := func(e event) string { return e.Package + "\x00" + e.Test }
	flushPackage := func(pkg string) {
		var keys []string
		for k := range pending {
			if strings.HasPrefix(k, pkg+"\x00") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprint(out, strings.Join(pending[k], ""))
			delete(pending, k)
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		if _, err := fmt.Fprintf(file, "%s\n", line); err != nil {
			return failed, fmt.Errorf("writing the JSON copy: %w", err)
		}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Test == "":
			switch e.Action {
			case "output":
				// go test without -json prints neither.
				if e.Output != "PASS\n" && e.Output != "testing: warning: no tests to run\n" {
					fmt.Fprint(out, e.Output)
				}
			case "fail":
				failed = true
				flushPackage(e.Package) // tests cut short by a panic or timeout
			}
		case e.Action == "output":
			if !isMarker(e.Output) {
				pending[key(e)] = append(pending[key(e)], e.Output)
			}
		case e.Action == "fail":
			failed = true
			fmt.Fprint(out, strings.Join(pending[key(e)], ""))
			delete(pending, key(e))
		case e.Action == "pass" || e.Action == "skip":
			delete(pending, key(e))
		}
	}
	if err := sc.Err(); err != nil {
		return failed, fmt.Errorf("reading go test's output: %w", err)
	}
	return failed, nil
}

// isMarker reports whether an output line is one of the progress lines
// that -json (which implies -v) adds and plain go test does not print.
func isMarker(s string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// phase is the outcome of one JSON file.
type phase struct {
	name                    string
	passed, failed, skipped int
	skips, fails            []string // "package Test: reason" / "package Test"
}

func readPhase(name string) (phase, error) {
	p := phase{name: strings.TrimSuffix(filepath.Base(name), ".json")}
	f, err := os.Open(name)
	if err != nil {
		return p, fmt.Errorf("reading test results: %w", err)
	}
	defer f.Close()
	output := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		k := short(e.Package) + " " + e.Test
		switch {
		case e.Action == "build-fail":
			p.failed++
			p.fails = append(p.fails, short(e.ImportPath)+" (build failed)")
		case e.Test == "":
			if e.Action == "fail" && e.FailedBuild == "" && !p.hasFailIn(short(e.Package)) {
				p.failed++
				p.fails = append(p.fails, short(e.Package)+" (package failed outside any test)")
			}
		case e.Action == "output":
			if !isMarker(e.Output) && !strings.HasPrefix(strings.TrimSpace(e.Output), "--- ") {
				output[k] = append(output[k], strings.TrimSpace(e.Output))
			}
		case e.Action == "pass":
			p.passed++
			delete(output, k)
		case e.Action == "fail":
			p.failed++
			p.fails = append(p.fails, k)
			delete(output, k)
		case e.Action == "skip":
			p.skipped++
			reason := strings.Join(output[k], " / ")
			if reason == "" {
				reason = "(no reason given)"
			}
			p.skips = append(p.skips, k+": "+reason)
			delete(output, k)
		}
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("reading %s: %w", name, err)
	}
	return p, nil
}

// module is cut from package paths in the summary.
const module = "github.com/crmpulse/crmpulse/"

func short(pkg string) string { return strings.TrimPrefix(pkg, module) }

func (p *phase) hasFailIn(pkg string) bool {
	for _, f := range p.fails {
		if strings.HasPrefix(f, pkg+" ") {
			return true
		}
	}
	return false
}

// report prints the counts and lists; it reports whether nothing failed.
func report(w io.Writer, phases []phase) bool {
	total := phase{name: "total"}
	fmt.Fprintln(w, "== test summary (subtests included; ran = passed + failed)")
	line := func(p phase) {
		fmt.Fprintf(w, "%-10s ran %5d   passed %5d   failed %3d   skipped %3d\n", p.name, p.passed+p.failed, p.passed, p.failed, p.skipped)
	}
	for _, p := range phases {
		line(p)
		total.passed += p.passed
		total.failed += p.failed
		total.skipped += p.skipped
		for _, s := range p.skips {
			total.skips = append(total.skips, p.name+": "+s)
		}
		for _, f := range p.fails {
			total.fails = append(total.fails, p.name+": "+f)
		}
	}
	line(total)
	if len(total.skips) > 0 {
		fmt.Fprintf(w, "skipped (%d):\n", len(total.skips))
		for _, s := range total.skips {
			fmt.Fprintln(w, "  "+s)
		}
	}
	if len(total.fails) > 0 {
		fmt.Fprintf(w, "FAILED (%d):\n", len(total.fails))
		for _, f := range total.fails {
			fmt.Fprintln(w, "  "+f)
		}
	}
	return total.failed == 0
}
