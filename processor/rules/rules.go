// Package rules parses and validates the rules file of SPEC §3: detectors
// and resend policies. A file is accepted as a whole or refused with errors
// that name the rule and the field, so a running pipeline can keep its
// current rules when asked to load a bad file.
package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

// Sources a rule can read.
const (
	SourceInteractions = "interactions"
	SourceReceipts     = "receipts"
)

// Detector kinds of SPEC §3.1.
const (
	KindInactivity = "inactivity"
	KindDrop       = "drop"
	KindThreshold  = "threshold"
	KindRatio      = "ratio"
	KindAbsence    = "absence"
	KindEvent      = "event"
)

// DefaultEventLasts is how long an event rule's alert keeps firing after
// its latest matching record when the rule leaves lasts out (SPEC §3.1).
const DefaultEventLasts = 24 * time.Hour

// DefaultAllowedLateness applies when the file's defaults leave it out.
const DefaultAllowedLateness = 10 * time.Minute

// File is a parsed, validated and compiled rules file.
type File struct {
	Version  int       `yaml:"version"`
	Defaults Defaults  `yaml:"defaults"`
	Rules    []*Rule   `yaml:"rules"`
	Resend   []*Policy `yaml:"resend"`
	// Segments are the customer segmentation sets (SPEC §3.3).
	Segments []*SegmentSet `yaml:"segments"`
	// Digests are the scheduled reports of SPEC §3.4.
	Digests []*Digest `yaml:"digests"`
	// Hash identifies the file's content, for reload metrics and to skip
	// reloading an unchanged file.
	Hash string `yaml:"-"`
}

// Defaults are the file-wide settings.
type Defaults struct {
	Timezone        string   `yaml:"timezone"`
	AllowedLateness Duration `yaml:"allowed_lateness"`
	// Location is Timezone loaded; UTC when Timezone is empty.
	Location *time.Location `yaml:"-"`
}

// Rule is one detector.
type Rule struct {
	Name        string              `yaml:"name"`
	Kind        string              `yaml:"kind"`
	Source      string              `yaml:"source"`
	Match       map[string][]string `yaml:"match"`
	Severity    string              `yaml:"severity"`
	Labels      map[string]string   `yaml:"labels"`
	Annotations map[string]string   `yaml:"annotations"`

	// inactivity
	Key     []string `yaml:"key"`
	IdleFor Duration `yaml:"idle_for"`
	// drop, threshold, ratio
	GroupBy []string `yaml:"group_by"`
	Window  Duration `yaml:"window"`
	Value   string   `yaml:"value"`
	// drop
	Baseline    *Baseline `yaml:"baseline"`
	DropPct     float64   `yaml:"drop_pct"`
	MinBaseline float64   `yaml:"min_baseline"`
	// For is how long the condition must hold before the alert fires:
	// consecutive breaching windows for drop and ratio (an integer, or a
	// duration that is a multiple of window), a duration for the others.
	For ForSpec `yaml:"for"`
	// threshold, ratio
	Op        string   `yaml:"op"`
	Threshold *float64 `yaml:"threshold"`
	// ratio
	Numerator      map[string][]string `yaml:"numerator"`
	Denominator    map[string][]string `yaml:"denominator"`
	MinDenominator float64             `yaml:"min_denominator"`
	// absence
	Start     map[string][]string `yaml:"start"`
	Stop      map[string][]string `yaml:"stop"`
	Correlate []string            `yaml:"correlate"`
	Within    Duration            `yaml:"within"`
	// event, calendar
	Lasts Duration `yaml:"lasts"`
	// deadline (start, stop and correlate as in absence)
	DueField string    `yaml:"due"`
	DueAfter Duration  `yaml:"due_after"`
	Stages   []Stage   `yaml:"stages"`
	DueOf    DueGetter `yaml:"-"`
	// calendar (and lasts)
	DateField string         `yaml:"date"`
	Repeat    string         `yaml:"repeat"`
	At        string         `yaml:"at"`
	Offset    SignedDuration `yaml:"offset"`
	AtMin     int            `yaml:"-"` // At in minutes after local midnight
	DateOf    ProfileGetter  `yaml:"-"`

	// CustomerLabels are profile fields copied into the labels of each
	// firing record (SPEC §3), compiled into CustomerFields.
	CustomerLabels []string       `yaml:"customer_labels"`
	CustomerFields []ProfileField `yaml:"-"`

	// Lifecycle options (threshold, ratio, drop): keep firing this long
	// after the condition stops, and resolve only once the value crosses
	// ResolveThreshold (for drop, a percentage like drop_pct).
	KeepFiringFor    Duration `yaml:"keep_firing_for"`
	ResolveThreshold *float64 `yaml:"resolve_threshold"`

	// ForWindows is For in windows (drop, ratio); ForDur is For as a
	// duration (threshold, inactivity, absence). Set by Parse.
	ForWindows int           `yaml:"-"`
	ForDur     time.Duration `yaml:"-"`
	// Resolve reports whether a value still counts as breaching for an
	// alert that is firing: Compare with ResolveThreshold when given.
	Resolve func(v, t float64) bool `yaml:"-"`

	// Compiled forms, set by Parse.
	Matcher     *Matcher                `yaml:"-"`
	Fields      []Field                 `yaml:"-"` // key / group_by / correlate
	Agg         Aggregation             `yaml:"-"`
	NumMatch    *Matcher                `yaml:"-"`
	DenMatch    *Matcher                `yaml:"-"`
	StartMatch  *Matcher                `yaml:"-"`
	StopMatch   *Matcher                `yaml:"-"`
	Compare     func(v, t float64) bool `yaml:"-"`
	annotations map[string]*template.Template
	// opGiven and thresholdGiven record that the keys are present, so
	// that an empty value is refused rather than taken as missing.
	opGiven, thresholdGiven bool
	// defaultLoc is defaults.timezone, for dates without a zone.
	defaultLoc *time.Location
}

