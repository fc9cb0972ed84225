// Package alertmanager_test checks the example Alertmanager configuration
// with the real amtool: it must load, and route CRM Pulse alerts by team,
// severity, account manager and deadline stage to the intended receivers.
// With a private real Alertmanager it checks the inhibition rules, and,
// with the real Mailpit, that mail reaches the account manager
// (mail_test.go).
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

		// customer_labels: [account_manager] (examples/rules.yaml). The
		// account manager is told, and the team routes below still see it.
		{"churn of a customer reaches its account manager and the team's digest",
			[]string{"alertname=customer_churn", "tenant=acme", "customer_id=c1", "team=retention", "severity=info", "account_manager=am1@example.com", "tier=gold"},
			"account-manager-email,crm-digest"},
		{"an unresolved complaint reaches the account manager and on-call",
			[]string{"alertname=complaint_unresolved", "tenant=acme", "customer_id=c1", "ticket_id=T1", "team=customer_care", "severity=warning", "account_manager=am1@example.com"},
			"account-manager-email,crm-oncall-email"},
		{"a receivable falling due reaches the account manager and the team",
			[]string{"alertname=invoice_due", "tenant=acme", "customer_id=c2", "invoice_id=I1", "team=revenue", "severity=warning", "stage=due", "account_manager=am2@example.com"},
			"account-manager-email,revenue-email"},
		{"an overdue receivable escalates to collections too",
			[]string{"alertname=invoice_due", "tenant=acme", "customer_id=c2", "invoice_id=I1", "team=revenue", "severity=critical", "stage=overdue", "account_manager=am2@example.com"},
			"collections-email,account-manager-email,revenue-pager"},
		{"an overdue receivable of a customer nobody owns still reaches collections",
			[]string{"alertname=invoice_due", "tenant=acme", "customer_id=c3", "invoice_id=I2", "team=revenue", "severity=critical", "stage=overdue"},
			"collections-email,revenue-pager"},
		{"an account manager given by name goes to sales-ops, not to an address",
			[]string{"alertname=customer_churn", "tenant=acme", "customer_id=c4", "team=retention", "severity=info", "account_manager=Alice Wong"},
			"sales-ops-email,crm-digest"},
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
// act on alerts as CRM Pulse posts them, per-customer ones included. Its receivers point at
// placeholders; their failed deliveries do not matter here.
func TestInhibitionOnCRMLabels(t *testing.T) {
	amtool(t)
	testenv.Tool(t, "prometheus-alertmanager", "deploy/local/alertmanager.sh install brings it")
	config, err := filepath.Abs(configFile)
	require.NoError(t, err)
	base := startAlertmanager(t, config)

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
		// An overdue invoice of c2 (tenant beta) mutes c2's own warnings
		// of that team,
		alert("invoice_due", "critical", map[string]string{"team": "revenue", "tenant": "beta", "customer_id": "c2", "invoice_id": "I1", "stage": "overdue"}),
		alert("invoice_due", "warning", map[string]string{"team": "revenue", "tenant": "beta", "customer_id": "c2", "invoice_id": "I2", "stage": "due"}),
		// but not those of c3, although team and tenant are the same and
		// neither has a segment.
		alert("invoice_due", "warning", map[string]string{"team": "revenue", "tenant": "beta", "customer_id": "c3", "invoice_id": "I3", "stage": "due"}),
	)
	want := map[string]string{
		"revenue_drop_critical/smb/":       "active",
		"revenue_drop_warning/smb/":        "suppressed",
		"revenue_drop_warning/enterprise/": "active",
		"complaints_rising/smb/":           "active",
		"CRMPulseDown//":                   "active",
		"CRMPulseWebhookBacklog//":         "suppressed",
		"invoice_due//I1":                  "active",
		"invoice_due//I2":                  "suppressed",
		"invoice_due//I3":                  "active",
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := states(base)
		require.NoError(c, err)
		assert.Equal(c, want, got)
	}, 20*time.Second, 100*time.Millisecond, "alert states")
}

// startAlertmanager runs a private Alertmanager with config through
// deploy/local/alertmanager.sh, on a free port with its own state
// directory, stopped by its recorded PID when t ends; it returns the base
// URL.
func startAlertmanager(t *testing.T, config string) string {
	t.Helper()
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
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// states returns the state of every alert Alertmanager holds, keyed by
// alertname/segment/invoice_id.
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
		out[a.Labels["alertname"]+"/"+a.Labels["segment"]+"/"+a.Labels["invoice_id"]] = a.Status.State
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
