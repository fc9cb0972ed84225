package datagen_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/ingest"
)

func generateAll(t testing.TB, cfg datagen.Config) (datagen.Stats, []byte, []byte, []byte) {
	t.Helper()
	var i, r, c bytes.Buffer
	st, err := datagen.GenerateAll(cfg, datagen.Outputs{Interactions: &i, Receipts: &r, Customers: &c})
	require.NoError(t, err)
	return st, i.Bytes(), r.Bytes(), c.Bytes()
}

// TestProfilesLeaveStreamsAlone: asking for the profiles changes neither
// event stream, so a data set generated without them replays the same.
func TestProfilesLeaveStreamsAlone(t *testing.T) {
	st, i, r := generate(t, small(5))
	st2, i2, r2, c := generateAll(t, small(5))
	require.Equal(t, string(i), string(i2))
	require.Equal(t, string(r), string(r2))
	require.Zero(t, st.Customers)
	require.Equal(t, len(lines(t, c)), st2.Customers)
	st2.Customers = 0
	require.Equal(t, st, st2, "the stats differ only in the profile lines")
}

// TestProfiles: every profile line is a valid crm.customers record, in
// updated_at order, with a first version per customer, a handful of
// account managers with several customers each, every tier, and the
// updates and deletions Stats counts.
func TestProfiles(t *testing.T) {
	cfg := datagen.DefaultConfig()
	cfg.Customers = 1000
	st, _, _, c := generateAll(t, cfg)
	inj := st.Injected
	managers, tiers, versions := map[string]int{}, map[string]int{}, map[string]int{}
	var prev time.Time
	deleted, dated, yearless, contracts := 0, 0, 0, 0
	for _, line := range lines(t, c) {
		var p ingest.Customer
		require.NoError(t, ingest.DecodeCustomer(line, &p), "%s", line)
		require.False(t, p.UpdatedAt.Before(prev), "profiles are in updated_at order: %s", line)
		prev = p.UpdatedAt
		versions[p.CustomerID]++
		if p.Deleted {
			deleted++
			continue
		}
		managers[p.AccountManager]++
		tiers[p.Tier]++
		if b := p.Attributes["birthday"]; b != "" {
			if len(b) == len("01-02") {
				yearless++
			} else {
				_, err := time.Parse(time.DateOnly, b)
				require.NoError(t, err)
				dated++
			}
		}
		if e := p.Attributes["contract_end"]; e != "" {
			_, err := time.Parse(time.DateOnly, e)
			require.NoError(t, err)
			contracts++
		}
	}
	require.Len(t, versions, cfg.Customers, "every customer has a profile")
	require.Equal(t, inj.Profiles, cfg.Customers)
	require.Equal(t, inj.Profiles+inj.ProfileUpdates+inj.DeletedProfiles, st.Customers)
	require.Equal(t, inj.DeletedProfiles, deleted)
	require.Equal(t, cfg.DeletedProfiles+1, deleted, "the deleted profiles and the deleted birthday")
	require.Positive(t, inj.ProfileUpdates)
	require.Len(t, managers, 5)
	for m, n := range managers {
		require.Regexp(t, `^am[1-5]@example\.com$`, m)
		require.Greater(t, n, 50, "%s looks after several customers", m)
	}
	for _, tier := range []string{"bronze", "silver", "gold", "platinum"} {
		require.Positive(t, tiers[tier], tier)
	}
	require.Positive(t, dated)
	require.Positive(t, yearless)
	require.Positive(t, contracts)
}

// TestAccountRecords: invoices, payments, tasks and large orders are
// valid interactions with the attributes the reminder rules read, and the
// injected cases are where Reminders says.
func TestAccountRecords(t *testing.T) {
	st, i, _ := generate(t, datagen.DefaultConfig())
	counts := map[string]int{}
	issued := map[string]ingest.Interaction{}
	paid := map[string]bool{}
	tasks := map[string]bool{}
	done := map[string]bool{}
	for _, line := range lines(t, i) {
		var ev ingest.Interaction
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		counts[ev.Type]++
		switch ev.Type {
		case "invoice_issued":
			require.NotEmpty(t, ev.Attributes["invoice_id"])
			due := ev.Attributes["due_at"]
			if _, err := time.Parse(time.RFC3339, due); err != nil {
				_, err = time.Parse(time.DateOnly, due)
				require.NoError(t, err, "due_at %q is RFC 3339 or a date", due)
			}
			require.Positive(t, ev.Amount)
			issued[ev.Attributes["invoice_id"]] = ev
		case "invoice_paid":
			paid[ev.Attributes["invoice_id"]] = true
		case "task_opened":
			tasks[ev.Attributes["task_id"]] = true
		case "task_done":
			done[ev.Attributes["task_id"]] = true
		case "large_order":
			require.GreaterOrEqual(t, ev.Amount, 20000.0)
		}
	}
	inj := st.Injected
	require.Equal(t, inj.Invoices, counts["invoice_issued"])
	require.Equal(t, inj.Payments, counts["invoice_paid"])
	require.Equal(t, inj.Tasks, counts["task_opened"])
	require.Equal(t, inj.LargeOrders, counts["large_order"])
	require.Greater(t, inj.Invoices, 100)
	rem := inj.Reminders
	for _, id := range rem.OverdueInvoices {
		require.Contains(t, issued, id)
		require.False(t, paid[id], "%s stays unpaid", id)
	}
	require.True(t, paid[rem.PaidEarlyInvoice])
	for _, id := range rem.BreachedTasks {
		require.True(t, tasks[id])
		require.False(t, done[id], "%s is never done", id)
	}
	require.True(t, done[rem.OnTimeTask])
}
