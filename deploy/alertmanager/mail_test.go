package alertmanager_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmpulse/crmpulse/alerting/alertmanager"
	"github.com/crmpulse/crmpulse/internal/mailpittest"
	"github.com/crmpulse/crmpulse/internal/testenv"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
)

// deadlineRule is a receivable reminder as the seeds describe it: due on
// the invoice's due date, escalated a week later. It lives here, not in
// examples/rules.yaml, so that this test does not change when the example
// reminders do.
const deadlineRule = `
name: receivable_due
kind: deadline
source: interactions
severity: info
start: {type: [invoice_issued]}
stop: {type: [invoice_paid]}
correlate: [tenant, customer_id, attributes.invoice_id]
due: attributes.due_at
stages:
  - {name: due, at: 0s, severity: warning}
  - {name: overdue, at: 7d, severity: critical}
customer_labels: [account_manager]
labels: {team: revenue}
annotations:
  summary: "Invoice {{ .Labels.invoice_id }} of {{ .Labels.customer_id }} is {{ .Labels.stage }}"
`

// TestMailToTheAccountManager is the seeds' central example, end to end
// through real servers: a customer who goes quiet makes the system email
// the customer's account manager, and an unpaid receivable escalates to
// collections. Replay runs examples/rules.yaml's customer_churn rule (with
// its customer_labels) and a receivable deadline over two customer
// profiles, c1 owned by am1@example.com and c2 by am2@example.com; the
// alerts are posted with the real Notifier, as crmpulse run posts them, to
// a private Alertmanager running alertmanager.yml (only its smarthost and
// group timings changed), which mails Mailpit. It proves that the
// customer_labels → route → template chain delivers: churn of c1 reaches
// am1's mailbox and not am2's, with the readable subject and body of
// templates/crmpulse-email.tmpl, and c2's overdue stage reaches the address
// its route names (collections@example.com) as well as am2.
//
// Every run uses its own tenant, which every mail body names: the test
// reads and deletes only its own mails on the shared Mailpit.
func TestMailToTheAccountManager(t *testing.T) {
	amtool(t)
	testenv.Tool(t, "prometheus-alertmanager", "deploy/local/alertmanager.sh install brings it")
	srv := mailpittest.Shared(t)
	smtpAddr := srv.SMTP
	mp := &mailpit{t: t, srv: srv}

	tenant := "mailtest" + randomHex(t)
	// Registered before Alertmanager starts, so it runs after it stopped:
	// no mail of this run arrives after the clean-up.
	t.Cleanup(func() { mp.deleteTenant(tenant) })

	base := startAlertmanager(t, mailConfig(t, smtpAddr))

	// The scenario, in the past of the wall clock so that Alertmanager
	// takes the alerts as they are.
	t0 := time.Now().UTC().Truncate(time.Hour).AddDate(0, 0, -30)
	at := func(days float64) string {
		return t0.Add(time.Duration(days * float64(24*time.Hour))).Format(time.RFC3339)
	}
	dir := t.TempDir()
	customers := writeLines(t, dir, "customers.jsonl",
		fmt.Sprintf(`{"customer_id":"c1","tenant":%q,"updated_at":%q,"account_manager":"am1@example.com","tier":"gold"}`, tenant, at(-1)),
		fmt.Sprintf(`{"customer_id":"c2","tenant":%q,"updated_at":%q,"account_manager":"am2@example.com","tier":"silver"}`, tenant, at(-1)),
	)
	inter := []string{
		// c1 buys once, then nothing: idle past the churn rule's 7 days.
		fmt.Sprintf(`{"event_id":"e1","type":"purchase","customer_id":"c1","tenant":%q,"occurred_at":%q,"amount":40}`, tenant, at(0)),
		// c2 is invoiced, due on day 2, never pays: overdue on day 9.
		fmt.Sprintf(`{"event_id":"i1","type":"invoice_issued","customer_id":"c2","tenant":%q,"occurred_at":%q,"attributes":{"invoice_id":"INV-7","due_at":%q}}`, tenant, at(1), at(2)),
	}
	// c2 keeps buying every 3 days, so it never churns; its last purchase
	// takes the watermark to day 12.
	for i, d := range []float64{0, 3, 6, 9, 12} {
		inter = append(inter, fmt.Sprintf(`{"event_id":"p%d","type":"purchase","customer_id":"c2","tenant":%q,"occurred_at":%q,"amount":25}`, i, tenant, at(d)))
	}
	interactions := writeLines(t, dir, "interactions.jsonl", inter...)

	var mu sync.Mutex
	var alerts []processor.Alert
	_, err := replay.Run(context.Background(), replay.Config{
		Rules: mailRules(t), Customers: customers, Interactions: interactions, OutDir: filepath.Join(dir, "out"),
		OnOutput: func(_ context.Context, out *processor.Output) error {
			mu.Lock()
			defer mu.Unlock()
			alerts = append(alerts, out.Alerts...)
			return nil
		},
	})
	require.NoError(t, err)
	// What replay decided, so that a failure below is about delivery.
	var decided []string
	for _, a := range alerts {
		decided = append(decided, strings.Join([]string{a.Rule, a.State, a.Labels["customer_id"], a.Labels["stage"], a.Labels["account_manager"]}, "/"))
	}
	require.ElementsMatch(t, []string{
		"customer_churn/firing/c1//am1@example.com",
		"receivable_due/firing/c2/due/am2@example.com",
		"receivable_due/resolved/c2/due/am2@example.com",
		"receivable_due/firing/c2/overdue/am2@example.com",
	}, decided)

	n, err := alertmanager.New(alertmanager.Config{URLs: []string{base}}, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	n.Notify(alerts...)

	// Wait until am1, am2 and collections each have their mail; then
	// nothing else about this tenant is on its way to them.
	var box map[string][]mail
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := mp.tenantMail(tenant)
		require.NoError(c, err)
		box = got
		assert.NotEmpty(c, find(got["am1@example.com"], "customer_churn"), "churn mail to am1")
		assert.NotEmpty(c, find(got["am2@example.com"], "receivable_due"), "overdue mail to am2")
		assert.NotEmpty(c, find(got["collections@example.com"], "receivable_due"), "overdue mail to collections")
	}, 2*time.Minute, 500*time.Millisecond, "mails in Mailpit")

	churn := find(box["am1@example.com"], "customer_churn")
	require.Len(t, churn, 1, "one mail per account manager and rule")
	require.Equal(t, "[CRM Pulse] customer_churn: customer c1 for am1@example.com", churn[0].Subject)
	for _, want := range []string{
		"Customer: c1 (tenant " + tenant + "), tier gold",
		"Rule:     customer_churn, severity info",
		"Summary: c1 (" + tenant + ") has been inactive for 7 days",
		"Description: No login, visit or purchase for",
		"account_manager=am1@example.com",
	} {
		require.Contains(t, churn[0].Text, want)
	}
	require.Contains(t, churn[0].HTML, "<b>Customer c1</b> (tenant "+tenant+"), tier gold", "the HTML part renders too")
	require.Empty(t, find(box["am1@example.com"], "receivable_due"), "c2's invoice is not am1's business")
	for _, m := range box["am2@example.com"] {
		require.NotContains(t, m.Text, "customer_id=c1", "am2 gets nothing about am1's customer: %s", m.Subject)
		require.NotContains(t, m.Subject, "customer_churn")
	}

	for _, who := range []string{"collections@example.com", "am2@example.com"} {
		overdue := find(box[who], "receivable_due")
		require.Len(t, overdue, 1, who)
		require.Contains(t, overdue[0].Subject, "[CRM Pulse] receivable_due (overdue): customer c2", who)
		require.Contains(t, overdue[0].Text, "Rule:     receivable_due, stage overdue, severity critical", who)
		require.Contains(t, overdue[0].Text, "Summary: Invoice INV-7 of c2 is overdue", who)
	}
	for _, m := range box["collections@example.com"] {
		require.NotContains(t, m.Text, "customer_churn", "collections hears only of escalations")
		require.NotContains(t, m.Text, "stage due", "collections hears only of escalations")
	}
}

