package api

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// Error types of the Prometheus HTTP API.
const (
	errBadData     = "bad_data"
	errTimeout     = "timeout"
	errCanceled    = "canceled"
	errExecution   = "execution"
	errUnavailable = "unavailable"
	errNotFound    = "not_found"
	errInternal    = "internal"
)

// statusClientClosedRequest is what Prometheus answers a cancelled
// request with (nginx's 499): the client is usually gone to read it.
const statusClientClosedRequest = 499

type envelope struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(envelope{Status: "error", ErrorType: errInternal, Error: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeData(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: data})
}

// writeError answers in the Prometheus style; data, when not nil, carries
// details (the list of rules errors).
func writeError(w http.ResponseWriter, code int, typ string, err error, data any) {
	writeJSON(w, code, envelope{Status: "error", ErrorType: typ, Error: err.Error(), Data: data})
}
