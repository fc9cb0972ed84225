package rulestest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Limits that keep a mistyped `repeat` (or a fuzzer) from building a test
// that takes minutes: tests are meant to be small.
const (
	maxRecordsPerTest = 100_000
	maxRecordsPerFile = 200_000
	maxRecordBytes    = 1 << 20
	maxInputBytes     = 32 << 20 // JSON built for a whole file
	maxNesting        = 32
)

// Error is one problem in a test file, located by line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Suite is a parsed test file: the rules under test and the test cases.
type Suite struct {
	// Path is the test file's name as given, for messages.
	Path string
	// RuleFile is the rules file named by rule_file, relative to the test
	// file's directory as written; empty when the rules are inline.
	RuleFile string
	// Rules are the rules under test: loaded from RuleFile by Load, or
	// parsed from the inline `rules:` document by Parse.
	Rules *rules.File
	// Tests are the test cases in file order.
	Tests []*Test

	ruleFileLine int
}

// Test is one test case: input records, where the watermark goes, and what
// the engine must have produced.
type Test struct {
	Name string
	Line int
	// Start anchors relative times ("+2h"); zero when the test uses none.
	Start time.Time
	// Lateness overrides the rules file's allowed_lateness when set.
	Lateness *time.Duration
	// OnlyRules restricts expect_records and rule-less expect_alerts
	// entries to these rules' alerts; empty means every rule.
	OnlyRules []string
	// Watermark is where the watermark goes after the last record; zero
	// means the latest of the last record's time and the last check.
	Watermark time.Time

	records  []record
	checks   []*alertCheck
	expRecs  *listExpect[alertExpect]
	expResnd *listExpect[resendExpect]
	refs     []nameRef
}

// record is one input record, decoded by the production decoder.
type record struct {
	line int
	at   time.Time
	i    *ingest.Interaction
	r    *ingest.Receipt
	cu   *ingest.Customer // a profile version (SPEC §1.3)
}

// alertCheck is an expect_alerts entry: the set of alerts firing at a
// watermark.
type alertCheck struct {
	line   int
	at     time.Time // zero: at the end of the test
	rule   string    // empty: every rule (or only_rules)
	firing []alertExpect
}

// listExpect is an ordered list of expected records.
type listExpect[T any] struct {
	line  int
	items []T
}

// nameRef is a rule or policy name the test file refers to, checked
// against the rules once they are loaded.
type nameRef struct {
	line   int
	name   string
	policy bool
}

