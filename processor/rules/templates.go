package rules

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"
)

// Template limits (docs/limits.md, "Rules"). An annotation template is
// checked when the file is parsed (checkTemplate) and budgeted when it runs
// (RenderAnnotations), so no annotation can loop or grow without bound.
const (
	// MaxTemplateBytes is the longest annotation template source.
	MaxTemplateBytes = 4096
	// MaxPrintfWidth is the largest width or precision a printf verb may
	// give ("%100s" is the most).
	MaxPrintfWidth = 100
	// MaxAnnotationBytes is the longest rendered annotation. Every string a
	// template function returns is held to it too, so no intermediate value
	// can grow beyond it either.
	MaxAnnotationBytes = 16 << 10
)

// TruncatedMarker ends an annotation whose rendering went over
// MaxAnnotationBytes; what was rendered before is kept, cut so that the
// whole annotation, marker included, fits the budget.
const TruncatedMarker = " …[truncated: annotation over 16384 bytes]"

// errBudget is returned by the writer and the functions of a template
// whose output would pass MaxAnnotationBytes.
var errBudget = errors.New("annotation over its size budget")

// templateFuncs are the annotation helpers Prometheus users know from
// alerting rules, so `{{ .Value | humanizePercentage }}` reads the same here.
// The builtins that build strings (print, printf, println, html, js,
// urlquery) are replaced by versions that refuse a result beyond the budget.
var templateFuncs = template.FuncMap{
	"humanize":           humanize,
	"humanizePercentage": func(v float64) string { return fmt.Sprintf("%.4g%%", v*100) },
	"humanizeDuration":   humanizeDuration,
	"toUpper":            func(s string) (string, error) { return budgeted(strings.ToUpper(s)) },
	"toLower":            func(s string) (string, error) { return budgeted(strings.ToLower(s)) },
	"printf":             budgetedPrintf,
	"print":              func(args ...any) (string, error) { return budgetedArgs(fmt.Sprint, args) },
	"println":            func(args ...any) (string, error) { return budgetedArgs(fmt.Sprintln, args) },
	"html":               func(args ...any) (string, error) { return budgetedArgs(template.HTMLEscaper, args) },
	"js":                 func(args ...any) (string, error) { return budgetedArgs(template.JSEscaper, args) },
	"urlquery":           func(args ...any) (string, error) { return budgetedArgs(template.URLQueryEscaper, args) },
}

func budgeted(s string) (string, error) {
	if len(s) > MaxAnnotationBytes {
		return "", fmt.Errorf("%w: a value of %d bytes", errBudget, len(s))
	}
	return s, nil
}

// budgetedArgs refuses arguments that together pass the budget before
// formatting them: these functions' output is a small multiple of their
// input (at most 6× for js), and each argument is itself within budget.
func budgetedArgs(f func(...any) string, args []any) (string, error) {
	n := 0
	for _, a := range args {
		n += argSize(a)
	}
	if n > MaxAnnotationBytes {
		return "", fmt.Errorf("%w: arguments of %d bytes", errBudget, n)
	}
	return budgeted(f(args...))
}

// budgetedPrintf is printf with the format checked as checkFormat does
// (a template could build one at run time) and an upper bound on the
// output computed before anything is formatted.
func budgetedPrintf(format string, args ...any) (string, error) {
	verbs, err := checkFormat(format)
	if err != nil {
		return "", err
	}
	largest := 0
	for _, a := range args {
		largest = max(largest, argSize(a))
	}
	// Any verb may print any argument ("%[1]s" repeats one); quoting and
	// hex verbs expand a byte to at most 10.
	factor := 1
	if strings.ContainsAny(format, "qxXU#+") {
		factor = 10
	}
	if bound := len(format) + verbs*(MaxPrintfWidth+32+factor*largest); bound > MaxAnnotationBytes {
		return "", fmt.Errorf("%w: printf %q could make %d bytes", errBudget, format, bound)
	}
	return budgeted(fmt.Sprintf(format, args...))
}

// argSize is about how many bytes a template value prints as.
func argSize(a any) int {
	switch v := a.(type) {
	case string:
		return len(v)
	case map[string]string:
		n := 8
		for k, s := range v {
			n += len(k) + len(s) + 2
		}
		return n
	case []byte:
		return len(v)
	}
	return 32 // numbers, booleans, nil
}

// checkFormat refuses a printf format with a width or precision above
// MaxPrintfWidth or given by an argument (*), and counts its verbs.
func checkFormat(f string) (verbs int, err error) {
	tooWide := func(n int) error {
		if n > MaxPrintfWidth {
			return fmt.Errorf("printf width or precision %d in %q is more than %d", n, f, MaxPrintfWidth)
		}
		return nil
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		verbs++
		num := 0
	verb:
		for ; i < len(f); i++ {
			switch c := f[i]; {
			case c >= '0' && c <= '9':
				num = min(num*10+int(c-'0'), math.MaxInt32)
			case c == '*':
				return 0, fmt.Errorf("printf width or precision from an argument (*) in %q is not allowed", f)
			case c == '[': // an argument index, not a width
				if err := tooWide(num); err != nil {
					return 0, err
				}
				for i < len(f) && f[i] != ']' {
					i++
				}
				num = 0
			case c == '.' || c == '+' || c == '-' || c == '#' || c == ' ':
				if err := tooWide(num); err != nil {
					return 0, err
				}
				num = 0
			default: // the verb
				if err := tooWide(num); err != nil {
					return 0, err
				}
				break verb
			}
		}
		if err := tooWide(num); err != nil {
			return 0, err
		}
	}
	return verbs, nil
}

