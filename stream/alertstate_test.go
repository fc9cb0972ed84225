package stream_test

// Alert state across restarts and rebalances (docs/run.md), against the
// real Kafka and the real Alertmanager that `make test` starts: the firing
// alerts of a partition stay active in Alertmanager, well after they would
// expire there (4× the resend delay), when `crmpulse run` is killed and
// restarted, stopped and restarted, or when the partition moves to another
// instance; resolutions produced after that reach Alertmanager and the
// alerts webhook.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/stream"
)

const (
	// amResendDelay is the resend delay of these tests: Alertmanager lets
	// a firing alert expire 4× after its last post, 12 s. A killed member
	// keeps its partitions for the session timeout (6 s) and the next
	// owner restores them within a few seconds more.
	amResendDelay = 3 * time.Second
	amExpiry      = 4 * amResendDelay
	// amInputs is the input partition count.
	amInputs = 4
)

func alertmanagerURL(t *testing.T) string {
	t.Helper()
	u := testenv.Env(t, "CRMPULSE_ALERTMANAGER_URL", "this test needs the real Alertmanager that `make test` starts "+
		"(eval \"$(deploy/local/up.sh)\")")
	return strings.TrimSuffix(u, "/")
}

// amScenario is one test's topics, rules and customers: an inactivity rule
// with a name of its own (the alertname), and a tenant of its own.
type amScenario struct {
	brokers []string
	am      string
	tp      topics
	rules   string
	churn   string // inactivity rule: fires once a customer's last login is 1h old
	burst   string // threshold rule: fires on a complaint, resolves once the watermark (30s behind the wall clock when idle) is 30s past it
	quiet   string // group-level inactivity rule (the group stage's): fires once the tenant's last login is 1h old
	tenant  string
	// byPartition lists the customers of each input partition, two each.
	byPartition [amInputs][]string
	hooks       *hookLog
}

func newAMScenario(t *testing.T) *amScenario {
	t.Helper()
	brokers := realBrokers(t)
	am := alertmanagerURL(t)
	if _, _, env := crmpulseBinary(t); env != nil {
		t.Fatal("cmd/crmpulse does not build: these tests need its Alertmanager delivery")
	}
	s := newAlertScenario(t, brokers)
	s.am = am
	s.hooks = startHookLog(t)
	return s
}

// newAlertScenario creates the topics, rules and customers of a scenario.
func newAlertScenario(t *testing.T, brokers []string) *amScenario {
	t.Helper()
	sfx := fmt.Sprintf("%d_%06x", time.Now().UnixNano(), rand.Uint32()&0xffffff)
	s := &amScenario{brokers: brokers, tp: newTopics(t),
		churn: "alertstate_churn_" + sfx, burst: "alertstate_burst_" + sfx,
		quiet: "alertstate_quiet_" + sfx, tenant: "alertstate-" + sfx}
	createInputs(t, brokers, s.tp, amInputs)
	// The lateness exceeds any delivery delay: idle partitions follow the
	// wall clock, and the events these tests produce are stamped with it.
	s.rules = filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(s.rules, fmt.Appendf(nil, `version: 1
defaults: {timezone: UTC, allowed_lateness: 30s}
rules:
  - name: %s
    kind: inactivity
    source: interactions
    match: {type: [login]}
    key: [tenant, customer_id]
    idle_for: 1h
    severity: warning
  - name: %s
    kind: threshold
    source: interactions
    match: {type: [complaint]}
    group_by: [tenant, customer_id]
    window: 30s
    value: count
    op: ">="
    threshold: 1
    severity: warning
  - name: %s
    kind: inactivity
    source: interactions
    match: {type: [login]}
    key: [tenant]
    idle_for: 1h
    severity: warning
`, s.churn, s.burst, s.quiet), 0o644))
	// Two customers on each partition (the producer's murmur2), so that
	// every partition holds firing alerts wherever it moves.
	bal := &kafkago.Murmur2Balancer{}
	parts := []int{0, 1, 2, 3}
	for i := 0; ; i++ {
		c := fmt.Sprintf("cust%03d", i)
		p := bal.Balance(kafkago.Message{Key: []byte(c)}, parts...)
		if len(s.byPartition[p]) < 2 {
			s.byPartition[p] = append(s.byPartition[p], c)
		}
		if !slices.ContainsFunc(s.byPartition[:], func(cs []string) bool { return len(cs) < 2 }) {
			break
		}
	}
	return s
}