// Load reads a test file and the rules file it names (relative to the test
// file), and checks that every rule and policy it mentions exists.
func Load(path string) (*Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading test file: %w", err)
	}
	s, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if s.RuleFile != "" {
		p := s.RuleFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		f, err := rules.Load(p)
		if err != nil {
			return nil, &Error{File: path, Line: s.ruleFileLine, Msg: err.Error()}
		}
		s.Rules = f
		if err := s.checkNames(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Parse parses a test file without reading any other file: inline rules
// are parsed and names checked against them; a rule_file is left for Load.
// name is used in messages. The error joins every problem found, each an
// *Error with the line it is on.
func Parse(name string, data []byte) (*Suite, error) {
	p := &parser{file: name}
	s := p.parse(data)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	if s.Rules != nil {
		if err := s.checkNames(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkNames refuses references to rules or policies the rules lack, so a
// typo cannot make a check vacuous.
func (s *Suite) checkNames() error {
	ruleNames := map[string]bool{}
	for _, r := range s.Rules.Rules {
		ruleNames[r.Name] = true
	}
	policies := map[string]bool{}
	for _, p := range s.Rules.Resend {
		policies[p.Name] = true
	}
	var errs []error
	for _, t := range s.Tests {
		for _, ref := range t.refs {
			switch {
			case ref.policy && !policies[ref.name]:
				errs = append(errs, &Error{File: s.Path, Line: ref.line, Msg: fmt.Sprintf("test %q: no resend policy %q in the rules", t.Name, ref.name)})
			case !ref.policy && !ruleNames[ref.name]:
				errs = append(errs, &Error{File: s.Path, Line: ref.line, Msg: fmt.Sprintf("test %q: no rule %q in the rules", t.Name, ref.name)})
			}
		}
	}
	return errors.Join(errs...)
}

type parser struct {
	file string
	errs []*Error
	// Records and JSON bytes built so far, against the file-wide limits
	// (aliases can repeat a large test many times).
	records, inputBytes int
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) parse(data []byte) *Suite {
	s := &Suite{Path: p.file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		p.errs = append(p.errs, &Error{File: p.file, Line: yamlErrLine(err), Msg: "not a YAML document: " + err.Error()})
		return s
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.errf(&extra, "more than one YAML document; a test file is one")
	}
	if len(root.Content) == 0 {
		p.errf(&root, "empty test file")
		return s
	}
	top := root.Content[0]
	m := p.mapping(top, "test file", "rule_file", "rules", "tests")
	if m == nil {
		return s
	}
	rf, inline := m["rule_file"], m["rules"]
	switch {
	case rf != nil && inline != nil:
		p.errf(inline, "rule_file and rules: give one, not both")
	case rf != nil:
		s.RuleFile, _ = p.str(rf, "rule_file")
		s.ruleFileLine = rf.Line
	case inline != nil:
		s.Rules = p.inlineRules(data, top, inline)
	default:
		p.errf(top, "rule_file: missing (or inline rules: a rules document)")
	}
	tests := p.list(m["tests"], "tests")
	switch tn := m["tests"]; {
	case tn == nil:
		p.errf(top, "tests: missing")
	case tn.Kind == yaml.SequenceNode && len(tests) == 0:
		p.errf(tn, "tests: no test cases")
	}
	names := map[string]int{}
	for i, n := range tests {
		t := p.test(n, i)
		if t == nil {
			continue
		}
		if prev, ok := names[t.Name]; ok {
			p.errf(n, "test %q: name already used by the test on line %d", t.Name, prev)
		}
		names[t.Name] = t.Line
		s.Tests = append(s.Tests, t)
	}
	return s
}

// inlineRules parses the `rules:` document. A block mapping is cut out of
// the test file with its lines in place, so that the line numbers in the
// rules parser's messages are the test file's.
func (p *parser) inlineRules(data []byte, top, v *yaml.Node) *rules.File {
	if v.Kind != yaml.MappingNode {
		p.errf(v, "rules: must be a rules document (a mapping with version, defaults, rules, resend)")
		return nil
	}
	var src []byte
	if v.Style&yaml.FlowStyle == 0 && v.Column > 1 {
		src = cutBlock(data, top, v)
	}
	if src == nil {
		out, err := yaml.Marshal(v)
		if err != nil {
			p.errf(v, "rules: %v", err)
			return nil
		}
		src = out
	}
	f, err := rules.Parse(src)
	if err != nil {
		p.errf(v, "inline rules: %v", err)
		return nil
	}
	return f
}

// cutBlock returns the lines of the block mapping v, dedented, preceded by
// as many empty lines as come before it in data. The block ends before the
// next key of top (or at the end of the file).
func cutBlock(data []byte, top, v *yaml.Node) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	end := len(lines)
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i+1] == v && i+2 < len(top.Content) {
			end = top.Content[i+2].Line - 1
		}
	}
	startIdx := v.Line - 1
	if startIdx < 0 || startIdx >= len(lines) || end > len(lines) || end <= startIdx {
		return nil
	}
	indent := v.Column - 1
	var out bytes.Buffer
	for range startIdx {
		out.WriteByte('\n')
	}
	for _, l := range lines[startIdx:end] {
		k := 0
		for k < indent && k < len(l) && l[k] == ' ' {
			k++
		}
		out.Write(l[k:])
	}
	return out.Bytes()
}

var testKeys = []string{"name", "start", "allowed_lateness", "only_rules", "input", "watermark", "expect_alerts", "expect_records", "expect_resends"}

func (p *parser) test(n *yaml.Node, idx int) *Test {
	m := p.mapping(n, fmt.Sprintf("test #%d", idx+1), testKeys...)
	if m == nil {
		return nil
	}
	t := &Test{Line: n.Line}
	if m["name"] == nil {
		p.errf(n, "test #%d: name: missing", idx+1)
		t.Name = fmt.Sprintf("#%d", idx+1)
	} else {
		t.Name, _ = p.str(m["name"], "name")
	}
	tc := &testCtx{p: p, t: t}
	if v := m["start"]; v != nil {
		if s, ok := p.str(v, "start"); ok {
			at, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				tc.errf(v, "start: %q is not an RFC 3339 time", s)
			}
			t.Start = at
		}
	}
	if v := m["allowed_lateness"]; v != nil {
		if d, ok := tc.duration(v, "allowed_lateness"); ok {
			t.Lateness = &d
		}
	}
	for _, r := range tc.strList(m["only_rules"], "only_rules") {
		t.OnlyRules = append(t.OnlyRules, r)
		t.refs = append(t.refs, nameRef{line: m["only_rules"].Line, name: r})
	}
	if v := m["input"]; v != nil {
		tc.input(v)
	}
	if v := m["watermark"]; v != nil {
		t.Watermark, _ = tc.when(v, "watermark")
	}
	for _, c := range p.list(m["expect_alerts"], "expect_alerts") {
		if ch := tc.alertCheck(c); ch != nil {
			t.checks = append(t.checks, ch)
		}
	}
	if v := m["expect_records"]; v != nil {
		t.expRecs = &listExpect[alertExpect]{line: v.Line}
		for i, r := range p.list(v, "expect_records") {
			if x, ok := tc.alertExpect(r, fmt.Sprintf("expect_records #%d", i+1), recordKeys, ""); ok {
				t.expRecs.items = append(t.expRecs.items, x)
			}
		}
	}
	if v := m["expect_resends"]; v != nil {
		t.expResnd = &listExpect[resendExpect]{line: v.Line}
		for i, r := range p.list(v, "expect_resends") {
			if x, ok := tc.resendExpect(r, fmt.Sprintf("expect_resends #%d", i+1)); ok {
				t.expResnd.items = append(t.expResnd.items, x)
			}
		}
	}
	if len(t.checks) == 0 && t.expRecs == nil && t.expResnd == nil {
		tc.errf(n, "expects nothing: give expect_alerts, expect_records or expect_resends")
	}
	var last time.Time
	for _, c := range t.checks {
		if c.at.After(last) {
			last = c.at
		}
	}
	if !t.Watermark.IsZero() && last.After(t.Watermark) {
		tc.errf(m["watermark"], "watermark: %s is before the last expect_alerts time %s",
			fmtAbs(t.Watermark), fmtAbs(last))
	}
	return t
}

// testCtx parses inside one test: errors name the test, and relative
// times resolve against its start.
type testCtx struct {
	p *parser
	t *Test
}

func (c *testCtx) errf(n *yaml.Node, format string, args ...any) {
	c.p.errf(n, "test %q: %s", c.t.Name, fmt.Sprintf(format, args...))
}

func (c *testCtx) duration(n *yaml.Node, what string) (time.Duration, bool) {
	s, ok := c.p.str(n, what)
	if !ok {
		return 0, false
	}
	d, err := rules.ParseDuration(s)
	if err != nil {
		c.errf(n, "%s: %v", what, err)
		return 0, false
	}
	return d, true
}

// when parses an RFC 3339 time or a time relative to the test's start:
// "+2h", "+7d12h", "-30m".
func (c *testCtx) when(n *yaml.Node, what string) (time.Time, bool) {
	s, ok := c.p.str(n, what)
	if !ok {
		return time.Time{}, false
	}
	at, err := c.parseWhen(s)
	if err != nil {
		c.errf(n, "%s: %v", what, err)
		return time.Time{}, false
	}
	return at, true
}

func (c *testCtx) parseWhen(s string) (time.Time, error) {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		if c.t.Start.IsZero() {
			return time.Time{}, fmt.Errorf("relative time %q needs the test's start", s)
		}
		d, err := rules.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("relative time %q: %v", s, err)
		}
		if s[0] == '-' {
			d = -d
		}
		return c.t.Start.Add(d).UTC(), nil
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor +DURATION from start", s)
	}
	return at.UTC(), nil
}

