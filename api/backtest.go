package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// backtestRequest is the JSON form of a backtest: the rules file as a YAML
// string (or as a JSON object of the same structure) and the range.
type backtestRequest struct {
	Rules json.RawMessage `json:"rules"`
	From  json.RawMessage `json:"from"`
	To    json.RawMessage `json:"to"`
}

type backtestData struct {
	From        time.Time         `json:"from"`
	To          time.Time         `json:"to"`
	RulesHash   string            `json:"rules_hash"`
	Alerts      []json.RawMessage `json:"alerts"`
	Resends     []json.RawMessage `json:"resends"`
	Truncated   bool              `json:"truncated"`
	TruncatedBy string            `json:"truncated_by,omitempty"`
	Stats       backtestStats     `json:"stats"`
	Limits      backtestLimits    `json:"limits"`
}

type backtestStats struct {
	RowsRead     int64     `json:"rows_read"`
	Interactions int64     `json:"interactions"`
	Receipts     int64     `json:"receipts"`
	Duplicates   int64     `json:"duplicates"`
	Rejected     int64     `json:"rejected"`
	Firing       int64     `json:"firing"`
	Resolved     int64     `json:"resolved"`
	Resends      int64     `json:"resends"`
	Cancels      int64     `json:"cancels"`
	Watermark    time.Time `json:"watermark"`
}

type backtestLimits struct {
	MaxRows        int64   `json:"max_rows"`
	MaxRecords     int     `json:"max_records"`
	TimeoutSeconds float64 `json:"timeout_seconds"`
}

// badRequest is a request error: 400 bad_data, with details.
type badRequest struct {
	err     error
	details []string
}

func (e *badRequest) Error() string { return e.err.Error() }

func (a *API) backtest(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Backtest == nil {
		writeError(w, http.StatusServiceUnavailable, errUnavailable, errors.New(a.cfg.BacktestUnavailable), nil)
		return
	}
	q, err := a.parseBacktest(w, r)
	if err != nil {
		var br *badRequest
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, errBadData,
				fmt.Errorf("request body is larger than the limit of %d bytes", tooLarge.Limit), nil)
		case errors.As(err, &br) && br.details != nil:
			writeError(w, http.StatusBadRequest, errBadData, err, map[string]any{"errors": br.details})
		default:
			writeError(w, http.StatusBadRequest, errBadData, err, nil)
		}
		return
	}
	select {
	case a.running <- struct{}{}:
		defer func() { <-a.running }()
	default:
		writeError(w, http.StatusServiceUnavailable, errUnavailable,
			fmt.Errorf("%d backtests are running already (api.backtest_concurrency); retry when one has finished", cap(a.running)), nil)
		return
	}
	res, err := a.cfg.Backtest.Run(r.Context(), q)
	switch {
	case err == nil:
	case errors.Is(err, backtest.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, errTimeout, err, nil)
		return
	case errors.Is(err, context.Canceled):
		writeError(w, statusClientClosedRequest, errCanceled, err, nil)
		return
	case errors.Is(err, backtest.ErrSource):
		writeError(w, http.StatusServiceUnavailable, errUnavailable, err, nil)
		return
	default:
		writeError(w, http.StatusUnprocessableEntity, errExecution, err, nil)
		return
	}
	lim := a.cfg.Backtest.Limits()
	data := backtestData{
		From: q.From.UTC(), To: q.To.UTC(), RulesHash: q.Rules.Hash,
		Alerts: make([]json.RawMessage, 0, len(res.Alerts)), Resends: make([]json.RawMessage, 0, len(res.Resends)),
		Truncated: res.Truncated, TruncatedBy: res.TruncatedBy,
		Stats: backtestStats{
			RowsRead: res.Stats.RowsRead, Interactions: res.Stats.Interactions, Receipts: res.Stats.Receipts,
			Duplicates: res.Stats.Duplicates, Rejected: res.Stats.Rejected, Firing: res.Stats.Firing,
			Resolved: res.Stats.Resolved, Resends: res.Stats.Resends, Cancels: res.Stats.Cancels,
			Watermark: res.Stats.Watermark.UTC(),
		},
		Limits: backtestLimits{MaxRows: lim.MaxRows, MaxRecords: lim.MaxRecords, TimeoutSeconds: lim.Timeout.Seconds()},
	}
	// The records as replay writes them (SPEC §4), by their own encoder.
	for i := range res.Alerts {
		b, err := res.Alerts[i].AppendJSON(nil)
		if err != nil {
			writeError(w, http.StatusInternalServerError, errInternal, err, nil)
			return
		}
		data.Alerts = append(data.Alerts, b)
	}
	for i := range res.Resends {
		b, err := res.Resends[i].AppendJSON(nil)
		if err != nil {
			writeError(w, http.StatusInternalServerError, errInternal, err, nil)
			return
		}
		data.Resends = append(data.Resends, b)
	}
	writeData(w, data)
}