// Baseline is a drop rule's reference: the mean of the N preceding windows,
// or of the same window in the N preceding seasons.
type Baseline struct {
	Windows int      `yaml:"windows"`
	Season  Duration `yaml:"season"`
	Seasons int      `yaml:"seasons"`
}

// Aggregation is a compiled `value`: count, sum(field) or distinct(field).
type Aggregation struct {
	Op    string // count, sum, distinct
	Num   NumGetter
	Field Field
}

// Policy is one resend policy (SPEC §3.2).
type Policy struct {
	Name             string      `yaml:"name"`
	Channel          string      `yaml:"channel"`
	On               []string    `yaml:"on"`
	UndeliveredAfter Duration    `yaml:"undelivered_after"`
	MaxAttempts      int         `yaml:"max_attempts"`
	Backoff          Backoff     `yaml:"backoff"`
	QuietHours       *QuietHours `yaml:"quiet_hours"`
	SuppressOn       []string    `yaml:"suppress_on"`
	// SuppressOnInteractions are interaction types that suppress every
	// channel of the customer (default [unsubscribe]).
	SuppressOnInteractions []string      `yaml:"suppress_on_interactions"`
	FrequencyCap           *FrequencyCap `yaml:"frequency_cap"`
	Fallback               *Fallback     `yaml:"fallback"`
}

// Backoff is the delay before attempt k+1: Initial × Multiplier^(k−1),
// capped at Max.
type Backoff struct {
	Initial    Duration `yaml:"initial"`
	Multiplier float64  `yaml:"multiplier"`
	Max        Duration `yaml:"max"`
}

// Delay is the backoff after attempt k (k ≥ 1). It never exceeds
// MaxDuration, whatever the multiplier and k: the float64 product is capped
// before it is converted, where a value beyond int64 would wrap.
func (b Backoff) Delay(k int) time.Duration {
	limit := float64(MaxDuration)
	if b.Max > 0 {
		limit = float64(b.Max)
	}
	d := float64(b.Initial)
	// Past MaxAttempts no policy triggers, so the loop need not go further
	// (k comes from a receipt's attempt number).
	for i := 1; i < min(k, MaxAttempts+1) && d < limit; i++ {
		d *= b.Multiplier
	}
	if d >= limit || d != d {
		return time.Duration(limit)
	}
	return time.Duration(d)
}

// QuietHours is a daily [Start, End) interval of local time in which no
// resend may be scheduled; it wraps midnight when End ≤ Start.
type QuietHours struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
	// Minutes after local midnight, set by Parse.
	StartMin, EndMin int `yaml:"-"`
}

// FrequencyCap limits resend triggers per customer over all policies.
type FrequencyCap struct {
	Max int      `yaml:"max"`
	Per Duration `yaml:"per"`
}

// Fallback switches attempts numbered above AfterAttempts to Channel.
type Fallback struct {
	AfterAttempts int    `yaml:"after_attempts"`
	Channel       string `yaml:"channel"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9_]+$`)

var commonKeys = []string{"name", "kind", "source", "match", "severity", "labels", "annotations", "for", "customer_labels"}

