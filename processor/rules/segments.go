package rules

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/crmpulse/crmpulse/ingest"
)

// SourceSegments is the source of rules on segment transitions (SPEC §3,
// §3.3): the records a segment set emits when a key changes class.
const SourceSegments = "segments"

// SegmentKinds are the detector kinds that may read source segments (SPEC
// §3: "event and threshold rules"); the engine side needs the kind's
// component to implement processor.segmentReader.
var SegmentKinds = []string{KindEvent, KindThreshold}

// Conditions of a segment class (SPEC §3.3).
const (
	CondMinCount     = "min_count"
	CondMaxCount     = "max_count"
	CondMinAmount    = "min_amount"
	CondMaxTotal     = "max_total"
	CondRecencyUnder = "recency_under"
	CondRecencyOver  = "recency_over"
	CondTenureUnder  = "tenure_under"
)

var segmentKeys = []string{"name", "key", "track", "purchase", "window", "classes"}

var classKeys = []string{"name", CondMinCount, CondMaxCount, CondMinAmount, CondMaxTotal, CondRecencyUnder, CondRecencyOver, CondTenureUnder}

// SegmentSet is one entry of the `segments:` section: a key, which
// interactions make a key known and which count as purchases, a look-back
// window and classes tried in order.
type SegmentSet struct {
	Name     string              `yaml:"name"`
	Key      []string            `yaml:"key"`
	Track    map[string][]string `yaml:"track"`
	Purchase map[string][]string `yaml:"purchase"`
	Window   Duration            `yaml:"window"`
	Classes  []*Class            `yaml:"classes"`

	// Compiled forms, set by Parse.
	Fields        []Field  `yaml:"-"` // key
	TrackMatch    *Matcher `yaml:"-"` // nil: every interaction
	PurchaseMatch *Matcher `yaml:"-"`
	// UsesWindow is set when a class reads count or amount, so the set
	// must keep each key's purchases within the look-back.
	UsesWindow bool `yaml:"-"`
	// TenantField and CustomerField are the indexes of tenant and
	// customer_id in Fields (TenantField −1 when the key has no tenant).
	TenantField, CustomerField int `yaml:"-"`
}

// Class is one class of a segment set; a nil condition is absent. Counts
// are integers, durations positive; all given conditions must hold.
type Class struct {
	Name         string    `yaml:"name"`
	MinCount     *int64    `yaml:"min_count"`
	MaxCount     *int64    `yaml:"max_count"`
	MinAmount    *float64  `yaml:"min_amount"`
	MaxTotal     *int64    `yaml:"max_total"`
	RecencyUnder *Duration `yaml:"recency_under"`
	RecencyOver  *Duration `yaml:"recency_over"`
	TenureUnder  *Duration `yaml:"tenure_under"`
}

// HasCondition reports whether c has at least one condition.
func (c *Class) HasCondition() bool {
	return c.MinCount != nil || c.MaxCount != nil || c.MinAmount != nil || c.MaxTotal != nil ||
		c.RecencyUnder != nil || c.RecencyOver != nil || c.TenureUnder != nil
}

// SegmentRecord is a segment transition as rules on source segments read
// it (SPEC §3): its set, the classes (From "" is the null of a key's first
// class), tenant, customer and the key's fields by path.
type SegmentRecord struct {
	SegmentSet string
	From, To   string
	Tenant     string
	CustomerID string
	KeyPaths   []string
	KeyValues  []string
	// Profile is the customer's profile version current at the
	// transition's instant (SPEC §1.3), for customer.* paths; nil if none.
	Profile *ingest.Profile
}

// keyField reads a key field by its path, "" when the key has no such field.
func (s *SegmentRecord) keyField(path string) string {
	for i, p := range s.KeyPaths {
		if p == path {
			return s.KeyValues[i]
		}
	}
	return ""
}

var segmentFields = map[string]Getter{
	"segment_set": func(e Event) string { return e.S.SegmentSet },
	"from":        func(e Event) string { return e.S.From },
	"to":          func(e Event) string { return e.S.To },
	"tenant":      func(e Event) string { return e.S.Tenant },
	"customer_id": func(e Event) string { return e.S.CustomerID },
}

