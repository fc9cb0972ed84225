package stream_test

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/followup"
	"github.com/crmpulse/crmpulse/processor/profilerows"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
	"github.com/crmpulse/crmpulse/sink/clickhouse/chtest"
	"github.com/crmpulse/crmpulse/stream"
)

// analyticsComponents are what `crmpulse run` adds to a partition's engine
// when ClickHouse is configured.
func analyticsComponents(t testing.TB, shard int) []processor.Component {
	agg, err := aggregate.New(aggregate.Config{Shard: shard})
	require.NoError(t, err)
	tr, err := followup.New(followup.Config{}, nil)
	require.NoError(t, err)
	return []processor.Component{agg, followup.NewComponent(tr)}
}

func migratedDatabase(t testing.TB) (string, driver.Conn) {
	dsn, conn := chtest.Database(t)
	require.NoError(t, clickhouse.Migrate(context.Background(), conn))
	return dsn, conn
}

func startSink(t testing.TB, cfg clickhouse.Config, name string) *clickhouse.Sink {
	logger := slog.New(slog.NewTextHandler(testWriter{t, name}, nil))
	s, err := clickhouse.New(cfg, logger, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; _ = s.Close() })
	return s
}

// analyticsView renders a database's tables as analysts read them: the
// window aggregates summed over shards (partitions), the other tables row
// by row under FINAL, without the columns that hold write times.
func analyticsView(ctx context.Context, conn driver.Conn) (map[string][]string, error) {
	queries := map[string]string{
		clickhouse.TableRevenue: `SELECT concat(tenant, '|', segment, '|', region, '|', channel, '|', toString(window_start), '|',
			toString(sum(amount)), '|', toString(sum(purchases)), '|', toString(sum(refunds)))
			FROM revenue FINAL GROUP BY tenant, segment, region, channel, window_start`,
		clickhouse.TableActivity: `SELECT concat(tenant, '|', customer_id, '|', toString(window_start), '|',
			toString(sum(events)), '|', toString(max(last_activity)))
			FROM activity_daily FINAL GROUP BY tenant, customer_id, window_start`,
		clickhouse.TableComplaints: `SELECT concat(tenant, '|', region, '|', segment, '|', toString(window_start), '|',
			toString(sum(complaints)), '|', toString(sum(tickets_opened)), '|', toString(sum(resolved)))
			FROM complaints FINAL GROUP BY tenant, region, segment, window_start`,
		clickhouse.TableDelivery: `SELECT concat(tenant, '|', channel, '|', provider, '|', campaign_id, '|', status, '|',
			toString(window_start), '|', toString(sum(receipts)))
			FROM delivery_status FINAL GROUP BY tenant, channel, provider, campaign_id, status, window_start`,
		clickhouse.TableAlerts: `SELECT concat(rule, '|', fingerprint, '|', state, '|', toString(starts_at), '|', toString(starts_at_nsec), '|',
			toString(value), '|', ifNull(toString(ends_at), 'NULL'), '|', arrayStringConcat(label_values, ','))
			FROM alert_history FINAL`,
		clickhouse.TableResends: `SELECT concat(trigger_id, '|', action, '|', message_id, '|', toString(attempt), '|', toString(not_before))
			FROM resend_triggers FINAL`,
		clickhouse.TableResendOutcomes: `SELECT concat(trigger_id, '|', outcome, '|', toString(at), '|', toString(latency_ms))
			FROM resend_outcomes FINAL`,
		clickhouse.TableCustomers: `SELECT concat(customer_id, '|', rule, '|', churn_state, '|', toString(last_activity), '|', toString(changed_at))
			FROM customer_state FINAL`,
		clickhouse.TableTransitions: `SELECT concat(segment_set, '|', key_id, '|', toString(at), '|', toString(at_nsec), '|', tenant, '|',
			customer_id, '|', from_class, '|', to_class, '|', arrayStringConcat(key_values, ','))
			FROM segment_transitions FINAL`,
		clickhouse.TableSegmentCurrent: `SELECT concat(segment_set, '|', key_id, '|', class, '|', previous_class, '|', toString(since), '|',
			toString(since_nsec)) FROM segment_current FINAL`,
	}
	view := map[string][]string{}
	for table, q := range queries {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
		var got []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return nil, err
			}
			got = append(got, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		slices.Sort(got)
		view[table] = got
	}
	return view, nil
}

