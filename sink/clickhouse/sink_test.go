package clickhouse

// Integration tests against the real ClickHouse of deploy/local (make test
// exports CRMPULSE_CLICKHOUSE_DSN; without it they skip). Each test works in
// a database of its own, dropped at its end, so packages testing in
// parallel do not disturb each other.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/followup"
	"github.com/crmpulse/crmpulse/processor/profilerows"
	"github.com/crmpulse/crmpulse/processor/rawevents"
)

// startSink builds a sink on dsn and runs it until the test ends.
func startSink(t testing.TB, cfg Config) (*Sink, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "Close is idempotent")
	})
	return s, reg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func ptr[T any](v T) *T { return &v }

// otherRow is an aggregate the sink has no table for.
type otherRow struct{}

func (otherRow) Table() string { return "not_a_table" }
func (otherRow) ID() string    { return "x" }

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// fixture is one output with every kind of record the sink stores.
func fixture() *processor.Output {
	hour := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	return &processor.Output{
		Alerts: []processor.Alert{
			{Fingerprint: "f-drop", Rule: "revenue_drop", Kind: "drop", State: processor.StateFiring, Severity: "critical",
				Labels:      map[string]string{"alertname": "revenue_drop", "tenant": "acme", "segment": "smb"},
				Annotations: map[string]string{"summary": "Revenue fell", "description": "it's 'quoted'\nand multi-line"},
				Value:       12.5, Threshold: 600, StartsAt: hour(1), WindowStart: ptr(hour(0)), WindowEnd: ptr(hour(1))},
			{Fingerprint: "f-churn-c1", Rule: "churn", Kind: "inactivity", State: processor.StateFiring, Severity: "info",
				Labels: map[string]string{"alertname": "churn", "tenant": "acme", "customer_id": "c1"},
				Value:  604800, Threshold: 604800, StartsAt: hour(2).Add(123456789 * time.Nanosecond)},
			{Fingerprint: "f-churn-c2", Rule: "churn", Kind: "inactivity", State: processor.StateResolved, Severity: "info",
				Labels: map[string]string{"alertname": "churn", "tenant": "acme", "customer_id": "c2"},
				Value:  700000, Threshold: 604800, StartsAt: hour(-100), EndsAt: ptr(hour(3))},
			{Fingerprint: "f-due-c1", Rule: "invoice_due", Kind: "deadline", State: processor.StateFiring, Severity: "warning",
				Labels: map[string]string{"alertname": "invoice_due", "tenant": "acme", "customer_id": "c1",
					"account_manager": "am1@example.com"},
				Value: 1, StartsAt: hour(4)},
		},
		Resends: []processor.Resend{
			{TriggerID: "t1", Action: processor.ActionResend, Policy: "sms_retry", MessageID: "m1", CustomerID: "c1",
				Tenant: "acme", Channel: "sms", Attempt: 2, Reason: "soft_bounce", NotBefore: hour(1)},
			{TriggerID: "t1", Action: processor.ActionCancel, Policy: "sms_retry", MessageID: "m1", CustomerID: "c1",
				Tenant: "acme", Channel: "sms", Attempt: 2, Reason: "soft_bounce", NotBefore: hour(1),
				CreatedAt: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)},
		},
		Transitions: []processor.Transition{
			{SegmentSet: "lifecycle", Key: map[string]string{"tenant": "acme", "customer_id": "c1"}, Tenant: "acme",
				CustomerID: "c1", To: "new", At: hour(1).Add(5 * time.Nanosecond)},
			{SegmentSet: "lifecycle", Key: map[string]string{"tenant": "acme", "customer_id": "c1"}, Tenant: "acme",
				CustomerID: "c1", From: ptr("new"), To: "loyal", At: hour(3), EmittedAt: hour(4)},
		},
		Digests: []processor.Digest{{
			DigestID: "d-am1", Digest: "account_manager_daily",
			Group:       map[string]string{"tenant": "acme", "account_manager": "am1@example.com"},
			PeriodStart: hour(-24), PeriodEnd: hour(0),
			Fired:    []processor.DigestAlert{{Fingerprint: "f-due-c1", Rule: "invoice_due", StartsAt: hour(-2), Value: 1}},
			Resolved: []processor.DigestAlert{},
			Open: []processor.DigestAlert{{Fingerprint: "f-due-c1", Rule: "invoice_due", StartsAt: hour(-2), Value: 1},
				{Fingerprint: "f-churn-c3", Rule: "churn", StartsAt: hour(-3)}},
			Metrics:   map[string]float64{"revenue": 12.5, "complaints": 0},
			Segments:  map[string]int{"loyal": 2, "churned": 0},
			EmittedAt: hour(0).Add(time.Minute),
		}},
		Aggregates: []processor.Aggregate{
			aggregate.Revenue{Tenant: "acme", Segment: "smb", Region: "apac", Channel: "web", WindowStart: hour(0), WindowEnd: hour(1),
				Amount: aggregate.MoneyFromFloat(-12.3456), Purchases: 3, Refunds: 4},
			aggregate.Revenue{Tenant: "acme", Segment: "gold", Region: "apac", Channel: "web", WindowStart: hour(0), WindowEnd: hour(1),
				Amount: aggregate.MoneyFromFloat(99999.9901), Purchases: 7},
			aggregate.Activity{Tenant: "acme", CustomerID: "c1", WindowStart: t0.Truncate(24 * time.Hour), WindowEnd: t0.Truncate(24 * time.Hour).Add(24 * time.Hour),
				Events: 5, LastActivity: hour(1).Add(1500 * time.Millisecond)},
			aggregate.Complaints{Tenant: "acme", Region: "apac", Segment: "smb", WindowStart: hour(0), WindowEnd: hour(1), Complaints: 2, TicketsOpened: 1, Resolved: 1},
			aggregate.Delivery{Tenant: "acme", Channel: "sms", Provider: "twilio", Status: "delivered", WindowStart: hour(0), WindowEnd: hour(1), Receipts: 9},
			followup.Event{TriggerID: "t1", Policy: "sms_retry", MessageID: "m1", CustomerID: "c1", Tenant: "acme", Channel: "sms",
				Attempt: 2, Reason: "soft_bounce", Outcome: followup.OutcomeTriggered, NotBefore: hour(1), At: hour(1)},
			followup.Event{TriggerID: "t1", Policy: "sms_retry", MessageID: "m1", CustomerID: "c1", Tenant: "acme", Channel: "sms",
				Attempt: 2, Reason: "soft_bounce", Outcome: followup.OutcomeDelivered, NotBefore: hour(1), At: hour(1).Add(90 * time.Second),
				Latency: 90 * time.Second},
			rawevents.Interaction{EventID: "e1", Type: "purchase", CustomerID: "c1", OccurredAt: hour(1).Add(250 * time.Millisecond),
				Tenant: "acme", Segment: "smb", Region: "apac", Channel: "web", Amount: 12.5, Currency: "EUR",
				AttributeKeys: []string{"email", "plan"}, AttributeValues: []string{"0a1b2c", "gold"}},
			rawevents.Receipt{ReceiptID: "r1", MessageID: "m1", CustomerID: "c1", Channel: "sms", Status: "delivered",
				OccurredAt: hour(1), Attempt: 2, Tenant: "acme", Provider: "twilio", Shard: 3},
			profilerows.Profile{Tenant: "acme", CustomerID: "c1", UpdatedAt: hour(-24).Add(time.Millisecond),
				AccountManager: "am1@example.com", Tier: "gold", Segment: "smb", Region: "apac", Timezone: "Asia/Shanghai",
				AttributeKeys: []string{"birthday", "contract_end"}, AttributeValues: []string{"9f86d0", "2027-06-30"}},
			otherRow{},
		},
	}
}

