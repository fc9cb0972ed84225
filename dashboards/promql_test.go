package dashboards

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

// metricDef is a metric the code defines: its series names (a histogram's
// _bucket, _sum and _count) and its labels.
type metricDef struct {
	name   string
	labels []string
}

// codeMetrics finds every metric the repository's Go code defines: calls of
// prometheus.NewCounter, NewGaugeVec, NewHistogram... whose options are a
// literal (Namespace, Subsystem and Name joined as client_golang does),
// with the label names of a ...Vec. It maps each series name to its
// definition.
func codeMetrics(t *testing.T) map[string]metricDef {
	t.Helper()
	out := map[string]metricDef{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".local", "testdata", "vendor", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", path, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !isIdent(sel.X, "prometheus") || !strings.HasPrefix(sel.Sel.Name, "New") {
				return true
			}
			kind := strings.TrimSuffix(strings.TrimPrefix(sel.Sel.Name, "New"), "Vec")
			if !slices.Contains([]string{"Counter", "Gauge", "Histogram", "Summary"}, kind) {
				return true
			}
			opts, ok := call.Args[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			fields := map[string]string{}
			for _, e := range opts.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if s, ok := stringLit(kv.Value); ok {
					fields[fmt.Sprint(kv.Key)] = s
				}
			}
			var parts []string
			for _, k := range []string{"Namespace", "Subsystem", "Name"} {
				if fields[k] != "" {
					parts = append(parts, fields[k])
				}
			}
			if fields["Name"] == "" {
				return true
			}
			def := metricDef{name: strings.Join(parts, "_")}
			if len(call.Args) > 1 {
				if lit, ok := call.Args[1].(*ast.CompositeLit); ok {
					for _, e := range lit.Elts {
						if s, ok := stringLit(e); ok {
							def.labels = append(def.labels, s)
						}
					}
				}
			}
			series := []string{def.name}
			switch kind {
			case "Histogram":
				series = append(series, def.name+"_bucket", def.name+"_sum", def.name+"_count")
			case "Summary":
				series = append(series, def.name+"_sum", def.name+"_count")
			}
			for _, s := range series {
				out[s] = def
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	// The scan found the metric definitions at all (docs/run.md lists them).
	for _, want := range []string{"crmpulse_stream_consumed_records_total", "crmpulse_rules_reloads_total",
		"crmpulse_clickhouse_rows_written_total", "crmpulse_webhook_dead_letters_total",
		"crmpulse_alertmanager_up", "crmpulse_stream_snapshot_duration_seconds_bucket"} {
		require.Contains(t, out, want, "metric scan of the Go sources")
	}
	require.Equal(t, []string{"topic", "partition"}, out["crmpulse_stream_partition_lag_records"].labels)
	return out
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// promVars are values for the Grafana variables the pipeline dashboard
// uses, as Grafana would interpolate them.
var promVars = strings.NewReplacer(
	"$__rate_interval", "2m",
	"$__interval", "1m",
	"$__range", "6h",
	"$instance", ".*",
)

// scrapeMetrics are series Prometheus adds to every target.
var scrapeMetrics = map[string]metricDef{"up": {name: "up"}}

// targetLabels are on every series of a scraped target.
var targetLabels = []string{"job", "instance"}

// promToken is a token of PromQL, as far as the checks need: strings,
// identifiers, numbers and durations, and single punctuation characters
// (operators of two characters come as two tokens).
var promToken = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`|[A-Za-z_:][A-Za-z0-9_:]*|[0-9][0-9.a-zA-Z]*|\\s+|.")

// promKeywords are identifiers that are not metric names.
var promKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right",
	"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}

// promAggregations are PromQL's aggregation operators, which may take
// their by/without clause before the parenthesis.
var promAggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
	"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}

// promRefs is what an expression refers to.
type promRefs struct {
	metrics  []string            // metric names of the selectors
	matchers map[string][]string // metric name → label names it is matched on
	grouping []string            // labels of by/without/on/ignoring/group_*
	produced []string            // labels a function adds (count_values)
}

// parsePromRefs lists the metric names, matcher labels and grouping
// labels of expr. It is not a PromQL parser (promtool checks the syntax);
// it knows where names stand.
func parsePromRefs(t *testing.T, expr string) promRefs {
	t.Helper()
	var toks []string
	for _, tok := range promToken.FindAllString(expr, -1) {
		if strings.TrimSpace(tok) != "" {
			toks = append(toks, tok)
		}
	}
	refs := promRefs{matchers: map[string][]string{}}
	next := func(i int) string {
		if i+1 < len(toks) {
			return toks[i+1]
		}
		return ""
	}
	isIdentTok := func(s string) bool { return regexp.MustCompile(`^[A-Za-z_:]`).MatchString(s) }
	lastMetric := ""
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		switch {
		case tok == "[":
			for i < len(toks) && toks[i] != "]" {
				i++
			}
		case tok == "{":
			metric := lastMetric
			require.NotEmpty(t, metric, "%s: a selector without a metric name", expr)
			for i++; i < len(toks) && toks[i] != "}"; i++ {
				if isIdentTok(toks[i]) {
					refs.matchers[metric] = append(refs.matchers[metric], toks[i])
				}
				// Skip the operator and the value.
				for i+1 < len(toks) && toks[i+1] != "," && toks[i+1] != "}" {
					i++
				}
				if i+1 < len(toks) && toks[i+1] == "," {
					i++
				}
			}
		case isIdentTok(tok) && slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, tok):
			if next(i) != "(" {
				continue
			}
			for i += 2; i < len(toks) && toks[i] != ")"; i++ {
				if isIdentTok(toks[i]) {
					refs.grouping = append(refs.grouping, toks[i])
				}
			}
		case isIdentTok(tok) && slices.Contains(promAggregations, tok) &&
			(next(i) == "(" || next(i) == "by" || next(i) == "without"):
			if tok == "count_values" && next(i) == "(" && i+2 < len(toks) {
				if s, err := strconv.Unquote(toks[i+2]); err == nil {
					refs.produced = append(refs.produced, s)
				}
			}
			lastMetric = ""
		case isIdentTok(tok) && next(i) == "(":
			// A function.
			lastMetric = ""
		case isIdentTok(tok) && !slices.Contains(promKeywords, strings.ToLower(tok)):
			refs.metrics = append(refs.metrics, tok)
			lastMetric = tok
		default:
			lastMetric = ""
		}
	}
	return refs
}

var legendLabel = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// TestPrometheusQueries checks every PromQL expression of the dashboards
// against the metrics the code defines (names and labels, in selectors,
// groupings and legends), then has promtool check their syntax.
func TestPrometheusQueries(t *testing.T) {
	known := codeMetrics(t)
	for name, def := range scrapeMetrics {
		known[name] = def
	}
	qs := queries(t, loadDashboards(t), prometheusType)
	var exprs []string
	for _, q := range qs {
		t.Run(q.where, func(t *testing.T) {
			expr := promVars.Replace(q.text(t))
			if q.variable != nil {
				// label_values(metric, label): the metric and the label.
				m := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`).FindStringSubmatch(expr)
				require.NotNil(t, m, "variable query %q: label_values(metric, label)", expr)
				def, ok := known[m[1]]
				require.True(t, ok, "%s: metric %s is not defined in the code", q.where, m[1])
				require.Contains(t, append(slices.Clone(def.labels), targetLabels...), m[2])
				expr = m[1]
			}
			require.NotContains(t, expr, "$", "%s: a variable the test does not substitute", q.where)
			refs := parsePromRefs(t, expr)
			require.NotEmpty(t, refs.metrics, "%s: %s selects no metric", q.where, expr)
			available := slices.Clone(targetLabels)
			for _, m := range refs.metrics {
				def, ok := known[m]
				require.True(t, ok, "%s: metric %s is not defined in the code", q.where, m)
				available = append(available, def.labels...)
				if strings.HasSuffix(m, "_bucket") {
					available = append(available, "le")
				}
			}
			for m, labels := range refs.matchers {
				allowed := append(slices.Clone(targetLabels), known[m].labels...)
				for _, l := range labels {
					require.Contains(t, allowed, l, "%s: %s has no label %s", q.where, m, l)
				}
			}
			available = append(available, refs.produced...)
			for _, l := range refs.grouping {
				require.Contains(t, available, l, "%s: no metric of %s has label %s", q.where, expr, l)
			}
			for _, m := range legendLabel.FindAllStringSubmatch(q.target.LegendFormat, -1) {
				require.Contains(t, available, m[1], "%s: legend %q names a label the series lack", q.where, q.target.LegendFormat)
			}
			exprs = append(exprs, expr)
		})
	}

	// Syntax and types, by the real parser: every expression as a
	// recording rule.
	promtool := testenv.Tool(t, "promtool", "deploy/local/alertmanager.sh install brings it (Debian's prometheus package); it checks the PromQL syntax")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, e := range exprs {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query:%d", i), Expr: e})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "dashboards.rules.yml")
	require.NoError(t, os.WriteFile(file, data, 0o644))
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	require.NoError(t, err, "promtool check rules:\n%s\n%s", out, data)
}

// TestParsePromRefs pins down the small PromQL scanner the checks rely on.
func TestParsePromRefs(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		want       promRefs
	}{
		{
			name: "rate by label",
			expr: `sum by (topic) (rate(crmpulse_stream_consumed_records_total{instance=~".*"}[2m]))`,
			want: promRefs{metrics: []string{"crmpulse_stream_consumed_records_total"},
				matchers: map[string][]string{"crmpulse_stream_consumed_records_total": {"instance"}},
				grouping: []string{"topic"}},
		},
		{
			name: "binary operation and comparison",
			expr: `time() - (max by (partition) (a_seconds{x="1", y!~"a,b}"}) > 0) / on (partition) group_left b`,
			want: promRefs{metrics: []string{"a_seconds", "b"},
				matchers: map[string][]string{"a_seconds": {"x", "y"}},
				grouping: []string{"partition", "partition"}},
		},
		{
			name: "count_values",
			expr: `count(count by (hash) (count_values("hash", h)))`,
			want: promRefs{metrics: []string{"h"}, matchers: map[string][]string{},
				grouping: []string{"hash"}, produced: []string{"hash"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, parsePromRefs(t, tc.expr))
		})
	}
}
