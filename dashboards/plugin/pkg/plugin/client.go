package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client talks to the query API of `crmpulse run` (docs/api.md).
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// apiError is an error answer of the API, in the Prometheus style.
type apiError struct {
	Code      int
	ErrorType string
	Message   string
	Details   []string
}

func (e *apiError) Error() string {
	// The message holds the details too (one a line: rules errors).
	return fmt.Sprintf("crmpulse API: %s (%s, HTTP %d)", strings.ReplaceAll(e.Message, "\n", "; "), e.ErrorType, e.Code)
}

// maxAnswerBytes bounds what the plugin reads of one answer: a backtest
// answer is bounded by the API's api.backtest_max_records, this by a
// margin above it.
const maxAnswerBytes = 64 << 20

func (c *client) do(ctx context.Context, method, path, ct string, body []byte, data any) error {
	u := c.base.JoinPath(path)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("building the request to %s: %w", u, err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("crmpulse API %s %s: %w", method, u.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return fmt.Errorf("crmpulse API %s %s: reading the answer: %w", method, u.Path, err)
	}
	if len(raw) > maxAnswerBytes {
		return fmt.Errorf("crmpulse API %s %s: answer larger than %d bytes", method, u.Path, maxAnswerBytes)
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("crmpulse API %s %s: HTTP %d, not a JSON answer (is the URL the crmpulse HTTP listener?): %.200s",
			method, u.Path, resp.StatusCode, raw)
	}
	if env.Status != "success" {
		e := &apiError{Code: resp.StatusCode, ErrorType: env.ErrorType, Message: env.Error}
		var d struct {
			Errors []string `json:"errors"`
		}
		if len(env.Data) > 0 && json.Unmarshal(env.Data, &d) == nil {
			e.Details = d.Errors
		}
		return e
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return fmt.Errorf("crmpulse API %s %s: unexpected answer: %w", method, u.Path, err)
	}
	return nil
}

// The answers, as much of them as the plugin shows (api/openapi.yaml).

type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Threshold   float64           `json:"threshold"`
}

type rule struct {
	Name     string            `json:"name"`
	Query    string            `json:"query"`
	Duration float64           `json:"duration"`
	Labels   map[string]string `json:"labels"`
	Alerts   []alert           `json:"alerts"`
	Health   string            `json:"health"`
	State    string            `json:"state"`
	Kind     string            `json:"kind"`
	Source   string            `json:"source"`
}

type segmentSet struct {
	Name    string `json:"name"`
	Classes []struct {
		Class string `json:"class"`
		Count int64  `json:"count"`
	} `json:"classes"`
	Total int64      `json:"total"`
	AsOf  *time.Time `json:"as_of"`
}

type alertRecord struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Kind        string            `json:"kind"`
	State       string            `json:"state"`
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Value       float64           `json:"value"`
	Threshold   float64           `json:"threshold"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at"`
}

type resendRecord struct {
	TriggerID  string    `json:"trigger_id"`
	Action     string    `json:"action"`
	Policy     string    `json:"policy"`
	MessageID  string    `json:"message_id"`
	CustomerID string    `json:"customer_id"`
	Tenant     string    `json:"tenant"`
	Channel    string    `json:"channel"`
	Attempt    int       `json:"attempt"`
	Reason     string    `json:"reason"`
	NotBefore  time.Time `json:"not_before"`
}

type backtestAnswer struct {
	Alerts      []alertRecord  `json:"alerts"`
	Resends     []resendRecord `json:"resends"`
	Truncated   bool           `json:"truncated"`
	TruncatedBy string         `json:"truncated_by"`
	Stats       struct {
		RowsRead  int64     `json:"rows_read"`
		Watermark time.Time `json:"watermark"`
	} `json:"stats"`
}

func (c *client) alerts(ctx context.Context) ([]alert, error) {
	var d struct {
		Alerts []alert `json:"alerts"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/alerts", "", nil, &d)
	return d.Alerts, err
}

func (c *client) rules(ctx context.Context) ([]rule, error) {
	var d struct {
		Groups []struct {
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/rules", "", nil, &d); err != nil {
		return nil, err
	}
	var out []rule
	for _, g := range d.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

func (c *client) segments(ctx context.Context) ([]segmentSet, error) {
	var d struct {
		Sets []segmentSet `json:"sets"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/segments", "", nil, &d)
	return d.Sets, err
}

func (c *client) backtest(ctx context.Context, rulesYAML string, from, to time.Time) (*backtestAnswer, error) {
	if strings.TrimSpace(rulesYAML) == "" {
		return nil, errors.New("backtest: the query has no rules (paste a rules file, SPEC §3)")
	}
	body, err := json.Marshal(map[string]any{"rules": rulesYAML, "from": from.UTC().Format(time.RFC3339Nano), "to": to.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return nil, err
	}
	var d backtestAnswer
	if err := c.do(ctx, http.MethodPost, "/api/v1/backtest", "application/json", body, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
