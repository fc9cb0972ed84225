// Package api is the query API of `crmpulse run` (docs/api.md): which
// alerts are firing and which rules are loaded, in the shapes of the
// Prometheus and vmalert HTTP APIs (so Grafana's Prometheus-compatible
// alerting views and existing tools read them), segment counts, and
// backtests of a rules file over the stored raw events.
//
// It is handlers only: what it serves comes from the sources in Config,
// which the streaming pipeline (stream) implements, so the package knows
// nothing of Kafka. Every answer is the Prometheus envelope:
// {"status":"success","data":...} or {"status":"error","errorType":...,
// "error":...}. openapi.yaml describes it; a test checks the document
// against the handlers.
package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/common/version"

	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// OpenAPI is the API's OpenAPI 3.1 document, served at
// /api/v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Prefix is where the API is mounted.
const Prefix = "/api/v1/"

// DefaultMaxBodyBytes bounds a backtest request body when
// Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// DefaultBacktestConcurrency is how many backtests run at once when
// Config.BacktestConcurrency is 0.
const DefaultBacktestConcurrency = 2

// AlertSource is the set of alerts currently firing in this instance.
type AlertSource interface {
	// Firing returns the firing alerts; the caller may keep the slice
	// but must not modify the alerts' maps.
	Firing() []processor.Alert
}

// RulesSource is the rules file the instance runs now (reload-aware).
type RulesSource interface {
	Rules() *rules.File
}

// RulesFunc adapts a function to RulesSource.
type RulesFunc func() *rules.File

// Rules implements RulesSource.
func (f RulesFunc) Rules() *rules.File { return f() }

// AlertsFunc adapts a function to AlertSource.
type AlertsFunc func() []processor.Alert

// Firing implements AlertSource.
func (f AlertsFunc) Firing() []processor.Alert { return f() }

// SegmentSet is the current class counts of one segment set.
type SegmentSet struct {
	Name    string
	Classes []ClassCount
	// AsOf is the event time the counts are true at (the watermark); zero
	// when unknown.
	AsOf time.Time
}

// ClassCount is how many keys a class holds.
type ClassCount struct {
	Class string
	Count int64
}

// SegmentSource gives the segment sets' class counts.
type SegmentSource interface {
	Segments() []SegmentSet
}

// Backtester runs backtests (backtest.Runner).
type Backtester interface {
	Run(ctx context.Context, q backtest.Query) (*backtest.Result, error)
	Limits() backtest.Limits
}

var _ Backtester = (*backtest.Runner)(nil)

// Config is what the API serves.
type Config struct {
	Alerts AlertSource // required
	Rules  RulesSource // required
	// RulesFile is the path shown as the rule group's file.
	RulesFile string
	// Segments, when nil, is "no segment sets": an empty list.
	Segments SegmentSource
	// Backtest, when nil, makes POST /api/v1/backtest answer 503
	// unavailable (no ClickHouse configured).
	Backtest Backtester
	// BacktestUnavailable is the reason given when Backtest is nil.
	BacktestUnavailable string
	// MaxBodyBytes bounds a backtest request; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// BacktestConcurrency is how many backtests may run at once (each has
	// an engine of its own, so memory is bounded by this times one
	// backtest's); another is refused with 503 unavailable.
	// DefaultBacktestConcurrency when 0.
	BacktestConcurrency int
}

// API serves the endpoints.
type API struct {
	cfg Config
	mux *http.ServeMux
	// running holds a token per backtest in progress.
	running chan struct{}
}

// Route is one endpoint.
type Route struct {
	Method, Path string
}

// New checks cfg and builds the handlers.
func New(cfg Config) (*API, error) {
	if cfg.Alerts == nil {
		return nil, errors.New("api config: alerts: required")
	}
	if cfg.Rules == nil {
		return nil, errors.New("api config: rules: required")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("api config: max_body_bytes: must not be negative, got %d", cfg.MaxBodyBytes)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.BacktestConcurrency < 0 {
		return nil, fmt.Errorf("api config: backtest_concurrency: must not be negative, got %d", cfg.BacktestConcurrency)
	}
	if cfg.BacktestConcurrency == 0 {
		cfg.BacktestConcurrency = DefaultBacktestConcurrency
	}
	if cfg.BacktestUnavailable == "" {
		cfg.BacktestUnavailable = "backtests need ClickHouse: set clickhouse.dsn (and clickhouse.raw_events, so there are events to read)"
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), running: make(chan struct{}, cfg.BacktestConcurrency)}
	paths := map[string][]string{}
	for _, r := range a.routes() {
		a.mux.HandleFunc(r.Method+" "+r.Path, r.h)
		paths[r.Path] = append(paths[r.Path], r.Method)
	}
	for p, methods := range paths {
		allow := strings.Join(methods, ", ")
		a.mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, errBadData, fmt.Errorf("method not allowed; use %s", allow), nil)
		})
	}
	a.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errNotFound, fmt.Errorf("no endpoint %s (see %sopenapi.yaml)", r.URL.Path, Prefix), nil)
	})
	return a, nil
}

type route struct {
	Route
	h http.HandlerFunc
}

func (a *API) routes() []route {
	return []route{
		{Route{http.MethodGet, Prefix + "alerts"}, a.alerts},
		{Route{http.MethodGet, Prefix + "rules"}, a.rules},
		{Route{http.MethodGet, Prefix + "segments"}, a.segments},
		{Route{http.MethodPost, Prefix + "backtest"}, a.backtest},
		{Route{http.MethodGet, Prefix + "status/buildinfo"}, a.buildinfo},
		{Route{http.MethodGet, Prefix + "openapi.yaml"}, a.openapi},
	}
}

// Routes lists the endpoints.
func (a *API) Routes() []Route {
	var out []Route
	for _, r := range a.routes() {
		out = append(out, r.Route)
	}
	return out
}

// ServeHTTP serves every path under Prefix; mount it there.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// buildinfo answers as Prometheus does: tools (Grafana's Prometheus data
// source among them) ask it to learn what they talk to.
func (a *API) buildinfo(w http.ResponseWriter, _ *http.Request) {
	writeData(w, map[string]string{
		"application": "crmpulse", "version": version.Version, "revision": version.Revision, "branch": version.Branch,
		"buildUser": version.BuildUser, "buildDate": version.BuildDate, "goVersion": version.GoVersion,
	})
}

func (a *API) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}
