package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmpulse/crmpulse/api"
	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/schemas"
)

const docURL = "https://crmpulse.dev/api/openapi.json"

func yamlToAny(t *testing.T, text string) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal([]byte(text), &v))
	return v
}

// document is the OpenAPI document as JSON values, and a compiler that
// knows it and the record schemas it refers to.
type document struct {
	doc map[string]any
	c   *jsonschema.Compiler
}

func loadDocument(t *testing.T) *document {
	t.Helper()
	var raw any
	require.NoError(t, yaml.Unmarshal(api.OpenAPI, &raw))
	js, err := json.Marshal(raw)
	require.NoError(t, err)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	require.NoError(t, c.AddResource(docURL, v))
	require.NoError(t, fs.WalkDir(schemas.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schemas.FS, path)
		if err != nil {
			return err
		}
		sv, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return err
		}
		return c.AddResource("https://crmpulse.dev/schemas/"+path, sv)
	}))
	d := &document{c: c}
	require.NoError(t, json.Unmarshal(js, &d.doc))
	require.Equal(t, "3.1.0", d.doc["openapi"])
	return d
}

// operations are the documented (method, path) pairs.
func (d *document) operations() []api.Route {
	var out []api.Route
	for p, item := range d.doc["paths"].(map[string]any) {
		for m := range item.(map[string]any) {
			switch m {
			case "get", "post", "put", "delete", "patch", "head", "options":
				out = append(out, api.Route{Method: strings.ToUpper(m), Path: p})
			}
		}
	}
	return out
}

func pointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// schemaFor compiles the documented schema of the answer to method path
// with this status and content type: the status's own response, else
// default, following a $ref to components/responses.
func (d *document) schemaFor(t *testing.T, method, path string, code int, ct string) *jsonschema.Schema {
	t.Helper()
	op, ok := d.doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	require.True(t, ok, "%s %s is not documented", method, path)
	responses := op["responses"].(map[string]any)
	key := strconv.Itoa(code)
	if _, ok := responses[key]; !ok {
		key = "default"
	}
	resp, ok := responses[key].(map[string]any)
	require.True(t, ok, "%s %s: status %d is not documented (and there is no default)", method, path, code)
	ptr := "#/paths/" + pointerEscape(path) + "/" + strings.ToLower(method) + "/responses/" + key
	if ref, ok := resp["$ref"].(string); ok {
		ptr = ref
		name := strings.TrimPrefix(ref, "#/components/responses/")
		resp = d.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
	}
	content, ok := resp["content"].(map[string]any)
	require.True(t, ok, "%s %s %d: no content documented", method, path, code)
	_, ok = content[ct]
	require.True(t, ok, "%s %s %d: content type %s is not documented", method, path, code, ct)
	s, err := d.c.Compile(docURL + ptr + "/content/" + pointerEscape(ct) + "/schema")
	require.NoError(t, err)
	return s
}

// TestOpenAPICoversTheRoutes: every documented operation is routed (a
// request to it is answered by its handler, not 404 or 405) and every
// route is documented.
func TestOpenAPICoversTheRoutes(t *testing.T) {
	d := loadDocument(t)
	h := server{rules: loadRules(t, "testdata/draft.yaml")}.handler(t)
	documented := d.operations()
	routed := h.Routes()
	key := func(r api.Route) string { return r.Method + " " + r.Path }
	var dk, rk []string
	for _, r := range documented {
		dk = append(dk, key(r))
	}
	for _, r := range routed {
		rk = append(rk, key(r))
	}
	slices.Sort(dk)
	slices.Sort(rk)
	require.Equal(t, dk, rk, "documented operations and routes differ")
	for _, r := range documented {
		ans := do(t, h, context.Background(), r.Method, r.Path, "application/json", "{}")
		require.NotContains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, ans.code, "%s: %s", key(r), ans.body)
	}
	// And what is not routed is refused in the documented error shape.
	errSchema, err := d.c.Compile(docURL + "#/components/schemas/Error")
	require.NoError(t, err)
	for _, tc := range []struct {
		method, path string
		code         int
		errorType    string
	}{
		{http.MethodGet, "/api/v1/query", http.StatusNotFound, "not_found"},
		{http.MethodPost, "/api/v1/alerts", http.StatusMethodNotAllowed, "bad_data"},
		{http.MethodGet, "/api/v1/backtest", http.StatusMethodNotAllowed, "bad_data"},
	} {
		ans := do(t, h, context.Background(), tc.method, tc.path, "", "")
		require.Equal(t, tc.code, ans.code, "%s %s", tc.method, tc.path)
		v := ans.json(t)
		require.NoError(t, errSchema.Validate(anyJSON(t, ans.body)))
		require.Equal(t, tc.errorType, v["errorType"])
	}
}