// checkTemplate is the static rule for annotation templates, simple enough
// to state in one line: at most MaxTemplateBytes; no define, block or
// template; range only over .Labels and never nested; printf only with a
// quoted format whose widths and precisions are at most MaxPrintfWidth.
// With these, rendering costs at most the template's size times the
// number of labels, and the run-time budget bounds every string.
func checkTemplate(src string, t *template.Template) error {
	if len(src) > MaxTemplateBytes {
		return fmt.Errorf("template of %d bytes is longer than the limit of %d", len(src), MaxTemplateBytes)
	}
	for _, tt := range t.Templates() {
		if tt.Name() != t.Name() {
			return errors.New("define and block are not allowed")
		}
	}
	if t.Tree == nil {
		return nil
	}
	return checkNode(t.Tree.Root, 0)
}

func checkNode(n parse.Node, ranges int) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNode(c, ranges); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkNode(n.Pipe, ranges)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := checkNode(c, ranges); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "printf" {
			s, ok := arg(n, 1).(*parse.StringNode)
			if !ok {
				return errors.New("printf needs a quoted format string as its first argument")
			}
			if _, err := checkFormat(s.Text); err != nil {
				return err
			}
		}
		for _, a := range n.Args {
			if err := checkNode(a, ranges); err != nil {
				return err
			}
		}
	case *parse.ChainNode:
		return checkNode(n.Node, ranges)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, ranges, ranges)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, ranges, ranges)
	case *parse.RangeNode:
		if ranges > 0 {
			return errors.New("range may not be nested in another range")
		}
		if !overLabels(n.Pipe) {
			return errors.New("range may only go over .Labels")
		}
		return checkBranch(&n.BranchNode, ranges+1, ranges)
	case *parse.TemplateNode:
		return errors.New("template is not allowed")
	}
	return nil
}

func checkBranch(b *parse.BranchNode, inList, inElse int) error {
	if err := checkNode(b.Pipe, inElse); err != nil {
		return err
	}
	if err := checkNode(b.List, inList); err != nil {
		return err
	}
	return checkNode(b.ElseList, inElse)
}

func arg(c *parse.CommandNode, i int) parse.Node {
	if i < len(c.Args) {
		return c.Args[i]
	}
	return nil
}

// overLabels reports whether a range pipeline is exactly .Labels (or
// $.Labels), whose length the rule's group fields and labels bound.
func overLabels(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return len(a.Ident) == 1 && a.Ident[0] == "Labels"
	case *parse.VariableNode:
		return len(a.Ident) == 2 && a.Ident[0] == "$" && a.Ident[1] == "Labels"
	}
	return false
}

// capWriter keeps at most max bytes and fails the write that would pass
// it, which stops the template's execution there.
type capWriter struct {
	buf []byte
	max int
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.buf); len(p) > room {
		w.buf = append(w.buf, p[:room]...)
		return room, errBudget
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// truncated is what an over-budget annotation becomes: the rendered
// prefix, cut at a rune boundary, then TruncatedMarker.
func truncated(b []byte) string {
	keep := min(len(b), MaxAnnotationBytes-len(TruncatedMarker))
	for keep > 0 && keep < len(b) && !utf8.RuneStart(b[keep]) {
		keep--
	}
	return string(b[:keep]) + TruncatedMarker
}

func humanize(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v)
	}
	abs := math.Abs(v)
	for _, u := range []struct {
		f float64
		s string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if abs >= u.f {
			return fmt.Sprintf("%.4g%s", v/u.f, u.s)
		}
	}
	return fmt.Sprintf("%.4g", v)
}

// humanizeDuration renders seconds as "7d 2h 3m 4s", dropping zero parts.
func humanizeDuration(seconds float64) string {
	if seconds < 1 {
		return fmt.Sprintf("%.4gs", seconds)
	}
	if !(seconds < 9e9) {
		// Beyond what time.Duration holds (or NaN); any inactivity value
		// is far below.
		return fmt.Sprintf("%.4gs", seconds)
	}
	d := time.Duration(seconds * float64(time.Second)).Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	parts := []string{}
	if days > 0 {
		parts = append(parts, fmt.Sprintf("%dd", days))
	}
	for _, u := range []struct {
		d time.Duration
		s string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", n, u.s))
			d -= n * u.d
		}
	}
	return strings.Join(parts, " ")
}