// customers returns the k-th customer of every partition.
func (s *amScenario) customers(k int) []string {
	var out []string
	for _, cs := range s.byPartition {
		out = append(out, cs[k])
	}
	slices.Sort(out)
	return out
}

// produceEvents writes one interaction of type typ at occurred_at at for
// each customer.
func (s *amScenario) produceEvents(t *testing.T, typ string, at time.Time, customers ...string) {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(s.brokers...), Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	var msgs []kafkago.Message
	for _, c := range customers {
		line := fmt.Sprintf(`{"event_id":"%s-%s-%d","type":%q,"customer_id":%q,"occurred_at":%q,"tenant":%q}`,
			typ, c, at.UnixNano(), typ, c, at.UTC().Format(time.RFC3339Nano), s.tenant)
		msgs = append(msgs, kafkago.Message{Topic: s.tp.cfg.Interactions, Key: []byte(c), Value: []byte(line)})
	}
	require.NoError(t, w.WriteMessages(t.Context(), msgs...))
}

// amAlert is an alert as GET /api/v2/alerts returns it.
type amAlert struct {
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
	EndsAt   time.Time         `json:"endsAt"`
}

// active returns the customers whose alert of rule Alertmanager holds as
// active (not resolved, not expired).
func (s *amScenario) active(t *testing.T, rule string) []string {
	t.Helper()
	q := url.Values{"filter": {fmt.Sprintf("alertname=%q", rule), fmt.Sprintf("tenant=%q", s.tenant)}}
	resp, err := http.Get(s.am + "/api/v2/alerts?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /api/v2/alerts: %s", body)
	var alerts []amAlert
	require.NoError(t, json.Unmarshal(body, &alerts))
	out := []string{}
	for _, a := range alerts {
		if a.EndsAt.IsZero() || a.EndsAt.After(time.Now()) {
			out = append(out, a.Labels["customer_id"])
		}
	}
	slices.Sort(out)
	return out
}

func (s *amScenario) waitActive(t *testing.T, rule string, want []string, what string) {
	t.Helper()
	var got []string
	require.Eventuallyf(t, func() bool {
		got = s.active(t, rule)
		return slices.Equal(got, want)
	}, 90*time.Second, 250*time.Millisecond, "%s: Alertmanager holds %v active, want %v", what, &got, want)
}

// holdActive waits until d after since and then requires exactly want to
// be active: well after Alertmanager would have let alerts expire that
// nobody re-posted.
func (s *amScenario) holdActive(t *testing.T, rule string, want []string, since time.Time, d time.Duration, what string) {
	t.Helper()
	gaps := 0
	for time.Since(since) < d {
		if !slices.Equal(s.active(t, rule), want) {
			gaps++ // logged only: how soon the next owner takes over depends on the machine
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("%s: %d polls of Alertmanager saw another active set than %v on the way", what, gaps, want)
	require.Equal(t, want, s.active(t, rule), "%s: active alerts %s after", what, d)
}

// start runs `crmpulse run` for the scenario in consumer group group.
func (s *amScenario) start(t *testing.T, group, name string) *amProc {
	t.Helper()
	bin, _, _ := crmpulseBinary(t)
	cmd := exec.Command(bin, "run",
		"--kafka.brokers", strings.Join(s.brokers, ","), "--kafka.group-id", group,
		"--kafka.session-timeout", "6s",
		"--topics.interactions", s.tp.cfg.Interactions, "--topics.receipts", s.tp.cfg.Receipts, "--topics.customers", s.tp.cfg.Customers,
		"--topics.alerts", s.tp.cfg.Alerts, "--topics.resends", s.tp.cfg.Resends, "--topics.segments", s.tp.cfg.Segments, "--topics.digests", s.tp.cfg.Digests, "--topics.snapshots", s.tp.cfg.Snapshots,
		"--topics.repartition", s.tp.cfg.Repartition,
		"--rules", s.rules, "--idle-timeout", "2s", "--commit-interval", "200ms", "--http.listen", "127.0.0.1:0",
		"--alertmanager.urls", s.am, "--alertmanager.resend-delay", amResendDelay.String(),
		"--webhooks.alerts", s.hooks.url)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &amProc{cmd: cmd, name: name, done: make(chan struct{})}
	go p.read(stderr)
	t.Cleanup(p.kill)
	return p
}

// amProc is a `crmpulse run` subprocess whose log it follows.
type amProc struct {
	cmd  *exec.Cmd
	name string
	done chan struct{}

	mu       sync.Mutex
	addr     string // of /metrics
	restored int    // "partition restored" lines so far
}

var httpAddr = regexp.MustCompile(`msg="pipeline starting".* http=(\S+)`)

func (p *amProc) read(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if os.Getenv("CRMPULSE_TEST_LOG") != "" {
			fmt.Fprintf(os.Stderr, "%s: %s\n", p.name, line)
		}
		p.mu.Lock()
		if m := httpAddr.FindStringSubmatch(line); m != nil {
			p.addr = m[1]
		}
		p.mu.Unlock()
		if strings.Contains(line, "partition restored") || strings.Contains(line, "partition assigned without a snapshot") {
			p.mu.Lock()
			p.restored++
			p.mu.Unlock()
		}
	}
	_ = p.cmd.Wait()
}

func (p *amProc) restores() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restored
}