func anyJSON(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err, string(b))
	return v
}

// TestResponsesMatchTheDocument: the real handlers' answers, successes and
// errors, validate against the schemas the document gives for their
// status, and say what they should.
func TestResponsesMatchTheDocument(t *testing.T) {
	d := loadDocument(t)
	examples := loadRules(t, "../examples/rules.yaml")
	draft := readFile(t, "testdata/draft.yaml")
	from, to := t0.Add(-time.Hour), t0.Add(6*time.Hour)
	okBody := backtestJSON(t, draft, from.Format(time.RFC3339), to.Format(time.RFC3339))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	full := server{alerts: firingAlerts(), rules: examples, bt: runner(t, backtest.Limits{}),
		segments: segments{{Name: "value_tier", AsOf: t0, Classes: []api.ClassCount{{"silver", 7}, {"gold", 3}}}, {Name: "lifecycle"}}}
	for _, tc := range []struct {
		name     string
		srv      server
		ctx      context.Context
		method   string
		target   string
		ct, body string
		code     int
		check    func(t *testing.T, v map[string]any)
	}{
		{name: "alerts lists the firing alerts with severity as a label", srv: full, method: "GET", target: "/api/v1/alerts", code: 200,
			check: func(t *testing.T, v map[string]any) {
				alerts := v["data"].(map[string]any)["alerts"].([]any)
				require.Len(t, alerts, 2)
				first := alerts[0].(map[string]any)
				require.Equal(t, "complaint_burst", first["rule"], "ordered by rule")
				require.Equal(t, "critical", first["labels"].(map[string]any)["severity"])
				require.Equal(t, "1.2e+01", first["value"])
				require.Equal(t, t0.Add(time.Hour).Format(time.RFC3339), first["activeAt"])
			}},
		{name: "buildinfo says what answers", srv: full, method: "GET", target: "/api/v1/status/buildinfo", code: 200,
			check: func(t *testing.T, v map[string]any) {
				require.Equal(t, "crmpulse", v["data"].(map[string]any)["application"])
			}},
		{name: "alerts is an empty list when nothing fires", srv: server{rules: examples}, method: "GET", target: "/api/v1/alerts", code: 200,
			check: func(t *testing.T, v map[string]any) {
				require.Equal(t, []any{}, v["data"].(map[string]any)["alerts"])
			}},
		{name: "rules lists every detector with its alerts and state", srv: full, method: "GET", target: "/api/v1/rules", code: 200,
			check: func(t *testing.T, v map[string]any) {
				groups := v["data"].(map[string]any)["groups"].([]any)
				require.Len(t, groups, 1)
				g := groups[0].(map[string]any)
				require.Equal(t, "rules.yaml", g["file"])
				rs := g["rules"].([]any)
				require.Len(t, rs, len(examples.Rules))
				states := map[string]string{}
				for _, r := range rs {
					r := r.(map[string]any)
					states[r["name"].(string)] = r["state"].(string)
					if r["name"] == "complaint_burst" {
						require.Len(t, r["alerts"], 1)
						require.Equal(t, `threshold: count(interactions{type="complaint"}) by (tenant, region) over 1h > 10`, r["query"])
					}
					if r["name"] == "customer_churn" {
						require.Equal(t, float64(0), r["duration"])
						require.Equal(t, "retention", r["labels"].(map[string]any)["team"])
					}
				}
				require.Equal(t, "firing", states["complaint_burst"])
				require.Equal(t, "firing", states["customer_churn"])
				require.Equal(t, "inactive", states["message_undelivered"])
			}},
		{name: "rules filters by rule_name[]", srv: full, method: "GET", target: "/api/v1/rules?rule_name[]=customer_churn&rule_name[]=message_undelivered", code: 200,
			check: func(t *testing.T, v map[string]any) {
				rs := v["data"].(map[string]any)["groups"].([]any)[0].(map[string]any)["rules"].([]any)
				require.Len(t, rs, 2)
			}},
		{name: "rules of type record is no group", srv: full, method: "GET", target: "/api/v1/rules?type=record", code: 200,
			check: func(t *testing.T, v map[string]any) {
				require.Equal(t, []any{}, v["data"].(map[string]any)["groups"])
			}},
		{name: "rules of an unknown type is bad data", srv: full, method: "GET", target: "/api/v1/rules?type=both", code: 400,
			check: func(t *testing.T, v map[string]any) { require.Equal(t, "bad_data", v["errorType"]) }},
		{name: "segments without segment sets is an empty list", srv: server{rules: examples}, method: "GET", target: "/api/v1/segments", code: 200,
			check: func(t *testing.T, v map[string]any) {
				require.Equal(t, []any{}, v["data"].(map[string]any)["sets"])
			}},
		{name: "segments counts per class, sets and classes sorted", srv: full, method: "GET", target: "/api/v1/segments", code: 200,
			check: func(t *testing.T, v map[string]any) {
				sets := v["data"].(map[string]any)["sets"].([]any)
				require.Len(t, sets, 2)
				require.Equal(t, "lifecycle", sets[0].(map[string]any)["name"])
				require.Nil(t, sets[0].(map[string]any)["as_of"])
				tier := sets[1].(map[string]any)
				require.Equal(t, float64(10), tier["total"])
				require.Equal(t, "gold", tier["classes"].([]any)[0].(map[string]any)["class"])
			}},
		{name: "a backtest answers what would have fired", srv: full, method: "POST", target: "/api/v1/backtest", ct: "application/json", body: okBody, code: 200,
			check: func(t *testing.T, v map[string]any) {
				data := v["data"].(map[string]any)
				require.Len(t, data["alerts"], 2, "complaint_streak fires and resolves for c1 only")
				require.Len(t, data["resends"], 1)
				require.Equal(t, false, data["truncated"])
				require.Equal(t, float64(7), data["stats"].(map[string]any)["interactions"])
				require.Equal(t, float64(backtest.DefaultMaxRecords), data["limits"].(map[string]any)["max_records"])
			}},
		{name: "a backtest over max_records says it is truncated", srv: server{rules: examples, bt: runner(t, backtest.Limits{MaxRecords: 1})},
			method: "POST", target: "/api/v1/backtest", ct: "application/json", body: okBody, code: 200,
			check: func(t *testing.T, v map[string]any) {
				data := v["data"].(map[string]any)
				require.Equal(t, true, data["truncated"])
				require.Equal(t, "max_records", data["truncated_by"])
				// The resend comes first: the soft bounce is at 09:02, the
				// complaint window closes at 10:00.
				require.Len(t, data["resends"], 1)
				require.Empty(t, data["alerts"])
				require.Equal(t, float64(1), data["stats"].(map[string]any)["firing"], "counts are whole")
				require.Equal(t, float64(1), data["stats"].(map[string]any)["resolved"], "counts are whole")
			}},
		{name: "invalid rules are bad data listing every problem", srv: full, method: "POST", target: "/api/v1/backtest", ct: "application/json",
			body: backtestJSON(t, "version: 1\nrules:\n  - name: x\n    kind: threshold\n    source: interactions\n    window: soon\n    op: \">\"\n  - name: y\n    kind: nope\n", from.Unix(), to.Unix()),
			code: 400, check: func(t *testing.T, v map[string]any) {
				errs := v["data"].(map[string]any)["errors"].([]any)
				require.GreaterOrEqual(t, len(errs), 2)
				joined := fmt.Sprint(errs...)
				require.Contains(t, joined, `rule "x"`)
				require.Contains(t, joined, `rule "y"`)
				require.True(t, strings.HasPrefix(v["error"].(string), "invalid rules: "))
			}},
		{name: "a YAML body that is not a rules file is bad data", srv: full, method: "POST", target: "/api/v1/backtest?from=1&to=2", ct: "application/yaml", body: "[1, 2",
			code: 400, check: func(t *testing.T, v map[string]any) { require.Contains(t, v["error"], "not a YAML document") }},
		{name: "a backtest without to is bad data", srv: full, method: "POST", target: "/api/v1/backtest", ct: "application/json",
			body: `{"rules": "version: 1", "from": "2026-03-01T00:00:00Z"}`, code: 400,
			check: func(t *testing.T, v map[string]any) { require.Contains(t, v["error"], "to: required") }},
		{name: "a backtest with from after to is bad data", srv: full, method: "POST", target: "/api/v1/backtest", ct: "application/json",
			body: backtestJSON(t, draft, to.Unix(), from.Unix()), code: 400,
			check: func(t *testing.T, v map[string]any) { require.Contains(t, v["error"], "must be before") }},
		{name: "a backtest with an unknown field is bad data", srv: full, method: "POST", target: "/api/v1/backtest", ct: "application/json",
			body: `{"rules": "version: 1", "since": 1}`, code: 400,
			check: func(t *testing.T, v map[string]any) { require.Contains(t, v["error"], "since") }},
		{name: "a backtest of another content type is bad data", srv: full, method: "POST", target: "/api/v1/backtest", ct: "text/plain", body: draft, code: 400,
			check: func(t *testing.T, v map[string]any) { require.Contains(t, v["error"], "application/yaml") }},
		{name: "a body over the limit is refused", srv: server{rules: examples, bt: runner(t, backtest.Limits{}), maxBody: 64},
			method: "POST", target: "/api/v1/backtest", ct: "application/json", body: okBody, code: 413,
			check: func(t *testing.T, v map[string]any) { require.Contains(t, v["error"], "64 bytes") }},
		{name: "a backtest without ClickHouse is unavailable", srv: server{rules: examples}, method: "POST", target: "/api/v1/backtest",
			ct: "application/json", body: okBody, code: 503,
			check: func(t *testing.T, v map[string]any) {
				require.Equal(t, "unavailable", v["errorType"])
				require.Contains(t, v["error"], "clickhouse.dsn")
			}},
		{name: "a backtest over its timeout is a timeout", srv: server{rules: examples, bt: runner(t, backtest.Limits{Timeout: time.Nanosecond})},
			method: "POST", target: "/api/v1/backtest", ct: "application/json", body: okBody, code: 503,
			check: func(t *testing.T, v map[string]any) { require.Equal(t, "timeout", v["errorType"]) }},
		{name: "a cancelled backtest is canceled", srv: full, ctx: cancelled, method: "POST", target: "/api/v1/backtest",
			ct: "application/json", body: okBody, code: 499,
			check: func(t *testing.T, v map[string]any) { require.Equal(t, "canceled", v["errorType"]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			h := tc.srv.handler(t)
			ans := do(t, h, ctx, tc.method, tc.target, tc.ct, tc.body)
			require.Equal(t, tc.code, ans.code, string(ans.body))
			require.Equal(t, "application/json", ans.ct)
			path := strings.SplitN(tc.target, "?", 2)[0]
			s := d.schemaFor(t, tc.method, path, ans.code, "application/json")
			require.NoError(t, s.Validate(anyJSON(t, ans.body)), string(ans.body))
			v := ans.json(t)
			if ans.code == 200 {
				require.Equal(t, "success", v["status"])
			} else {
				require.Equal(t, "error", v["status"])
			}
			tc.check(t, v)
		})
	}
	t.Run("the document is served", func(t *testing.T) {
		ans := do(t, full.handler(t), context.Background(), "GET", "/api/v1/openapi.yaml", "", "")
		require.Equal(t, 200, ans.code)
		require.Equal(t, "application/yaml", ans.ct)
		require.Equal(t, string(api.OpenAPI), string(ans.body))
	})
}

// TestSchemasRefuseDrift: the document's schemas are strict enough to
// catch a renamed or missing field (the validation above could otherwise
// pass anything).
func TestSchemasRefuseDrift(t *testing.T) {
	d := loadDocument(t)
	s := d.schemaFor(t, "GET", "/api/v1/alerts", 200, "application/json")
	good := `{"status":"success","data":{"alerts":[{"labels":{"alertname":"x"},"annotations":{},"state":"firing",` +
		`"activeAt":"2026-03-02T09:00:00Z","value":"1e+00","fingerprint":"f","rule":"x","threshold":0}]}}`
	require.NoError(t, s.Validate(anyJSON(t, []byte(good))))
	for _, bad := range []string{
		strings.Replace(good, `"activeAt"`, `"active_at"`, 1),
		strings.Replace(good, `"value":"1e+00"`, `"value":1`, 1),
		strings.Replace(good, `"alertname":"x"`, `"name":"x"`, 1),
		strings.Replace(good, `"2026-03-02T09:00:00Z"`, `"yesterday"`, 1),
	} {
		require.Error(t, s.Validate(anyJSON(t, []byte(bad))), bad)
	}
}