// volatile columns differ between two writes of the same record by design:
// the version is the write time, and unstamped records get the write time.
// A digest's body is its JSON, emitted_at included.
var volatile = map[string]bool{"version": true, "emitted_at": true, "created_at": true, "body": true}

// dump returns a table's rows as seen through FINAL, every column but the
// volatile ones rendered by ClickHouse, sorted.
func dump(t testing.TB, conn driver.Conn, table string) []string {
	t.Helper()
	ctx := context.Background()
	var exprs []string
	for _, c := range newBuffers(DefaultBatchRows).byTable()[table].columns() {
		if !volatile[c] {
			exprs = append(exprs, fmt.Sprintf("ifNull(toString(%s), 'NULL')", c))
		}
	}
	require.NotEmpty(t, exprs, "table %s has no columns", table)
	rows, err := conn.Query(ctx, "SELECT arrayStringConcat(["+strings.Join(exprs, ", ")+"], ' | ') AS r FROM "+table+" FINAL ORDER BY r")
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		require.NoError(t, rows.Scan(&r))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func dumpAll(t testing.TB, conn driver.Conn) map[string][]string {
	m := map[string][]string{}
	for _, table := range Tables {
		m[table] = dump(t, conn, table)
	}
	return m
}

func writeAndFlush(t testing.TB, s *Sink, out *processor.Output) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.Write(ctx, out))
	require.NoError(t, s.Flush(ctx))
}

