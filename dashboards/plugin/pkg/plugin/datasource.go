// Package plugin is the backend of the CRM Pulse Grafana data source: it
// turns queries of a panel into calls to the query API of `crmpulse run`
// (docs/api.md) and their answers into data frames.
//
// Query types (the query's queryType):
//   - alerts: the firing alerts, one row each (a table);
//   - rules: the loaded rules with their state and firing count;
//   - segments: key counts per class of every segment set, stamped with
//     the time they are true at, so a time series panel polling it draws
//     counts over time;
//   - backtest: what a draft rules file (the query's "rules") would have
//     fired over the panel's time range: two frames, alerts and resends.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// ID is the plugin's id (plugin.json).
const ID = "crmpulse-crmpulse-datasource"

// Query types.
const (
	QueryAlerts   = "alerts"
	QueryRules    = "rules"
	QuerySegments = "segments"
	QueryBacktest = "backtest"
)

// Settings are the data source's jsonData; the token is in
// secureJsonData.token.
type Settings struct {
	// URL is the crmpulse HTTP listener, e.g. http://crmpulse:9464; the
	// data source's own URL field is used when this is empty.
	URL string `json:"url"`
	// TimeoutSeconds bounds one API call; 150 when 0 (a backtest may take
	// api.backtest_timeout, 2m by default).
	TimeoutSeconds int `json:"timeoutSeconds"`
}

// query is a panel query's JSON.
type query struct {
	QueryType string `json:"queryType"`
	// Rules is the draft rules file of a backtest (YAML).
	Rules string `json:"rules"`
}

// Datasource is one configured CRM Pulse data source.
type Datasource struct {
	c *client
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource is the instance factory that datasource.Manage calls with
// each data source's settings.
func NewDatasource(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	var cfg Settings
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &cfg); err != nil {
			return nil, fmt.Errorf("crmpulse data source settings: %w", err)
		}
	}
	raw := cfg.URL
	if raw == "" {
		raw = s.URL
	}
	if raw == "" {
		return nil, errors.New("crmpulse data source settings: url: required (the crmpulse HTTP listener, e.g. http://crmpulse:9464)")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("crmpulse data source settings: url: %q is not an http(s) URL", raw)
	}
	timeout := time.Duration(cfg.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = 150 * time.Second
	}
	return &Datasource{c: &client{base: u, token: s.DecryptedSecureJSONData["token"], http: &http.Client{Timeout: timeout}}}, nil
}

// Dispose implements instancemgmt.InstanceDisposer: settings changed.
func (d *Datasource) Dispose() { d.c.http.CloseIdleConnections() }

// QueryData implements backend.QueryDataHandler: one response per query,
// an error in one query never fails the others.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = d.query(ctx, q)
	}
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, q backend.DataQuery) backend.DataResponse {
	var qm query
	if len(q.JSON) > 0 {
		if err := json.Unmarshal(q.JSON, &qm); err != nil {
			return backend.ErrDataResponse(backend.StatusBadRequest, "query: "+err.Error())
		}
	}
	typ := q.QueryType
	if typ == "" {
		typ = qm.QueryType
	}
	var frames data.Frames
	var err error
	switch typ {
	case QueryAlerts, "":
		frames, err = d.alertsFrames(ctx)
	case QueryRules:
		frames, err = d.rulesFrames(ctx)
	case QuerySegments:
		frames, err = d.segmentFrames(ctx)
	case QueryBacktest:
		frames, err = d.backtestFrames(ctx, qm.Rules, q.TimeRange)
	default:
		return backend.ErrDataResponse(backend.StatusBadRequest,
			fmt.Sprintf("query type %q: want %s, %s, %s or %s", typ, QueryAlerts, QueryRules, QuerySegments, QueryBacktest))
	}
	if err != nil {
		return errorResponse(err)
	}
	for _, f := range frames {
		f.RefID = q.RefID
	}
	return backend.DataResponse{Frames: frames}
}

// errorResponse maps an API error to a data response: the API refusing a
// query (bad rules) is the user's to fix, anything else is downstream.
func errorResponse(err error) backend.DataResponse {
	var ae *apiError
	if errors.As(err, &ae) {
		switch ae.ErrorType {
		case "bad_data":
			return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, ae.Error())
		case "timeout":
			return backend.ErrDataResponseWithSource(backend.StatusTimeout, backend.ErrorSourceDownstream, ae.Error())
		case "unavailable":
			return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, ae.Error())
		}
	}
	return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
}

func labelsJSON(m map[string]string) json.RawMessage {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m) // a map of strings always encodes
	return b
}

func (d *Datasource) alertsFrames(ctx context.Context) (data.Frames, error) {
	alerts, err := d.c.alerts(ctx)
	if err != nil {
		return nil, err
	}
	f := data.NewFrame("alerts",
		data.NewField("active_at", nil, []time.Time{}),
		data.NewField("alertname", nil, []string{}),
		data.NewField("severity", nil, []string{}),
		data.NewField("state", nil, []string{}),
		data.NewField("value", nil, []float64{}),
		data.NewField("threshold", nil, []float64{}),
		data.NewField("summary", nil, []string{}),
		data.NewField("labels", nil, []json.RawMessage{}),
		data.NewField("fingerprint", nil, []string{}),
	)
	for _, a := range alerts {
		var v float64
		if _, err := fmt.Sscan(a.Value, &v); err != nil {
			return nil, fmt.Errorf("alert %s: value %q: %w", a.Fingerprint, a.Value, err)
		}
		f.AppendRow(a.ActiveAt, a.Labels["alertname"], a.Labels["severity"], a.State, v, a.Threshold,
			a.Annotations["summary"], labelsJSON(a.Labels), a.Fingerprint)
	}
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return data.Frames{f}, nil
}

