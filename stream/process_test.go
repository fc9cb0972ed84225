package stream_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// http is the address of its HTTP listener, once it logged it.
	http atomic.Pointer[string]
}

var httpAddrRE = regexp.MustCompile(`http=(127\.0\.0\.1:[0-9]+)`)

// startProc starts `crmpulse run` on tp; extra flags override the test
// defaults.
func startProc(t *testing.T, brokers []string, tp topics, group, name string, extra ...string) *proc {
	t.Helper()
	bin, pre, env := crmpulseBinary(t)
	args := append(pre, "run",
		"--kafka.brokers", strings.Join(brokers, ","), "--kafka.group-id", group,
		"--kafka.session-timeout", "6s",
		"--topics.interactions", tp.cfg.Interactions, "--topics.receipts", tp.cfg.Receipts, "--topics.customers", tp.cfg.Customers,
		"--topics.alerts", tp.cfg.Alerts, "--topics.resends", tp.cfg.Resends, "--topics.segments", tp.cfg.Segments, "--topics.digests", tp.cfg.Digests, "--topics.snapshots", tp.cfg.Snapshots,
		"--topics.repartition", tp.cfg.Repartition,
		"--rules", groupRulesFile, "--idle-timeout", "2s", "--commit-interval", "200ms", "--http.listen", "127.0.0.1:0")
	args = append(args, extra...)
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
			if m := httpAddrRE.FindStringSubmatch(line); m != nil && p.http.Load() == nil {
				p.http.Store(&m[1])
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
	testKillAndRestart(t, newKfake(t), genConfig{customers: 600, days: 3, seed: 3}, 4)
}

func TestKafkaKillAndRestart(t *testing.T) {
	testKillAndRestart(t, realBrokers(t), genConfig{customers: 1000, days: 3, seed: 4}, 20)
}

// testKillAndRestart kills `crmpulse run` with SIGKILL kills times, at
// random points (some before it took its partitions, most while it
// processes, restores or idles), restarting it each time: the outputs are
// replay's, with nothing missing and nothing that differs for an id, and no
// id is written twice to the alerts, resends or dead-letter topics.
func testKillAndRestart(t *testing.T, brokers []string, gc genConfig, kills int) {
	ds := generate(t, gc)
	want := replayOutputsWith(t, ds, groupRulesFile)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 4)
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	seed := time.Now().UnixNano()
	t.Logf("kill points seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	for i := range kills {
		p := startProc(t, brokers, tp, tp.prefix, fmt.Sprintf("run%d", i))
		var when string
		if rng.IntN(5) == 0 {
			// Anywhere from start-up to the first records.
			d := time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))
			time.Sleep(d)
			when = fmt.Sprintf("%s after start", d)
		} else {
			p.waitReady(t)
			d := time.Duration(rng.Int64N(int64(2 * time.Second)))
			time.Sleep(d)
			when = fmt.Sprintf("%s after taking partitions", d)
		}
		p.kill()
		got, _ := c.result()
		t.Logf("killed run %d %s: %d alerts, %d resends so far", i, when, len(got.alerts), len(got.resends))
	}
	p := startProc(t, brokers, tp, tp.prefix, "final")
	c.waitEqual(t, want, 3*time.Minute)
	p.stop(t)
	c.requireNoDups(t)
}

// TestKafkaCrashBeforeCheckpoint: a run writes every output and is killed
// before any checkpoint after its first (commit_interval 1h); the restart
// re-processes everything from the first snapshot and writes none of it
// again, suppressing every re-produced record.
func TestKafkaCrashBeforeCheckpoint(t *testing.T) {
	brokers := realBrokers(t)
	ds := generate(t, genConfig{customers: 300, days: 2, seed: 9})
	want := replayOutputsWith(t, ds, groupRulesFile)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 4)
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	first := startProc(t, brokers, tp, tp.prefix, "first", "--commit-interval", "1h")
	first.waitReady(t)
	c.waitEqual(t, want, 2*time.Minute)
	first.kill()
	got, _ := c.result()
	total := len(got.alerts) + len(got.resends) + len(got.segments) + len(got.digests)
	for _, n := range got.rejected {
		total += n
	}

	second := startProc(t, brokers, tp, tp.prefix, "second", "--commit-interval", "1h")
	second.waitReady(t)
	// Every output is re-produced (the same input, the same state) and
	// found already written.
	deadline := time.Now().Add(2 * time.Minute)
	var suppressed float64
	for time.Now().Before(deadline) {
		if suppressed = procMetric(t, second, "crmpulse_output_duplicates_suppressed_total"); suppressed >= float64(total) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, float64(total), suppressed, "re-produced records suppressed")
	require.Zero(t, procMetric(t, second, "crmpulse_output_dedup_held_ids"), "ids still held after everything was re-produced")
	require.Zero(t, procMetric(t, second, "crmpulse_output_dedup_fallbacks_total"))
	time.Sleep(2 * time.Second)
	got, diffs := c.result()
	require.Empty(t, diffs)
	require.Empty(t, diff(want, got))
	second.stop(t)
	c.requireNoDups(t)
}

// procMetric sums the samples of one metric on p's /metrics.
func procMetric(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	addr := p.http.Load()
	require.NotNil(t, addr, "the process has not logged its HTTP address")
	resp, err := http.Get("http://" + *addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sum := 0.0
	for line := range strings.SplitSeq(string(body), "\n") {
		if line != name && !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		require.NoError(t, err, line)
		sum += v
	}
	return sum
}