var kindKeys = map[string][]string{
	KindInactivity: {"key", "idle_for"},
	KindDrop:       {"group_by", "window", "value", "baseline", "drop_pct", "min_baseline", "keep_firing_for", "resolve_threshold"},
	KindThreshold:  {"group_by", "window", "value", "op", "threshold", "keep_firing_for", "resolve_threshold"},
	KindRatio:      {"group_by", "window", "numerator", "denominator", "op", "threshold", "min_denominator", "keep_firing_for", "resolve_threshold"},
	KindAbsence:    {"start", "stop", "correlate", "within"},
	KindEvent:      {"group_by", "lasts"},
	KindDeadline:   {"start", "stop", "correlate", "due", "due_after", "stages"},
	KindCalendar:   {"date", "repeat", "at", "offset", "lasts"},
}

// ForSpec is a `for` value: an integer count of windows or a duration.
type ForSpec struct {
	Windows int
	Dur     Duration
	Set     bool
}

// UnmarshalYAML accepts `for: 3` and `for: 15m`.
func (f *ForSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a number of windows or a duration")
	}
	f.Set = true
	if n.Tag == "!!int" {
		return n.Decode(&f.Windows)
	}
	return f.Dur.UnmarshalText([]byte(n.Value))
}

var policyKeys = []string{"name", "channel", "on", "undelivered_after", "max_attempts", "backoff", "quiet_hours", "suppress_on", "suppress_on_interactions", "frequency_cap", "fallback"}

// Load reads and parses a rules file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading rules file: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("rules file %s: %w", path, err)
	}
	return f, nil
}