func viewDiff(want, got map[string][]string) string {
	var b strings.Builder
	for table, w := range want {
		g := got[table]
		if slices.Equal(w, g) {
			continue
		}
		fmt.Fprintf(&b, "%s: want %d rows, got %d", table, len(w), len(g))
		for _, r := range w {
			if !slices.Contains(g, r) {
				fmt.Fprintf(&b, "; missing %s", r)
				break
			}
		}
		for _, r := range g {
			if !slices.Contains(w, r) {
				fmt.Fprintf(&b, "; unexpected %s", r)
				break
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func clickhouseScript(t *testing.T, arg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := filepath.Join("..", "deploy", "local", "clickhouse.sh")
	out, err := exec.CommandContext(ctx, script, arg).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", script, arg, out)
}

// TestKafkaClickHouseEqualsReplay streams a generated data set from the
// real Kafka into the real ClickHouse: every table, read as analysts read
// it (FINAL, shards summed), equals what `crmpulse replay --clickhouse`
// stores for the same data.
func TestKafkaClickHouseEqualsReplay(t *testing.T) { testKafkaClickHouse(t, false) }

// TestKafkaClickHouseOutage is TestKafkaClickHouseEqualsReplay with
// ClickHouse stopped in the middle of the run: the pipeline stops consuming
// (backpressure), and once ClickHouse is back the tables equal replay's:
// nothing lost, nothing doubled. It stops the shared server, so `make test`
// runs it in its sequential phase.
func TestKafkaClickHouseOutage(t *testing.T) {
	testenv.OptIn(t, "CRMPULSE_CLICKHOUSE_RESTART_TEST", "it stops and restarts the shared test ClickHouse (no other tests may use it meanwhile; make test runs it in its sequential phase)")
	testKafkaClickHouse(t, true)
}

func testKafkaClickHouse(t *testing.T, outage bool) {
	brokers := realBrokers(t)
	chtest.ServerDSN(t)
	ctx := context.Background()
	ds := generate(t, genConfig{customers: 800, days: 3, seed: 9})

	// The oracle: replay into a database of its own.
	wantDSN, wantConn := migratedDatabase(t)
	rf, err := rules.Load(rulesFile)
	require.NoError(t, err)
	oracle := startSink(t, clickhouse.Config{DSN: wantDSN, FlushInterval: 100 * time.Millisecond}, "replay-sink")
	_, err = replay.Run(ctx, replay.Config{Rules: rf, Interactions: ds.interactions, Receipts: ds.receipts,
		OutDir: filepath.Join(ds.dir, "replay"), Until: time.Now(), Extra: analyticsComponents(t, 0),
		OnOutput: oracle.Write})
	require.NoError(t, err)
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	require.NoError(t, oracle.Flush(fctx))
	cancel()
	want, err := analyticsView(ctx, wantConn)
	require.NoError(t, err)
	for table, rows := range want {
		require.NotEmpty(t, rows, "the oracle stored no %s rows: the data set does not exercise it", table)
	}

	gotDSN, gotConn := migratedDatabase(t)
	sink := startSink(t, clickhouse.Config{DSN: gotDSN, FlushInterval: 200 * time.Millisecond, MaxBufferedRows: 2000,
		MaxRetryBackoff: 500 * time.Millisecond, InsertTimeout: 5 * time.Second}, "sink")
	tp := newTopics(t)
	createInputs(t, brokers, tp, 4)
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Sinks = []stream.OutputSink{sink}
	cfg.Components = func(p int) []processor.Component { return analyticsComponents(t, p) }
	startApp(t, cfg, "a")

	if outage {
		// Take ClickHouse away as soon as the first rows are stored.
		require.Eventually(t, func() bool {
			var n uint64
			return gotConn.QueryRow(ctx, "SELECT count() FROM activity_daily").Scan(&n) == nil && n > 0
		}, time.Minute, 20*time.Millisecond, "no row reached ClickHouse")
		clickhouseScript(t, "stop")
		restarted := false
		t.Cleanup(func() {
			if !restarted {
				clickhouseScript(t, "start")
			}
		})
		// The pipeline holds rows it cannot store, up to the bound, and waits.
		require.Eventually(t, func() bool { return sink.Buffered() > 0 }, 30*time.Second, 50*time.Millisecond,
			"with ClickHouse down, rows should wait in the sink")
		time.Sleep(3 * time.Second)
		require.LessOrEqual(t, sink.Buffered(), 2000+1000, "the buffer is bounded (one output may exceed it when empty)")
		clickhouseScript(t, "start")
		restarted = true
	}

	c.waitEqual(t, replayOutputs(t, ds), 2*time.Minute)
	var got map[string][]string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err = analyticsView(ctx, gotConn)
		if err == nil && viewDiff(want, got) == "" {
			break
		}
		if time.Now().After(deadline) {
			require.NoError(t, err)
			require.Fail(t, "ClickHouse does not hold what replay stored", viewDiff(want, got))
		}
		time.Sleep(500 * time.Millisecond)
	}
	var shards uint64
	require.NoError(t, gotConn.QueryRow(ctx, "SELECT uniqExact(shard) FROM revenue").Scan(&shards))
	require.Greater(t, shards, uint64(1), "revenue rows come from several partitions, summed by the view")
}

// TestKfakeTombstoneDeletesClickHouseProfile: a null value on the
// customers topic deletes the customer's row in the ClickHouse customers
// table (a deleted row that outranks the versions stored), in every tenant
// the customer had a profile in, and leaves the other customers' rows.
func TestKfakeTombstoneDeletesClickHouseProfile(t *testing.T) {
	chtest.ServerDSN(t)
	brokers := newKfake(t)
	tp := withCustomers(newTopics(t))
	createInputs(t, brokers, tp, 2)
	dsn, conn := migratedDatabase(t)
	sink := startSink(t, clickhouse.Config{DSN: dsn, FlushInterval: 50 * time.Millisecond}, "sink")
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = writeRules(t, eventRules)
	cfg.Sinks = []stream.OutputSink{sink}
	cfg.Components = func(int) []processor.Component {
		c, err := profilerows.New(profilerows.Config{})
		require.NoError(t, err)
		return []processor.Component{c}
	}
	startApp(t, cfg, "a")
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	send(t, brokers, tp.cfg.Customers, "c1", profileOf("c1", "am1@example.com", t0))
	send(t, brokers, tp.cfg.Customers, "c1",
		fmt.Appendf(nil, `{"customer_id":"c1","tenant":"beta","updated_at":%q,"account_manager":"am2@example.com"}`, t0.Add(-time.Hour).Format(time.RFC3339)))
	send(t, brokers, tp.cfg.Customers, "c2", profileOf("c2", "am2@example.com", t0))

	type row struct {
		tenant, customer, am string
		deleted              uint8
	}
	rows := func() []row {
		got := []row{}
		r, err := conn.Query(context.Background(),
			"SELECT tenant, customer_id, account_manager, deleted FROM customers FINAL ORDER BY customer_id, tenant")
		require.NoError(t, err)
		defer r.Close()
		for r.Next() {
			var v row
			require.NoError(t, r.Scan(&v.tenant, &v.customer, &v.am, &v.deleted))
			got = append(got, v)
		}
		require.NoError(t, r.Err())
		return got
	}
	stored := []row{{"beta", "c1", "am2@example.com", 0}, {"default", "c1", "am1@example.com", 0}, {"default", "c2", "am2@example.com", 0}}
	require.Eventually(t, func() bool { return slices.Equal(rows(), stored) }, time.Minute, 50*time.Millisecond,
		"the profiles never reached ClickHouse: %v", rows())

	send(t, brokers, tp.cfg.Customers, "c1", nil)
	deleted := []row{{"beta", "c1", "", 1}, {"default", "c1", "", 1}, {"default", "c2", "am2@example.com", 0}}
	require.Eventually(t, func() bool { return slices.Equal(rows(), deleted) }, time.Minute, 50*time.Millisecond,
		"the tombstone did not delete c1's rows: %v", rows())
	var live uint64
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT count() FROM customers FINAL WHERE deleted = 0").Scan(&live))
	require.Equal(t, uint64(1), live, "read as the dashboards do, only c2 is left")
}
