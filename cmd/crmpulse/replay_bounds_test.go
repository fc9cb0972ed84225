package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runCaptured runs the CLI with args and returns its exit code and what it
// wrote to stderr. It swaps os.Stderr, so tests using it must not run in
// parallel.
func runCaptured(t *testing.T, args ...string) (int, string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	old := os.Stderr
	os.Stderr = f
	code := run(context.Background(), args)
	os.Stderr = old
	_, err = f.Seek(0, io.SeekStart)
	require.NoError(t, err)
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return code, string(b)
}

func writeLines(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.jsonl")
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return p
}

func TestReplayUntilRange(t *testing.T) {
	in := writeLines(t, `{"event_id":"e1","type":"login","customer_id":"c1","occurred_at":"2026-11-02T10:00:00Z"}`)
	tests := []struct {
		name  string
		until string
		code  int
		msg   string
	}{
		{"the last supported instant", "2199-12-31T23:59:59.999999999Z", exitOK, ""},
		{"the first supported instant", "1970-01-01T00:00:00Z", exitOK, ""},
		{"2200 is past the range", "2200-01-01T00:00:00Z", exitUsage,
			"crmpulse replay: --until: 2200-01-01T00:00:00Z is outside the supported range 1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z (exclusive)"},
		{"where nanoseconds wrap", "2262-04-12T00:00:00Z", exitUsage, "--until: 2262-04-12T00:00:00Z is outside the supported range"},
		{"one ns before 1970", "1969-12-31T23:59:59.999999999Z", exitUsage, "--until: 1969-12-31T23:59:59.999999999Z is outside the supported range"},
		{"not a time", "tomorrow", exitUsage, `--until: parsing time "tomorrow"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runCaptured(t, "replay", "--rules", "../../examples/rules.yaml", "--interactions", in,
				"--out", t.TempDir(), "--quiet", "--until", tt.until)
			require.Equal(t, tt.code, code, stderr)
			require.Contains(t, stderr, tt.msg)
		})
	}
}

// A record dated 2100 amid 2026 records: crmpulse replay dead-letters it as
// future by default and accepts every record after it; --future-skew 0
// turns the guard off and they are all late.
func TestReplayFutureSkew(t *testing.T) {
	lines := []string{
		`{"event_id":"e1","type":"login","customer_id":"c1","occurred_at":"2026-11-02T10:00:00Z"}`,
		`{"event_id":"e2","type":"login","customer_id":"c2","occurred_at":"2026-11-02T10:05:00Z"}`,
		`{"event_id":"e3","type":"login","customer_id":"c3","occurred_at":"2100-01-01T00:00:00Z"}`,
	}
	for i := range 5 {
		lines = append(lines, fmt.Sprintf(`{"event_id":"e%d","type":"purchase","customer_id":"c1","occurred_at":"2026-11-02T10:%02d:00Z","amount":5}`, 4+i, 10+i))
	}
	in := writeLines(t, lines...)
	rejected := func(t *testing.T, out string) map[string][]int {
		f, err := os.Open(filepath.Join(out, "rejected.jsonl"))
		require.NoError(t, err)
		defer f.Close()
		got := map[string][]int{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r struct {
				Reason string `json:"reason"`
				Line   int    `json:"line"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
			got[r.Reason] = append(got[r.Reason], r.Line)
		}
		require.NoError(t, sc.Err())
		return got
	}
	tests := []struct {
		name  string
		flags []string
		want  map[string][]int
	}{
		{"default guard", nil, map[string][]int{"future": {3}}},
		{"a longer skew lets it through", []string{"--future-skew", "1000000h"}, map[string][]int{"late": {4, 5, 6, 7, 8}}},
		{"0 disables the guard", []string{"--future-skew", "0"}, map[string][]int{"late": {4, 5, 6, 7, 8}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"replay", "--rules", "../../examples/rules.yaml", "--interactions", in, "--out", out, "--quiet"}, tt.flags...)
			code, stderr := runCaptured(t, args...)
			require.Equal(t, exitOK, code, stderr)
			require.Equal(t, tt.want, rejected(t, out))
		})
	}

	code, stderr := runCaptured(t, "replay", "--rules", "../../examples/rules.yaml", "--interactions", in,
		"--out", t.TempDir(), "--future-skew", "-1h")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "--future-skew: must not be negative")
}
