package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a process's stderr, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunSIGTERMWithAStuckCheckpoint: the built binary, told to stop
// while its checkpoints cannot complete (the alert webhook never answers,
// so the final checkpoints wait for it), exits 1 after shutdown_timeout
// and logs the partitions that did not stop; a second SIGTERM does not
// wait even that long.
func TestRunSIGTERMWithAStuckCheckpoint(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "crmpulse")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	tests := []struct {
		name            string
		shutdownTimeout string
		signals         int
		want            []string
	}{
		{"one SIGTERM: the stop gives up after shutdown_timeout", "3s", 1, []string{
			`level=ERROR msg="shutdown timed out; partitions did not stop" partitions="[partition `,
			"shutdown_timeout=3s", `msg="crmpulse run failed"`,
		}},
		{"a second SIGTERM ends the stop at once", "10m", 2, []string{
			"terminated again while stopping; not waiting for the final checkpoints", `msg="crmpulse run failed"`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, logs := runStuckAndStop(t, bin, tc.shutdownTimeout, tc.signals)
			require.Equal(t, exitFailure, code, logs)
			for _, w := range tc.want {
				require.Contains(t, logs, w)
			}
		})
	}
}

// runStuckAndStop runs bin with an alert webhook that never answers,
// waits until an alert reached it, sends SIGTERM signals times (each once
// the stop began) and returns the exit code and the log.
func runStuckAndStop(t *testing.T, bin, shutdownTimeout string, signals int) (int, string) {
	dir := t.TempDir()
	hooked := make(chan struct{})
	var once sync.Once
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(hooked) })
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(func() { close(release) }) // runs before hook.Close

	rulesPath := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(`version: 1
rules:
  - {name: complaints, kind: threshold, source: interactions, match: {type: [complaint]}, group_by: [customer_id], window: 1h, value: count, op: ">=", threshold: 1}
`), 0o644))
	addr := freeAddr(t)
	var stderr lockedBuffer
	cmd := exec.Command(bin, "run", "--embedded-kafka", "--kafka.brokers", addr, "--kafka.embedded-partitions", "2",
		"--rules", rulesPath, "--webhooks.alerts", hook.URL, "--http.listen", "127.0.0.1:0",
		"--commit-interval", "100ms", "--shutdown-timeout", shutdownTimeout)
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "partitions assigned") },
		time.Minute, 50*time.Millisecond, stderr.String())

	w := &kafkago.Writer{Addr: kafkago.TCP(addr), Balancer: &kafkago.Murmur2Balancer{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	require.NoError(t, w.WriteMessages(ctx, kafkago.Message{Topic: "crm.interactions", Key: []byte("c1"), Value: []byte(
		fmt.Sprintf(`{"event_id":"e1","type":"complaint","customer_id":"c1","occurred_at":%q}`, at))}))
	select {
	case <-hooked:
	case <-time.After(time.Minute):
		t.Fatalf("the alert never reached the webhook:\n%s", stderr.String())
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var again <-chan time.Time
	if signals > 1 {
		require.Eventually(t, func() bool { return strings.Contains(stderr.String(), `msg="pipeline stopping"`) },
			time.Minute, 20*time.Millisecond, stderr.String())
		// Until it exits: the command listens for the second signal from
		// the moment it sees the first, a moment after the app does.
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		again = tick.C
	}
	deadline := time.After(2 * time.Minute)
	var err error
	for done := false; !done; {
		select {
		case err = <-exited:
			done = true
		case <-again:
			_ = cmd.Process.Signal(syscall.SIGTERM) // fails only once it exited
		case <-deadline:
			t.Fatalf("crmpulse run did not exit within 2 minutes of SIGTERM:\n%s", stderr.String())
		}
	}
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "exit: %v", err)
	return exit.ExitCode(), stderr.String()
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
