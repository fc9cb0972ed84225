package clickhouse_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/profilerows"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
)

// profileRules has a birthday reminder that carries the account manager.
const profileRules = `version: 1
rules:
  - name: birthday
    kind: calendar
    source: customers
    date: attributes.birthday
    repeat: yearly
    at: "09:00"
    lasts: 12h
    severity: info
    customer_labels: [account_manager, tier]
`

const (
	profileCustomers = 20
	profileHashKey   = "replay-secret-of-at-least-32-bytes"
)

func birthday(i int) string     { return fmt.Sprintf("1980-11-%02d", i+5) }
func contactEmail(i int) string { return fmt.Sprintf("person%02d@mail.test", i) }
func manager(i int) string      { return fmt.Sprintf("am%d@example.com", i%2+1) }

// writeProfileInputs writes customers.jsonl and interactions.jsonl for
// profileCustomers customers of acme: a first version on 2026-11-01 with a
// birthday in November and an email; a newer version (tier platinum) of c00
// to c04 on 11-03, written before the older one; deleted versions of c05
// and c06 on 11-04; c07's version twice. One login each on 11-02 (the
// reminders count from the first event), and one on 11-30 to move the
// watermark past every birthday.
func writeProfileInputs(t *testing.T) (customers, interactions string) {
	t.Helper()
	dir := t.TempDir()
	var cb, ib strings.Builder
	line := func(i int, updated, tier string) string {
		return fmt.Sprintf(`{"customer_id":"c%02d","updated_at":"%s","tenant":"acme","account_manager":%q,"tier":%q,`+
			`"segment":"smb","region":"emea","timezone":"UTC","attributes":{"birthday":%q,"email":%q,"contract_end":"2027-06-30"}}`+"\n",
			i, updated, manager(i), tier, birthday(i), contactEmail(i))
	}
	for i := range 5 {
		cb.WriteString(line(i, "2026-11-03T00:00:00Z", "platinum"))
	}
	for i := range profileCustomers {
		cb.WriteString(line(i, "2026-11-01T00:00:00Z", "gold"))
	}
	cb.WriteString(line(7, "2026-11-01T00:00:00Z", "gold"))
	for _, i := range []int{5, 6} {
		fmt.Fprintf(&cb, `{"customer_id":"c%02d","updated_at":"2026-11-04T00:00:00Z","tenant":"acme","deleted":true}`+"\n", i)
	}
	for i := range profileCustomers {
		fmt.Fprintf(&ib, `{"event_id":"e%02d","type":"login","customer_id":"c%02d","occurred_at":"2026-11-02T00:00:00Z","tenant":"acme"}`+"\n", i, i)
	}
	ib.WriteString(`{"event_id":"end","type":"login","customer_id":"c00","occurred_at":"2026-11-30T00:00:00Z","tenant":"acme"}` + "\n")
	customers, interactions = filepath.Join(dir, "customers.jsonl"), filepath.Join(dir, "interactions.jsonl")
	require.NoError(t, os.WriteFile(customers, []byte(cb.String()), 0o644))
	require.NoError(t, os.WriteFile(interactions, []byte(ib.String()), 0o644))
	return customers, interactions
}

// replayProfiles replays the inputs with the profile rows component (as
// `crmpulse replay --customers --clickhouse` does) into a sink on dsn.
func replayProfiles(t *testing.T, dsn string, rf *rules.File, customers, interactions string) replay.Summary {
	t.Helper()
	comp, err := profilerows.New(profilerows.Config{HashKey: profileHashKey})
	require.NoError(t, err)
	s, _ := clickhouse.StartSink(t, clickhouse.Config{DSN: dsn, FlushInterval: 50 * time.Millisecond})
	ctx := context.Background()
	sum, err := replay.Run(ctx, replay.Config{
		Rules: rf, Customers: customers, Interactions: interactions, OutDir: t.TempDir(),
		Extra: []processor.Component{comp}, OnOutput: s.Write,
	})
	require.NoError(t, err)
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, s.Flush(fctx))
	return sum
}

