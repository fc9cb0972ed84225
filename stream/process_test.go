package stream_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/stream"
)

// helperEnv makes the test binary run the app instead of the tests, the
// fallback when cmd/crmpulse does not build.
const helperEnv = "CRMPULSE_TEST_RUN_APP"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// helperMain is `crmpulse run` without the rest of the CLI.
func helperMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := newFlagSet()
	fv := stream.BindFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg := stream.DefaultConfig()
	if err := fv.Apply(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	app, err := stream.New(cfg, newLogger(os.Stderr), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := app.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

var (
	binOnce sync.Once
	binPath string
	binArgs []string
	binEnv  []string
)

// crmpulseBinary builds cmd/crmpulse once; when that fails (another
// package of the command is broken), it falls back to this test binary
// in helper mode.
func crmpulseBinary(t *testing.T) (string, []string, []string) {
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crmpulse-bin")
		if err != nil {
			panic(err)
		}
		p := filepath.Join(dir, "crmpulse")
		out, err := exec.Command("go", "build", "-o", p, "../cmd/crmpulse").CombinedOutput()
		if err == nil {
			binPath = p
			return
		}
		fmt.Fprintf(os.Stderr, "building cmd/crmpulse failed, running the app through the test binary:\n%s", out)
		binPath, binEnv = os.Args[0], []string{helperEnv + "=1"}
	})
	return binPath, binArgs, binEnv
}

// proc is a `crmpulse run` subprocess.
type proc struct {
	cmd   *exec.Cmd
	ready chan struct{}
	done  chan struct{}
}

func startProc(t *testing.T, brokers []string, tp topics, group, name string) *proc {
	t.Helper()
	bin, pre, env := crmpulseBinary(t)
	args := append(pre, "run",
		"--kafka.brokers", strings.Join(brokers, ","), "--kafka.group-id", group,
		"--kafka.session-timeout", "6s",
		"--topics.interactions", tp.cfg.Interactions, "--topics.receipts", tp.cfg.Receipts,
		"--topics.alerts", tp.cfg.Alerts, "--topics.resends", tp.cfg.Resends, "--topics.snapshots", tp.cfg.Snapshots,
		"--topics.repartition", tp.cfg.Repartition,
		"--rules", groupRulesFile, "--idle-timeout", "2s", "--commit-interval", "200ms", "--http.listen", "127.0.0.1:0")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			if os.Getenv("CRMPULSE_TEST_LOG") != "" {
				fmt.Fprintf(os.Stderr, "%s: %s\n", name, line)
			}
			if strings.Contains(line, "partition restored") || strings.Contains(line, "without a snapshot") {
				once.Do(func() { close(p.ready) })
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) stop(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("crmpulse run did not stop on SIGTERM within 60s")
	}
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode(), "exit code after SIGTERM")
}

func (p *proc) waitReady(t *testing.T) {
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatal("crmpulse run exited before taking partitions")
	case <-time.After(60 * time.Second):
		t.Fatal("crmpulse run took no partition within 60s")
	}
}

func TestKfakeKillAndRestart(t *testing.T) {
	testKillAndRestart(t, newKfake(t), genConfig{customers: 600, days: 3, seed: 3})
}

func TestKafkaKillAndRestart(t *testing.T) {
	testKillAndRestart(t, realBrokers(t), genConfig{customers: 2000, days: 3, seed: 4})
}

// testKillAndRestart kills `crmpulse run` with SIGKILL at several points
// and restarts it: the outputs, deduplicated by id, are replay's, with
// nothing missing and nothing that differs for an id.
func testKillAndRestart(t *testing.T, brokers []string, gc genConfig) {
	ds := generate(t, gc)
	want := replayOutputsWith(t, ds, groupRulesFile)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 4)
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	for i, after := range []time.Duration{50 * time.Millisecond, 400 * time.Millisecond, 1200 * time.Millisecond, 3 * time.Second} {
		p := startProc(t, brokers, tp, tp.prefix, fmt.Sprintf("run%d", i))
		p.waitReady(t)
		time.Sleep(after)
		p.kill()
		got, _ := c.result()
		t.Logf("killed run %d %s after taking partitions: %d alerts, %d resends so far", i, after, len(got.alerts), len(got.resends))
	}
	p := startProc(t, brokers, tp, tp.prefix, "final")
	c.waitEqual(t, want, 3*time.Minute)
	p.stop(t)
	c.mu.Lock()
	t.Logf("records re-emitted with the same id after restarts: %d", c.dups)
	c.mu.Unlock()
}
