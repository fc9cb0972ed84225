package clickhouse_test

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/followup"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
)

// records is everything a replay emitted, as the engine emitted it.
type records struct {
	alerts     []processor.Alert
	resends    []processor.Resend
	revenue    []aggregate.Revenue
	activity   []aggregate.Activity
	complaints []aggregate.Complaints
	delivery   []aggregate.Delivery
	outcomes   []followup.Event
	trans      []processor.Transition
	digests    []processor.Digest
}

func (r *records) add(out *processor.Output) {
	r.alerts = append(r.alerts, out.Alerts...)
	r.resends = append(r.resends, out.Resends...)
	r.trans = append(r.trans, out.Transitions...)
	r.digests = append(r.digests, out.Digests...)
	for _, a := range out.Aggregates {
		switch a := a.(type) {
		case aggregate.Revenue:
			r.revenue = append(r.revenue, a)
		case aggregate.Activity:
			r.activity = append(r.activity, a)
		case aggregate.Complaints:
			r.complaints = append(r.complaints, a)
		case aggregate.Delivery:
			r.delivery = append(r.delivery, a)
		case followup.Event:
			r.outcomes = append(r.outcomes, a)
		}
	}
}

// replayInto replays the generated data set through the engine with the
// aggregate and follow-up components, writing every output to a sink on
// dsn (as `crmpulse replay --clickhouse` does), and returns what it wrote.
func replayInto(t *testing.T, dsn string, rf *rules.File, inter, rec string) *records {
	t.Helper()
	agg, err := aggregate.New(aggregate.Config{})
	require.NoError(t, err)
	tr, err := followup.New(followup.Config{}, nil)
	require.NoError(t, err)
	s, _ := clickhouse.StartSink(t, clickhouse.Config{DSN: dsn, FlushInterval: 100 * time.Millisecond})
	var got records
	ctx := context.Background()
	_, err = replay.Run(ctx, replay.Config{
		Rules: rf, Interactions: inter, Receipts: rec, OutDir: t.TempDir(),
		Extra: []processor.Component{agg, followup.NewComponent(tr)},
		OnOutput: func(ctx context.Context, out *processor.Output) error {
			got.add(out)
			return s.Write(ctx, out)
		},
	})
	require.NoError(t, err)
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, s.Flush(fctx))
	return &got
}

// generated writes the data set of cfg to interactions.jsonl and
// receipts.jsonl in a temporary directory and returns their paths.
func generated(t *testing.T, cfg datagen.Config) (inter, rec string) {
	t.Helper()
	f, _, err := datagen.WriteFiles(cfg, t.TempDir())
	require.NoError(t, err)
	return f.Interactions, f.Receipts
}

// query scans every row of q with scan.
func query[T any](t *testing.T, conn driver.Conn, q string, scan func(driver.Rows) T) []T {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	require.NoError(t, err)
	defer rows.Close()
	var out []T
	for rows.Next() {
		out = append(out, scan(rows))
	}
	require.NoError(t, rows.Err())
	return out
}

func sec(t time.Time) time.Time { return t.Truncate(time.Second).UTC() }

func secp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := sec(*t)
	return &v
}

func sortByID[T processor.Aggregate](rows []T) []T {
	slices.SortFunc(rows, func(a, b T) int { return cmp.Compare(a.ID(), b.ID()) })
	return rows
}

