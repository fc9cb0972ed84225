// Package chdbtest runs SQL on chDB, the in-process ClickHouse engine of a
// modern release (PyPI chdb-core, 26.x), for tests. The native-protocol sink
// is tested on the ClickHouse server make test installs (18.16, the only
// one Debian has); chDB is how the modern rendering of the migrations
// (LowCardinality, codecs, TTL) and the SQL of the dashboards and docs
// execute on a current engine too. chDB has no network protocol, so a small
// Python program does the work: deploy/local/chdb.sh installs it in a venv
// and exports CRMPULSE_CHDB_PYTHON.
package chdbtest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

// PythonEnv names the venv interpreter that has chdb-core.
const PythonEnv = "CRMPULSE_CHDB_PYTHON"

//go:embed runsql.py
var program []byte

// Result is one query's answer: column names and types, rows of values as
// ClickHouse's TSV prints them, or the error.
type Result struct {
	Names []string   `json:"names"`
	Types []string   `json:"types"`
	Rows  [][]string `json:"rows"`
	Error string     `json:"error"`
}

// Run executes setup in order in a fresh session (database crmpulse), then
// each query, and returns the engine's version and one Result per query. A
// failing setup statement fails the test. Without CRMPULSE_CHDB_PYTHON the
// test is skipped, or fails under make test (CRMPULSE_INTEGRATION=1),
// which installs chDB.
func Run(t testing.TB, setup, queries []string) (string, []Result) {
	t.Helper()
	python := testenv.Env(t, PythonEnv, `deploy/local/chdb.sh install; eval "$(deploy/local/chdb.sh env)"`)
	script := filepath.Join(t.TempDir(), "runsql.py")
	if err := os.WriteFile(script, program, 0o644); err != nil {
		t.Fatal(err)
	}
	req, err := json.Marshal(map[string][]string{"setup": setup, "queries": queries})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, script)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running chDB: %v\n%s", err, stderr.String())
	}
	var resp struct {
		Version    string   `json:"version"`
		Results    []Result `json:"results"`
		SetupError *struct {
			Index     int    `json:"index"`
			Statement string `json:"statement"`
			Error     string `json:"error"`
		} `json:"setup_error"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("reading chDB's answer: %v\n%s\n%s", err, out, stderr.String())
	}
	if e := resp.SetupError; e != nil {
		t.Fatalf("chDB %s: setup statement %d failed: %s\n%s", resp.Version, e.Index, e.Error, e.Statement)
	}
	if len(resp.Results) != len(queries) {
		t.Fatalf("chDB answered %d of %d queries", len(resp.Results), len(queries))
	}
	return resp.Version, resp.Results
}