// mailRules is examples/rules.yaml's customer_churn rule, as committed,
// next to deadlineRule.
func mailRules(t *testing.T) *rules.File {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "rules.yaml"))
	require.NoError(t, err)
	var examples struct {
		Rules []map[string]any `yaml:"rules"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &examples))
	var churn map[string]any
	for _, r := range examples.Rules {
		if r["name"] == "customer_churn" {
			churn = r
		}
	}
	require.NotNil(t, churn, "examples/rules.yaml has a customer_churn rule")
	require.Contains(t, churn["customer_labels"], "account_manager", "the example churn rule carries the account manager")
	var deadline map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(deadlineRule), &deadline))
	doc, err := yaml.Marshal(map[string]any{
		"version":  1,
		"defaults": map[string]any{"timezone": "UTC", "allowed_lateness": "10m"},
		"rules":    []map[string]any{churn, deadline},
	})
	require.NoError(t, err)
	f, err := rules.Parse(doc)
	require.NoError(t, err, "rules:\n%s", doc)
	return f
}

// mailConfig writes alertmanager.yml with what a test run needs changed:
// the smarthost is Mailpit's (no TLS, no auth), the templates path is
// absolute, and every group waits 1s instead of minutes. Routes,
// receivers and templates are the committed ones.
func mailConfig(t *testing.T, smtpAddr string) string {
	t.Helper()
	raw, err := os.ReadFile(configFile)
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	global := cfg["global"].(map[string]any)
	global["smtp_smarthost"] = smtpAddr
	global["smtp_require_tls"] = false
	delete(global, "smtp_auth_username")
	delete(global, "smtp_auth_password")
	here, err := os.Getwd()
	require.NoError(t, err)
	var templates []any
	for _, p := range cfg["templates"].([]any) {
		templates = append(templates, filepath.Join(here, p.(string)))
	}
	cfg["templates"] = templates
	var fast func(r map[string]any)
	fast = func(r map[string]any) {
		for _, k := range []string{"group_wait", "group_interval"} {
			if _, ok := r[k]; ok {
				r[k] = "1s"
			}
		}
		if sub, ok := r["routes"].([]any); ok {
			for _, s := range sub {
				fast(s.(map[string]any))
			}
		}
	}
	root := cfg["route"].(map[string]any)
	root["group_wait"], root["group_interval"] = "1s", "1s"
	fast(root)
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "alertmanager.yml")
	require.NoError(t, os.WriteFile(path, out, 0o644))
	return path
}

// mail is one message as Mailpit returns it.
type mail = mailpittest.Message

// find returns the mails whose subject names rule.
func find(ms []mail, rule string) []mail {
	var out []mail
	for _, m := range ms {
		if strings.Contains(m.Subject, rule) {
			out = append(out, m)
		}
	}
	return out
}

// mailpit reads and deletes this run's messages on the shared Mailpit.
type mailpit struct {
	t   *testing.T
	srv *mailpittest.Server
}

// tenantMail returns the messages about tenant, which is unique to a run
// (Mailpit's search covers subjects and bodies), by recipient address,
// each checked to name tenant.
func (m *mailpit) tenantMail(tenant string) (map[string][]mail, error) {
	ms, err := m.srv.Search(tenant)
	if err != nil {
		return nil, err
	}
	box := map[string][]mail{}
	for _, x := range ms {
		if !strings.Contains(x.Text, tenant) {
			continue
		}
		for _, to := range x.To {
			box[to] = append(box[to], x)
		}
	}
	return box, nil
}

// deleteTenant deletes this run's messages, by ID: never all of them, the
// Mailpit is shared.
func (m *mailpit) deleteTenant(tenant string) {
	ms, err := m.srv.Search(tenant)
	if err != nil {
		m.t.Errorf("listing this run's mails to delete them: %v", err)
		return
	}
	ids := make([]string, 0, len(ms))
	for _, x := range ms {
		ids = append(ids, x.ID)
	}
	if err := m.srv.Delete(ids...); err != nil {
		m.t.Errorf("deleting this run's %d mails: %v", len(ids), err)
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func writeLines(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return path
}
