package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/redact"
)

// postableAlert is one element of the body of POST /api/v2/alerts
// (Alertmanager's models.PostableAlert).
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// errorBodyLimit bounds how much of an error response is kept for the log.
const errorBodyLimit = 512

// statusError is a non-2xx answer from Alertmanager.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	switch e.code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("unexpected status %d (credentials refused: check alertmanager.username and password, "+
			"or bearer_token): %s", e.code, e.body)
	}
	return fmt.Sprintf("unexpected status %d: %s", e.code, e.body)
}

// post sends alerts to endpoint once. Like Alertmanager's own notifiers it
// says whether a failure is worth retrying: network errors, 5xx and 429 are;
// other 4xx mean the batch itself is refused and will be refused again,
// except 401 and 403: refused credentials are the deployment's state, not
// the batch's, and posts succeed again once they are fixed on either side.
func post(ctx context.Context, client *http.Client, endpoint string, alerts []postableAlert) (retry bool, err error) {
	body, err := json.Marshal(alerts)
	if err != nil {
		return false, fmt.Errorf("encoding alerts: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "crmpulse")
	resp, err := client.Do(req)
	if err != nil {
		// net/http's error quotes the URL: its password masked, but not
		// its token parameters.
		return true, redact.Error(fmt.Errorf("posting alerts: %w", err), endpoint)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		return false, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	err = fmt.Errorf("posting alerts: %w", &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(msg))})
	retry = resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
	return retry, err
}
