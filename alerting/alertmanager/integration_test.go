package alertmanager

// Tests against the real Alertmanager that deploy/local/alertmanager.sh
// starts with deploy/local/alertmanager-test.yml (make test does it and
// exports CRMPULSE_ALERTMANAGER_URL). That config sends every notification
// to a webhook at http://127.0.0.1:29195/hook, which these tests serve;
// only one test binary can do so at a time, so a test waits for the port.
// Every test labels its alerts with a tenant of its own, so tests of other
// packages using the same Alertmanager do not disturb them.
//
// The stop/restart test also needs CRMPULSE_ALERTMANAGER_RESTART_TEST=1,
// since it takes the shared server down for a few seconds.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
	"github.com/crmpulse/crmpulse/processor"
)

const (
	envURL         = "CRMPULSE_ALERTMANAGER_URL"
	envRestartTest = "CRMPULSE_ALERTMANAGER_RESTART_TEST"
	// defaultHookAddr is the webhook receiver of alertmanager-test.yml;
	// alertmanager.sh exports another as CRMPULSE_ALERTMANAGER_WEBHOOK_ADDR
	// when AM_WEBHOOK_PORT moves it.
	defaultHookAddr = "127.0.0.1:29195"
	hookPath        = "/hook"
	waitFor         = 20 * time.Second
)

func amURL(t *testing.T) string {
	t.Helper()
	return testenv.Env(t, envURL, "start the test Alertmanager with deploy/local/alertmanager.sh start and "+
		`eval "$(deploy/local/alertmanager.sh env)" (make test does both)`)
}

// notification is the body Alertmanager's webhook receiver posts.
type notification struct {
	Status       string            `json:"status"`
	Receiver     string            `json:"receiver"`
	GroupKey     string            `json:"groupKey"`
	GroupLabels  map[string]string `json:"groupLabels"`
	CommonLabels map[string]string `json:"commonLabels"`
	Alerts       []hookAlert       `json:"alerts"`
}

type hookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// hook serves the webhook receiver of the test config and keeps the
// notifications about one tenant.
type hook struct {
	tenant string
	mu     sync.Mutex
	got    []notification
}

func startHook(t *testing.T, tenant string) *hook {
	t.Helper()
	var ln net.Listener
	require.Eventually(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", hookAddr())
		return err == nil
	}, time.Minute, 100*time.Millisecond, "webhook port %s stays busy", hookAddr())
	h := &hook{tenant: tenant}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+hookPath, func(w http.ResponseWriter, r *http.Request) {
		var n notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mine := slices.ContainsFunc(n.Alerts, func(a hookAlert) bool { return a.Labels["tenant"] == tenant })
		if mine {
			h.mu.Lock()
			h.got = append(h.got, n)
			h.mu.Unlock()
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

// waitNotification waits for a notification that satisfies ok.
func (h *hook) waitNotification(t *testing.T, what string, ok func(n notification) bool) notification {
	t.Helper()
	var found notification
	require.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, n := range h.got {
			if ok(n) {
				found = n
				return true
			}
		}
		return false
	}, waitFor, 50*time.Millisecond, "no notification: %s; got %+v", what, h.notifications())
	return found
}

