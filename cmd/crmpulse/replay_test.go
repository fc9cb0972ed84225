package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const replayTestRules = `
version: 1
defaults: {timezone: UTC, allowed_lateness: 10m}
rules:
  - {name: churn, kind: inactivity, source: interactions, match: {type: [login]}, key: [tenant, customer_id], idle_for: 1h}
`

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// crmpulseBinary builds this command once per test run, so that signals
// and exit codes are those of the real process.
func crmpulseBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crmpulse-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "crmpulse")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// replayProc is a running `crmpulse replay` whose interactions come from
// a FIFO the test writes.
type replayProc struct {
	cmd            *exec.Cmd
	out            string
	stdout, stderr *syncBuffer
	fifo           *os.File
}

// syncBuffer is a bytes.Buffer that the test may read while the process
// writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startReplayOverFIFO(t *testing.T, extra ...string) *replayProc {
	t.Helper()
	bin := crmpulseBinary(t)
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(replayTestRules), 0o644))
	fifo := filepath.Join(dir, "i.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	p := &replayProc{out: filepath.Join(dir, "out"), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	args := append([]string{"replay", "--rules", rulesPath, "--interactions", fifo, "--out", p.out}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	// Opening the writing end returns once replay has opened the reading end.
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	p.fifo = f
	return p
}

// stop sends sig and waits for the process to exit, returning its code.
func (p *replayProc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute): // a hang guard, not a timing assertion
		p.cmd.Process.Kill()
		t.Fatalf("replay did not stop after %v; stderr:\n%s", sig, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// requireInterrupted checks the summary line and that every output file
// holds whole JSON lines.
func (p *replayProc) requireInterrupted(t *testing.T) {
	t.Helper()
	require.True(t, strings.HasPrefix(p.stdout.String(), "replay: interrupted; "), "stdout: %q", p.stdout)
	require.Contains(t, p.stderr.String(), "crmpulse replay: interrupted")
	for _, name := range []string{"alerts.jsonl", "resends.jsonl", "rejected.jsonl"} {
		b, err := os.ReadFile(filepath.Join(p.out, name))
		require.NoError(t, err)
		require.True(t, len(b) == 0 || bytes.HasSuffix(b, []byte("\n")), "%s ends in a partial line", name)
		for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			if len(b) > 0 {
				require.True(t, json.Valid(line), "%s: %q", name, line)
			}
		}
	}
}

func TestReplayStopsOnSignalWhileWaitingForInput(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			p := startReplayOverFIFO(t, "--quiet")
			// The FIFO stays open and silent: replay waits in a read.
			require.Equal(t, tc.code, p.stop(t, tc.sig), "stderr:\n%s", p.stderr)
			p.requireInterrupted(t)
		})
	}
}

// TestReplayStopsOnSIGINTInTheMiddleOfAnEndlessInput feeds logins without
// end and signals once replay has reported progress (so it is busy
// reading and writing): it exits 130 with an interrupted summary counting
// what it did, and the alerts and rejections so far are whole JSON lines.
func TestReplayStopsOnSIGINTInTheMiddleOfAnEndlessInput(t *testing.T) {
	p := startReplayOverFIFO(t)
	stopWriting := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		w := bufio.NewWriterSize(p.fifo, 64<<10)
		base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			if i%1000 == 999 {
				w.WriteString("not json\n")
				continue
			}
			// c0..c499 log in every 500 s; a one-off customer every 1000
			// records goes idle and fires churn an hour later.
			cust := "c" + strconv.Itoa(i%500)
			if i%1000 == 500 {
				cust = "once" + strconv.Itoa(i)
			}
			ts := base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
			line := `{"event_id":"e` + strconv.Itoa(i) + `","type":"login","customer_id":"` + cust + `","occurred_at":"` + ts + `"}` + "\n"
			if _, err := w.WriteString(line); err != nil {
				return // replay has exited
			}
		}
	}()
	// Progress lines come about once a second once replay is under way.
	for guard := time.Now(); !strings.Contains(p.stderr.String(), "records/s"); time.Sleep(20 * time.Millisecond) {
		if time.Since(guard) > 2*time.Minute { // a hang guard, not a timing assertion
			t.Fatalf("no progress line; stderr:\n%s", p.stderr)
		}
	}
	code := p.stop(t, syscall.SIGINT)
	close(stopWriting)
	p.fifo.Close()
	<-writerDone
	require.Equal(t, 130, code, "stderr:\n%s", p.stderr)
	p.requireInterrupted(t)
	fields := strings.Fields(p.stdout.String())
	require.Greater(t, len(fields), 3)
	n, err := strconv.Atoi(fields[2]) // "replay: interrupted; N interactions, ..."
	require.NoError(t, err)
	require.Greater(t, n, 65536, "the summary counts what was read before the signal")
	alerts, err := os.ReadFile(filepath.Join(p.out, "alerts.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, alerts, "alerts emitted before the signal are kept")
	rejected, err := os.ReadFile(filepath.Join(p.out, "rejected.jsonl"))
	require.NoError(t, err)
	require.Contains(t, string(rejected), `"reason":"not_json"`, "rejections read before the signal are kept")
}

// TestReplayStopsOnSIGINTDuringALineWithoutEnd writes NUL bytes without a
// newline: replay skips them in bounded memory and still stops on SIGINT.
func TestReplayStopsOnSIGINTDuringALineWithoutEnd(t *testing.T) {
	p := startReplayOverFIFO(t, "--quiet", "--max-line-bytes", "4096")
	chunk := make([]byte, 1<<20)
	for range 256 { // the FIFO holds 64 KiB: replay has read at least 255 MiB after this
		_, err := p.fifo.Write(chunk)
		require.NoError(t, err)
	}
	go func() {
		for {
			if _, err := p.fifo.Write(chunk); err != nil {
				return
			}
		}
	}()
	// Peak resident memory of replay until now, in KiB: VmHWM of its own
	// address space. (The rusage Maxrss of a child also counts the test
	// process's pages at the fork, before the exec, which is what a test
	// binary that ran other tests first made it report.)
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS %d KiB", rss)
	require.Equal(t, 130, p.stop(t, syscall.SIGINT), "stderr:\n%s", p.stderr)
	p.fifo.Close()
	p.requireInterrupted(t)
	require.Less(t, rss, int64(100<<10), "replay's peak RSS is %d KiB", rss)
}

// peakRSS is VmHWM of process pid, in KiB.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err, "VmHWM %q", v)
			return n
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

func TestReplayRefusesAnOutputThatIsAnInputBeforeTruncatingIt(t *testing.T) {
	bin := crmpulseBinary(t)
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(replayTestRules), 0o644))
	out := filepath.Join(dir, "out")
	require.NoError(t, os.MkdirAll(out, 0o755))
	victim := filepath.Join(out, "rejected.jsonl")
	const content = `{"receipt_id":"r1"}` + "\n"
	require.NoError(t, os.WriteFile(victim, []byte(content), 0o644))
	cmd := exec.Command(bin, "replay", "--rules", rulesPath, "--receipts", victim, "--out", out, "--quiet")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.ExitCode())
	require.Contains(t, stderr.String(), "is the receipts input")
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, content, string(b))
}
