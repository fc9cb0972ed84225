package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/crmpulse/crmpulse/api"
	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// FuzzBacktestRequest: whatever the body, content type and query, the
// backtest endpoint answers the Prometheus envelope with a status the
// document lists, never panics, and answers success only with data.
func FuzzBacktestRequest(f *testing.F) {
	draft := `version: 1
rules:
  - name: x
    kind: threshold
    source: interactions
    window: 1h
    value: count
    op: ">"
    threshold: 1
`
	f.Add("application/json", "", "", `{"rules":"version: 1","from":0,"to":10}`)
	f.Add("application/json", "", "", `{"rules":{"version":1},"from":"2026-03-02T00:00:00Z","to":"2026-03-03T00:00:00Z"}`)
	f.Add("application/yaml", "1772409600", "1772496000", draft)
	f.Add("application/json", "1e300", "nan", `{"rules":"`+"\\u0000"+`"}`)
	f.Add("", "", "", `[]`)
	f.Add("text/yaml; charset=utf-8", "-5", "2026-03-02T00:00:00.5+01:00", "rules: [")
	r, err := backtest.New(backtest.Config{Source: draftRecords(), Limits: backtest.Limits{Timeout: 10 * time.Second}})
	if err != nil {
		f.Fatal(err)
	}
	a, err := api.New(api.Config{Alerts: api.AlertsFunc(func() []processor.Alert { return nil }),
		Rules: api.RulesFunc(func() *rules.File { return nil }), Backtest: r, MaxBodyBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	documented := map[int]bool{200: true, 400: true, 413: true, 422: true, 499: true, 503: true}
	f.Fuzz(func(t *testing.T, ct, from, to, body string) {
		target := "/api/v1/backtest?from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to)
		ans := do(t, a, context.Background(), http.MethodPost, target, ct, body)
		if !documented[ans.code] {
			t.Fatalf("status %d: %s", ans.code, ans.body)
		}
		var env struct {
			Status, ErrorType, Error string
			Data                     json.RawMessage
		}
		if err := json.Unmarshal(ans.body, &env); err != nil {
			t.Fatalf("not JSON: %v: %s", err, ans.body)
		}
		switch {
		case ans.code == 200 && (env.Status != "success" || len(env.Data) == 0):
			t.Fatalf("200 without data: %s", ans.body)
		case ans.code != 200 && (env.Status != "error" || env.ErrorType == "" || env.Error == ""):
			t.Fatalf("error without type or message: %s", ans.body)
		}
	})
}