func (c *testCtx) strList(n *yaml.Node, what string) []string {
	var out []string
	for _, e := range c.p.list(n, what) {
		if s, ok := c.p.str(e, what); ok {
			out = append(out, s)
		}
	}
	return out
}

func (c *testCtx) alertCheck(n *yaml.Node) *alertCheck {
	m := c.p.mapping(n, "expect_alerts entry", "at", "rule", "firing")
	if m == nil {
		return nil
	}
	ch := &alertCheck{line: n.Line}
	if v := m["at"]; v != nil {
		ch.at, _ = c.when(v, "expect_alerts: at")
	}
	if v := m["rule"]; v != nil {
		ch.rule, _ = c.p.str(v, "rule")
		c.t.refs = append(c.t.refs, nameRef{line: v.Line, name: ch.rule})
	}
	f := m["firing"]
	if f == nil {
		c.errf(n, "expect_alerts: firing: missing (write firing: [] to expect none)")
		return nil
	}
	seen := map[string]int{}
	for i, a := range c.p.list(f, "firing") {
		x, ok := c.alertExpect(a, fmt.Sprintf("expect_alerts: firing #%d", i+1), firingKeys, ch.rule)
		if !ok {
			continue
		}
		if x.rule == "" {
			c.errf(a, "expect_alerts: firing #%d: rule: missing (give it here or on the entry)", i+1)
			continue
		}
		x.hasLabels = true // in a firing set the labels identify the alert
		k := x.key()
		if prev, dup := seen[k]; dup {
			c.errf(a, "expect_alerts: firing #%d: %s already expected on line %d", i+1, k, prev)
			continue
		}
		seen[k] = a.Line
		ch.firing = append(ch.firing, x)
	}
	return ch
}