func (d *Datasource) rulesFrames(ctx context.Context) (data.Frames, error) {
	rules, err := d.c.rules(ctx)
	if err != nil {
		return nil, err
	}
	f := data.NewFrame("rules",
		data.NewField("name", nil, []string{}),
		data.NewField("kind", nil, []string{}),
		data.NewField("source", nil, []string{}),
		data.NewField("state", nil, []string{}),
		data.NewField("firing", nil, []int64{}),
		data.NewField("severity", nil, []string{}),
		data.NewField("for_seconds", nil, []float64{}),
		data.NewField("query", nil, []string{}),
		data.NewField("health", nil, []string{}),
	)
	for _, r := range rules {
		f.AppendRow(r.Name, r.Kind, r.Source, r.State, int64(len(r.Alerts)), r.Labels["severity"], r.Duration, r.Query, r.Health)
	}
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return data.Frames{f}, nil
}

// segmentFrames is one long frame (time, set, class, count): the time is
// the counts' as_of. A time series panel polling it draws the counts over
// time; history before the panel was opened is in ClickHouse, not here.
func (d *Datasource) segmentFrames(ctx context.Context) (data.Frames, error) {
	sets, err := d.c.segments(ctx)
	if err != nil {
		return nil, err
	}
	f := data.NewFrame("segments",
		data.NewField("time", nil, []*time.Time{}),
		data.NewField("set", nil, []string{}),
		data.NewField("class", nil, []string{}),
		data.NewField("count", nil, []int64{}),
	)
	for _, s := range sets {
		for _, c := range s.Classes {
			f.AppendRow(s.AsOf, s.Name, c.Class, c.Count)
		}
	}
	if len(sets) == 0 {
		f.Meta = &data.FrameMeta{Notices: []data.Notice{{Severity: data.NoticeSeverityInfo, Text: "the running rules define no segment sets"}}}
	}
	return data.Frames{f}, nil
}

func (d *Datasource) backtestFrames(ctx context.Context, rulesYAML string, tr backend.TimeRange) (data.Frames, error) {
	res, err := d.c.backtest(ctx, rulesYAML, tr.From, tr.To)
	if err != nil {
		return nil, err
	}
	alerts := data.NewFrame("backtest_alerts",
		data.NewField("starts_at", nil, []time.Time{}),
		data.NewField("ends_at", nil, []*time.Time{}),
		data.NewField("rule", nil, []string{}),
		data.NewField("state", nil, []string{}),
		data.NewField("severity", nil, []string{}),
		data.NewField("value", nil, []float64{}),
		data.NewField("threshold", nil, []float64{}),
		data.NewField("summary", nil, []string{}),
		data.NewField("labels", nil, []json.RawMessage{}),
		data.NewField("fingerprint", nil, []string{}),
	)
	for _, a := range res.Alerts {
		alerts.AppendRow(a.StartsAt, a.EndsAt, a.Rule, a.State, a.Severity, a.Value, a.Threshold,
			a.Annotations["summary"], labelsJSON(a.Labels), a.Fingerprint)
	}
	resends := data.NewFrame("backtest_resends",
		data.NewField("not_before", nil, []time.Time{}),
		data.NewField("action", nil, []string{}),
		data.NewField("policy", nil, []string{}),
		data.NewField("customer_id", nil, []string{}),
		data.NewField("tenant", nil, []string{}),
		data.NewField("channel", nil, []string{}),
		data.NewField("attempt", nil, []int64{}),
		data.NewField("reason", nil, []string{}),
		data.NewField("message_id", nil, []string{}),
		data.NewField("trigger_id", nil, []string{}),
	)
	for _, r := range res.Resends {
		resends.AppendRow(r.NotBefore, r.Action, r.Policy, r.CustomerID, r.Tenant, r.Channel, int64(r.Attempt), r.Reason, r.MessageID, r.TriggerID)
	}
	meta := &data.FrameMeta{PreferredVisualization: data.VisTypeTable,
		Custom: map[string]any{"rows_read": res.Stats.RowsRead, "watermark": res.Stats.Watermark}}
	if res.Truncated {
		meta.Notices = []data.Notice{{Severity: data.NoticeSeverityWarning,
			Text: "backtest truncated (" + res.TruncatedBy + "): " + truncationText(res.TruncatedBy)}}
	}
	alerts.Meta = meta
	resends.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return data.Frames{alerts, resends}, nil
}

func truncationText(by string) string {
	switch by {
	case "max_records":
		return "more records than api.backtest_max_records; the first ones are shown"
	case "max_rows":
		return "the range holds more raw events than api.backtest_max_rows; the engine stopped there"
	}
	return "the result is not whole"
}

// CheckHealth implements backend.CheckHealthHandler: the API answers and
// lists the running rules.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	rules, err := d.c.rules(ctx)
	if err != nil {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: err.Error()}, nil
	}
	firing := 0
	kinds := map[string]bool{}
	for _, r := range rules {
		firing += len(r.Alerts)
		kinds[r.Kind] = true
	}
	ks := make([]string, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return &backend.CheckHealthResult{Status: backend.HealthStatusOk,
		Message: fmt.Sprintf("CRM Pulse answers: %d rules loaded (%s), %d alerts firing", len(rules), strings.Join(ks, ", "), firing)}, nil
}