// Parse parses, validates and compiles a rules file. The error joins every
// problem found, each naming the rule (or policy) and the field.
func Parse(data []byte) (*File, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("not a YAML document: %w", err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a YAML mapping at the top level")
	}
	top := root.Content[0]
	var errs []error
	if err := checkKeys(top, []string{"version", "defaults", "rules", "resend", "segments", "digests"}); err != nil {
		errs = append(errs, fmt.Errorf("top level: %w", err))
	}
	f := &File{}
	sum := sha256.Sum256(data)
	f.Hash = hex.EncodeToString(sum[:8])

	var digestsNode *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i].Value, top.Content[i+1]
		switch k {
		case "digests":
			digestsNode = v // decoded once defaults.timezone is known
		case "version":
			if err := v.Decode(&f.Version); err != nil {
				errs = append(errs, fmt.Errorf("field version: %w", yamlErr(err)))
			}
		case "defaults":
			if err := checkKeys(v, []string{"timezone", "allowed_lateness"}); err != nil {
				errs = append(errs, fmt.Errorf("defaults: %w", err))
			} else if err := checkDurations(v, "allowed_lateness"); err != nil {
				errs = append(errs, fmt.Errorf("defaults: %w", err))
			} else if err := v.Decode(&f.Defaults); err != nil {
				errs = append(errs, fmt.Errorf("defaults: %w", yamlErr(err)))
			}
		case "rules":
			errs = append(errs, decodeList(v, "rule", func(i int, n *yaml.Node) error {
				r, err := decodeRule(n)
				if r != nil {
					f.Rules = append(f.Rules, r)
				}
				return err
			})...)
		case "resend":
			errs = append(errs, decodeList(v, "resend policy", func(i int, n *yaml.Node) error {
				p, err := decodePolicy(n)
				if p != nil {
					f.Resend = append(f.Resend, p)
				}
				return err
			})...)
		case "segments":
			errs = append(errs, decodeList(v, "segment set", func(i int, n *yaml.Node) error {
				s, err := decodeSegmentSet(n)
				if s != nil {
					f.Segments = append(f.Segments, s)
				}
				return err
			})...)
		}
	}
	if f.Version != 1 {
		errs = append(errs, fmt.Errorf("field version: must be 1, got %d", f.Version))
	}
	if f.Defaults.AllowedLateness == 0 {
		f.Defaults.AllowedLateness = Duration(DefaultAllowedLateness)
	}
	f.Defaults.Location = time.UTC
	if f.Defaults.Timezone != "" {
		loc, err := time.LoadLocation(f.Defaults.Timezone)
		if err != nil {
			errs = append(errs, fmt.Errorf("defaults: field timezone: unknown zone %q", f.Defaults.Timezone))
		} else {
			f.Defaults.Location = loc
		}
	}
	seen := map[string]bool{}
	for _, r := range f.Rules {
		r.defaultLoc = f.Defaults.Location
		if r.Name != "" && seen[r.Name] {
			errs = append(errs, fmt.Errorf("rule %q: field name: duplicate rule name", r.Name))
		}
		seen[r.Name] = true
	}
	if digestsNode != nil {
		errs = append(errs, decodeList(digestsNode, "digest", func(i int, n *yaml.Node) error {
			d, err := decodeDigest(n, f.Defaults.Location)
			if d != nil {
				f.Digests = append(f.Digests, d)
			}
			return err
		})...)
		errs = append(errs, validateDigests(f)...)
	}
	seenP := map[string]bool{}
	for _, p := range f.Resend {
		if p.Name != "" && seenP[p.Name] {
			errs = append(errs, fmt.Errorf("resend policy %q: field name: duplicate policy name", p.Name))
		}
		seenP[p.Name] = true
	}
	errs = append(errs, checkSegments(f)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

func decodeList(v *yaml.Node, what string, each func(int, *yaml.Node) error) []error {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return []error{fmt.Errorf("line %d: %ss must be a list", v.Line, what)}
	}
	var errs []error
	for i, n := range v.Content {
		if n.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%s #%d (line %d): must be a mapping", what, i+1, n.Line))
			continue
		}
		if err := each(i, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func mapValue(n *yaml.Node, key string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func checkKeys(n *yaml.Node, allowed []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: must be a mapping", n.Line)
	}
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if !slices.Contains(allowed, k) {
			errs = append(errs, fmt.Errorf("field %s: unknown field (line %d)", k, n.Content[i].Line))
		}
		if seen[k] {
			errs = append(errs, fmt.Errorf("field %s: given twice (line %d)", k, n.Content[i].Line))
		}
		seen[k] = true
	}
	return errors.Join(errs...)
}

// yamlErr turns yaml.v3's type errors into one line without its prefix.
func yamlErr(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

func decodeRule(n *yaml.Node) (*Rule, error) {
	name := mapValue(n, "name")
	label := fmt.Sprintf("rule %q", name)
	if name == "" {
		label = fmt.Sprintf("rule at line %d", n.Line)
	}
	wrap := func(err error) error { return fmt.Errorf("%s: %w", label, err) }
	kind := mapValue(n, "kind")
	params, ok := kindKeys[kind]
	if !ok {
		if kind == "" {
			return nil, wrap(errors.New("field kind: missing required field"))
		}
		return nil, wrap(fmt.Errorf("field kind: unknown kind %q (want %s)", kind, strings.Join(kindNames(), ", ")))
	}
	if err := checkKeys(n, append(slices.Clone(commonKeys), params...)); err != nil {
		return nil, wrap(err)
	}
	if err := checkDurations(n, durationPaths...); err != nil {
		return nil, wrap(err)
	}
	r := &Rule{}
	if err := n.Decode(r); err != nil {
		return nil, wrap(yamlErr(err))
	}
	if err := r.compile(n); err != nil {
		return nil, wrap(err)
	}
	return r, nil
}

func has(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

func (r *Rule) compile(n *yaml.Node) error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("field %s: %s", field, fmt.Sprintf(format, args...)))
	}
	require := func(keys ...string) {
		for _, k := range keys {
			if !has(n, k) {
				fail(k, "missing required parameter for kind %s", r.Kind)
			}
		}
	}
	if r.Name == "" {
		fail("name", "missing required field")
	} else if !nameRE.MatchString(r.Name) {
		fail("name", "%q must match [a-z0-9_]+", r.Name)
	}
	checkFinite(r, fail)
	checkWindow("window", r.Window, fail)
	switch r.Source {
	case SourceInteractions, SourceReceipts:
		if r.Kind == KindCalendar {
			fail("source", "a calendar rule reads profiles: source must be customers")
			return errors.Join(errs...)
		}
	case SourceCustomers:
		if r.Kind != KindCalendar {
			fail("source", "only calendar rules read source customers")
			return errors.Join(errs...)
		}
	case SourceSegments:
		r.checkSegmentSource(fail)
	case "":
		fail("source", "missing required field (interactions or receipts)")
		return errors.Join(errs...)
	default:
		fail("source", "unknown source %q (want interactions or receipts)", r.Source)
		return errors.Join(errs...)
	}
	m, err := compileMatch(r.Source, r.Match)
	if err != nil {
		fail("match", "%v", err)
	}
	r.Matcher = m
	compileFields := func(field string, paths []string) {
		if len(paths) == 0 {
			fail(field, "must list at least one field")
			return
		}
		for _, p := range paths {
			f, err := CompileField(r.Source, p)
			if err != nil {
				fail(field, "%v", err)
				continue
			}
			if f.Customer && field != "group_by" {
				// A key must not change when a profile does.
				fail(field, "%q reads the customer profile: customer.* paths are allowed in match and group_by, not in %s", p, field)
				continue
			}
			r.Fields = append(r.Fields, f)
		}
	}
	positive := func(field string, d Duration) {
		if has(n, field) && d <= 0 {
			fail(field, "must be a positive duration")
		}
	}
	switch r.Kind {
	case KindInactivity:
		require("key", "idle_for")
		compileFields("key", r.Key)
		positive("idle_for", r.IdleFor)
	case KindDrop:
		require("group_by", "window", "value", "baseline", "drop_pct")
		compileFields("group_by", r.GroupBy)
		positive("window", r.Window)
		if has(n, "value") {
			r.compileValue(fail, false)
		}
		if r.DropPct <= 0 || r.DropPct > 100 {
			fail("drop_pct", "must be in (0, 100], got %g", r.DropPct)
		}
		if r.MinBaseline < 0 {
			fail("min_baseline", "must not be negative")
		}
		if b := r.Baseline; b != nil {
			switch {
			case b.Windows > 0 && (b.Season > 0 || b.Seasons > 0):
				fail("baseline", "give either windows or season+seasons, not both")
			case b.Windows > 0:
				if b.Windows > MaxBaselineBuckets {
					fail("baseline.windows", "%d windows is more than the limit of %d", b.Windows, MaxBaselineBuckets)
				}
			case b.Season > 0 && b.Seasons > 0:
				if r.Window > 0 && (b.Season.D()%r.Window.D() != 0) {
					fail("baseline.season", "must be a multiple of window %s", r.Window)
				} else if r.Window > 0 {
					// Compare in float64: season/window × seasons can exceed int64.
					if n := float64(b.Season.D()/r.Window.D()) * float64(b.Seasons); n > MaxBaselineBuckets {
						fail("baseline", "season %s / window %s × seasons %d is %.0f windows, more than the limit of %d",
							b.Season, r.Window, b.Seasons, n, MaxBaselineBuckets)
					}
				}
			default:
				fail("baseline", "needs windows: N, or season: D with seasons: N")
			}
		}
	case KindThreshold:
		require("group_by", "window", "value", "op", "threshold")
		r.opGiven, r.thresholdGiven = has(n, "op"), has(n, "threshold")
		compileFields("group_by", r.GroupBy)
		positive("window", r.Window)
		if has(n, "value") {
			r.compileValue(fail, true)
		}
		r.compileOp(fail)
	case KindRatio:
		require("group_by", "window", "numerator", "denominator", "op", "threshold")
		r.opGiven, r.thresholdGiven = has(n, "op"), has(n, "threshold")
		compileFields("group_by", r.GroupBy)
		positive("window", r.Window)
		r.compileOp(fail)
		if r.NumMatch, err = compileMatch(r.Source, r.Numerator); err != nil {
			fail("numerator", "%v", err)
		}
		if r.DenMatch, err = compileMatch(r.Source, r.Denominator); err != nil {
			fail("denominator", "%v", err)
		}
		if r.MinDenominator < 0 {
			fail("min_denominator", "must not be negative")
		}
	case KindEvent:
		require("group_by")
		compileFields("group_by", r.GroupBy)
		positive("lasts", r.Lasts)
		if r.Lasts == 0 {
			r.Lasts = Duration(DefaultEventLasts)
		}
		if r.For.Set {
			fail("for", "not a parameter of kind event (every matching record fires at once)")
		}
	case KindCalendar:
		r.compileCalendar(func(k string) bool { return has(n, k) }, fail)
	case KindDeadline:
		require("start", "stop", "correlate", "stages")
		compileFields("correlate", r.Correlate)
		if r.StartMatch, err = compileMatch(r.Source, r.Start); err != nil {
			fail("start", "%v", err)
		}
		if r.StopMatch, err = compileMatch(r.Source, r.Stop); err != nil {
			fail("stop", "%v", err)
		}
		if r.For.Set {
			fail("for", "not a parameter of kind deadline (its stages say when it fires)")
		}
		checkStageKeys(n, fail)
		r.compileDeadline(fail)
		r.compileDue(fail, has(n, "due"), has(n, "due_after"))
	case KindAbsence:
		require("start", "stop", "correlate", "within")
		compileFields("correlate", r.Correlate)
		positive("within", r.Within)
		if len(r.Start) == 0 && has(n, "start") {
			fail("start", "must list at least one condition")
		}
		if len(r.Stop) == 0 && has(n, "stop") {
			fail("stop", "must list at least one condition")
		}
		if r.StartMatch, err = compileMatch(r.Source, r.Start); err != nil {
			fail("start", "%v", err)
		}
		if r.StopMatch, err = compileMatch(r.Source, r.Stop); err != nil {
			fail("stop", "%v", err)
		}
	}
	r.compileLifecycle(fail)
	r.compileCustomerLabels(fail)
	r.annotations = map[string]*template.Template{}
	for k, v := range r.Annotations {
		t, err := template.New(k).Option("missingkey=zero").Funcs(templateFuncs).Parse(v)
		if err != nil {
			fail("annotations."+k, "bad template: %v", err)
			continue
		}
		if err := checkTemplate(v, t); err != nil {
			fail("annotations."+k, "template not allowed: %v", err)
			continue
		}
		r.annotations[k] = t
	}
	for k := range r.Labels {
		if !labelNameRE.MatchString(k) {
			fail("labels."+k, "label names must match [a-zA-Z_][a-zA-Z0-9_]*")
		}
	}
	return errors.Join(errs...)
}