// TestSinkWritingTwiceChangesNothing writes every kind of record, checks
// what ClickHouse holds, writes the same output again and checks that
// every FINAL result is unchanged.
func TestSinkWritingTwiceChangesNothing(t *testing.T) {
	dsn, conn := migrated(t)
	s, reg := startSink(t, Config{DSN: dsn, FlushInterval: 50 * time.Millisecond})
	writeAndFlush(t, s, fixture())
	first := dumpAll(t, conn)

	want := map[string][]string{
		TableRevenue: {
			"acme | 0 | gold | apac | web | 2026-11-02 09:00:00 | 2026-11-02 10:00:00 | 99999.9901 | 7 | 0",
			"acme | 0 | smb | apac | web | 2026-11-02 09:00:00 | 2026-11-02 10:00:00 | -12.3456 | 3 | 4",
		},
		TableActivity:   {"acme | 0 | c1 | 2026-11-02 00:00:00 | 2026-11-03 00:00:00 | 5 | 2026-11-02 10:00:01"},
		TableComplaints: {"acme | 0 | apac | smb | 2026-11-02 09:00:00 | 2026-11-02 10:00:00 | 2 | 1 | 1"},
		TableDelivery:   {"acme | 0 | sms | twilio |  | delivered | 2026-11-02 09:00:00 | 2026-11-02 10:00:00 | 9"},
		TableResendOutcomes: {
			"t1 | delivered | sms_retry | m1 | c1 | acme | sms | 2 | soft_bounce | 2026-11-02 10:00:00 | 2026-11-02 10:01:30 | 90000",
			"t1 | triggered | sms_retry | m1 | c1 | acme | sms | 2 | soft_bounce | 2026-11-02 10:00:00 | 2026-11-02 10:00:00 | 0",
		},
		TableResends: {
			"acme | t1 | cancel | sms_retry | m1 | c1 | sms | 2 | soft_bounce | 2026-11-02 10:00:00",
			"acme | t1 | resend | sms_retry | m1 | c1 | sms | 2 | soft_bounce | 2026-11-02 10:00:00",
		},
		TableCustomers: {
			"acme | c1 | churn | churned | 2026-10-26 11:00:00 | 2026-11-02 11:00:00 | 604800 | f-churn-c1",
			"acme | c2 | churn | active | 2026-11-02 12:00:00 | 2026-11-02 12:00:00 | 604800 | f-churn-c2",
		},
		TableInteractions: {"acme | 0 | c1 | 2026-11-02 10:00:00 | e1 | 250000000 | purchase | smb | apac | web | 12.5 | EUR | " +
			"['email','plan'] | ['0a1b2c','gold']"},
		TableReceipts: {"acme | 3 | c1 | 2026-11-02 10:00:00 | r1 | 0 | m1 | sms | delivered | 2 |  |  | twilio |  | "},
		TableProfiles: {"acme | c1 | 2026-11-01 09:00:00 | am1@example.com | gold | smb | apac | Asia/Shanghai | " +
			"['birthday','contract_end'] | ['9f86d0','2027-06-30'] | 0"},
		// Only the alert with an account_manager label.
		TableAccountManagerAlerts: {"acme | am1@example.com | 2026-11-02 13:00:00 | invoice_due | f-due-c1 | 0 | firing | " +
			"deadline | warning | c1 | NULL"},
		// A first class has from_class ''; the current class is the
		// latest transition's, since its at.
		TableTransitions: {
			"acme | lifecycle | c1 | " + c1Key + " | 2026-11-02 10:00:00 | 5 |  | new | ['customer_id','tenant'] | ['c1','acme']",
			"acme | lifecycle | c1 | " + c1Key + " | 2026-11-02 12:00:00 | 0 | new | loyal | ['customer_id','tenant'] | ['c1','acme']",
		},
		TableSegmentCurrent: {"acme | lifecycle | c1 | " + c1Key + " | loyal | 2026-11-02 12:00:00 | 0 | new | ['customer_id','tenant'] | ['c1','acme']"},
		// Lists counted, fingerprints fired then resolved then open,
		// metrics and classes sorted by name with their zeros.
		TableDigests: {"acme | account_manager_daily | am1@example.com | d-am1 | 2026-11-01 09:00:00 | 2026-11-02 09:00:00 | " +
			"['account_manager','tenant'] | ['am1@example.com','acme'] | 1 | 0 | 2 | ['f-due-c1','f-due-c1','f-churn-c3'] | " +
			"['complaints','revenue'] | [0,12.5] | ['churned','loyal'] | [0,2]"},
	}
	for table, rows := range want {
		require.Equal(t, rows, first[table], table)
	}
	require.Len(t, first[TableAlerts], 4)
	require.Contains(t, first[TableAlerts],
		"churn | 2026-11-02 11:00:00 | f-churn-c1 | 123456789 | firing | inactivity | info | acme | c1 | "+
			"['alertname','customer_id','tenant'] | ['churn','c1','acme'] | [] | [] | 604800 | 604800 | NULL | NULL | NULL")
	require.Contains(t, first[TableAlerts],
		"revenue_drop | 2026-11-02 10:00:00 | f-drop | 0 | firing | drop | critical | acme |  | "+
			"['alertname','segment','tenant'] | ['revenue_drop','smb','acme'] | ['description','summary'] | "+
			`['it\'s \'quoted\'\nand multi-line','Revenue fell'] | 12.5 | 600 | NULL | 2026-11-02 09:00:00 | 2026-11-02 10:00:00`)
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.unsupported.WithLabelValues("not_a_table")))
	var body string
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT body FROM digests FINAL WHERE digest_id = 'd-am1'").Scan(&body))
	require.Equal(t, digestBody, body, "the body is the record's JSON")

	// The same output again, and once more in two halves: nothing changes.
	writeAndFlush(t, s, fixture())
	again := fixture()
	writeAndFlush(t, s, &processor.Output{Alerts: again.Alerts, Aggregates: again.Aggregates[:3]})
	writeAndFlush(t, s, &processor.Output{Resends: again.Resends, Aggregates: again.Aggregates[3:], Transitions: again.Transitions,
		Digests: again.Digests})
	require.Equal(t, first, dumpAll(t, conn))

	var raw uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM revenue").Scan(&raw))
	require.GreaterOrEqual(t, raw, uint64(2), "without FINAL, copies may be visible until a merge")
	require.NoError(t, conn.Exec(context.Background(), "OPTIMIZE TABLE revenue FINAL"))
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM revenue").Scan(&raw))
	require.Equal(t, uint64(2), raw, "a merge keeps one copy per key")

	stored := 0
	for _, table := range Tables {
		stored += int(testutil.ToFloat64(s.m.rowsWritten.WithLabelValues(table)))
	}
	require.Equal(t, 3*24, stored, "rows stored: three times 24")
	require.Zero(t, testutil.ToFloat64(s.m.buffered))
	require.Zero(t, s.Buffered())
	n, err := testutil.GatherAndCount(reg, "crmpulse_clickhouse_inserts_total")
	require.NoError(t, err)
	require.Equal(t, 2*len(Tables), n, "series for every table and outcome")
}