var (
	firingKeys = []string{"rule", "labels", "annotations", "severity", "value", "threshold", "starts_at", "window_start", "window_end"}
	recordKeys = append(slices.Clone(firingKeys), "state", "kind", "ends_at")
)

func (c *testCtx) alertExpect(n *yaml.Node, what string, keys []string, defRule string) (alertExpect, bool) {
	x := alertExpect{line: n.Line, rule: defRule}
	m := c.p.mapping(n, what, keys...)
	if m == nil {
		return x, false
	}
	before := len(c.p.errs)
	if v := m["rule"]; v != nil {
		x.rule, _ = c.p.str(v, what+": rule")
		c.t.refs = append(c.t.refs, nameRef{line: v.Line, name: x.rule})
	}
	if v := m["labels"]; v != nil {
		x.labels, x.hasLabels = c.strMap(v, what+": labels"), true
	}
	if v := m["annotations"]; v != nil {
		x.annotations = c.strMap(v, what+": annotations")
	}
	x.severity = c.optStr(m["severity"], what+": severity")
	x.kind = c.optStr(m["kind"], what+": kind")
	if x.state = c.optStr(m["state"], what+": state"); x.state != nil && *x.state != "firing" && *x.state != "resolved" {
		c.errf(m["state"], "%s: state: want firing or resolved, got %q", what, *x.state)
	}
	x.value = c.optFloat(m["value"], what+": value")
	x.threshold = c.optFloat(m["threshold"], what+": threshold")
	x.startsAt = c.optTime(m["starts_at"], what+": starts_at")
	x.endsAt = c.optTime(m["ends_at"], what+": ends_at")
	x.windowStart = c.optTime(m["window_start"], what+": window_start")
	x.windowEnd = c.optTime(m["window_end"], what+": window_end")
	return x, len(c.p.errs) == before
}

var resendKeys = []string{"trigger_id", "action", "policy", "message_id", "customer_id", "tenant", "channel", "attempt", "reason", "not_before"}

func (c *testCtx) resendExpect(n *yaml.Node, what string) (resendExpect, bool) {
	x := resendExpect{line: n.Line}
	m := c.p.mapping(n, what, resendKeys...)
	if m == nil {
		return x, false
	}
	before := len(c.p.errs)
	x.triggerID = c.optStr(m["trigger_id"], what+": trigger_id")
	if x.action = c.optStr(m["action"], what+": action"); x.action != nil && *x.action != "resend" && *x.action != "cancel" {
		c.errf(m["action"], "%s: action: want resend or cancel, got %q", what, *x.action)
	}
	if x.policy = c.optStr(m["policy"], what+": policy"); x.policy != nil {
		c.t.refs = append(c.t.refs, nameRef{line: m["policy"].Line, name: *x.policy, policy: true})
	}
	x.messageID = c.optStr(m["message_id"], what+": message_id")
	x.customerID = c.optStr(m["customer_id"], what+": customer_id")
	x.tenant = c.optStr(m["tenant"], what+": tenant")
	x.channel = c.optStr(m["channel"], what+": channel")
	x.reason = c.optStr(m["reason"], what+": reason")
	if v := m["attempt"]; v != nil {
		var a int
		if err := v.Decode(&a); err != nil || v.ShortTag() != "!!int" {
			c.errf(v, "%s: attempt: want an integer, got %q", what, v.Value)
		} else {
			x.attempt = &a
		}
	}
	x.notBefore = c.optTime(m["not_before"], what+": not_before")
	return x, len(c.p.errs) == before
}

