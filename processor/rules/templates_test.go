package rules

import (
	"strings"
	"testing"
	"text/template"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// annot is a one-rule file whose rule has one annotation, a.
func annot(tmpl string) string {
	return head + "  - name: r\n    kind: inactivity\n    source: interactions\n    key: [customer_id]\n    idle_for: 1h\n" +
		"    annotations:\n      a: '" + strings.ReplaceAll(tmpl, "'", "''") + "'\n"
}

func TestTemplateStaticRule(t *testing.T) {
	tests := []struct {
		name string
		tmpl string
		err  string // "" when accepted
	}{
		{"range over .Labels is accepted", `{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}`, ""},
		{"range over $.Labels is accepted", `{{with .Value}}{{range $.Labels}}{{.}}{{end}}{{end}}`, ""},
		{"printf with a width of 100 is accepted", `{{printf "%100s|%.100f" .Labels.customer_id .Value}}`, ""},
		{"a template of exactly 4096 bytes is accepted", strings.Repeat("x", MaxTemplateBytes), ""},
		{"range over an integer is refused", `{{range 10}}{{printf "%9999999d" 1}}{{end}}`, "range may only go over .Labels"},
		{"nested range is refused", `{{range .Labels}}{{range $.Labels}}x{{end}}{{end}}`, "range may not be nested"},
		{"nested range over integers is refused", `{{range 100000}}{{range 100000}}x{{end}}{{end}}`, "range may only go over .Labels"},
		{"range in the else of a range is still one level", `{{range .Labels}}a{{else}}{{range .Labels}}b{{end}}{{end}}`, ""},
		{"range inside if inside range is refused", `{{range .Labels}}{{if .}}{{range $.Labels}}x{{end}}{{end}}{{end}}`, "range may not be nested"},
		{"a printf width above 100 is refused", `{{printf "%9999999d" 1}}`, "printf width or precision 9999999"},
		{"a printf precision above 100 is refused", `{{printf "%.101f" .Value}}`, "printf width or precision 101"},
		{"a width from an argument is refused", `{{printf "%*d" 100000 1}}`, "(*)"},
		{"a printf inside a parenthesised argument is checked", `{{print (printf "%999s" "x")}}`, "printf width or precision 999"},
		{"a printf format from a pipeline is refused", `{{"%9999d" | printf}}`, "quoted format string"},
		{"a printf format from a label is refused", `{{printf .Labels.x 1}}`, "quoted format string"},
		{"define is refused", `{{define "x"}}{{template "x"}}{{template "x"}}{{end}}{{template "x"}}`, "define and block are not allowed"},
		{"template is refused", `{{template "a"}}`, "template is not allowed"},
		{"a template of 4097 bytes is refused", strings.Repeat("x", MaxTemplateBytes+1), "longer than the limit of 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(annot(tc.tmpl)))
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, `rule "r"`)
			require.ErrorContains(t, err, "field annotations.a")
			require.ErrorContains(t, err, tc.err)
		})
	}
}

// render parses one rule with annotation a and renders it with labels.
func render(t *testing.T, tmpl string, labels map[string]string) string {
	t.Helper()
	f, err := Parse([]byte(annot(tmpl)))
	require.NoError(t, err)
	return f.Rules[0].RenderAnnotations(labels, 42)["a"]
}

func TestAnnotationRunTimeBudget(t *testing.T) {
	big := strings.Repeat("é", 3000) // 6000 bytes, two-byte runes
	tests := []struct {
		name   string
		tmpl   string
		labels map[string]string
		want   string // exact output, or "" to check truncation
	}{
		{"an annotation within the budget renders whole", `{{.Labels.c}}:{{.Value}}`, map[string]string{"c": "c1"}, "c1:42"},
		{"output just at the budget is whole", `{{.Labels.c}}{{.Labels.c}}`, map[string]string{"c": strings.Repeat("a", MaxAnnotationBytes/2)}, strings.Repeat("a", MaxAnnotationBytes)},
		{"output over the budget by writing is truncated", `{{range .Labels}}{{.}}{{.}}{{.}}{{end}}`, map[string]string{"a": big}, ""},
		{"a printf whose result could pass the budget is truncated", `>{{printf "%[1]s%[1]s%[1]s" .Labels.a}}`, map[string]string{"a": big}, ""},
		{"a doubling chain of variables is stopped", `{{$a := print .Labels.a .Labels.a}}{{$b := print $a $a}}{{$c := print $b $b}}{{$c}}`, map[string]string{"a": big}, ""},
		{"a template that fails otherwise keeps its raw text", `{{index .Labels.c 5}}`, map[string]string{"c": "x"}, `{{index .Labels.c 5}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := render(t, tc.tmpl, tc.labels)
			require.LessOrEqual(t, len(got), MaxAnnotationBytes)
			require.True(t, utf8.ValidString(got))
			if tc.want != "" {
				require.Equal(t, tc.want, got)
				return
			}
			require.True(t, strings.HasSuffix(got, TruncatedMarker), "ends with the marker: %q", got[max(0, len(got)-80):])
		})
	}
}

func TestAnnotationTruncationKeepsThePrefix(t *testing.T) {
	got := render(t, `{{range .Labels}}{{.}}{{.}}{{.}}{{end}}`, map[string]string{"a": strings.Repeat("ab", 4000)})
	require.Len(t, got, MaxAnnotationBytes)
	require.Equal(t, strings.Repeat("ab", 12000)[:MaxAnnotationBytes-len(TruncatedMarker)]+TruncatedMarker, got)
}

// TestBudgetedFuncsReplaceBuiltins makes sure the template package calls
// the budgeted versions: text/template must let a FuncMap override its
// builtins, or the budget would only hold for our own functions.
func TestBudgetedFuncsReplaceBuiltins(t *testing.T) {
	for _, name := range []string{"print", "printf", "println", "html", "js", "urlquery"} {
		t.Run(name, func(t *testing.T) {
			tm := template.Must(template.New("x").Funcs(templateFuncs).Parse(`{{` + name + ` "%s" .}}`))
			w := capWriter{max: MaxAnnotationBytes}
			err := tm.Execute(&w, strings.Repeat("<", MaxAnnotationBytes+1))
			require.ErrorIs(t, err, errBudget)
		})
	}
}