// TestSinkCustomerStateLatestWins: customer_state keeps the latest churn
// state by event time, whatever order the rows are written in.
func TestSinkCustomerStateLatestWins(t *testing.T) {
	dsn, conn := migrated(t)
	s, _ := startSink(t, Config{DSN: dsn, FlushInterval: 10 * time.Millisecond})
	churn := func(state string, at time.Time) processor.Alert {
		a := processor.Alert{Fingerprint: "f", Rule: "churn", Kind: "inactivity", State: state,
			Labels: map[string]string{"tenant": "acme", "customer_id": "c9"}, Threshold: 3600, StartsAt: t0}
		if state == processor.StateResolved {
			a.EndsAt = &at
		}
		return a
	}
	// Resolved (later event time) written first, then the firing.
	writeAndFlush(t, s, &processor.Output{Alerts: []processor.Alert{churn(processor.StateResolved, t0.Add(time.Hour))}})
	writeAndFlush(t, s, &processor.Output{Alerts: []processor.Alert{churn(processor.StateFiring, t0)}})
	require.Equal(t, []string{"acme | c9 | churn | active | 2026-11-02 10:00:00 | 2026-11-02 10:00:00 | 3600 | f"},
		dump(t, conn, TableCustomers))
	// A resolve at the very instant of the firing still wins.
	writeAndFlush(t, s, &processor.Output{Alerts: []processor.Alert{churn(processor.StateResolved, t0), churn(processor.StateFiring, t0)}})
	require.Equal(t, []string{"acme | c9 | churn | active | 2026-11-02 10:00:00 | 2026-11-02 10:00:00 | 3600 | f"},
		dump(t, conn, TableCustomers), "the 10:00 resolve is still the latest")
}

