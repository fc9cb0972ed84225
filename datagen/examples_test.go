package datagen_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
)

type alertLine struct {
	Rule     string            `json:"rule"`
	State    string            `json:"state"`
	StartsAt string            `json:"starts_at"`
	Labels   map[string]string `json:"labels"`
}

type profileLine struct {
	CustomerID     string `json:"customer_id"`
	AccountManager string `json:"account_manager"`
	Deleted        bool   `json:"deleted"`
}

type resendLine struct {
	Policy string `json:"policy"`
	Action string `json:"action"`
	Reason string `json:"reason"`
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v T
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v))
		out = append(out, v)
	}
	require.NoError(t, sc.Err())
	return out
}

// TestExampleRulesFireOnInjections replays the default data set, profiles
// included, through examples/rules.yaml: each injected anomaly fires the
// rule meant for it, and normal traffic fires nothing else (churn aside,
// which also fires for naturally occasional customers; birthdays, renewals
// and platinum orders, which normal profiles have too). Each reminder case
// reaches its customer's account manager; each non-case stays quiet.
func TestExampleRulesFireOnInjections(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: it replays two weeks of data")
	}
	file, err := rules.Load("../examples/rules.yaml")
	require.NoError(t, err)
	kinds := map[string]bool{}
	for _, r := range file.Rules {
		kinds[r.Kind] = true
	}
	require.Len(t, kinds, 8, "the example uses every detector kind")

	for _, seed := range []int64{1, 42} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			dir := t.TempDir()
			files, st, err := datagen.WriteFiles(datagen.Config{Seed: seed}, dir)
			require.NoError(t, err)
			iPath, rPath, cPath := files.Interactions, files.Receipts, files.Customers

			sum, err := replay.Run(context.Background(), replay.Config{Rules: file, Interactions: iPath, Receipts: rPath,
				Customers: cPath, OutDir: filepath.Join(dir, "out")})
			require.NoError(t, err)
			require.Equal(t, int64(st.Malformed+st.Late), sum.RejectedTotal(), "rejected = malformed + late")
			require.LessOrEqual(t, sum.Duplicates, int64(st.Duplicates))
			require.GreaterOrEqual(t, sum.Duplicates, int64(st.Duplicates-st.Late))

			firing := map[string][]map[string]string{}
			alerts := readJSONL[alertLine](t, filepath.Join(dir, "out", "alerts.jsonl"))
			for _, a := range alerts {
				if a.State == "firing" {
					firing[a.Rule] = append(firing[a.Rule], a.Labels)
				}
			}
			checkReminders(t, st, cPath, alerts)
			inj := st.Injected
			def := datagen.DefaultConfig()
			allHave := func(rule string, want map[string]string) {
				t.Helper()
				require.NotEmpty(t, firing[rule], "rule %s never fired", rule)
				for _, l := range firing[rule] {
					for k, v := range want {
						require.Equal(t, v, l[k], "rule %s fired for %v", rule, l)
					}
				}
			}
			allHave("revenue_drop_daily", map[string]string{"tenant": def.Tenants[0], "segment": "smb"})
			allHave("purchases_drop_hourly", map[string]string{"tenant": def.Tenants[0], "segment": "smb"})
			allHave("delivery_failure_rate", map[string]string{"channel": "sms", "provider": "twilio"})
			allHave("campaign_backlash", map[string]string{"tenant": def.Tenants[1]})
			require.Len(t, firing["campaign_backlash"], inj.BacklashCampaigns)
			require.True(t, strings.HasSuffix(firing["campaign_backlash"][0]["campaign_id"], "_newsletter"))
			require.Len(t, firing["complaint_burst"], inj.ComplaintBursts)
			require.Len(t, firing["complaint_unresolved"], inj.UnresolvedComplaints)
			require.Len(t, firing["message_undelivered"], inj.Undelivered)
			churn := len(firing["customer_churn"])
			require.GreaterOrEqual(t, churn, inj.ChurnedCustomers*8/10)
			require.LessOrEqual(t, churn, inj.ChurnedCustomers+def.Customers/20)

			policies := map[string]int{}
			for _, r := range readJSONL[resendLine](t, filepath.Join(dir, "out", "resends.jsonl")) {
				if r.Action == "resend" {
					policies[r.Policy]++
				}
			}
			require.Positive(t, policies["sms_retry"])
			require.Positive(t, policies["email_retry"])
			checkSegmentsAndDigests(t, dir, firing)
		})
	}
}