func (c *testCtx) optStr(n *yaml.Node, what string) *string {
	if n == nil {
		return nil
	}
	s, ok := c.p.str(n, what)
	if !ok {
		return nil
	}
	return &s
}

func (c *testCtx) optFloat(n *yaml.Node, what string) *float64 {
	if n == nil {
		return nil
	}
	var f float64
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil || math.IsNaN(f) {
		c.errf(n, "%s: want a number, got %q", what, n.Value)
		return nil
	}
	return &f
}

func (c *testCtx) optTime(n *yaml.Node, what string) *time.Time {
	if n == nil {
		return nil
	}
	at, ok := c.when(n, what)
	if !ok {
		return nil
	}
	return &at
}

// mapping checks that n is a mapping with only the allowed keys, each
// once, and returns its values by key; nil after reporting otherwise.
func (p *parser) mapping(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n, "%s: must be a mapping", what)
		return nil
	}
	ps, err := pairs(n, 0)
	if err != nil {
		p.errf(n, "%s: %v", what, err)
		return nil
	}
	m := make(map[string]*yaml.Node, len(ps))
	for _, kv := range ps {
		k, v := kv[0], kv[1]
		switch {
		case k.Kind != yaml.ScalarNode:
			p.errf(k, "%s: keys must be strings", what)
		case !slices.Contains(allowed, k.Value):
			hint := ""
			if k.Value == "rule_files" {
				hint = " (use rule_file: one rules file, as the pipeline runs one)"
			}
			p.errf(k, "%s: unknown field %s%s", what, k.Value, hint)
		case m[k.Value] != nil:
			p.errf(k, "%s: field %s given twice", what, k.Value)
		case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null":
			// `receipts:` with nothing after it means none.
		default:
			m[k.Value] = v
		}
	}
	return m
}

// pairs returns the key/value pairs of mapping n with YAML merge keys
// (`<<: *base`) applied: keys written in n win over merged ones, and
// earlier merged mappings over later ones.
func pairs(n *yaml.Node, depth int) ([][2]*yaml.Node, error) {
	if depth > maxNesting {
		return nil, errors.New("merge keys nested too deeply")
	}
	var own, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			own = append(own, [2]*yaml.Node{k, v})
			continue
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		srcs := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			srcs = v.Content
		}
		for _, m := range srcs {
			if m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("line %d: << must merge a mapping", k.Line)
			}
			ps, err := pairs(m, depth+1)
			if err != nil {
				return nil, err
			}
			merged = append(merged, ps...)
		}
	}
	if len(merged) == 0 {
		return own, nil
	}
	seen := map[string]bool{}
	for _, p := range own {
		if p[0].Kind == yaml.ScalarNode {
			seen[p[0].Value] = true
		}
	}
	for _, p := range merged {
		if p[0].Kind == yaml.ScalarNode && !seen[p[0].Value] {
			seen[p[0].Value] = true
			own = append(own, p)
		}
	}
	return own, nil
}

func (p *parser) list(n *yaml.Node, what string) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s: must be a list", what)
		return nil
	}
	return n.Content
}

func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errf(n, "%s: must be a string", what)
		return "", false
	}
	return n.Value, true
}

func (c *testCtx) strMap(n *yaml.Node, what string) map[string]string {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		c.errf(n, "%s: must be a mapping of strings", what)
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, ok1 := c.p.str(n.Content[i], what)
		v, ok2 := c.p.str(n.Content[i+1], what+"."+k)
		if ok1 && ok2 {
			if _, dup := out[k]; dup {
				c.errf(n.Content[i], "%s: %s given twice", what, k)
			}
			out[k] = v
		}
	}
	return out
}

// yamlErrLine digs the line number out of a yaml.v3 syntax error
// ("yaml: line 7: ...").
func yamlErrLine(err error) int {
	s := err.Error()
	i := strings.Index(s, "line ")
	if i < 0 {
		return 0
	}
	s = s[i+len("line "):]
	j := 0
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(s[:j])
	return n
}