// TestSinkProfilesLatestWins: customers keeps the version with the latest
// updated_at of each customer, whatever order versions are written in; a
// deleted version is a row marked deleted, which a newer version replaces.
func TestSinkProfilesLatestWins(t *testing.T) {
	dsn, conn := migrated(t)
	s, _ := startSink(t, Config{DSN: dsn, FlushInterval: 10 * time.Millisecond})
	version := func(at time.Time, tier string, deleted bool) profilerows.Profile {
		p := profilerows.Profile{Tenant: "acme", CustomerID: "c9", UpdatedAt: at, Deleted: deleted}
		if !deleted {
			p.AccountManager, p.Tier = "am1@example.com", tier
		}
		return p
	}
	write := func(ps ...profilerows.Profile) {
		out := &processor.Output{}
		for _, p := range ps {
			out.Aggregates = append(out.Aggregates, p)
		}
		writeAndFlush(t, s, out)
	}
	row := func(at, tier string, deleted int) []string {
		am := "am1@example.com"
		if deleted == 1 {
			am = ""
		}
		return []string{fmt.Sprintf("acme | c9 | %s | %s | %s |  |  |  | [] | [] | %d", at, am, tier, deleted)}
	}
	// The newer version written first, then the older: the newer stays.
	write(version(t0.Add(time.Hour), "platinum", false))
	write(version(t0, "gold", false))
	require.Equal(t, row("2026-11-02 10:00:00", "platinum", 0), dump(t, conn, TableProfiles))
	// A deletion after it marks the customer deleted...
	write(version(t0.Add(2*time.Hour), "", true))
	require.Equal(t, row("2026-11-02 11:00:00", "", 1), dump(t, conn, TableProfiles))
	// ... until a newer version comes back, in the same write as an old one.
	write(version(t0.Add(3*time.Hour), "silver", false), version(t0.Add(time.Hour), "platinum", false))
	require.Equal(t, row("2026-11-02 12:00:00", "silver", 0), dump(t, conn, TableProfiles))
}

// c1Key is segment_transitions.key_id of the fixture's key.
var c1Key = processor.Fingerprint(map[string]string{"tenant": "acme", "customer_id": "c1"})

