package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"gopkg.in/yaml.v3"
)

// Digest schedules of SPEC §3.4.
const (
	EveryDay   = "day"
	EveryWeek  = "week"
	EveryMonth = "month"
)

// Digest is one scheduled report (SPEC §3.4): for every group, the alerts
// of some rules, metrics over the records and the keys per class of a
// segment set, once per period.
type Digest struct {
	Name     string    `yaml:"name"`
	Schedule Schedule  `yaml:"schedule"`
	GroupBy  []string  `yaml:"group_by"`
	Alerts   []string  `yaml:"alerts"`
	Metrics  []*Metric `yaml:"metrics"`
	// Segments names a segment set (SPEC §3.3) whose keys per class the
	// digest reports; empty for none.
	Segments string `yaml:"segments"`

	// Fields are GroupBy compiled, in order.
	Fields []DigestField `yaml:"-"`
}

// Schedule is when a digest's periods end: every day, every Monday or the
// first of every month at At local time in Timezone.
type Schedule struct {
	Every    string `yaml:"every"`
	At       string `yaml:"at"`
	Timezone string `yaml:"timezone"`
	// AtMin is At in minutes after local midnight; Location is Timezone
	// loaded (defaults.timezone when it is left out).
	AtMin    int            `yaml:"-"`
	Location *time.Location `yaml:"-"`
}

// Metric is one figure of a digest: count, sum(field) or distinct(field)
// over the matching records of a source in the period.
type Metric struct {
	Name    string              `yaml:"name"`
	Source  string              `yaml:"source"`
	Match   map[string][]string `yaml:"match"`
	Value   string              `yaml:"value"`
	Matcher *Matcher            `yaml:"-"`
	Agg     Aggregation         `yaml:"-"`
}

// DigestField is a compiled group_by path of a digest. It is read from
// records of either source as in rules (I or R; nil when the path does not
// exist for that source, and then the value is unknown) and from alert
// labels as Label.
type DigestField struct {
	Path  string
	Label string
	I, R  Getter
	// Customer reports a customer.* path; Profile reads it from a profile
	// (for segment keys, whose customer.* is read at the period's end).
	Customer bool
	Profile  ProfileGetter
}

var digestKeys = []string{"name", "schedule", "group_by", "alerts", "metrics", "segments"}
var scheduleKeys = []string{"every", "at", "timezone"}
var metricKeys = []string{"name", "source", "match", "value"}

func decodeDigest(n *yaml.Node, defaultLoc *time.Location) (*Digest, error) {
	name := mapValue(n, "name")
	label := fmt.Sprintf("digest %q", name)
	if name == "" {
		label = fmt.Sprintf("digest at line %d", n.Line)
	}
	wrap := func(err error) error { return fmt.Errorf("%s: %w", label, err) }
	if err := checkKeys(n, digestKeys); err != nil {
		return nil, wrap(err)
	}
	if s := lookup(n, "schedule"); s != nil {
		if err := checkKeys(s, scheduleKeys); err != nil {
			return nil, wrap(fmt.Errorf("schedule: %w", err))
		}
	}
	if ms := lookup(n, "metrics"); ms != nil && ms.Kind == yaml.SequenceNode {
		for i, m := range ms.Content {
			if err := checkKeys(m, metricKeys); err != nil {
				return nil, wrap(fmt.Errorf("metrics #%d: %w", i+1, err))
			}
		}
	}
	d := &Digest{}
	if err := n.Decode(d); err != nil {
		return nil, wrap(yamlErr(err))
	}
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("field %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if d.Name == "" {
		fail("name", "missing required field")
	} else if !nameRE.MatchString(d.Name) {
		fail("name", "%q must match [a-z0-9_]+", d.Name)
	}
	d.compileSchedule(n, defaultLoc, fail)
	d.compileGroupBy(fail)
	if len(d.Alerts) == 0 && len(d.Metrics) == 0 && d.Segments == "" {
		fail("alerts", "a digest must report something: give alerts, metrics or segments")
	}
	seen := map[string]bool{}
	for i, m := range d.Metrics {
		field := fmt.Sprintf("metrics[%d]", i)
		if m == nil {
			fail(field, "must be a mapping")
			continue
		}
		if m.Name == "" {
			fail(field+".name", "missing required field")
		} else if !labelNameRE.MatchString(m.Name) {
			fail(field+".name", "%q must be a label name ([a-zA-Z_][a-zA-Z0-9_]*)", m.Name)
		} else if seen[m.Name] {
			fail(field+".name", "duplicate metric name %q", m.Name)
		}
		seen[m.Name] = true
		switch m.Source {
		case SourceInteractions, SourceReceipts:
		case "":
			fail(field+".source", "missing required field (interactions or receipts)")
			continue
		default:
			fail(field+".source", "unknown source %q (want interactions or receipts)", m.Source)
			continue
		}
		mt, err := compileMatch(m.Source, m.Match)
		if err != nil {
			fail(field+".match", "%v", err)
		}
		m.Matcher = mt
		if m.Value == "" {
			fail(field+".value", "missing required field (count, sum(field) or distinct(field))")
			continue
		}
		r := &Rule{Source: m.Source, Value: m.Value}
		r.compileValue(func(_, format string, args ...any) { fail(field+".value", format, args...) }, true)
		m.Agg = r.Agg
	}
	for i, a := range d.Alerts {
		if a == "" {
			fail(fmt.Sprintf("alerts[%d]", i), "empty rule name")
		}
	}
	if d.Segments != "" && !nameRE.MatchString(d.Segments) {
		fail("segments", "%q is not a segment set name ([a-z0-9_]+)", d.Segments)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, wrap(err)
	}
	return d, nil
}