func (h *hook) notifications() []notification {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// customers returns the sorted customer_id labels of n's alerts with status.
func (h *hook) customers(n notification, status string) []string {
	var out []string
	for _, a := range n.Alerts {
		if a.Status == status && a.Labels["tenant"] == h.tenant {
			out = append(out, a.Labels["customer_id"])
		}
	}
	slices.Sort(out)
	return out
}

// gettableAlert is an alert as GET /api/v2/alerts returns it.
type gettableAlert struct {
	Labels map[string]string `json:"labels"`
	EndsAt time.Time         `json:"endsAt"`
	Status struct {
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// activeAlerts returns the unresolved alerts Alertmanager holds for tenant,
// keyed by customer_id.
func activeAlerts(base, tenant string) (map[string]gettableAlert, error) {
	q := url.Values{"filter": {fmt.Sprintf("tenant=%q", tenant)}}
	resp, err := http.Get(strings.TrimSuffix(base, "/") + "/api/v2/alerts?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET alerts: %d %s", resp.StatusCode, b)
	}
	var alerts []gettableAlert
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		return nil, err
	}
	out := map[string]gettableAlert{}
	for _, a := range alerts {
		out[a.Labels["customer_id"]] = a
	}
	return out, nil
}

// testTenant is a tenant label no other test run uses.
func testTenant(t *testing.T) string {
	return fmt.Sprintf("it-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano())
}

// testRule is a rule name (alertname) no other test run uses: the test
// config groups by alertname, so each test's notifications hold only its
// own alerts.
func testRule(name string) string {
	return fmt.Sprintf("%s_%d", name, time.Now().UnixNano())
}

func alertFor(tenant, rule, severity, customer string, startsAt time.Time) processor.Alert {
	labels := map[string]string{"alertname": rule, "tenant": tenant, "customer_id": customer, "team": "retention"}
	return processor.Alert{
		Fingerprint: processor.Fingerprint(labels),
		Rule:        rule, Kind: "inactivity", State: processor.StateFiring, Severity: severity,
		Labels:      labels,
		Annotations: map[string]string{"summary": "customer " + customer + " idle"},
		Value:       3600, Threshold: 1800, StartsAt: startsAt,
	}
}

// startNotifier runs a notifier on urls until the test ends.
func startNotifier(t *testing.T, cfg Config) (*Notifier, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n, err := New(cfg, logger, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return n, reg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestIntegrationGroupedFiringThenResolved(t *testing.T) {
	base := amURL(t)
	tenant, rule := testTenant(t), testRule("churn")
	h := startHook(t, tenant)
	n, _ := startNotifier(t, Config{URLs: []string{base}, ResendDelay: 5 * time.Second})

	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	var alerts []processor.Alert
	for _, c := range []string{"c1", "c2", "c3"} {
		alerts = append(alerts, alertFor(tenant, rule, "warning", c, start))
	}
	n.Notify(alerts...)

	got := h.waitNotification(t, "firing group", func(n notification) bool {
		return n.Status == "firing" && len(h.customers(n, "firing")) == 3
	})
	require.Equal(t, []string{"c1", "c2", "c3"}, h.customers(got, "firing"), "one grouped notification")
	require.Equal(t, rule, got.CommonLabels["alertname"])
	require.Equal(t, "warning", got.CommonLabels["severity"], "severity label added from Alert.Severity")
	require.Equal(t, tenant, got.CommonLabels["tenant"])
	for _, a := range got.Alerts {
		require.True(t, a.StartsAt.Equal(start), "startsAt is the event time")
		require.Equal(t, "customer "+a.Labels["customer_id"]+" idle", a.Annotations["summary"])
	}

	ends := start.Add(5 * time.Minute)
	for i := range alerts {
		alerts[i] = resolvedAt(alerts[i], ends)
	}
	n.Notify(alerts...)
	got = h.waitNotification(t, "resolved group", func(n notification) bool {
		return n.Status == "resolved" && len(h.customers(n, "resolved")) == 3
	})
	for _, a := range got.Alerts {
		require.True(t, a.EndsAt.Equal(ends), "endsAt is ends_at")
	}
	act, err := activeAlerts(base, tenant)
	require.NoError(t, err)
	require.Empty(t, act)
	require.Empty(t, n.Active())
}

func resolvedAt(a processor.Alert, ends time.Time) processor.Alert {
	a.State = processor.StateResolved
	a.EndsAt = &ends
	return a
}

func TestIntegrationSilenceSuppresses(t *testing.T) {
	base := amURL(t)
	amtool := testenv.Tool(t, "amtool", "deploy/local/alertmanager.sh install brings it (Debian's prometheus-alertmanager)")
	tenant, rule := testTenant(t), testRule("churn")
	h := startHook(t, tenant)

	out, err := exec.Command(amtool, "silence", "add", "--alertmanager.url="+base,
		"--author=crmpulse-tests", "--comment=integration test", "--duration=10m",
		fmt.Sprintf("tenant=%s", tenant)).CombinedOutput()
	require.NoError(t, err, "amtool silence add: %s", out)
	silenceID := strings.TrimSpace(string(out))
	require.NotEmpty(t, silenceID)
	expire := func() {
		if silenceID == "" {
			return
		}
		out, err := exec.Command(amtool, "silence", "expire", "--alertmanager.url="+base, silenceID).CombinedOutput()
		require.NoError(t, err, "amtool silence expire: %s", out)
		silenceID = ""
	}
	t.Cleanup(expire)

	n, _ := startNotifier(t, Config{URLs: []string{base}, ResendDelay: 5 * time.Second})
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	alerts := []processor.Alert{alertFor(tenant, rule, "critical", "c1", start), alertFor(tenant, rule, "critical", "c2", start)}
	n.Notify(alerts...)

	require.Eventually(t, func() bool {
		act, err := activeAlerts(base, tenant)
		if err != nil || len(act) != 2 {
			return false
		}
		for _, a := range act {
			if a.Status.State != "suppressed" || !slices.Contains(a.Status.SilencedBy, silenceID) {
				return false
			}
		}
		return true
	}, waitFor, 50*time.Millisecond, "alerts silenced by %s", silenceID)
	// group_wait and group_interval are 1s in the test config: a few
	// seconds of quiet mean the silence held.
	time.Sleep(4 * time.Second)
	require.Empty(t, h.notifications(), "silenced alerts are not notified")

	// Once the silence expires the same alerts are notified.
	expire()
	got := h.waitNotification(t, "firing after the silence", func(n notification) bool {
		return n.Status == "firing" && len(h.customers(n, "firing")) == 2
	})
	require.Equal(t, []string{"c1", "c2"}, h.customers(got, "firing"))

	for i := range alerts {
		alerts[i] = resolvedAt(alerts[i], start.Add(time.Second))
	}
	n.Notify(alerts...)
	h.waitNotification(t, "resolved", func(n notification) bool { return n.Status == "resolved" })
}

func TestIntegrationInhibition(t *testing.T) {
	base := amURL(t)
	tenant := testTenant(t)
	h := startHook(t, tenant)
	n, _ := startNotifier(t, Config{URLs: []string{base}, ResendDelay: 5 * time.Second})

	// The test config inhibits warnings by a critical alert of the same
	// tenant (deploy/local/alertmanager-test.yml).
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	dropRule, churnRule := testRule("revenue_drop"), testRule("churn")
	critical := alertFor(tenant, dropRule, "critical", "", start)
	delete(critical.Labels, "customer_id")
	critical.Fingerprint = processor.Fingerprint(critical.Labels)
	warning := alertFor(tenant, churnRule, "warning", "c1", start)
	n.Notify(critical)
	h.waitNotification(t, "critical", func(n notification) bool {
		return n.Status == "firing" && n.CommonLabels["alertname"] == dropRule
	})
	n.Notify(warning)

	require.Eventually(t, func() bool {
		act, err := activeAlerts(base, tenant)
		if err != nil {
			return false
		}
		w, ok := act["c1"]
		return ok && w.Status.State == "suppressed" && len(w.Status.InhibitedBy) == 1
	}, waitFor, 50*time.Millisecond, "the warning is inhibited")
	time.Sleep(3 * time.Second)
	for _, n := range h.notifications() {
		require.NotContains(t, h.customers(n, "firing"), "c1", "an inhibited warning is not notified")
	}

	// When the critical one resolves, the warning gets through.
	n.Notify(resolvedAt(critical, start.Add(time.Second)))
	h.waitNotification(t, "warning after the inhibition", func(n notification) bool {
		return n.Status == "firing" && slices.Contains(h.customers(n, "firing"), "c1")
	})
	n.Notify(resolvedAt(warning, start.Add(time.Second)))
}

func TestIntegrationHAWithOneDeadMember(t *testing.T) {
	base := amURL(t)
	tenant := testTenant(t)
	dead := "http://127.0.0.1:1"
	n, _ := startNotifier(t, Config{URLs: []string{dead, base}, ResendDelay: 5 * time.Second, MaxBackoff: time.Second})
	start := time.Now().Truncate(time.Second)
	a := alertFor(tenant, testRule("churn"), "info", "c1", start)
	n.Notify(a)
	require.Eventually(t, func() bool {
		act, err := activeAlerts(base, tenant)
		return err == nil && len(act) == 1
	}, waitFor, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(n.metrics.posts.WithLabelValues(dead, outcomeNetworkError)) >= 2
	}, waitFor, 50*time.Millisecond, "the dead member is retried")
	require.Equal(t, 0.0, testutil.ToFloat64(n.metrics.up.WithLabelValues(dead)))
	require.Equal(t, 1.0, testutil.ToFloat64(n.metrics.up.WithLabelValues(base)))
	n.Notify(resolvedAt(a, start))
	require.Eventually(t, func() bool {
		act, err := activeAlerts(base, tenant)
		return err == nil && len(act) == 0
	}, waitFor, 50*time.Millisecond)
}

// amScript runs deploy/local/alertmanager.sh with arg.
func amScript(t *testing.T, arg string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "local", "alertmanager.sh")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, arg).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", script, arg, out)
}

func TestIntegrationRestartLosesNothing(t *testing.T) {
	base := amURL(t)
	testenv.OptIn(t, envRestartTest, "it stops and restarts the shared test Alertmanager (other packages' tests must not be using it; make test runs it in its sequential phase)")
	tenant, rule := testTenant(t), testRule("churn")
	n, _ := startNotifier(t, Config{URLs: []string{base}, ResendDelay: 2 * time.Second, MaxBackoff: time.Second, Timeout: 2 * time.Second})
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	alerts := map[string]processor.Alert{}
	for _, c := range []string{"a", "b", "c", "d", "e"} {
		alerts[c] = alertFor(tenant, rule, "warning", c, start)
		n.Notify(alerts[c])
	}
	waitActive := func(want []string) {
		t.Helper()
		require.Eventually(t, func() bool {
			act, err := activeAlerts(base, tenant)
			if err != nil {
				return false
			}
			var got []string
			for c := range act {
				got = append(got, c)
			}
			slices.Sort(got)
			return slices.Equal(got, want)
		}, waitFor, 100*time.Millisecond, "Alertmanager should hold exactly %v", want)
	}
	waitActive([]string{"a", "b", "c", "d", "e"})

	amScript(t, "stop")
	stopped := true
	t.Cleanup(func() {
		if stopped {
			amScript(t, "start")
		}
	})
	_, err := activeAlerts(base, tenant)
	require.Error(t, err, "Alertmanager is down")

	// While it is down: two resolve, two more fire.
	n.Notify(resolvedAt(alerts["a"], start.Add(time.Minute)), resolvedAt(alerts["b"], start.Add(time.Minute)))
	n.Notify(alertFor(tenant, rule, "warning", "f", start), alertFor(tenant, rule, "warning", "g", start))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(n.metrics.posts.WithLabelValues(base, outcomeNetworkError)) >= 2
	}, waitFor, 50*time.Millisecond, "posts fail while Alertmanager is down")
	time.Sleep(3 * time.Second) // longer than ResendDelay: a re-post is due meanwhile

	amScript(t, "start")
	stopped = false
	// Alertmanager keeps alerts in memory only: everything still firing
	// must come back from the notifier's active set.
	waitActive([]string{"c", "d", "e", "f", "g"})
	require.Equal(t, 1.0, testutil.ToFloat64(n.metrics.up.WithLabelValues(base)))

	for _, c := range []string{"c", "d", "e", "f", "g"} {
		n.Notify(resolvedAt(alertFor(tenant, rule, "warning", c, start), start.Add(time.Minute)))
	}
	waitActive(nil)
}

// hookAddr is where the test Alertmanager sends its webhook notifications.
func hookAddr() string {
	if a := os.Getenv("CRMPULSE_ALERTMANAGER_WEBHOOK_ADDR"); a != "" {
		return a
	}
	return defaultHookAddr
}