// waitRestores waits until the process has taken (restored) more than n
// partitions in all, and returns when.
func (p *amProc) waitRestores(t *testing.T, n int) time.Time {
	t.Helper()
	require.Eventuallyf(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited", p.name)
		default:
		}
		return p.restores() > n
	}, 90*time.Second, 100*time.Millisecond, "%s restored no partition", p.name)
	return time.Now()
}

// checkpoints is the process's count of successful partition checkpoints.
func (p *amProc) checkpoints(t *testing.T) float64 {
	t.Helper()
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	require.NotEmpty(t, addr, "%s logged no HTTP address", p.name)
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `crmpulse_stream_checkpoints_total{outcome="success"} `); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

// waitCheckpointed waits until every partition has written checkpoints
// after now, so that its snapshot holds what it emitted so far.
func (p *amProc) waitCheckpointed(t *testing.T) {
	t.Helper()
	c0 := p.checkpoints(t)
	// Idle partitions follow the wall clock, so each checkpoints every
	// commit interval; three rounds cover a checkpoint under way at c0.
	require.Eventually(t, func() bool { return p.checkpoints(t) >= c0+3*amInputs }, time.Minute, 100*time.Millisecond)
}

func (p *amProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *amProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM within 60s", p.name)
	}
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode(), "%s: exit code after SIGTERM", p.name)
}

// hookLog serves the alerts webhook and keeps the states it was posted for
// each fingerprint+rule.
type hookLog struct {
	url string
	mu  sync.Mutex
	got []hookRecord
}

type hookRecord struct {
	Rule   string            `json:"rule"`
	State  string            `json:"state"`
	Labels map[string]string `json:"labels"`
}

