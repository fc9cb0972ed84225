// Package rulestest runs unit tests for rules files, in the spirit of
// `promtool test rules`: a YAML test file names a rules file and lists test
// cases, each with input records and the alerts and resend triggers the
// engine must produce at given watermarks. `crmpulse rules test` is its
// command line; docs/rules-test.md describes the file format.
//
// Tests drive the production engine and decoder, so a passing test says
// what the pipeline will do with the same records.
package rulestest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Options change how a test file is run.
type Options struct {
	// Run, when set, selects the tests whose name it matches.
	Run *regexp.Regexp
	// Verbose prints a line for every passing test too.
	Verbose bool
}

// Result counts the tests of one file.
type Result struct {
	Tests, Passed, Failed, Skipped int
}

// Run loads the test file at path and runs its tests, writing failures and
// a summary line to w. The error is non-nil when the file (or the rules it
// names) cannot be used; failing tests are counted in Result, not errors.
func Run(path string, w io.Writer, opts Options) (Result, error) {
	s, err := Load(path)
	if err != nil {
		return Result{}, err
	}
	return s.Run(w, opts)
}

// Run runs the suite's tests, writing failures and a summary line to w.
func (s *Suite) Run(w io.Writer, opts Options) (Result, error) {
	if s.Rules == nil {
		return Result{}, fmt.Errorf("%s: no rules loaded", s.Path)
	}
	var res Result
	for _, t := range s.Tests {
		res.Tests++
		if opts.Run != nil && !opts.Run.MatchString(t.Name) {
			res.Skipped++
			continue
		}
		fails, err := t.run(s.Rules)
		if err != nil {
			return res, fmt.Errorf("%s:%d: test %q: %w", s.Path, t.Line, t.Name, err)
		}
		if len(fails) == 0 {
			res.Passed++
			if opts.Verbose {
				fmt.Fprintf(w, "ok    %s\n", t.Name)
			}
			continue
		}
		res.Failed++
		fmt.Fprintf(w, "FAIL  %s (%s:%d)\n", t.Name, s.Path, t.Line)
		for _, f := range fails {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(strings.TrimRight(f, "\n"), "\n", "\n  "))
		}
	}
	fmt.Fprintf(w, "%s: %s\n", s.Path, res)
	return res, nil
}

func (r Result) String() string {
	noun := "tests"
	if r.Tests == 1 {
		noun = "test"
	}
	s := fmt.Sprintf("%d %s, %d passed, %d failed", r.Tests, noun, r.Passed, r.Failed)
	if r.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", r.Skipped)
	}
	return s
}

// state is what a running test has seen the engine emit.
type state struct {
	firing  map[string]processor.Alert // by fingerprint
	alerts  []processor.Alert
	resends []processor.Resend
}

func (st *state) drain(out *processor.Output) {
	for _, a := range out.Alerts {
		st.alerts = append(st.alerts, a)
		if a.State == processor.StateFiring {
			st.firing[a.Fingerprint] = a
		} else {
			delete(st.firing, a.Fingerprint)
		}
	}
	st.resends = append(st.resends, out.Resends...)
	out.Reset()
}

// run feeds the test's records to a fresh engine in occurred_at order,
// the watermark following them as SPEC §2 says (highest occurred_at minus
// allowed lateness). Before each expect_alerts time it feeds the records
// up to that time, moves the watermark to it and checks the firing set.
// It returns one message per failed expectation.
func (t *Test) run(rf *rules.File) ([]string, error) {
	if t.Lateness != nil {
		cp := *rf
		cp.Defaults.AllowedLateness = rules.Duration(*t.Lateness)
		rf = &cp
	}
	eng, err := processor.New(processor.Config{Rules: rf})
	if err != nil {
		return nil, err
	}
	tf := timeFmt{start: t.Start}
	st := &state{firing: map[string]processor.Alert{}}
	var fails []string
	next := 0
	feed := func(until time.Time, all bool) {
		for ; next < len(t.records) && (all || !t.records[next].at.After(until)); next++ {
			rec := &t.records[next]
			var err error
			switch {
			case rec.cu != nil:
				err = eng.Customer(rec.cu)
			case rec.i != nil:
				err = eng.Interaction(rec.i)
			default:
				err = eng.Receipt(rec.r)
			}
			var re *ingest.RejectError
			if errors.As(err, &re) {
				// Records go in in time order, so only a `watermark`
				// behind the input can make one late.
				fails = append(fails, fmt.Sprintf("input record on line %d refused: %v", rec.line, err))
			}
			eng.AdvanceFromEvents()
			st.drain(eng.Output())
		}
	}

	timed := slices.Clone(t.checks)
	slices.SortStableFunc(timed, func(a, b *alertCheck) int { return a.at.Compare(b.at) })
	var atEnd []*alertCheck
	for _, c := range timed {
		if c.at.IsZero() {
			atEnd = append(atEnd, c)
			continue
		}
		feed(c.at, false)
		if eng.Watermark().After(c.at) {
			// Lateness can't cause this (records ≤ at only), but be plain
			// about it rather than check a later state.
			return nil, fmt.Errorf("watermark already at %s, past expect_alerts at %s", fmtAbs(eng.Watermark()), fmtAbs(c.at))
		}
		eng.Advance(c.at)
		st.drain(eng.Output())
		fails = append(fails, c.check(st, t, tf, c.at)...)
	}
	feed(time.Time{}, true)
	end := t.Watermark
	if end.IsZero() {
		end = eng.MaxEventTime()
		if n := len(timed); n > 0 && timed[n-1].at.After(end) {
			end = timed[n-1].at
		}
	} else if eng.Watermark().After(end) {
		fails = append(fails, fmt.Sprintf("watermark: %s is behind the watermark the input already moved to, %s",
			tf.fmt(end), tf.fmt(eng.Watermark())))
	}
	eng.Advance(end)
	st.drain(eng.Output())
	for _, c := range atEnd {
		fails = append(fails, c.check(st, t, tf, eng.Watermark())...)
	}
	if t.expRecs != nil {
		got := filterAlerts(st.alerts, t.OnlyRules)
		fails = append(fails, compareList("expect_records", t.expRecs, got,
			func(x *alertExpect, a *processor.Alert) []string { return x.diff(a, tf) },
			func(x *alertExpect) string { return x.render(tf) },
			func(a *processor.Alert) string { return renderAlert(a, tf, true) })...)
	}
	if t.expResnd != nil {
		fails = append(fails, compareList("expect_resends", t.expResnd, st.resends,
			func(x *resendExpect, r *processor.Resend) []string { return x.diff(r, tf) },
			func(x *resendExpect) string { return x.render(tf) },
			func(r *processor.Resend) string { return renderResend(r, tf) })...)
	}
	return fails, nil
}

