package plugin_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/experimental"
	"github.com/grafana/grafana-plugin-sdk-go/experimental/datasourcetest"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/api"
	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/dashboards/plugin/pkg/plugin"
	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

var update = flag.Bool("update", false, "rewrite the golden responses in testdata")

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// draftRecords fire testdata/draft.yaml: c1 complains four times in an
// hour, c2 twice, and an SMS to c3 soft bounces.
func draftRecords() backtest.Records {
	var r backtest.Records
	for i := range 4 {
		r.Interactions = append(r.Interactions, ingest.Interaction{EventID: fmt.Sprint("c1-", i), Type: "complaint", CustomerID: "c1",
			OccurredAt: t0.Add(time.Duration(i) * 10 * time.Minute), Tenant: "acme", Segment: "smb", Region: "emea", Channel: "web"})
	}
	r.Interactions = append(r.Interactions,
		ingest.Interaction{EventID: "c2-0", Type: "complaint", CustomerID: "c2", OccurredAt: t0.Add(5 * time.Minute), Tenant: "acme"},
		ingest.Interaction{EventID: "c2-1", Type: "complaint", CustomerID: "c2", OccurredAt: t0.Add(15 * time.Minute), Tenant: "acme"})
	r.Receipts = []ingest.Receipt{
		{ReceiptID: "r1", MessageID: "m1", CustomerID: "c3", Channel: "sms", Status: "sent", OccurredAt: t0.Add(time.Minute), Attempt: 1, Tenant: "acme"},
		{ReceiptID: "r2", MessageID: "m1", CustomerID: "c3", Channel: "sms", Status: "soft_bounce", OccurredAt: t0.Add(2 * time.Minute), Attempt: 1, Tenant: "acme"},
	}
	return r
}

type segments []api.SegmentSet

func (s segments) Segments() []api.SegmentSet { return s }