// TestSinkSegmentCurrentLatestWins: segment_current keeps one row per key,
// the class of its latest transition by event time, whatever order the
// transitions are written in; segment_transitions keeps each once.
func TestSinkSegmentCurrentLatestWins(t *testing.T) {
	dsn, conn := migrated(t)
	s, _ := startSink(t, Config{DSN: dsn, FlushInterval: 10 * time.Millisecond})
	tr := func(customer string, from *string, to string, at time.Time) processor.Transition {
		return processor.Transition{SegmentSet: "lifecycle", Key: map[string]string{"tenant": "acme", "customer_id": customer},
			Tenant: "acme", CustomerID: customer, From: from, To: to, At: at}
	}
	late := tr("c1", ptr("loyal"), "at_risk", t0.Add(48*time.Hour))
	early := tr("c1", nil, "loyal", t0)
	other := tr("c2", nil, "new", t0.Add(time.Hour))
	// The later transition is written first, then the earlier one twice.
	writeAndFlush(t, s, &processor.Output{Transitions: []processor.Transition{late}})
	writeAndFlush(t, s, &processor.Output{Transitions: []processor.Transition{early, other}})
	writeAndFlush(t, s, &processor.Output{Transitions: []processor.Transition{early}})
	c2Key := processor.Fingerprint(other.Key)
	require.Equal(t, []string{
		"acme | lifecycle | c1 | " + c1Key + " | at_risk | 2026-11-04 09:00:00 | 0 | loyal | ['customer_id','tenant'] | ['c1','acme']",
		"acme | lifecycle | c2 | " + c2Key + " | new | 2026-11-02 10:00:00 | 0 |  | ['customer_id','tenant'] | ['c2','acme']",
	}, dump(t, conn, TableSegmentCurrent))
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM segment_transitions FINAL").Scan(&n))
	require.Equal(t, uint64(3), n, "each transition once")
}

// TestSinkPace: many small writes become about one insert per table per
// FlushInterval, and a full batch goes at once.
func TestSinkPace(t *testing.T) {
	dsn, conn := migrated(t)
	s, _ := startSink(t, Config{DSN: dsn, FlushInterval: 400 * time.Millisecond, BatchRows: 1000})
	ctx := context.Background()
	start := time.Now()
	for i := range 40 {
		out := &processor.Output{Aggregates: []processor.Aggregate{aggregate.Activity{Tenant: "acme", CustomerID: fmt.Sprint("c", i),
			WindowStart: t0, WindowEnd: t0.Add(24 * time.Hour), Events: 1, LastActivity: t0}}}
		require.NoError(t, s.Write(ctx, out))
		time.Sleep(25 * time.Millisecond)
	}
	require.NoError(t, s.Flush(ctx))
	elapsed := time.Since(start)
	inserts := testutil.ToFloat64(s.m.inserts.WithLabelValues(TableActivity, outcomeSuccess))
	maxInserts := math.Ceil(elapsed.Seconds()/0.4) + 1
	require.LessOrEqual(t, inserts, maxInserts, "%v inserts in %s", inserts, elapsed)
	require.GreaterOrEqual(t, inserts, 2.0)

	// 2500 rows at once: inserted without waiting, in one INSERT of three
	// blocks.
	out := &processor.Output{}
	for i := range 2500 {
		out.Aggregates = append(out.Aggregates, aggregate.Activity{Tenant: "bulk", CustomerID: fmt.Sprint("c", i),
			WindowStart: t0, WindowEnd: t0.Add(24 * time.Hour), Events: 1, LastActivity: t0})
	}
	before := testutil.ToFloat64(s.m.inserts.WithLabelValues(TableActivity, outcomeSuccess))
	require.NoError(t, s.Write(ctx, out))
	require.NoError(t, s.Flush(ctx))
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.inserts.WithLabelValues(TableActivity, outcomeSuccess))-before)
	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM activity_daily FINAL").Scan(&n))
	require.Equal(t, uint64(2540), n)
}

