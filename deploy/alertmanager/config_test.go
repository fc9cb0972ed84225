// Package alertmanager_test checks the example Alertmanager configuration
// with the real amtool: it must load, and route CRM Pulse alerts by team
// and severity to the intended receivers.
package alertmanager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/alerting/alertmanager"
	"github.com/crmpulse/crmpulse/internal/testenv"
	"github.com/crmpulse/crmpulse/processor"
)

const configFile = "alertmanager.yml"

// amtool returns the path of amtool, skipping the test when it is not
// installed (deploy/local/alertmanager.sh install brings it).
func amtool(t *testing.T) string {
	t.Helper()
	return testenv.Tool(t, "amtool", "deploy/local/alertmanager.sh install brings it (Debian's prometheus-alertmanager); it checks alertmanager.yml")
}

func TestCheckConfig(t *testing.T) {
	out, err := exec.Command(amtool(t), "check-config", configFile).CombinedOutput()
	require.NoError(t, err, "amtool check-config:\n%s", out)
	require.Contains(t, string(out), "SUCCESS")
}

func TestRoutes(t *testing.T) {
	bin := amtool(t)
	for _, tc := range []struct {
		name   string
		labels []string
		want   string
	}{
		{"retention warning", []string{"alertname=churn_vip", "tenant=acme", "team=retention", "severity=warning"}, "retention-email"},
		{"retention critical pages", []string{"alertname=churn_vip", "tenant=acme", "team=retention", "severity=critical"}, "retention-pager"},
		{"revenue critical pages", []string{"alertname=revenue_drop", "tenant=acme", "segment=smb", "team=revenue", "severity=critical"}, "revenue-pager"},
		{"revenue warning", []string{"alertname=revenue_dip", "team=revenue", "severity=warning"}, "revenue-email"},
		{"messaging warning goes to its webhook", []string{"alertname=sms_failure_rate", "team=messaging", "severity=warning"}, "messaging-webhook"},
		{"messaging critical pages", []string{"alertname=sms_failure_rate", "team=messaging", "severity=critical"}, "messaging-pager"},
		{"info goes to the digest whatever the team", []string{"alertname=vip_login", "team=retention", "severity=info"}, "crm-digest"},
		{"the pipeline itself", []string{"alertname=CRMPulseDown", "team=platform", "severity=critical"}, "platform-pager"},
		{"critical without a team still pages", []string{"alertname=complaints_spike", "severity=critical"}, "crm-oncall-pager"},
		{"anything else", []string{"alertname=complaints_spike", "severity=warning"}, "crm-oncall-email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"config", "routes", "test", "--config.file=" + configFile}, tc.labels...)
			cmd := exec.Command(bin, args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr // warnings go there; stdout is the receiver
			out, err := cmd.Output()
			require.NoError(t, err, "amtool %s:\n%s%s", strings.Join(args, " "), out, stderr.String())
			require.Equal(t, tc.want, strings.TrimSpace(string(out)))
		})
	}
}

// TestInhibitionOnCRMLabels runs a private Alertmanager with the example
// configuration (through deploy/local/alertmanager.sh, on its own port and
// state directory, stopped by PID) and checks that its inhibition rules
// act on alerts as CRM Pulse posts them. Its receivers point at
// placeholders; their failed deliveries do not matter here.
func TestInhibitionOnCRMLabels(t *testing.T) {
	amtool(t)
	testenv.Tool(t, "prometheus-alertmanager", "deploy/local/alertmanager.sh install brings it")
	config, err := filepath.Abs(configFile)
	require.NoError(t, err)
	port := freePort(t)
	env := append(os.Environ(),
		"CRMPULSE_LOCAL="+t.TempDir(),
		"ALERTMANAGER_PORT="+strconv.Itoa(port),
		"ALERTMANAGER_CONFIG="+config,
	)
	script := filepath.Join("..", "local", "alertmanager.sh")
	run := func(arg string) {
		cmd := exec.Command(script, arg)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %s:\n%s", script, arg, out)
	}
	run("start")
	t.Cleanup(func() { run("stop") })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	n, err := alertmanager.New(alertmanager.Config{URLs: []string{base}}, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	start := time.Now().Add(-time.Minute)
	alert := func(rule, severity string, labels map[string]string) processor.Alert {
		l := map[string]string{"alertname": rule}
		maps.Copy(l, labels)
		return processor.Alert{Fingerprint: processor.Fingerprint(l), Rule: rule, State: processor.StateFiring,
			Severity: severity, Labels: l, StartsAt: start}
	}
	n.Notify(
		// A 60% revenue drop of acme/smb...
		alert("revenue_drop_critical", "critical", map[string]string{"team": "revenue", "tenant": "acme", "segment": "smb"}),
		// ...mutes the 20% one of the same team, tenant and segment,
		alert("revenue_drop_warning", "warning", map[string]string{"team": "revenue", "tenant": "acme", "segment": "smb"}),
		// but not another segment's,
		alert("revenue_drop_warning", "warning", map[string]string{"team": "revenue", "tenant": "acme", "segment": "enterprise"}),
		// nor another team's warning about the same tenant and segment.
		alert("complaints_rising", "warning", map[string]string{"team": "retention", "tenant": "acme", "segment": "smb"}),
		// CRMPulseDown mutes the pipeline's own warnings on that instance.
		alert("CRMPulseDown", "critical", map[string]string{"team": "platform", "instance": "10.0.0.1:9464"}),
		alert("CRMPulseWebhookBacklog", "warning", map[string]string{"team": "platform", "instance": "10.0.0.1:9464", "webhook": "resends"}),
	)
	want := map[string]string{
		"revenue_drop_critical/smb":       "active",
		"revenue_drop_warning/smb":        "suppressed",
		"revenue_drop_warning/enterprise": "active",
		"complaints_rising/smb":           "active",
		"CRMPulseDown/":                   "active",
		"CRMPulseWebhookBacklog/":         "suppressed",
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := states(base)
		require.NoError(c, err)
		assert.Equal(c, want, got)
	}, 20*time.Second, 100*time.Millisecond, "alert states")
}

// states returns the state of every alert Alertmanager holds, keyed by
// alertname/segment.
func states(base string) (map[string]string, error) {
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var alerts []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, a := range alerts {
		out[a.Labels["alertname"]+"/"+a.Labels["segment"]] = a.Status.State
	}
	return out, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
