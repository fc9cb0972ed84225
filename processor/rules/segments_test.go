package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
)

const segHead = "version: 1\nsegments:\n"

func TestParseRefusesBadSegmentSets(t *testing.T) {
	set := func(s string) string { return segHead + "  - {name: s, " + s + "}\n" }
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"no key", set("classes: [{name: all}]"), []string{`segment set "s"`, "field key: must list at least one field"}},
		{"an unknown key field", set("key: [customer_id, colour], classes: [{name: all}]"), []string{"field key", `unknown event field "colour"`}},
		{"a key field twice", set("key: [customer_id, customer_id], classes: [{name: all}]"), []string{"field key", `gives the label "customer_id" twice`}},
		{"no classes", set("key: [customer_id]"), []string{"field classes: must list at least one class"}},
		{"a class without a name", set("key: [customer_id], classes: [{recency_under: 1d}, {name: all}]"), []string{"field classes[0].name: missing required field"}},
		{"a bad class name", set("key: [customer_id], classes: [{name: Big}]"), []string{"field classes[0].name", "[a-z0-9_]+"}},
		{"a class without condition before the last", set("key: [customer_id], classes: [{name: all}, {name: rest}]"), []string{"field classes[0].name", `class "all" has no condition`}},
		{"a negative count", set("key: [customer_id], window: 1d, classes: [{name: a, min_count: -1}, {name: all}]"), []string{"field classes[0].min_count: must not be negative"}},
		{"a negative max_total", set("key: [customer_id], classes: [{name: a, max_total: -1}, {name: all}]"), []string{"field classes[0].max_total: must not be negative"}},
		{"min_count above max_count", set("key: [customer_id], window: 1d, classes: [{name: a, min_count: 3, max_count: 2}, {name: all}]"), []string{"field classes[0].max_count", "can never match"}},
		{"recency_over not below recency_under", set("key: [customer_id], classes: [{name: a, recency_over: 2d, recency_under: 2d}, {name: all}]"), []string{"field classes[0].recency_over", "can never match"}},
		{"a zero duration", set("key: [customer_id], classes: [{name: a, tenure_under: 0s}, {name: all}]"), []string{"field classes[0].tenure_under: must be a positive duration"}},
		{"a bad duration", set("key: [customer_id], classes: [{name: a, recency_over: soon}, {name: all}]"), []string{"field classes[0]", "field recency_over", "invalid duration"}},
		{"an infinite amount", set("key: [customer_id], window: 1d, classes: [{name: a, min_amount: .inf}, {name: all}]"), []string{"field classes[0].min_amount: must be a finite number"}},
		{"a window below the minimum", set("key: [customer_id], window: 10ms, classes: [{name: a, min_count: 1}, {name: all}]"), []string{"field window: 10ms is shorter than the minimum window 1s"}},
		{"an unknown field", set("key: [customer_id], windows: 1d, classes: [{name: all}]"), []string{"field windows: unknown field"}},
		{"an empty track", set("key: [customer_id], track: {}, classes: [{name: all}]"), []string{"field track: must list at least one condition"}},
		{"a bad purchase match", set("key: [customer_id], purchase: {kind: [buy]}, classes: [{name: all}]"), []string{"field purchase", `unknown event field "kind"`}},
		{"a class that is not a mapping", set("key: [customer_id], classes: [all]"), []string{"field classes[0]: must be a mapping"}},
		{"segments not a list", "version: 1\nsegments: {name: s}\n", []string{"segment sets must be a list"}},
		{"a rule on segments with an unknown field", segHead + "  - {name: s, key: [customer_id], classes: [{name: all}]}\nrules:\n  - {name: r, kind: threshold, source: segments, match: {colour: [red]}, group_by: [tenant], window: 1d, value: count, op: '>', threshold: 1}\n",
			[]string{`rule "r"`, "field match", `unknown event field "colour" for source segments`}},
		{"sum over a transition", segHead + "  - {name: s, key: [customer_id], classes: [{name: all}]}\nrules:\n  - {name: r, kind: threshold, source: segments, group_by: [tenant], window: 1d, value: sum(to), op: '>', threshold: 1}\n",
			[]string{`rule "r"`, "field value", "not numeric"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseSegments(t *testing.T) {
	data, err := os.ReadFile("testdata/rules/segments-good.yaml")
	require.NoError(t, err)
	f, err := Parse(data)
	require.NoError(t, err)
	require.Len(t, f.Segments, 2)
	s := f.Segments[0]
	require.Equal(t, 0, s.TenantField)
	require.Equal(t, 1, s.CustomerField)
	require.True(t, s.UsesWindow)
	require.Equal(t, 180*24*time.Hour, s.Window.D())
	require.Equal(t, 45*24*time.Hour, s.Classes[2].RecencyUnder.D())
	require.EqualValues(t, 4, *s.Classes[2].MinCount)
	require.False(t, s.Classes[5].HasCondition())
	require.True(t, s.TrackMatch.Match(Event{I: interaction("visit")}))
	require.False(t, s.TrackMatch.Match(Event{I: interaction("complaint")}))

	p := f.Segments[1]
	require.Equal(t, -1, p.TenantField, "a key without tenant")
	require.Nil(t, p.TrackMatch, "no track: every interaction")
	require.True(t, p.PurchaseMatch.Match(Event{I: interaction("refund")}))

	// purchase defaults to type purchase
	f, err = Parse([]byte(segHead + "  - {name: s, key: [customer_id], classes: [{name: all}]}\n"))
	require.NoError(t, err)
	require.True(t, f.Segments[0].PurchaseMatch.Match(Event{I: interaction("purchase")}))
	require.False(t, f.Segments[0].PurchaseMatch.Match(Event{I: interaction("refund")}))
	require.False(t, f.Segments[0].UsesWindow)

	// A rule on segments reads the transition's fields, null from as "".
	r := f0(t).Rules[0]
	rec := &SegmentRecord{SegmentSet: "lifecycle", From: "loyal", To: "at_risk", Tenant: "acme", CustomerID: "c1",
		KeyPaths: []string{"tenant", "customer_id"}, KeyValues: []string{"acme", "c1"}}
	require.True(t, r.Matcher.Match(Event{S: rec}))
	rec.From = ""
	require.False(t, r.Matcher.Match(Event{S: rec}))
	g, err := CompileField(SourceSegments, "attributes.region")
	require.NoError(t, err)
	require.Equal(t, "region", g.Label)
	require.Equal(t, "", g.Get(Event{S: rec}), "a key without the field reads empty")
}

func interaction(typ string) *ingest.Interaction { return &ingest.Interaction{Type: typ} }

func f0(t *testing.T) *File {
	t.Helper()
	data, err := os.ReadFile("testdata/rules/segments-good.yaml")
	require.NoError(t, err)
	f, err := Parse(data)
	require.NoError(t, err)
	return f
}

// FuzzParseSegments: an accepted segment set has what the engine relies on:
// customer_id in its key and no customer.* there, a last class without
// conditions, unique class names, finite numbers and durations within
// MaxDuration, and a window whenever count or amount is read.
func FuzzParseSegments(f *testing.F) {
	files, _ := filepath.Glob("testdata/rules/segments-*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(segHead + "  - {name: s, key: [customer_id], window: 1s, classes: [{name: a, min_count: 0, max_count: 0}, {name: b}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, s := range file.Segments {
			if names[s.Name] {
				t.Fatalf("duplicate segment set %q accepted", s.Name)
			}
			names[s.Name] = true
			if s.CustomerField < 0 || s.Fields[s.CustomerField].Path != "customer_id" {
				t.Fatalf("set %q accepted without customer_id in its key", s.Name)
			}
			for _, k := range s.Key {
				if strings.HasPrefix(k, "customer.") {
					t.Fatalf("set %q accepted with %s in its key", s.Name, k)
				}
			}
			if len(s.Classes) == 0 || s.Classes[len(s.Classes)-1].HasCondition() {
				t.Fatalf("set %q accepted without a catch-all last class", s.Name)
			}
			if s.UsesWindow && s.Window.D() < MinWindow {
				t.Fatalf("set %q reads count or amount with window %s", s.Name, s.Window.D())
			}
			classes := map[string]bool{}
			for _, c := range s.Classes {
				if classes[c.Name] || !nameRE.MatchString(c.Name) {
					t.Fatalf("set %q accepted with class name %q", s.Name, c.Name)
				}
				classes[c.Name] = true
			}
			if bad := nonFinite(reflect.ValueOf(s), ""); len(bad) > 0 {
				t.Fatalf("set %q accepted with non-finite %v", s.Name, bad)
			}
			checkDurationFields(t, s.Name, reflect.ValueOf(s))
			for _, c := range s.Classes {
				checkDurationFields(t, s.Name+"."+c.Name, reflect.ValueOf(c))
			}
		}
	})
}