func filterAlerts(alerts []processor.Alert, only []string) []processor.Alert {
	if len(only) == 0 {
		return alerts
	}
	var out []processor.Alert
	for _, a := range alerts {
		if slices.Contains(only, a.Rule) {
			out = append(out, a)
		}
	}
	return out
}

// check compares the firing set at watermark wm with the expectation,
// order-insensitively: alerts pair up by rule and labels, and paired ones
// must also agree on the other fields given.
func (c *alertCheck) check(st *state, t *Test, tf timeFmt, wm time.Time) []string {
	got := map[string]*processor.Alert{}
	for _, a := range st.firing {
		switch {
		case c.rule != "" && a.Rule != c.rule:
		case c.rule == "" && len(t.OnlyRules) > 0 && !slices.Contains(t.OnlyRules, a.Rule):
		default:
			got[alertKey(&a)] = &a
		}
	}
	var lines []string
	for i := range c.firing {
		x := &c.firing[i]
		k := x.key()
		a, ok := got[k]
		if !ok {
			lines = append(lines, "- missing     "+x.render(tf))
			continue
		}
		delete(got, k)
		if d := x.diff(a, tf); len(d) > 0 {
			lines = append(lines, "~ "+k+": "+strings.Join(d, "; "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		lines = append(lines, "+ unexpected  "+renderAlert(got[k], tf, false))
	}
	if len(lines) == 0 {
		return nil
	}
	scope := "every rule"
	switch {
	case c.rule != "":
		scope = "rule " + c.rule
	case len(t.OnlyRules) > 0:
		scope = "rules " + strings.Join(t.OnlyRules, ", ")
	}
	when := "at " + tf.fmt(wm)
	if !t.Start.IsZero() {
		when += " (" + fmtAbs(wm) + ")"
	}
	if c.at.IsZero() {
		when = "at the end, watermark " + strings.TrimPrefix(when, "at ")
	}
	return []string{fmt.Sprintf("expect_alerts (line %d) %s, %s:\n  %s", c.line, when, scope, strings.Join(lines, "\n  "))}
}

// compareList compares an ordered list of expectations with what the
// engine emitted, and on any difference lists both side by side:
// "=" agrees, "~" differs in the fields shown, "-" expected but not
// emitted, "+" emitted but not expected.
func compareList[X, G any](what string, exp *listExpect[X], got []G,
	diff func(*X, *G) []string, renderX func(*X) string, renderG func(*G) string) []string {
	var lines []string
	bad := len(exp.items) != len(got)
	for i := range max(len(exp.items), len(got)) {
		switch {
		case i >= len(got):
			lines = append(lines, fmt.Sprintf("- #%d missing     %s", i+1, renderX(&exp.items[i])))
		case i >= len(exp.items):
			lines = append(lines, fmt.Sprintf("+ #%d unexpected  %s", i+1, renderG(&got[i])))
		default:
			if d := diff(&exp.items[i], &got[i]); len(d) > 0 {
				bad = true
				lines = append(lines, fmt.Sprintf("~ #%d %s\n      %s", i+1, renderG(&got[i]), strings.Join(d, "\n      ")))
			} else {
				lines = append(lines, fmt.Sprintf("= #%d %s", i+1, renderG(&got[i])))
			}
		}
	}
	if !bad {
		return nil
	}
	return []string{fmt.Sprintf("%s (line %d): want %d, got %d:\n  %s", what, exp.line, len(exp.items), len(got), strings.Join(lines, "\n  "))}
}
