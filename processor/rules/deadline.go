package rules

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// KindDeadline is the reminders-before-and-after-a-due-time kind (SPEC §3.1).
const KindDeadline = "deadline"

// SignedDuration is a Duration that may be negative: a deadline stage's
// at ("-3d") and a calendar rule's offset.
type SignedDuration time.Duration

// UnmarshalText accepts a Duration with an optional leading - or +.
func (d *SignedDuration) UnmarshalText(b []byte) error {
	s, neg := string(b), false
	switch {
	case strings.HasPrefix(s, "-"):
		s, neg = s[1:], true
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", string(b))
	}
	if neg {
		v = -v
	}
	*d = SignedDuration(v)
	return nil
}

// D returns d as a time.Duration.
func (d SignedDuration) D() time.Duration { return time.Duration(d) }

// Stage is one reminder of a deadline rule: it fires at due + At.
type Stage struct {
	Name     string         `yaml:"name"`
	At       SignedDuration `yaml:"at"`
	Severity string         `yaml:"severity"`
}

// checkStageKeys refuses unknown keys in stages, as everywhere else.
func checkStageKeys(n *yaml.Node, f func(string, string, ...any)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "stages" || n.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, st := range n.Content[i+1].Content {
			if err := checkKeys(st, []string{"name", "at", "severity"}); err != nil {
				f(fmt.Sprintf("stages[%d]", j), "%v", err)
			}
		}
	}
}

// DueGetter reads a deadline's due time from its start record.
type DueGetter func(e Event) (time.Time, bool)

func (r *Rule) compileDeadline(f func(string, string, ...any)) {
	if len(r.Stages) == 0 {
		f("stages", "must list at least one stage")
	}
	seen := map[string]bool{}
	for i, s := range r.Stages {
		field := fmt.Sprintf("stages[%d]", i)
		switch {
		case s.Name == "":
			f(field+".name", "missing required field")
		case !labelValueOK(s.Name):
			f(field+".name", "%q must not be empty or hold control characters", s.Name)
		case seen[s.Name]:
			f(field+".name", "duplicate stage name %q", s.Name)
		}
		seen[s.Name] = true
		if i > 0 && s.At <= r.Stages[i-1].At {
			f(field+".at", "stages must be in increasing at: %s is not after %s", s.At.D(), r.Stages[i-1].At.D())
		}
		if r.Stages[i].Severity == "" {
			r.Stages[i].Severity = r.Severity
		}
	}
}

func labelValueOK(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(c rune) bool { return c < ' ' })
}

// compileDue compiles due or due_after into r.Due; exactly one is given.
func (r *Rule) compileDue(f func(string, string, ...any), hasDue, hasAfter bool) {
	switch {
	case hasDue && hasAfter:
		f("due", "give either due or due_after, not both")
		return
	case !hasDue && !hasAfter:
		f("due", "missing required parameter for kind deadline (due or due_after)")
		return
	case hasAfter:
		after := r.DueAfter.D()
		r.DueOf = func(e Event) (time.Time, bool) {
			if e.I != nil {
				return e.I.OccurredAt.Add(after), true
			}
			return e.R.OccurredAt.Add(after), true
		}
		return
	}
	fl, err := CompileField(r.Source, r.DueField)
	if err != nil {
		f("due", "%v", err)
		return
	}
	r.DueOf = func(e Event) (time.Time, bool) {
		v := fl.Get(e)
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, true
		}
		// A date is 00:00 that day in the customer's zone, else the default.
		if len(v) != len("2006-01-02") {
			return time.Time{}, false
		}
		z := r.defaultLoc // set once the whole file is parsed
		if z == nil {
			z = time.UTC
		}
		if pl := e.Profile().Location(); pl != nil {
			z = pl
		}
		t, err := time.ParseInLocation("2006-01-02", v, z)
		return t, err == nil
	}
}

// RenderDeadlineAnnotations is RenderAnnotations with {{ .Due }}, the due
// time in RFC 3339 UTC, available to templates.
func (r *Rule) RenderDeadlineAnnotations(labels map[string]string, value float64, due time.Time) map[string]string {
	out := make(map[string]string, len(r.Annotations))
	data := struct {
		Labels map[string]string
		Value  float64
		Due    string
	}{labels, value, due.UTC().Format(time.RFC3339)}
	var buf bytes.Buffer
	for k, raw := range r.Annotations {
		t := r.annotations[k]
		buf.Reset()
		if t == nil || t.Execute(&buf, data) != nil {
			out[k] = raw
			continue
		}
		out[k] = buf.String()
	}
	return out
}
