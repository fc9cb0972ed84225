// Package dashboards checks the Grafana dashboards (json/*.json, loaded by
// the provider in provisioning/dashboards, which deploy/compose mounts and
// deploy/k8s ships as a ConfigMap): they parse, every panel uses a provisioned data
// source, the provider points at the directory the compose file mounts, every
// PromQL expression uses only metrics and labels the code defines (and
// promtool accepts it), and every ClickHouse query — with Grafana's macros
// and variables expanded — runs on the real server against a freshly
// migrated database and returns what the seed data says it should.
package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// Paths relative to this package's directory, where go test runs.
const (
	dashboardsDir   = "json"
	datasourcesDir  = "provisioning/datasources"
	providersDir    = "provisioning/dashboards"
	composeFile     = "../deploy/compose/docker-compose.yml"
	composeDir      = "../deploy/compose"
	repoRoot        = ".."
	clickhouseType  = "grafana-clickhouse-datasource"
	prometheusType  = "prometheus"
	businessTitle   = "CRM Pulse — business"
	pipelineTitle   = "CRM Pulse — pipeline"
	minPluginMajor4 = "4."
)

// dashboard is the part of Grafana's dashboard JSON model the tests read.
type dashboard struct {
	file       string
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
}

// annotation is a dashboard annotation; those with a target run a query.
type annotation struct {
	Name       string  `json:"name"`
	Datasource *dsRef  `json:"datasource"`
	Target     *target `json:"target"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int      `json:"id"`
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Datasource *dsRef   `json:"datasource"`
	Targets    []target `json:"targets"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	// Panels of a collapsed row.
	Panels []panel `json:"panels"`
}

type target struct {
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
	// Prometheus.
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	// ClickHouse (grafana-clickhouse-datasource v4 query model).
	RawSQL     string `json:"rawSql"`
	EditorType string `json:"editorType"`
	QueryType  string `json:"queryType"`
	// An int for ClickHouse (sqlds: 0 time series, 1 table), a string for
	// Prometheus.
	Format        json.RawMessage `json:"format"`
	PluginVersion string          `json:"pluginVersion"`
}