// TestSinkBackpressure: with ClickHouse unreachable, inserts fail and are
// retried, the buffer fills, and Write then blocks until its context ends;
// Flush cannot finish; Close releases everyone. No server needed.
func TestSinkBackpressure(t *testing.T) {
	s, err := New(Config{DSN: "clickhouse://127.0.0.1:1/default?dial_timeout=200ms", MaxBufferedRows: 5,
		FlushInterval: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond, DrainTimeout: 100 * time.Millisecond}, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	row := func(i int) *processor.Output {
		return &processor.Output{Aggregates: []processor.Aggregate{aggregate.Delivery{Tenant: "t", Status: fmt.Sprint(i), WindowStart: t0, WindowEnd: t0}}}
	}
	for i := range 5 {
		require.NoError(t, s.Write(context.Background(), row(i)))
	}
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(s.m.inserts.WithLabelValues(TableDelivery, outcomeFailure)) >= 2
	}, 10*time.Second, 10*time.Millisecond, "failed inserts are retried")

	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	require.ErrorIs(t, s.Write(short, row(5)), context.DeadlineExceeded, "the buffer is full: Write blocks")
	short2, cancelShort2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort2()
	require.ErrorIs(t, s.Flush(short2), context.DeadlineExceeded)
	require.Equal(t, 5, s.Buffered(), "nothing dropped, nothing added")

	// An output bigger than the whole buffer gets in once it is empty, not
	// before.
	big := &processor.Output{}
	for i := range 20 {
		big.Aggregates = append(big.Aggregates, row(100+i).Aggregates...)
	}
	var wg sync.WaitGroup
	var blockedErr error
	wg.Go(func() { blockedErr = s.Write(context.Background(), big) })
	time.Sleep(100 * time.Millisecond)
	cancel()
	require.NoError(t, <-runDone)
	require.NoError(t, s.Close())
	wg.Wait()
	require.ErrorIs(t, blockedErr, ErrClosed)
	require.ErrorIs(t, s.Write(context.Background(), row(1)), ErrClosed)
	require.ErrorIs(t, s.Flush(context.Background()), ErrClosed)
	require.NoError(t, s.Close())
}

func TestNewRefusesHTTP(t *testing.T) {
	_, err := New(Config{DSN: "http://127.0.0.1:8123/default"}, nil, nil)
	require.ErrorContains(t, err, "native protocol")
	_, err = New(Config{}, nil, nil)
	require.ErrorContains(t, err, "dsn: required")
}

// TestRetention: old months are dropped whole; customer_state and TTL on
// 18.16 are refused with clear errors.
func TestRetention(t *testing.T) {
	dsn, conn := migrated(t)
	s, _ := startSink(t, Config{DSN: dsn, FlushInterval: 10 * time.Millisecond})
	out := &processor.Output{}
	for _, m := range []time.Month{time.September, time.October, time.November} {
		start := time.Date(2026, m, 30, 23, 0, 0, 0, time.UTC)
		out.Aggregates = append(out.Aggregates, aggregate.Revenue{Tenant: "acme", WindowStart: start, WindowEnd: start.Add(time.Hour), Purchases: 1})
	}
	writeAndFlush(t, s, out)
	ctx := context.Background()
	// November 15th: September and October are whole months before it.
	dropped, err := s.DropPartitionsOlderThan(ctx, TableRevenue, time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, []string{"202609", "202610"}, dropped)
	rows := dump(t, conn, TableRevenue)
	require.Len(t, rows, 1)
	require.Contains(t, rows[0], "2026-11-30 23:00:00")
	dropped, err = s.DropPartitionsOlderThan(ctx, TableRevenue, time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Empty(t, dropped, "November is not over")

	_, err = s.DropPartitionsOlderThan(ctx, TableCustomers, time.Now())
	require.ErrorContains(t, err, "not a time-partitioned table")
	sv, err := DetectServer(ctx, conn)
	require.NoError(t, err)
	err = SetTTL(ctx, conn, TableRevenue, 90*24*time.Hour)
	if FeaturesOf(sv).TTL {
		require.NoError(t, err)
	} else {
		require.ErrorIs(t, err, ErrUnsupported)
	}
}

// TestPartitionMonth covers the partition name parser.
func TestPartitionMonth(t *testing.T) {
	m, err := partitionMonth("202612")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), m)
	for _, bad := range []string{"202613", "2026", "tuple()", "20261a"} {
		_, err := partitionMonth(bad)
		require.Error(t, err, bad)
	}
}

var _ = errors.Is
var _ = slices.Sort[[]string]

// digestBody is the fixture digest's JSON as every destination gets it.
var digestBody = func() string {
	d := fixture().Digests[0]
	b, err := d.AppendJSON(nil)
	if err != nil {
		panic(err)
	}
	return string(b)
}()