func startHookLog(t *testing.T) *hookLog {
	h := &hookLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec hookRecord
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.got = append(h.got, rec)
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// states lists the states posted for customer's alert of rule, in order.
func (h *hookLog) states(rule, customer string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.got {
		if r.Rule == rule && r.Labels["customer_id"] == customer {
			out = append(out, r.State)
		}
	}
	return out
}

// fireAll starts the first instance and waits until every customer's
// inactivity alert and one customer's threshold alert are active in
// Alertmanager and checkpointed.
func (s *amScenario) fireAll(t *testing.T, group string) (*amProc, string) {
	t.Helper()
	s.produceEvents(t, "login", time.Now().Add(-3*time.Hour), append(s.customers(0), s.customers(1)...)...)
	a := s.start(t, group, "first")
	a.waitRestores(t, 0)
	burst := s.byPartition[0][0]
	s.produceEvents(t, "complaint", time.Now(), burst)
	all := append(s.customers(0), s.customers(1)...)
	slices.Sort(all)
	s.waitActive(t, s.churn, all, "inactivity alerts fire")
	s.waitActive(t, s.burst, []string{burst}, "the threshold alert fires")
	s.waitActive(t, s.quiet, []string{""}, "the group stage's alert fires")
	a.waitCheckpointed(t)
	require.Equal(t, []string{"firing"}, s.hooks.states(s.burst, burst), "the webhook got the threshold alert, not yet its resolution")
	return a, burst
}

func TestAlertmanagerAlertsSurviveKillAndRestart(t *testing.T) {
	t.Parallel()
	s := newAMScenario(t)
	a, burst := s.fireAll(t, s.tp.prefix)
	a.kill()
	killed := time.Now()
	// While the pipeline is down, half of the customers log in again.
	back, quiet := s.customers(0), s.customers(1)
	s.produceEvents(t, "login", time.Now(), back...)

	b := s.start(t, s.tp.prefix, "restarted")
	b.waitRestores(t, 0)
	// The logins are read again after the restore: their resolutions reach
	// Alertmanager; the others' alerts are re-posted by the new process.
	s.waitActive(t, s.churn, quiet, "after the restart")
	s.holdActive(t, s.churn, quiet, killed, 3*amExpiry, "after kill -9 and restart")
	require.Empty(t, s.active(t, s.quiet), "the group stage re-reads the logins too and resolves its alert")
	for _, c := range back {
		require.Equal(t, []string{"firing", "resolved"}, s.hooks.states(s.churn, c), "webhook records of %s", c)
	}
	for _, c := range quiet {
		require.Equal(t, []string{"firing"}, s.hooks.states(s.churn, c), "a restored alert is not posted to the webhook again")
	}
	// The threshold alert resolves a minute after its complaint as the
	// wall-clock watermark moves, which the killed process never saw: the
	// restored state produces the resolution, and it is delivered.
	s.waitActive(t, s.burst, []string{}, "the threshold alert resolves after the restart")
	require.Eventually(t, func() bool {
		return slices.Equal(s.hooks.states(s.burst, burst), []string{"firing", "resolved"})
	}, time.Minute, 100*time.Millisecond, "the webhook gets the resolution produced after the restart")
	b.stop(t)
}

func TestAlertmanagerAlertsSurviveStopAndRestart(t *testing.T) {
	t.Parallel()
	s := newAMScenario(t)
	a, _ := s.fireAll(t, s.tp.prefix)
	a.stop(t)
	stopped := time.Now()
	all := append(s.customers(0), s.customers(1)...)
	slices.Sort(all)
	require.Equal(t, all, s.active(t, s.churn), "a graceful stop resolves nothing")

	b := s.start(t, s.tp.prefix, "restarted")
	b.waitRestores(t, 0)
	s.holdActive(t, s.churn, all, stopped, 3*amExpiry, "after SIGTERM and restart")
	require.Equal(t, []string{""}, s.active(t, s.quiet), "the group stage's alert after SIGTERM and restart")

	s.produceEvents(t, "login", time.Now(), s.customers(0)...)
	s.waitActive(t, s.churn, s.customers(1), "logins after the restart resolve their alerts")
	s.waitActive(t, s.quiet, []string{}, "and the group stage's alert")
	b.stop(t)
}

func TestAlertmanagerAlertsFollowTheirPartition(t *testing.T) {
	t.Parallel()
	s := newAMScenario(t)
	a, _ := s.fireAll(t, s.tp.prefix)
	all := append(s.customers(0), s.customers(1)...)
	slices.Sort(all)

	// A second instance joins: some partitions move to it, and the first
	// stops re-posting their alerts.
	before := a.restores()
	b := s.start(t, s.tp.prefix, "second")
	joined := b.waitRestores(t, 0)
	a.waitRestores(t, before)
	s.holdActive(t, s.churn, all, joined, 3*amExpiry, "after a second instance took partitions")

	// Every partition resolves one alert, whichever instance owns it. Had
	// the first instance kept re-posting the moved partitions' alerts as
	// firing, they would be active again.
	s.produceEvents(t, "login", time.Now(), s.customers(0)...)
	s.waitActive(t, s.churn, s.customers(1), "resolutions after the move")
	s.holdActive(t, s.churn, s.customers(1), time.Now(), 2*amExpiry, "resolved alerts stay resolved")

	// The second instance stops: its partitions move back.
	before = a.restores()
	b.stop(t)
	moved := a.waitRestores(t, before)
	s.holdActive(t, s.churn, s.customers(1), moved, 3*amExpiry, "after the second instance stopped")
	s.produceEvents(t, "login", time.Now(), s.customers(1)...)
	s.waitActive(t, s.churn, []string{}, "resolutions after moving back")
	a.stop(t)
}

// stateRecorder is an AlertStateSink that records what the pipeline tells
// it about one rule's alerts, by customer.
type stateRecorder struct {
	rule string

	mu       sync.Mutex
	written  map[string]string   // customer → owner of the firing record written
	assigned map[string][]string // owner → customers of the firing alerts restored
	revoked  []string
}

func newStateRecorder(rule string) *stateRecorder {
	return &stateRecorder{rule: rule, written: map[string]string{}, assigned: map[string][]string{}}
}

func (r *stateRecorder) Write(ctx context.Context, out *processor.Output) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range out.Alerts {
		if a.Rule == r.rule && a.State == processor.StateFiring {
			r.written[a.Labels["customer_id"]] = stream.OutputOwner(ctx)
		}
	}
	return nil
}