// compileSegmentField resolves a path of a transition record: its own
// fields, or any interaction field path, read from the key (empty when the
// transition's key does not have it, as for a segment set keyed otherwise).
func compileSegmentField(path string) (Field, error) {
	if g, ok := segmentFields[path]; ok {
		return Field{Path: path, Label: path, Get: g}, nil
	}
	f, err := CompileField(SourceInteractions, path)
	if err != nil {
		return Field{}, fmt.Errorf("unknown event field %q for source segments (want segment_set, from, to, tenant, customer_id or a key field)", path)
	}
	return Field{Path: path, Label: f.Label, Get: func(e Event) string { return e.S.keyField(path) }}, nil
}

// decodeSegmentSet decodes and validates one segment set; errors name the
// set and the field.
func decodeSegmentSet(n *yaml.Node) (*SegmentSet, error) {
	name := mapValue(n, "name")
	label := fmt.Sprintf("segment set %q", name)
	if name == "" {
		label = fmt.Sprintf("segment set at line %d", n.Line)
	}
	wrap := func(err error) error { return fmt.Errorf("%s: %w", label, err) }
	if err := checkKeys(n, segmentKeys); err != nil {
		return nil, wrap(err)
	}
	if err := checkDurations(n, "window"); err != nil {
		return nil, wrap(err)
	}
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("field %s: %s", field, fmt.Sprintf(format, args...)))
	}
	// Classes are checked node by node first, so that an error names the
	// class and field rather than a line of the whole set.
	if cn := lookup(n, "classes"); cn != nil && cn.Kind == yaml.SequenceNode {
		for i, c := range cn.Content {
			field := fmt.Sprintf("classes[%d]", i)
			if c.Kind != yaml.MappingNode {
				fail(field, "must be a mapping")
				continue
			}
			if err := checkKeys(c, classKeys); err != nil {
				fail(field, "%v", err)
			}
			if err := checkDurations(c, CondRecencyUnder, CondRecencyOver, CondTenureUnder); err != nil {
				fail(field, "%v", err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, wrap(err)
	}
	s := &SegmentSet{}
	if err := n.Decode(s); err != nil {
		return nil, wrap(yamlErr(err))
	}
	s.compile(n, fail)
	if err := errors.Join(errs...); err != nil {
		return nil, wrap(err)
	}
	return s, nil
}

func (s *SegmentSet) compile(n *yaml.Node, fail func(field, format string, args ...any)) {
	checkFinite(s, fail)
	if s.Name == "" {
		fail("name", "missing required field")
	} else if !nameRE.MatchString(s.Name) {
		fail("name", "%q must match [a-z0-9_]+", s.Name)
	}
	s.TenantField, s.CustomerField = -1, -1
	if len(s.Key) == 0 {
		fail("key", "must list at least one field, customer_id among them")
	}
	labels := map[string]bool{}
	for _, p := range s.Key {
		if strings.HasPrefix(p, "customer.") {
			fail("key", "%q reads the customer's profile, which may change; a key must not", p)
			continue
		}
		f, err := CompileField(SourceInteractions, p)
		if err != nil {
			fail("key", "%v", err)
			continue
		}
		if labels[f.Label] {
			fail("key", "%q gives the label %q twice", p, f.Label)
			continue
		}
		labels[f.Label] = true
		switch p {
		case "tenant":
			s.TenantField = len(s.Fields)
		case "customer_id":
			s.CustomerField = len(s.Fields)
		}
		s.Fields = append(s.Fields, f)
	}
	if len(s.Key) > 0 && !slices.Contains(s.Key, "customer_id") {
		fail("key", "must contain customer_id")
	}
	var err error
	if has(n, "track") && len(s.Track) == 0 {
		fail("track", "must list at least one condition (leave it out to track every interaction)")
	}
	if s.TrackMatch, err = compileMatch(SourceInteractions, s.Track); err != nil {
		fail("track", "%v", err)
	}
	purchase := s.Purchase
	if !has(n, "purchase") {
		purchase = map[string][]string{"type": {"purchase"}}
	} else if len(purchase) == 0 {
		fail("purchase", "must list at least one condition (leave it out for type purchase)")
	}
	if s.PurchaseMatch, err = compileMatch(SourceInteractions, purchase); err != nil {
		fail("purchase", "%v", err)
	}
	if has(n, "window") {
		if s.Window <= 0 {
			fail("window", "must be a positive duration")
		}
		checkWindow("window", s.Window, fail)
	}
	if len(s.Classes) == 0 {
		fail("classes", "must list at least one class")
		return
	}
	names := map[string]bool{}
	for i, c := range s.Classes {
		field := func(f string) string { return fmt.Sprintf("classes[%d].%s", i, f) }
		switch {
		case c.Name == "":
			fail(field("name"), "missing required field")
		case !nameRE.MatchString(c.Name):
			fail(field("name"), "%q must match [a-z0-9_]+", c.Name)
		case names[c.Name]:
			fail(field("name"), "duplicate class name %q", c.Name)
		}
		names[c.Name] = true
		for _, bad := range nonFinite(reflect.ValueOf(c), "") {
			fail(field(bad), "must be a finite number")
		}
		for _, x := range []struct {
			name string
			v    *int64
		}{{CondMinCount, c.MinCount}, {CondMaxCount, c.MaxCount}, {CondMaxTotal, c.MaxTotal}} {
			if x.v != nil && *x.v < 0 {
				fail(field(x.name), "must not be negative, got %d", *x.v)
			}
		}
		if c.MinCount != nil && c.MaxCount != nil && *c.MinCount > *c.MaxCount {
			fail(field(CondMaxCount), "%d is below min_count %d: the class can never match", *c.MaxCount, *c.MinCount)
		}
		for _, x := range []struct {
			name string
			v    *Duration
		}{{CondRecencyUnder, c.RecencyUnder}, {CondRecencyOver, c.RecencyOver}, {CondTenureUnder, c.TenureUnder}} {
			if x.v != nil && *x.v <= 0 {
				fail(field(x.name), "must be a positive duration")
			}
		}
		if c.RecencyUnder != nil && c.RecencyOver != nil && *c.RecencyOver >= *c.RecencyUnder {
			fail(field(CondRecencyOver), "%s is not below recency_under %s: the class can never match", *c.RecencyOver, *c.RecencyUnder)
		}
		if c.MinCount != nil || c.MaxCount != nil || c.MinAmount != nil {
			s.UsesWindow = true
			if !has(n, "window") {
				fail("window", "required: class %q uses count or amount, which are over the look-back window", c.Name)
			}
		}
		last := i == len(s.Classes)-1
		switch {
		case last && c.HasCondition():
			fail(field("name"), "the last class (%q) must have no condition, so that every key has a class", c.Name)
		case !last && !c.HasCondition():
			fail(field("name"), "class %q has no condition, so the classes after it can never match; only the last class may have none", c.Name)
		}
	}
}

// checkSegments checks what spans sections: unique set names, and rules on
// source segments in a file that has segment sets.
func checkSegments(f *File) []error {
	var errs []error
	seen := map[string]bool{}
	for _, s := range f.Segments {
		if s.Name != "" && seen[s.Name] {
			errs = append(errs, fmt.Errorf("segment set %q: field name: duplicate segment set name", s.Name))
		}
		seen[s.Name] = true
	}
	for _, r := range f.Rules {
		if r.Source == SourceSegments && len(f.Segments) == 0 {
			errs = append(errs, fmt.Errorf("rule %q: field source: segments, but the file has no segment sets", r.Name))
		}
	}
	return errs
}

// checkSegmentSource refuses source segments for kinds that cannot read it.
func (r *Rule) checkSegmentSource(fail func(field, format string, args ...any)) {
	if !slices.Contains(SegmentKinds, r.Kind) {
		fail("source", "kind %s cannot read source segments (want kind %s)", r.Kind, strings.Join(SegmentKinds, " or "))
	}
}