// TestReplayProfilesIntoClickHouse: a replay with profiles stores one row
// per customer in customers, the newest version (a deleted one marks the
// customer deleted); no contact attribute is stored in clear, and the hash
// of one finds its customer; the birthday reminders of each account
// manager's customers are in account_manager_alerts and in alert_history;
// and replaying again changes no table.
func TestReplayProfilesIntoClickHouse(t *testing.T) {
	clickhouse.ServerDSN(t)
	rf, err := rules.Parse([]byte(profileRules))
	require.NoError(t, err)
	customers, interactions := writeProfileInputs(t)
	dsn, conn := clickhouse.Migrated(t)
	sum := replayProfiles(t, dsn, rf, customers, interactions)
	require.Equal(t, int64(profileCustomers+5+1+2), sum.Customers)
	ctx := context.Background()

	type row struct {
		id, am, tier string
		deleted      uint8
		keys         []string
	}
	got := query(t, conn, "SELECT customer_id, account_manager, tier, deleted, attribute_keys FROM customers FINAL ORDER BY customer_id",
		func(r driver.Rows) row {
			var v row
			require.NoError(t, r.Scan(&v.id, &v.am, &v.tier, &v.deleted, &v.keys))
			return v
		})
	var want []row
	for i := range profileCustomers {
		w := row{id: fmt.Sprintf("c%02d", i), am: manager(i), tier: "gold", keys: []string{"birthday", "contract_end", "email"}}
		switch {
		case i < 5:
			w.tier = "platinum"
		case i == 5 || i == 6:
			w = row{id: w.id, deleted: 1, keys: []string{}}
		}
		want = append(want, w)
	}
	require.Equal(t, want, got, "one current row per customer")

	// Not one contact value in clear, in any column.
	all := strings.Join(clickhouse.DumpAll(t, conn)[clickhouse.TableProfiles], "\n")
	require.NotContains(t, all, "1980-")
	require.NotContains(t, all, "@mail.test")
	require.Contains(t, all, "'2027-06-30'", "other attributes are kept")
	require.Contains(t, all, "am1@example.com", "the account manager is kept in clear")
	comp, err := profilerows.New(profilerows.Config{HashKey: profileHashKey})
	require.NoError(t, err)
	var cust string
	require.NoError(t, conn.QueryRow(ctx,
		"SELECT customer_id FROM customers FINAL WHERE attribute_values[indexOf(attribute_keys, 'birthday')] = ?",
		comp.Hash(birthday(12))).Scan(&cust))
	require.Equal(t, "c12", cust)

	// Birthdays of customers not deleted: each fires and resolves, filed
	// under the account manager of the version current at the instant.
	perManager := query(t, conn, `SELECT account_manager, countIf(state = 'firing'), countIf(state = 'resolved'), uniqExact(customer_id)
		FROM account_manager_alerts FINAL WHERE tenant = 'acme' AND rule = 'birthday' GROUP BY account_manager ORDER BY account_manager`,
		func(r driver.Rows) string {
			var am string
			var firing, resolved, custs uint64
			require.NoError(t, r.Scan(&am, &firing, &resolved, &custs))
			return fmt.Sprintf("%s %d %d %d", am, firing, resolved, custs)
		})
	require.Equal(t, []string{"am1@example.com 9 9 9", "am2@example.com 9 9 9"}, perManager)
	var inHistory uint64
	require.NoError(t, conn.QueryRow(ctx, `SELECT count() FROM alert_history FINAL
		WHERE kind = 'calendar' AND label_values[indexOf(label_keys, 'account_manager')] = 'am1@example.com'`).Scan(&inHistory))
	require.Equal(t, uint64(18), inHistory, "the reminders are in the alert history too")

	// The same replay again, into the same tables: nothing changes.
	before := clickhouse.DumpAll(t, conn)
	replayProfiles(t, dsn, rf, customers, interactions)
	require.Equal(t, before, clickhouse.DumpAll(t, conn))
}