type variable struct {
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Datasource *dsRef          `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// queryText is the variable's query: a plain string, or an object holding
// it in "query" (Prometheus) or "rawSql" (newer ClickHouse plugins).
func (v variable) queryText(t *testing.T) string {
	t.Helper()
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query  string `json:"query"`
		RawSQL string `json:"rawSql"`
	}
	require.NoError(t, json.Unmarshal(v.Query, &o), "variable %s: query", v.Name)
	if o.RawSQL != "" {
		return o.RawSQL
	}
	return o.Query
}

// query is one query of a dashboard with where it comes from.
type query struct {
	where     string // dashboard / panel / refId, for messages
	dashboard string
	panel     string
	refID     string
	target    target
	variable  *variable
}

// text is the query's PromQL or SQL.
func (q query) text(t *testing.T) string {
	if q.variable != nil {
		return q.variable.queryText(t)
	}
	if q.target.RawSQL != "" {
		return q.target.RawSQL
	}
	return q.target.Expr
}

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboards in %s", dashboardsDir)
	var out []dashboard
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var d dashboard
		require.NoError(t, json.Unmarshal(data, &d), "%s", f)
		d.file = f
		out = append(out, d)
	}
	return out
}

// allPanels flattens rows: the panels of an expanded row follow it at the
// top level, a collapsed row holds its own.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// queries lists every query of the dashboards whose data source has type
// dsType: panel targets and template variables.
func queries(t *testing.T, ds []dashboard, dsType string) []query {
	t.Helper()
	var out []query
	for _, d := range ds {
		for _, p := range allPanels(d.Panels) {
			for _, tg := range p.Targets {
				ref := tg.Datasource
				if ref == nil {
					ref = p.Datasource
				}
				if ref != nil && ref.Type == dsType {
					out = append(out, query{where: d.Title + " / " + p.Title + " / " + tg.RefID,
						dashboard: d.Title, panel: p.Title, refID: tg.RefID, target: tg})
				}
			}
		}
		for _, a := range d.Annotations.List {
			if a.Target != nil && a.Datasource != nil && a.Datasource.Type == dsType {
				out = append(out, query{where: d.Title + " / annotation " + a.Name,
					dashboard: d.Title, panel: "annotation " + a.Name, refID: a.Target.RefID, target: *a.Target})
			}
		}
		for i, v := range d.Templating.List {
			if v.Datasource != nil && v.Datasource.Type == dsType {
				out = append(out, query{where: d.Title + " / variable " + v.Name,
					dashboard: d.Title, variable: &d.Templating.List[i]})
			}
		}
	}
	require.NotEmpty(t, out, "no %s queries", dsType)
	return out
}

// provisionedDatasources maps the uid of every provisioned data source to
// its type.
func provisionedDatasources(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(datasourcesDir, "*.yaml"))
	require.NoError(t, err)
	out := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var doc struct {
			Datasources []struct {
				UID  string `yaml:"uid"`
				Type string `yaml:"type"`
			} `yaml:"datasources"`
		}
		require.NoError(t, yaml.Unmarshal(data, &doc), "%s", f)
		for _, ds := range doc.Datasources {
			require.NotEmpty(t, ds.UID, "%s: every data source has a uid for dashboards to name", f)
			require.NotContains(t, out, ds.UID, "%s: uid %s twice", f, ds.UID)
			out[ds.UID] = ds.Type
		}
	}
	require.Equal(t, map[string]string{"clickhouse": clickhouseType, "prometheus": prometheusType}, out)
	return out
}

func TestDashboards(t *testing.T) {
	sources := provisionedDatasources(t)
	ds := loadDashboards(t)
	var titles []string
	uids := map[string]string{}
	for _, d := range ds {
		titles = append(titles, d.Title)
		t.Run(filepath.Base(d.file), func(t *testing.T) {
			require.NotEmpty(t, d.UID)
			require.LessOrEqual(t, len(d.UID), 40, "Grafana's uid limit")
			require.NotContains(t, uids, d.UID, "uid %s is also %s's", d.UID, uids[d.UID])
			uids[d.UID] = d.file
			require.NotEmpty(t, d.Panels)

			// Panels at the top level never overlap on the 24-column grid.
			for i, a := range d.Panels {
				for _, b := range d.Panels[:i] {
					if a.GridPos == nil || b.GridPos == nil {
						continue
					}
					overlap := a.GridPos.X < b.GridPos.X+b.GridPos.W && b.GridPos.X < a.GridPos.X+a.GridPos.W &&
						a.GridPos.Y < b.GridPos.Y+b.GridPos.H && b.GridPos.Y < a.GridPos.Y+a.GridPos.H
					require.False(t, overlap, "panels %q and %q overlap", a.Title, b.Title)
				}
			}

			ids := map[int]bool{}
			for _, p := range allPanels(d.Panels) {
				require.NotZero(t, p.ID, "%s: panel without id", p.Title)
				require.False(t, ids[p.ID], "panel id %d twice", p.ID)
				ids[p.ID] = true
				require.NotEmpty(t, p.Title, "panel %d has no title", p.ID)
				require.NotNil(t, p.GridPos, "%s: no gridPos", p.Title)
				require.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "%s: wider than the grid", p.Title)
				if p.Type == "row" {
					continue
				}
				require.NotNil(t, p.Datasource, "%s: no data source", p.Title)
				checkRef(t, sources, *p.Datasource, p.Title)
				require.NotEmpty(t, p.Targets, "%s: no queries", p.Title)
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					require.NotEmpty(t, tg.RefID, "%s: query without refId", p.Title)
					require.False(t, refs[tg.RefID], "%s: refId %s twice", p.Title, tg.RefID)
					refs[tg.RefID] = true
					require.NotNil(t, tg.Datasource, "%s/%s: no data source", p.Title, tg.RefID)
					checkRef(t, sources, *tg.Datasource, p.Title)
					require.Equal(t, *p.Datasource, *tg.Datasource, "%s/%s: the panel's data source", p.Title, tg.RefID)
					switch tg.Datasource.Type {
					case prometheusType:
						require.NotEmpty(t, tg.Expr, "%s/%s", p.Title, tg.RefID)
					case clickhouseType:
						checkClickHouseTarget(t, p.Title, tg)
					}
				}
			}
			for _, v := range d.Templating.List {
				require.NotEmpty(t, v.Name)
				if v.Type != "query" {
					continue
				}
				require.NotNil(t, v.Datasource, "variable %s: no data source", v.Name)
				checkRef(t, sources, *v.Datasource, "variable "+v.Name)
				require.NotEmpty(t, v.queryText(t), "variable %s: no query", v.Name)
			}
		})
	}
	slices.Sort(titles)
	require.Equal(t, []string{businessTitle, pipelineTitle}, titles)
}

func checkRef(t *testing.T, sources map[string]string, ref dsRef, where string) {
	t.Helper()
	typ, ok := sources[ref.UID]
	require.True(t, ok, "%s: data source uid %q is not provisioned", where, ref.UID)
	require.Equal(t, typ, ref.Type, "%s: data source %s has type %s", where, ref.UID, typ)
}

// readTables are the ReplacingMergeTree tables of
// sink/clickhouse/migrations/0001_init.sql, which panels read with FINAL.
var readTables = []string{"revenue", "activity_daily", "complaints", "delivery_status",
	"resend_outcomes", "alert_history", "resend_triggers", "customer_state", "customers", "account_manager_alerts",
	"segment_transitions", "segment_current", "digests", "interactions_raw", "receipts_raw"}

var fromTable = regexp.MustCompile(`(?i)\bFROM\s+(\w+)(\s+FINAL\b)?`)

// checkClickHouseTarget checks a ClickHouse query's settings and the rules
// of docs/clickhouse.md that a query on an empty database cannot show.
func checkClickHouseTarget(t *testing.T, title string, tg target) {
	t.Helper()
	// Without a v4 pluginVersion the plugin migrates the query as a v3 one.
	require.True(t, strings.HasPrefix(tg.PluginVersion, minPluginMajor4), "%s: pluginVersion %q", title, tg.PluginVersion)
	require.Equal(t, "sql", tg.EditorType, "%s: written in the SQL editor", title)
	require.NotEmpty(t, tg.RawSQL, title)
	var format int
	require.NoError(t, json.Unmarshal(tg.Format, &format), "%s: format is a number", title)
	// The backend shapes the frame by format (0 time series, 1 table);
	// the editor shows queryType.
	want := map[string]int{"timeSeries": 0, "table": 1}
	f, ok := want[tg.QueryType]
	require.True(t, ok, "%s: queryType %q", title, tg.QueryType)
	require.Equal(t, f, format, "%s: format of queryType %s", title, tg.QueryType)

	sql := tg.RawSQL
	// Every partial row of a window aggregate counts: a panel sums shards,
	// never shows or groups by one.
	require.NotRegexp(t, `\bshard\b`, sql, "%s: sum over shard, never select it", title)
	for _, m := range fromTable.FindAllStringSubmatch(sql, -1) {
		if slices.Contains(readTables, m[1]) {
			require.NotEmpty(t, m[2], "%s: %s is a ReplacingMergeTree: read it with FINAL", title, m[1])
		}
	}
	require.NotContains(t, sql, "$__timeInterval", "%s: toStartOfInterval is missing on ClickHouse 18.16", title)
}

// mount is one bind mount of the compose grafana service.
type mount struct{ source, target string }

func grafanaMounts(t *testing.T) []mount {
	t.Helper()
	data, err := os.ReadFile(composeFile)
	require.NoError(t, err)
	var c struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(data, &c))
	g, ok := c.Services["grafana"]
	require.True(t, ok, "no grafana service in %s", composeFile)
	var out []mount
	for _, v := range g.Volumes {
		parts := strings.Split(v, ":")
		require.GreaterOrEqual(t, len(parts), 2, "volume %q", v)
		if strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/") {
			out = append(out, mount{source: filepath.Join(composeDir, parts[0]), target: parts[1]})
		}
	}
	return out
}

// hostPath maps a path in the grafana container to this machine through
// the bind mounts ("" when none covers it).
func hostPath(ms []mount, p string) string {
	for _, m := range ms {
		if p == m.target {
			return m.source
		}
		if rel, ok := strings.CutPrefix(p, m.target+"/"); ok {
			return filepath.Join(m.source, rel)
		}
	}
	return ""
}

func TestProvisioning(t *testing.T) {
	ms := grafanaMounts(t)
	// Grafana reads providers from provisioning/dashboards.
	const providersInContainer = "/etc/grafana/provisioning/dashboards"
	requireSamePath(t, providersDir, hostPath(ms, providersInContainer), "mounted at %s", providersInContainer)
	requireSamePath(t, datasourcesDir, hostPath(ms, "/etc/grafana/provisioning/datasources"), "mounted")

	files, err := filepath.Glob(filepath.Join(providersDir, "*.yaml"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	var doc struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Folder  string `yaml:"folder"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	require.NoError(t, dec.Decode(&doc))
	require.Equal(t, 1, doc.APIVersion)
	require.Len(t, doc.Providers, 1)
	p := doc.Providers[0]
	require.Equal(t, "file", p.Type)
	require.NotEmpty(t, p.Name)
	require.True(t, filepath.IsAbs(p.Options.Path), "provider path %q: a path in the container", p.Options.Path)

	// The provider's path is the mounted dashboards directory.
	src := hostPath(ms, p.Options.Path)
	require.NotEmpty(t, src, "provider path %s is not bind-mounted into grafana", p.Options.Path)
	requireSamePath(t, dashboardsDir, src, "provider path %s", p.Options.Path)
	got, err := filepath.Glob(filepath.Join(src, "*.json"))
	require.NoError(t, err)
	require.Len(t, got, len(loadDashboards(t)))
}