func (d *Digest) compileSchedule(n *yaml.Node, defaultLoc *time.Location, fail func(string, string, ...any)) {
	s := &d.Schedule
	if !has(n, "schedule") {
		fail("schedule", "missing required field ({every, at, timezone})")
		return
	}
	switch s.Every {
	case EveryDay, EveryWeek, EveryMonth:
	case "":
		fail("schedule.every", "missing required field (day, week or month)")
	default:
		fail("schedule.every", "unknown period %q (want day, week or month)", s.Every)
	}
	if s.At == "" {
		fail("schedule.at", "missing required field (HH:MM)")
	} else if m, err := parseClock(s.At); err != nil {
		fail("schedule.at", "%v", err)
	} else {
		s.AtMin = m
	}
	s.Location = defaultLoc
	if s.Timezone != "" {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil || strings.HasPrefix(s.Timezone, "/") {
			fail("schedule.timezone", "unknown zone %q", s.Timezone)
		} else {
			s.Location = loc
		}
	}
	if s.Location == nil {
		s.Location = time.UTC
	}
}

func (d *Digest) compileGroupBy(fail func(string, string, ...any)) {
	labels := map[string]string{}
	for _, p := range d.GroupBy {
		f := DigestField{Path: p}
		var errI, errR error
		var fi, fr Field
		fi, errI = CompileField(SourceInteractions, p)
		fr, errR = CompileField(SourceReceipts, p)
		if errI != nil && errR != nil {
			fail("group_by", "unknown field %q for interactions and receipts", p)
			continue
		}
		if errI == nil {
			f.I, f.Label, f.Customer = fi.Get, fi.Label, fi.Customer
		}
		if errR == nil {
			f.R, f.Label, f.Customer = fr.Get, fr.Label, fr.Customer
		}
		if f.Customer {
			pf, _ := CompileProfileField(strings.TrimPrefix(p, CustomerPrefix))
			f.Profile = pf.Get
		}
		if prev, dup := labels[f.Label]; dup {
			fail("group_by", "%q and %q both give label %q", prev, p, f.Label)
			continue
		}
		labels[f.Label] = p
		d.Fields = append(d.Fields, f)
	}
}

// Value reads field f of e for grouping: unknown when the path does not
// exist for e's source or the value is empty.
func (f *DigestField) Value(e Event) string {
	var g Getter
	switch {
	case e.I != nil:
		g = f.I
	case e.R != nil:
		g = f.R
	}
	if g == nil {
		return ingest.UnknownDim
	}
	if v := g(e); v != "" {
		return v
	}
	return ingest.UnknownDim
}

// validateDigests checks what a digest names outside itself: the rules of
// alerts and the segment set must be the file's.
func validateDigests(f *File) []error {
	var errs []error
	rules := map[string]bool{}
	for _, r := range f.Rules {
		rules[r.Name] = true
	}
	sets := map[string]bool{}
	for _, s := range f.Segments {
		sets[s.Name] = true
	}
	seen := map[string]bool{}
	for _, d := range f.Digests {
		if seen[d.Name] {
			errs = append(errs, fmt.Errorf("digest %q: field name: duplicate digest name", d.Name))
		}
		seen[d.Name] = true
		for i, a := range d.Alerts {
			if a != "" && !rules[a] {
				errs = append(errs, fmt.Errorf("digest %q: field alerts[%d]: no rule named %q", d.Name, i, a))
			}
		}
		if d.Segments != "" && !sets[d.Segments] {
			errs = append(errs, fmt.Errorf("digest %q: field segments: no segment set named %q", d.Name, d.Segments))
		}
	}
	return errs
}