// startAPI runs the real query API handlers (api/, as `crmpulse run`
// mounts them) with fixed sources, and returns the server's URL.
func startAPI(t *testing.T) string {
	t.Helper()
	rf, err := rules.Load("../../../../examples/rules.yaml")
	require.NoError(t, err)
	end := t0.Add(time.Hour)
	firing := []processor.Alert{
		{Fingerprint: "b2", Rule: "complaint_burst", Kind: "threshold", State: "firing", Severity: "critical",
			Labels:      map[string]string{"alertname": "complaint_burst", "tenant": "acme", "region": "emea", "team": "customer_care"},
			Annotations: map[string]string{"summary": "12 complaints in the last hour from acme customers in emea"},
			Value:       12, Threshold: 10, StartsAt: end, WindowStart: &t0, WindowEnd: &end},
	}
	bt, err := backtest.New(backtest.Config{Source: draftRecords(), Limits: backtest.Limits{MaxRecords: 100},
		Now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }})
	require.NoError(t, err)
	a, err := api.New(api.Config{
		Alerts: api.AlertsFunc(func() []processor.Alert { return firing }), Rules: api.RulesFunc(func() *rules.File { return rf }),
		RulesFile: "rules.yaml", Backtest: bt,
		Segments: segments{{Name: "value_tier", AsOf: t0, Classes: []api.ClassCount{{Class: "gold", Count: 3}, {Class: "silver", Count: 7}}}},
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(api.Prefix, a)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func settings(t *testing.T, url string) backend.DataSourceInstanceSettings {
	t.Helper()
	js, err := json.Marshal(plugin.Settings{URL: url})
	require.NoError(t, err)
	return backend.DataSourceInstanceSettings{UID: "crmpulse", Name: "CRM Pulse", JSONData: js, Updated: t0}
}

// queries are one of each query type, and the two ways a query goes wrong.
func queries(t *testing.T) []backend.DataQuery {
	t.Helper()
	draft, err := os.ReadFile("testdata/draft.yaml")
	require.NoError(t, err)
	tr := backend.TimeRange{From: t0.Add(-time.Hour), To: t0.Add(6 * time.Hour)}
	q := func(ref, typ string, body map[string]any) backend.DataQuery {
		js, err := json.Marshal(body)
		require.NoError(t, err)
		return backend.DataQuery{RefID: ref, QueryType: typ, JSON: js, TimeRange: tr, Interval: time.Minute, MaxDataPoints: 100}
	}
	return []backend.DataQuery{
		q("alerts", plugin.QueryAlerts, map[string]any{}),
		q("rules", plugin.QueryRules, map[string]any{}),
		q("segments", plugin.QuerySegments, map[string]any{}),
		q("backtest", plugin.QueryBacktest, map[string]any{"rules": string(draft)}),
		q("backtest_invalid", plugin.QueryBacktest, map[string]any{"rules": "version: 1\nrules:\n  - name: y\n    kind: nope\n"}),
		q("unknown_type", "histogram", map[string]any{}),
	}
}

// checkGolden compares every data response with testdata/<refID>.jsonc,
// and checks the error responses (the SDK's golden files cannot hold an
// error response: its header is written without the separator it reads
// back).
func checkGolden(t *testing.T, resp *backend.QueryDataResponse, qs []backend.DataQuery) {
	t.Helper()
	require.Len(t, resp.Responses, len(qs))
	for _, q := range qs {
		dr, ok := resp.Responses[q.RefID]
		require.True(t, ok, q.RefID)
		switch q.RefID {
		case "backtest_invalid":
			require.Equal(t, backend.StatusBadRequest, dr.Status)
			require.Equal(t, backend.ErrorSourceDownstream, dr.ErrorSource)
			require.Error(t, dr.Error)
			require.True(t, strings.HasPrefix(dr.Error.Error(), `crmpulse API: invalid rules: rule "y": field kind: unknown kind "nope"`), dr.Error)
			require.True(t, strings.HasSuffix(dr.Error.Error(), `(bad_data, HTTP 400)`), dr.Error)
			require.Empty(t, dr.Frames)
		case "unknown_type":
			require.Equal(t, backend.StatusBadRequest, dr.Status)
			require.EqualError(t, dr.Error, `query type "histogram": want alerts, rules, segments or backtest`)
		default:
			require.NoError(t, dr.Error, q.RefID)
			experimental.CheckGoldenJSONResponse(t, "testdata", q.RefID, &dr, *update)
		}
	}
}

// TestQueryDataDirect: the data source, called in-process, answers each
// query type from the real API as the golden responses say: firing alerts
// and rules as tables, segment counts stamped with their time, a draft
// rule's backtest as alert and resend frames; invalid rules and an unknown
// query type are errors of their query only.
func TestQueryDataDirect(t *testing.T) {
	inst, err := plugin.NewDatasource(context.Background(), settings(t, startAPI(t)))
	require.NoError(t, err)
	ds := inst.(*plugin.Datasource)
	qs := queries(t)
	resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: qs})
	require.NoError(t, err)
	checkGolden(t, resp, qs)
	require.NoError(t, resp.Responses["backtest"].Error)
	require.Len(t, resp.Responses["backtest"].Frames, 2)
	require.Equal(t, 2, resp.Responses["backtest"].Frames[0].Rows(), "complaint_streak fires and resolves")
	require.Equal(t, 1, resp.Responses["backtest"].Frames[1].Rows(), "sms_retry resends once")

	h, err := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	require.NoError(t, err)
	require.Equal(t, backend.HealthStatusOk, h.Status, h.Message)
	require.Contains(t, h.Message, "14 rules loaded")
	require.Contains(t, h.Message, "1 alerts firing")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestQueryDataOverGRPC: the same queries through the plugin's gRPC server
// (as Grafana calls it, datasourcetest) give the same golden responses, and
// CheckHealth says whether the API answers.
func TestQueryDataOverGRPC(t *testing.T) {
	url := startAPI(t)
	tp, err := datasourcetest.Manage(plugin.NewDatasource, datasourcetest.ManageOpts{Address: freeAddr(t)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tp.Shutdown()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := settings(t, url)
	pctx := backend.PluginContext{PluginID: plugin.ID, OrgID: 1, DataSourceInstanceSettings: &s}
	qs := queries(t)
	resp, err := tp.Client.QueryData(ctx, &backend.QueryDataRequest{PluginContext: pctx, Queries: qs})
	require.NoError(t, err)
	checkGolden(t, resp, qs)

	h, err := tp.Client.CheckHealth(ctx, &backend.CheckHealthRequest{PluginContext: pctx})
	require.NoError(t, err)
	require.Equal(t, backend.HealthStatusOk, h.Status, h.Message)

	// A data source pointing at nothing is unhealthy, with the reason.
	down := settings(t, "http://"+freeAddr(t))
	down.UID, down.ID = "down", 2
	h, err = tp.Client.CheckHealth(ctx, &backend.CheckHealthRequest{PluginContext: backend.PluginContext{
		PluginID: plugin.ID, OrgID: 1, DataSourceInstanceSettings: &down}})
	require.NoError(t, err)
	require.Equal(t, backend.HealthStatusError, h.Status)
	require.Contains(t, h.Message, "/api/v1/rules")
}

// TestSettings: a data source without a usable URL is refused with the
// reason.
func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name, url, want string
	}{
		{"no url", "", "url: required"},
		{"not http", "ftp://x", "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugin.NewDatasource(context.Background(), settings(t, tc.url))
			require.ErrorContains(t, err, tc.want)
		})
	}
}