// kindNames lists the detector kinds, for messages.
func kindNames() []string { return slices.Sorted(maps.Keys(kindKeys)) }

// hasCustomerID says whether the rule's key, group_by or correlate holds
// customer_id, which customer_labels need: the labels come from one
// customer's profile.
func (r *Rule) hasCustomerID() bool {
	return slices.ContainsFunc(r.Fields, func(f Field) bool { return f.Path == "customer_id" })
}

// compileCustomerLabels compiles customer_labels and refuses two fields of
// the rule that would give one label name (SPEC §3).
func (r *Rule) compileCustomerLabels(fail func(string, string, ...any)) {
	if len(r.CustomerLabels) > 0 && !r.hasCustomerID() {
		fail("customer_labels", "needs customer_id in the rule's key, group_by or correlate (the labels come from that customer's profile)")
	}
	for _, p := range r.CustomerLabels {
		pf, err := CompileProfileField(strings.TrimPrefix(p, CustomerPrefix))
		if err != nil {
			fail("customer_labels", "%v", err)
			continue
		}
		r.CustomerFields = append(r.CustomerFields, pf)
	}
	owner := map[string]string{"alertname": "the alert name"}
	if r.Kind == KindDeadline {
		owner["stage"] = "the stage label"
	}
	claim := func(field, path, label string) {
		if prev, ok := owner[label]; ok {
			fail(field, "%q gives label %q, as %s does", path, label, prev)
			return
		}
		owner[label] = fmt.Sprintf("%q", path)
	}
	fieldParam := map[string]string{KindInactivity: "key", KindAbsence: "correlate", KindDeadline: "correlate"}[r.Kind]
	if fieldParam == "" {
		fieldParam = "group_by"
	}
	for _, f := range r.Fields {
		claim(fieldParam, f.Path, f.Label)
	}
	for _, f := range r.CustomerFields {
		claim("customer_labels", f.Path, f.Label)
	}
}