type digestLine struct {
	Digest string            `json:"digest"`
	Group  map[string]string `json:"group"`
	Alerts map[string][]struct {
		Rule   string            `json:"rule"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
	Metrics  map[string]float64 `json:"metrics"`
	Segments map[string]int     `json:"segments"`
}

// checkSegmentsAndDigests: the lifecycle set moves customers between its
// classes, a loyal customer who stops buying is reported to their account
// manager, and every account manager gets a morning digest of their own
// customers, with the class counts of their book.
func checkSegmentsAndDigests(t *testing.T, dir string, firing map[string][]map[string]string) {
	t.Helper()
	require.NotEmpty(t, firing["loyal_customer_slipping"], "a loyal customer slipped")
	for _, l := range firing["loyal_customer_slipping"] {
		require.Contains(t, l["account_manager"], "@", "slipping alerts name the owner: %v", l)
	}
	owners := map[string]int{}
	for _, d := range readJSONL[digestLine](t, filepath.Join(dir, "out", "digests.jsonl")) {
		require.Equal(t, "account_manager_daily", d.Digest, "14 days from 2 November hold no month end")
		am := d.Group["account_manager"]
		owners[am]++
		require.Len(t, d.Segments, 6, "every class is listed")
		require.Contains(t, d.Metrics, "revenue")
		for _, list := range d.Alerts {
			for _, a := range list {
				if owner, ok := a.Labels["account_manager"]; ok && am != "unknown" {
					require.Equal(t, am, owner, "%s's digest lists an alert of another owner's customer", am)
				}
			}
		}
	}
	for i := 1; i <= 5; i++ {
		require.GreaterOrEqual(t, owners[fmt.Sprintf("am%d@example.com", i)], 13, "a digest every morning for am%d: %v", i, owners)
	}
}

// checkReminders holds every injected reminder case of Stats to its alert:
// the right rule, stage and customer, labelled with the account manager of
// the customer's profile; and every non-case to no alert at all.
func checkReminders(t *testing.T, st datagen.Stats, customersPath string, alerts []alertLine) {
	t.Helper()
	rem := st.Injected.Reminders
	require.Len(t, rem.OverdueInvoices, datagen.DefaultConfig().OverdueInvoices)
	require.Len(t, rem.BreachedTasks, datagen.DefaultConfig().BreachedTasks)
	require.Len(t, rem.PlatinumOrders, datagen.DefaultConfig().PlatinumOrders)
	require.Len(t, rem.Birthdays, datagen.DefaultConfig().BirthdayCases)
	require.Len(t, rem.Renewals, datagen.DefaultConfig().RenewalCases)
	for _, id := range []string{rem.PaidEarlyInvoice, rem.OnTimeTask, rem.GoldOrder, rem.DeletedBirthday} {
		require.NotEmpty(t, id, "every non-case is placed")
	}

	// The account manager of customers with one version (every injected
	// case's); others may change hands during the data set.
	manager, versions := map[string]string{}, map[string]int{}
	profiles := readJSONL[profileLine](t, customersPath)
	require.Equal(t, st.Customers, len(profiles))
	for _, p := range profiles {
		versions[p.CustomerID]++
		manager[p.CustomerID] = p.AccountManager
	}
	for _, id := range slices.Concat(rem.PlatinumOrders, rem.Birthdays, rem.Renewals) {
		require.Equal(t, 1, versions[id], "injected customer %s keeps its first profile", id)
	}

	// fired collects, per rule and stage, the values of one label over the
	// firing records, checking the account_manager label of each.
	fired := func(rule, stage, label string) map[string]bool {
		got := map[string]bool{}
		for _, a := range alerts {
			if a.Rule != rule || a.State != "firing" || a.Labels["stage"] != stage {
				continue
			}
			if id := a.Labels["customer_id"]; versions[id] == 1 {
				require.Equal(t, manager[id], a.Labels["account_manager"],
					"rule %s fired for %v without the customer's account manager", rule, a.Labels)
			}
			got[a.Labels[label]] = true
		}
		return got
	}
	set := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	// Normal invoices are paid by due + 3d: overdue is the injected ones.
	require.Equal(t, set(rem.OverdueInvoices...), fired("receivable_reminder", "overdue", "invoice_id"))
	for _, stage := range []string{"upcoming", "due", "overdue"} {
		require.NotContains(t, fired("receivable_reminder", stage, "invoice_id"), rem.PaidEarlyInvoice)
	}
	require.Subset(t, keys(fired("receivable_reminder", "due", "invoice_id")), rem.OverdueInvoices)
	// Normal tasks are done within 40h of a 2-day SLA.
	require.Equal(t, set(rem.BreachedTasks...), fired("task_sla", "breached", "task_id"))
	require.Equal(t, set(rem.BreachedTasks...), fired("task_sla", "escalated", "task_id"))
	require.NotContains(t, fired("task_sla", "breached", "task_id"), rem.OnTimeTask)

	orders := fired("platinum_large_order", "", "customer_id")
	require.Subset(t, keys(orders), rem.PlatinumOrders)
	require.NotContains(t, orders, rem.GoldOrder)
	require.Equal(t, map[string]bool{"platinum": true}, fired("platinum_large_order", "", "tier"))

	birthdays := fired("customer_birthday", "", "customer_id")
	require.Subset(t, keys(birthdays), rem.Birthdays)
	require.NotContains(t, birthdays, rem.DeletedBirthday)
	require.Subset(t, keys(fired("contract_renewal", "", "customer_id")), rem.Renewals)
	for _, a := range alerts {
		switch {
		case a.Rule == "customer_birthday" && a.State == "firing" && slices.Contains(rem.Birthdays, a.Labels["customer_id"]):
			require.Equal(t, rem.BirthdayDate, a.localDate(t)[5:], "birthday of %s", a.Labels["customer_id"])
		case a.Rule == "contract_renewal" && a.State == "firing" && slices.Contains(rem.Renewals, a.Labels["customer_id"]):
			require.Equal(t, rem.RenewalDate, a.localDate(t), "renewal of %s", a.Labels["customer_id"])
		}
	}
}

// localDate is the local date of a 09:00 reminder: in the generated zones
// (UTC-5 to UTC+9, the default Asia/Shanghai included) 09:00 local is
// 00:00 to 14:00 UTC of the same date.
func (a alertLine) localDate(t *testing.T) string {
	t.Helper()
	at, err := time.Parse(time.RFC3339, a.StartsAt)
	require.NoError(t, err)
	require.True(t, at.UTC().Hour() <= 14, "reminder at %s is 09:00 local in a generated zone", a.StartsAt)
	return at.UTC().Format(time.DateOnly)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestExampleMonthEndDigest: thirty days from 2 November pass the first of
// December, 08:00 in Shanghai, so each tenant's sales director gets the
// November receivables report, with the overdue invoices in it.
func TestExampleMonthEndDigest(t *testing.T) {
	file, err := rules.Load("../examples/rules.yaml")
	require.NoError(t, err)
	dir := t.TempDir()
	cfg := datagen.DefaultConfig()
	cfg.Customers, cfg.Days = 400, 30
	files, _, err := datagen.WriteFiles(cfg, dir)
	require.NoError(t, err)
	_, err = replay.Run(context.Background(), replay.Config{Rules: file, Interactions: files.Interactions, Receipts: files.Receipts,
		Customers: files.Customers, OutDir: filepath.Join(dir, "out")})
	require.NoError(t, err)
	type monthly struct {
		Digest      string            `json:"digest"`
		Group       map[string]string `json:"group"`
		PeriodStart string            `json:"period_start"`
		PeriodEnd   string            `json:"period_end"`
		Alerts      map[string][]struct {
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
		Metrics map[string]float64 `json:"metrics"`
	}
	tenants := map[string]monthly{}
	for _, d := range readJSONL[monthly](t, filepath.Join(dir, "out", "digests.jsonl")) {
		if d.Digest == "month_end_receivables" {
			tenants[d.Group["tenant"]] = d
		}
	}
	require.ElementsMatch(t, cfg.Tenants, keys(tenants), "one report per tenant")
	overdue := 0
	for _, d := range tenants {
		require.Equal(t, "2026-12-01T00:00:00Z", d.PeriodEnd, "08:00 in Shanghai on the first")
		require.Equal(t, "2026-11-01T00:00:00Z", d.PeriodStart)
		require.Positive(t, d.Metrics["invoices_issued"])
		for _, a := range d.Alerts["fired"] {
			if a.Labels["stage"] == "overdue" {
				overdue++
			}
		}
	}
	require.Positive(t, overdue, "the overdue invoices are in the report")
}