// requireSamePath fails unless got (a path on this machine, "" for none)
// is the directory want.
func requireSamePath(t *testing.T, want, got string, msgAndArgs ...any) {
	t.Helper()
	require.NotEmpty(t, got, msgAndArgs...)
	w, err := filepath.Abs(want)
	require.NoError(t, err)
	g, err := filepath.Abs(got)
	require.NoError(t, err)
	require.Equal(t, w, g, msgAndArgs...)
}

var linkURL = regexp.MustCompile(`^/d/([\w-]+)/\?(.*)$`)

// TestDataLinks: every data link of a panel opens a dashboard that exists,
// sets only variables it has, keeps the time range, and passes the
// clicked value; the customer_id cells of the alert tables link to the
// Customer row.
func TestDataLinks(t *testing.T) {
	ds := loadDashboards(t)
	vars := map[string]map[string]bool{}
	for _, d := range ds {
		vars[d.UID] = map[string]bool{}
		for _, v := range d.Templating.List {
			vars[d.UID][v.Name] = true
		}
	}
	linked := map[string]bool{}
	for _, d := range ds {
		raw, err := os.ReadFile(d.file)
		require.NoError(t, err)
		var doc struct {
			Panels []struct {
				Title       string `json:"title"`
				FieldConfig struct {
					Overrides []struct {
						Matcher struct {
							Options string `json:"options"`
						} `json:"matcher"`
						Properties []struct {
							ID    string          `json:"id"`
							Value json.RawMessage `json:"value"`
						} `json:"properties"`
					} `json:"overrides"`
				} `json:"fieldConfig"`
			} `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(raw, &doc))
		for _, p := range doc.Panels {
			for _, o := range p.FieldConfig.Overrides {
				for _, prop := range o.Properties {
					if prop.ID != "links" {
						continue
					}
					var links []struct{ Title, URL string }
					require.NoError(t, json.Unmarshal(prop.Value, &links))
					for _, l := range links {
						m := linkURL.FindStringSubmatch(l.URL)
						require.NotNil(t, m, "%s: link %q is not /d/<uid>/?...", p.Title, l.URL)
						target, ok := vars[m[1]]
						require.True(t, ok, "%s: link to dashboard %q, which does not exist", p.Title, m[1])
						require.Contains(t, m[2], "${__url_time_range}", "%s: the link keeps the time range", p.Title)
						require.Contains(t, m[2], "${__value.raw}", "%s: the link passes the clicked value", p.Title)
						for _, kv := range strings.Split(m[2], "&") {
							if name, ok := strings.CutPrefix(strings.SplitN(kv, "=", 2)[0], "var-"); ok {
								require.True(t, target[name], "%s: link sets variable %s, which %s does not have", p.Title, name, m[1])
							}
						}
						if o.Matcher.Options == "customer_id" {
							require.Contains(t, m[2], "var-customer=${__value.raw}")
							linked[p.Title] = true
						}
					}
				}
			}
		}
	}
	for _, title := range []string{"Currently churned customers", "Firing alerts", "Alerts of account managers"} {
		require.True(t, linked[title], "%s links its customers to the Customer row", title)
	}
}