func (r *Rule) compileLifecycle(fail func(string, string, ...any)) {
	switch r.Kind {
	case KindDrop, KindRatio:
		r.ForWindows = 1
		switch {
		case !r.For.Set:
		case r.For.Dur > 0:
			if r.Window <= 0 || r.For.Dur.D()%r.Window.D() != 0 {
				fail("for", "a duration for a %s rule must be a multiple of window %s", r.Kind, r.Window)
			} else {
				r.ForWindows = int(r.For.Dur.D() / r.Window.D())
			}
		case r.For.Windows >= 1:
			r.ForWindows = r.For.Windows
		default:
			fail("for", "must be a positive number of windows")
		}
	default:
		if r.For.Set {
			if r.For.Dur <= 0 || r.For.Windows != 0 {
				fail("for", "must be a positive duration for a %s rule", r.Kind)
			}
			r.ForDur = r.For.Dur.D()
		}
	}
	if r.KeepFiringFor < 0 {
		fail("keep_firing_for", "must not be negative")
	}
	r.Resolve = r.Compare
	if rt := r.ResolveThreshold; rt != nil {
		switch r.Kind {
		case KindThreshold, KindRatio:
			if r.Compare != nil && r.Threshold != nil && r.Compare(*rt, *r.Threshold) {
				fail("resolve_threshold", "%g would itself breach threshold %g: hysteresis needs a level on the other side", *rt, *r.Threshold)
			}
			switch r.Op {
			case ">":
				r.Resolve = func(v, _ float64) bool { return v > *rt }
			case ">=":
				r.Resolve = func(v, _ float64) bool { return v >= *rt }
			case "<":
				r.Resolve = func(v, _ float64) bool { return v < *rt }
			case "<=":
				r.Resolve = func(v, _ float64) bool { return v <= *rt }
			}
		case KindDrop:
			if *rt <= 0 || *rt >= r.DropPct {
				fail("resolve_threshold", "for a drop rule it is a percentage below drop_pct (%g), got %g", r.DropPct, *rt)
			}
		}
	}
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (r *Rule) compileValue(fail func(string, string, ...any), allowDistinct bool) {
	v := strings.ReplaceAll(r.Value, " ", "")
	switch {
	case v == "count":
		r.Agg = Aggregation{Op: "count"}
	case strings.HasPrefix(v, "sum(") && strings.HasSuffix(v, ")"):
		g, err := CompileNumber(r.Source, v[4:len(v)-1])
		if err != nil {
			fail("value", "%v", err)
			return
		}
		r.Agg = Aggregation{Op: "sum", Num: g}
	case allowDistinct && strings.HasPrefix(v, "distinct(") && strings.HasSuffix(v, ")"):
		f, err := CompileField(r.Source, v[9:len(v)-1])
		if err != nil {
			fail("value", "%v", err)
			return
		}
		r.Agg = Aggregation{Op: "distinct", Field: f}
	default:
		if allowDistinct {
			fail("value", "unknown value %q (want count, sum(field) or distinct(field))", r.Value)
		} else {
			fail("value", "unknown value %q (want count or sum(amount))", r.Value)
		}
	}
}

func (r *Rule) compileOp(fail func(string, string, ...any)) {
	switch r.Op {
	case ">":
		r.Compare = func(v, t float64) bool { return v > t }
	case ">=":
		r.Compare = func(v, t float64) bool { return v >= t }
	case "<":
		r.Compare = func(v, t float64) bool { return v < t }
	case "<=":
		r.Compare = func(v, t float64) bool { return v <= t }
	case "":
		// missing is reported by require; given but empty (`op:`) would
		// leave the rule without a comparison
		if r.opGiven {
			fail("op", "empty operator (want >, >=, < or <=)")
		}
	default:
		fail("op", "unknown operator %q (want >, >=, < or <=)", r.Op)
	}
	if r.thresholdGiven && r.Threshold == nil {
		fail("threshold", "must be a number")
	}
}

// ThresholdValue is the rule's threshold (0 when unset).
func (r *Rule) ThresholdValue() float64 {
	if r.Threshold == nil {
		return 0
	}
	return *r.Threshold
}

// RenderAnnotations expands the rule's annotation templates for an alert.
// A template that fails at run time keeps its raw text, so an alert is
// never lost to a typo in an annotation. One whose output would pass
// MaxAnnotationBytes is cut there and ends with TruncatedMarker.
func (r *Rule) RenderAnnotations(labels map[string]string, value float64) map[string]string {
	out := make(map[string]string, len(r.Annotations))
	data := struct {
		Labels map[string]string
		Value  float64
	}{labels, value}
	w := capWriter{max: MaxAnnotationBytes}
	for k, raw := range r.Annotations {
		t := r.annotations[k]
		w.buf = w.buf[:0]
		if t == nil {
			out[k] = raw
			continue
		}
		switch err := t.Execute(&w, data); {
		case err == nil:
			out[k] = string(w.buf)
		case errors.Is(err, errBudget):
			out[k] = truncated(w.buf)
		default:
			out[k] = raw
		}
	}
	return out
}

func decodePolicy(n *yaml.Node) (*Policy, error) {
	name := mapValue(n, "name")
	label := fmt.Sprintf("resend policy %q", name)
	if name == "" {
		label = fmt.Sprintf("resend policy at line %d", n.Line)
	}
	wrap := func(err error) error { return fmt.Errorf("%s: %w", label, err) }
	if err := checkKeys(n, policyKeys); err != nil {
		return nil, wrap(err)
	}
	for _, sub := range []struct {
		key  string
		keys []string
	}{
		{"backoff", []string{"initial", "multiplier", "max"}},
		{"quiet_hours", []string{"start", "end"}},
		{"frequency_cap", []string{"max", "per"}},
		{"fallback", []string{"after_attempts", "channel"}},
	} {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == sub.key {
				if err := checkKeys(n.Content[i+1], sub.keys); err != nil {
					return nil, wrap(fmt.Errorf("%s: %w", sub.key, err))
				}
			}
		}
	}
	if err := checkDurations(n, durationPaths...); err != nil {
		return nil, wrap(err)
	}
	p := &Policy{}
	if err := n.Decode(p); err != nil {
		return nil, wrap(yamlErr(err))
	}
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("field %s: %s", field, fmt.Sprintf(format, args...)))
	}
	checkFinite(p, fail)
	if p.Name == "" {
		fail("name", "missing required field")
	} else if !nameRE.MatchString(p.Name) {
		fail("name", "%q must match [a-z0-9_]+", p.Name)
	}
	if p.Channel == "" {
		fail("channel", "missing required field")
	}
	if len(p.On) == 0 {
		fail("on", "must list at least one status")
	}
	for _, s := range p.On {
		if !slices.Contains(failureStatuses, s) {
			fail("on", "unknown failure status %q (want one of %s)", s, strings.Join(failureStatuses, ", "))
		}
	}
	if slices.Contains(p.On, "undelivered") && p.UndeliveredAfter <= 0 {
		fail("undelivered_after", "required (a positive duration) when on lists undelivered")
	}
	for _, s := range p.SuppressOn {
		if !slices.Contains(AllStatuses, s) {
			fail("suppress_on", "unknown status %q", s)
		}
	}
	if p.SuppressOnInteractions == nil {
		p.SuppressOnInteractions = []string{"unsubscribe"}
	}
	for _, s := range p.SuppressOnInteractions {
		if s == "" {
			fail("suppress_on_interactions", "an interaction type must not be empty")
		}
	}
	if p.MaxAttempts < 1 {
		fail("max_attempts", "must be at least 1")
	} else if p.MaxAttempts > MaxAttempts {
		fail("max_attempts", "%d is more than the limit of %d", p.MaxAttempts, MaxAttempts)
	}
	if p.Backoff.Multiplier == 0 {
		p.Backoff.Multiplier = 1
	}
	if p.Backoff.Multiplier < 1 {
		fail("backoff.multiplier", "must be at least 1")
	}
	if p.Backoff.Max > 0 && p.Backoff.Max < p.Backoff.Initial {
		fail("backoff.max", "is less than backoff.initial")
	}
	if q := p.QuietHours; q != nil {
		var err error
		if q.StartMin, err = parseClock(q.Start); err != nil {
			fail("quiet_hours.start", "%v", err)
		}
		if q.EndMin, err = parseClock(q.End); err != nil {
			fail("quiet_hours.end", "%v", err)
		}
		if err == nil && q.StartMin == q.EndMin {
			fail("quiet_hours", "start and end are equal")
		}
	}
	if c := p.FrequencyCap; c != nil {
		if c.Max < 1 {
			fail("frequency_cap.max", "must be at least 1")
		}
		if c.Per <= 0 {
			fail("frequency_cap.per", "must be a positive duration")
		}
	}
	if fb := p.Fallback; fb != nil {
		if fb.Channel == "" {
			fail("fallback.channel", "missing required field")
		}
		if fb.AfterAttempts < 1 {
			fail("fallback.after_attempts", "must be at least 1")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, wrap(err)
	}
	return p, nil
}