// TestReplayIntoClickHouse: after a replay of a generated data set, every
// aggregate in ClickHouse equals the engine's, the alert, resend and
// outcome tables hold exactly the replay's records, customer_state holds
// the latest churn state; and a second replay into the same database
// leaves every query result unchanged.
func TestReplayIntoClickHouse(t *testing.T) {
	clickhouse.ServerDSN(t)
	inter, rec := generated(t, datagen.Config{Seed: 11, Customers: 400, Days: 10})
	rf, err := rules.Load(filepath.Join("..", "..", "examples", "rules.yaml"))
	require.NoError(t, err)

	dsn, conn := clickhouse.Migrated(t)
	want := replayInto(t, dsn, rf, inter, rec)
	require.NotEmpty(t, want.alerts)
	require.NotEmpty(t, want.resends)
	require.NotEmpty(t, want.outcomes)
	require.NotEmpty(t, want.revenue)
	t.Logf("replay wrote %d alerts, %d resends, %d outcomes, %d revenue, %d activity, %d complaints, %d delivery rows",
		len(want.alerts), len(want.resends), len(want.outcomes), len(want.revenue), len(want.activity),
		len(want.complaints), len(want.delivery))

	// Aggregates: equal to the engine's, row for row (DateTime keeps whole
	// seconds: last_activity is compared at that precision).
	require.Equal(t, sortByID(want.revenue), sortByID(query(t, conn,
		"SELECT tenant, segment, region, channel, window_start, window_end, toString(amount), purchases, refunds FROM revenue FINAL",
		func(r driver.Rows) aggregate.Revenue {
			var v aggregate.Revenue
			var amount string
			require.NoError(t, r.Scan(&v.Tenant, &v.Segment, &v.Region, &v.Channel, &v.WindowStart, &v.WindowEnd, &amount, &v.Purchases, &v.Refunds))
			v.Amount = parseMoney(t, amount)
			v.WindowStart, v.WindowEnd = v.WindowStart.UTC(), v.WindowEnd.UTC()
			return v
		})))
	for i := range want.activity {
		want.activity[i].LastActivity = sec(want.activity[i].LastActivity)
	}
	require.Equal(t, sortByID(want.activity), sortByID(query(t, conn,
		"SELECT tenant, customer_id, window_start, window_end, events, last_activity FROM activity_daily FINAL",
		func(r driver.Rows) aggregate.Activity {
			var v aggregate.Activity
			require.NoError(t, r.Scan(&v.Tenant, &v.CustomerID, &v.WindowStart, &v.WindowEnd, &v.Events, &v.LastActivity))
			v.WindowStart, v.WindowEnd, v.LastActivity = v.WindowStart.UTC(), v.WindowEnd.UTC(), v.LastActivity.UTC()
			return v
		})))
	require.Equal(t, sortByID(want.complaints), sortByID(query(t, conn,
		"SELECT tenant, region, segment, window_start, window_end, complaints, tickets_opened, resolved FROM complaints FINAL",
		func(r driver.Rows) aggregate.Complaints {
			var v aggregate.Complaints
			require.NoError(t, r.Scan(&v.Tenant, &v.Region, &v.Segment, &v.WindowStart, &v.WindowEnd, &v.Complaints, &v.TicketsOpened, &v.Resolved))
			v.WindowStart, v.WindowEnd = v.WindowStart.UTC(), v.WindowEnd.UTC()
			return v
		})))
	require.Equal(t, sortByID(want.delivery), sortByID(query(t, conn,
		"SELECT tenant, channel, provider, campaign_id, status, window_start, window_end, receipts FROM delivery_status FINAL",
		func(r driver.Rows) aggregate.Delivery {
			var v aggregate.Delivery
			require.NoError(t, r.Scan(&v.Tenant, &v.Channel, &v.Provider, &v.CampaignID, &v.Status, &v.WindowStart, &v.WindowEnd, &v.Receipts))
			v.WindowStart, v.WindowEnd = v.WindowStart.UTC(), v.WindowEnd.UTC()
			return v
		})))
	// Spot-check the totals an analyst would query.
	var total string
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT toString(sum(amount)) FROM revenue FINAL").Scan(&total))
	var sum aggregate.Money
	for _, r := range want.revenue {
		sum = sum.Add(r.Amount)
	}
	require.Equal(t, sum, parseMoney(t, total))

	// Resend outcomes: exactly the replay's.
	for i := range want.outcomes {
		o := &want.outcomes[i]
		o.NotBefore, o.At, o.Latency = sec(o.NotBefore), sec(o.At), o.Latency.Truncate(time.Millisecond)
	}
	require.Equal(t, sortByID(want.outcomes), sortByID(query(t, conn,
		"SELECT trigger_id, outcome, policy, message_id, customer_id, tenant, channel, attempt, reason, not_before, at, latency_ms FROM resend_outcomes FINAL",
		func(r driver.Rows) followup.Event {
			var v followup.Event
			var outcome string
			var attempt uint16
			var latency uint64
			require.NoError(t, r.Scan(&v.TriggerID, &outcome, &v.Policy, &v.MessageID, &v.CustomerID, &v.Tenant, &v.Channel,
				&attempt, &v.Reason, &v.NotBefore, &v.At, &latency))
			v.Outcome, v.Attempt, v.Latency = followup.Outcome(outcome), int(attempt), time.Duration(latency)*time.Millisecond
			v.NotBefore, v.At = v.NotBefore.UTC(), v.At.UTC()
			return v
		})))

	// Resend triggers and cancels: exactly the replay's (created_at is the
	// sink's stamp).
	wantResends := dedupe(want.resends, func(r processor.Resend) string { return r.ID() })
	for i := range wantResends {
		r := &wantResends[i]
		r.NotBefore, r.CreatedAt, r.FailedAt = sec(r.NotBefore), time.Time{}, time.Time{}
	}
	gotResends := query(t, conn,
		"SELECT trigger_id, action, policy, message_id, customer_id, tenant, channel, attempt, reason, not_before FROM resend_triggers FINAL",
		func(r driver.Rows) processor.Resend {
			var v processor.Resend
			var attempt uint16
			require.NoError(t, r.Scan(&v.TriggerID, &v.Action, &v.Policy, &v.MessageID, &v.CustomerID, &v.Tenant, &v.Channel,
				&attempt, &v.Reason, &v.NotBefore))
			v.Attempt, v.NotBefore = int(attempt), v.NotBefore.UTC()
			return v
		})
	slices.SortFunc(gotResends, func(a, b processor.Resend) int { return cmp.Compare(a.ID(), b.ID()) })
	require.Equal(t, wantResends, gotResends)

	// Alert history: every state change, exactly (starts_at to the
	// nanosecond, the other times to the second).
	wantAlerts := dedupe(want.alerts, func(a processor.Alert) string { return a.ID() })
	for i := range wantAlerts {
		a := &wantAlerts[i]
		a.EndsAt, a.WindowStart, a.WindowEnd = secp(a.EndsAt), secp(a.WindowStart), secp(a.WindowEnd)
		a.StartsAt = a.StartsAt.UTC()
		a.EmittedAt = time.Time{}
		if len(a.Annotations) == 0 {
			a.Annotations = map[string]string{}
		}
	}
	gotAlerts := query(t, conn,
		`SELECT fingerprint, rule, kind, state, severity, label_keys, label_values, annotation_keys, annotation_values,
		        value, threshold, starts_at, starts_at_nsec, ends_at, window_start, window_end FROM alert_history FINAL`,
		func(r driver.Rows) processor.Alert {
			var v processor.Alert
			var lk, lv, ak, av []string
			var nsec uint32
			require.NoError(t, r.Scan(&v.Fingerprint, &v.Rule, &v.Kind, &v.State, &v.Severity, &lk, &lv, &ak, &av,
				&v.Value, &v.Threshold, &v.StartsAt, &nsec, &v.EndsAt, &v.WindowStart, &v.WindowEnd))
			v.Labels, v.Annotations = zip(lk, lv), zip(ak, av)
			v.StartsAt = v.StartsAt.UTC().Add(time.Duration(nsec))
			v.EndsAt, v.WindowStart, v.WindowEnd = secp(v.EndsAt), secp(v.WindowStart), secp(v.WindowEnd)
			return v
		})
	slices.SortFunc(gotAlerts, func(a, b processor.Alert) int { return cmp.Compare(a.ID(), b.ID()) })
	require.Equal(t, wantAlerts, gotAlerts)

	// customer_state: the latest churn state (by event time; a resolve
	// beats a firing at the same instant) of each customer and rule.
	changed := func(a processor.Alert) (time.Time, int) {
		if a.State == processor.StateResolved {
			return *a.EndsAt, 1
		}
		return a.StartsAt, 0
	}
	latest := map[string]processor.Alert{}
	for _, a := range wantAlerts {
		if a.Kind != rules.KindInactivity {
			continue
		}
		k := a.Labels["tenant"] + "/" + a.Labels["customer_id"] + "/" + a.Rule
		prev, ok := latest[k]
		at, r := changed(a)
		pat, pr := changed(prev)
		if !ok || at.After(pat) || at.Equal(pat) && r > pr {
			latest[k] = a
		}
	}
	gotStates := map[string]string{}
	for _, r := range query(t, conn, "SELECT tenant, customer_id, rule, churn_state FROM customer_state FINAL",
		func(r driver.Rows) [4]string {
			var v [4]string
			require.NoError(t, r.Scan(&v[0], &v[1], &v[2], &v[3]))
			return v
		}) {
		gotStates[r[0]+"/"+r[1]+"/"+r[2]] = r[3]
	}
	require.Len(t, gotStates, len(latest))
	churned := 0
	for k, a := range latest {
		wantState := clickhouse.ChurnStateActive
		if a.State == processor.StateFiring {
			wantState = clickhouse.ChurnStateChurned
			churned++
		}
		require.Equal(t, wantState, gotStates[k], k)
	}
	require.NotZero(t, churned)

	// The same replay again, into the same tables: nothing changes.
	before := clickhouse.DumpAll(t, conn)
	replayInto(t, dsn, rf, inter, rec)
	require.Equal(t, before, clickhouse.DumpAll(t, conn))
}

func dedupe[T any](in []T, id func(T) string) []T {
	seen := map[string]bool{}
	var out []T
	for _, v := range in {
		if !seen[id(v)] {
			seen[id(v)] = true
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(id(a), id(b)) })
	return out
}

func zip(keys, values []string) map[string]string {
	m := make(map[string]string, len(keys))
	for i, k := range keys {
		m[k] = values[i]
	}
	return m
}

// parseMoney reads a Decimal(18, 4) as ClickHouse prints it ("-12.34" or
// "-12.3400", depending on the version).
func parseMoney(t *testing.T, s string) aggregate.Money {
	t.Helper()
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var units int64
	frac := -1
	for _, c := range s {
		switch {
		case c == '.' && frac < 0:
			frac = 0
		case c >= '0' && c <= '9' && frac < 4:
			units = units*10 + int64(c-'0')
			if frac >= 0 {
				frac++
			}
		default:
			t.Fatalf("bad decimal %q", s)
		}
	}
	for frac = max(frac, 0); frac < 4; frac++ {
		units *= 10
	}
	if neg {
		units = -units
	}
	return aggregate.Money(units)
}