// parseBacktest reads a backtest request: a JSON object {rules, from, to},
// or (Content-Type application/yaml) the rules file itself with from and
// to as query parameters. Query parameters fill what the body leaves out.
func (a *API) parseBacktest(w http.ResponseWriter, r *http.Request) (backtest.Query, error) {
	var q backtest.Query
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		return q, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var rulesText []byte
	from, to := r.URL.Query().Get("from"), r.URL.Query().Get("to")
	switch ct {
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		rulesText = body
	case "application/json", "":
		var req backtestRequest
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return q, fmt.Errorf("request body: not a JSON object {rules, from, to}: %w", err)
		}
		switch {
		case len(req.Rules) == 0 || string(req.Rules) == "null":
			return q, errors.New("request body: rules: required (the rules file, as a YAML string or a JSON object)")
		case req.Rules[0] == '"':
			var s string
			if err := json.Unmarshal(req.Rules, &s); err != nil {
				return q, fmt.Errorf("request body: rules: %w", err)
			}
			rulesText = []byte(s)
		default:
			// A JSON object is a YAML document of the same structure.
			rulesText = req.Rules
		}
		if v, err := timeText(req.From); err != nil {
			return q, fmt.Errorf("request body: from: %w", err)
		} else if v != "" {
			from = v
		}
		if v, err := timeText(req.To); err != nil {
			return q, fmt.Errorf("request body: to: %w", err)
		} else if v != "" {
			to = v
		}
	default:
		return q, fmt.Errorf("Content-Type %q: send application/json ({rules, from, to}) or application/yaml (the rules file, from and to as query parameters)", ct)
	}
	if q.From, err = parseTime("from", from); err != nil {
		return q, err
	}
	if q.To, err = parseTime("to", to); err != nil {
		return q, err
	}
	if !q.From.Before(q.To) {
		return q, fmt.Errorf("from (%s) must be before to (%s)", q.From.UTC().Format(time.RFC3339Nano), q.To.UTC().Format(time.RFC3339Nano))
	}
	rf, err := rules.Parse(rulesText)
	if err != nil {
		return q, &badRequest{err: fmt.Errorf("invalid rules: %w", err), details: ruleErrors(err)}
	}
	q.Rules = rf
	return q, nil
}

// ruleErrors lists the problems of a refused rules file, one per entry
// (rules.Parse joins them).
func ruleErrors(err error) []string {
	// Only joins are split, not what a wrapped error holds: "rule x: ..."
	// must keep its prefix even when its own problems are joined.
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, ruleErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// timeText is a JSON time value (a string or a number) as text.
func timeText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var f json.Number
	if err := json.Unmarshal(raw, &f); err != nil {
		return "", errors.New("must be an RFC 3339 time or Unix seconds")
	}
	return f.String(), nil
}

// parseTime reads a time as Prometheus does: RFC 3339, or Unix seconds
// with an optional fraction.
func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%s: required (an RFC 3339 time or Unix seconds)", name)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
			return time.Time{}, fmt.Errorf("%s: %q is out of range", name, s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is neither an RFC 3339 time nor Unix seconds", name, s)
	}
	return t.UTC(), nil
}