// AllStatuses are the receipt statuses of SPEC §1.2.
var AllStatuses = []string{"sent", "delivered", "opened", "clicked", "soft_bounce", "hard_bounce", "failed", "rejected", "complained", "unsubscribed"}

var failureStatuses = []string{"soft_bounce", "hard_bounce", "failed", "rejected", "complained", "unsubscribed", "undelivered"}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a HH:MM time", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

func sortStrings(s []string) { slices.Sort(s) }

// ReadsRecordProfile reports whether the rule reads customer.* from the
// records it is fed (its match, start, stop, numerator, denominator, key,
// group_by or correlate, or a deadline's date-only due, which is midnight
// in the customer's zone), so that each record needs the profile current
// at its time. customer_labels are read when an alert fires, not per record.
func (r *Rule) ReadsRecordProfile() bool {
	if r.Kind == KindDeadline && r.DueField != "" {
		return true
	}
	for _, m := range []*Matcher{r.Matcher, r.NumMatch, r.DenMatch, r.StartMatch, r.StopMatch} {
		if m.ReadsProfile() {
			return true
		}
	}
	return slices.ContainsFunc(r.Fields, func(f Field) bool { return f.Customer })
}

// ReadsRecordProfiles reports whether anything in the file reads customer.*
// from the records themselves: a rule (ReadsRecordProfile) or a segment
// set's track or purchase match. An engine whose rules do not skips the
// per-record profile lookup.
func (f *File) ReadsRecordProfiles() bool {
	for _, r := range f.Rules {
		if r.Source != SourceSegments && r.ReadsRecordProfile() {
			return true
		}
	}
	for _, s := range f.Segments {
		if s.TrackMatch.ReadsProfile() || s.PurchaseMatch.ReadsProfile() {
			return true
		}
	}
	return false
}