func (r *stateRecorder) Flush(context.Context) error { return nil }

func (r *stateRecorder) Assigned(owner string, firing []processor.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.assigned[owner] = []string{}
	for _, a := range firing {
		if a.Rule == r.rule && a.State == processor.StateFiring {
			r.assigned[owner] = append(r.assigned[owner], a.Labels["customer_id"])
		}
	}
}

func (r *stateRecorder) Revoked(owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked = append(r.revoked, owner)
}

func (r *stateRecorder) snapshot() (written map[string]string, assigned map[string][]string, revoked []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.written), maps.Clone(r.assigned), slices.Sorted(slices.Values(r.revoked))
}

// TestKfakeFiringAlertsAreHandedToTheNextOwner: the pipeline's side of the
// hand-over, on the in-process broker. Each partition's firing alerts are
// written with that partition as owner; a stopping instance revokes every
// owner after its final checkpoint; the next instance hands every owner's
// restored firing alerts to the sinks, without producing them again.
func TestKfakeFiringAlertsAreHandedToTheNextOwner(t *testing.T) {
	s := newAlertScenario(t, newKfake(t))
	all := append(s.customers(0), s.customers(1)...)
	slices.Sort(all)
	s.produceEvents(t, "login", time.Now().Add(-3*time.Hour), all...)
	cfg := appConfig(s.brokers, s.tp, s.tp.prefix)
	cfg.Rules = s.rules

	first, firstQuiet := newStateRecorder(s.churn), newStateRecorder(s.quiet)
	cfg.Sinks = []stream.OutputSink{first, firstQuiet}
	a := startApp(t, cfg, "first")
	require.Eventually(t, func() bool {
		w, _, _ := first.snapshot()
		q, _, _ := firstQuiet.snapshot()
		return len(w) == len(all) && len(q) == 1
	}, time.Minute, 50*time.Millisecond, "the inactivity alerts never fired")
	written, assigned, _ := first.snapshot()
	for p, cs := range s.byPartition {
		for _, c := range cs {
			require.Equal(t, strconv.Itoa(p), written[c], "owner of %s's alert", c)
		}
	}
	for owner, cs := range assigned {
		require.Empty(t, cs, "partition %s started without a snapshot: nothing to hand over", owner)
	}
	q, _, _ := firstQuiet.snapshot()
	require.Equal(t, "groups", q[""], "the group stage owns the group-level alert")
	c0 := gauge(t, a.reg, "crmpulse_stream_checkpoints_total")
	require.Eventually(t, func() bool { return gauge(t, a.reg, "crmpulse_stream_checkpoints_total") >= c0+3*amInputs },
		time.Minute, 50*time.Millisecond)
	a.stop(t)
	_, _, revoked := first.snapshot()
	require.Equal(t, []string{"0", "1", "2", "3", "groups"}, revoked, "every owner is revoked when the instance stops")

	next, nextQuiet := newStateRecorder(s.churn), newStateRecorder(s.quiet)
	cfg.Sinks = []stream.OutputSink{next, nextQuiet}
	b := startApp(t, cfg, "next")
	require.Eventually(t, func() bool {
		_, as, _ := next.snapshot()
		_, qs, _ := nextQuiet.snapshot()
		return len(as) == amInputs+1 && len(qs) == amInputs+1
	}, time.Minute, 50*time.Millisecond, "not every owner was assigned")
	_, assigned, _ = next.snapshot()
	for p, cs := range s.byPartition {
		got := assigned[strconv.Itoa(p)]
		slices.Sort(got)
		require.Equal(t, slices.Sorted(slices.Values(cs)), got, "partition %d hands over its firing alerts", p)
	}
	require.Empty(t, assigned["groups"])
	_, qa, _ := nextQuiet.snapshot()
	require.Equal(t, []string{""}, qa["groups"], "the group stage hands over its alert")
	b.stop(t)
	written, _, _ = next.snapshot()
	require.Empty(t, written, "restored alerts are not produced again")
}
