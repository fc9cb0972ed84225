package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
	"github.com/crmpulse/crmpulse/sink/clickhouse/chtest"
)

// generated writes a small generated data set and returns its two files.
func generated(t *testing.T, customers, days int) (inter, rec string) {
	t.Helper()
	f, _, err := datagen.WriteFiles(datagen.Config{Seed: 5, Customers: customers, Days: days}, t.TempDir())
	require.NoError(t, err)
	return f.Interactions, f.Receipts
}

func countLines(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var n uint64
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
	}
	require.NoError(t, sc.Err())
	return n
}

// tableDigest is a table's row count and an order-independent hash of its
// rows under FINAL, leaving out the columns that are the write time (and
// the write time inside a digest's body).
func tableDigest(t *testing.T, conn driver.Conn, table string) string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = ? ORDER BY name", table)
	require.NoError(t, err)
	var cols []string
	for rows.Next() {
		var c string
		require.NoError(t, rows.Scan(&c))
		switch {
		case c == "version", c == "emitted_at", c == "created_at":
		case table == "digests" && c == "body":
			// The record's JSON holds its emitted_at too.
			cols = append(cols, `replaceRegexpOne(body, '"emitted_at":"[^"]*"', '')`)
		default:
			cols = append(cols, "ifNull(toString("+c+"), 'NULL')")
		}
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.NotEmpty(t, cols, table)
	var n, h uint64
	require.NoError(t, conn.QueryRow(ctx,
		"SELECT count(), sum(cityHash64(arrayStringConcat(["+strings.Join(cols, ", ")+"], '|'))) FROM "+table+" FINAL").Scan(&n, &h))
	return fmt.Sprintf("%d rows, hash %x", n, h)
}

func finalCount(t *testing.T, conn driver.Conn, table string) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM "+table+" FINAL").Scan(&n))
	return n
}

// TestReplayClickHouseCommand: `crmpulse migrate` twice, then `crmpulse
// replay --clickhouse` of a generated data set stores exactly the replay's
// alerts and resends and the aggregates; replaying again changes nothing.
func TestReplayClickHouseCommand(t *testing.T) {
	dsn, conn := chtest.Database(t)
	ctx := context.Background()
	require.Equal(t, exitOK, run(ctx, []string{"migrate", "--dsn", dsn}))
	require.Equal(t, exitOK, run(ctx, []string{"migrate", "--dsn", dsn}), "migrating again is a no-op")
	v, err := clickhouse.SchemaVersion(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, clickhouse.LatestVersion(), v)

	inter, rec := generated(t, 300, 10)
	out := t.TempDir()
	args := []string{"replay", "--rules", "../../examples/rules.yaml", "--interactions", inter, "--receipts", rec,
		"--out", out, "--quiet", "--clickhouse", dsn}
	require.Equal(t, exitOK, run(ctx, args))

	alerts, resends := countLines(t, filepath.Join(out, "alerts.jsonl")), countLines(t, filepath.Join(out, "resends.jsonl"))
	require.NotZero(t, alerts)
	require.NotZero(t, resends)
	require.Equal(t, alerts, finalCount(t, conn, clickhouse.TableAlerts), "one alert_history row per alert record")
	require.Equal(t, resends, finalCount(t, conn, clickhouse.TableResends), "one resend_triggers row per resend record")
	for _, table := range []string{clickhouse.TableRevenue, clickhouse.TableActivity, clickhouse.TableComplaints,
		clickhouse.TableDelivery, clickhouse.TableResendOutcomes, clickhouse.TableCustomers} {
		require.NotZero(t, finalCount(t, conn, table), table)
	}
	before := map[string]string{}
	for _, table := range clickhouse.Tables {
		before[table] = tableDigest(t, conn, table)
	}

	require.Equal(t, exitOK, run(ctx, append(args[:len(args):len(args)], "--out", t.TempDir())))
	for _, table := range clickhouse.Tables {
		require.Equal(t, before[table], tableDigest(t, conn, table), "%s after a second replay", table)
	}
}

func TestClickHouseFlagErrors(t *testing.T) {
	ctx := context.Background()
	require.Equal(t, exitUsage, run(ctx, []string{"migrate", "--dsn", ""}))
	require.Equal(t, exitUsage, run(ctx, []string{"migrate", "--dsn", "http://127.0.0.1:8123/db"}), "HTTP is refused")
}

func TestUntilReachable(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	transient := errors.New("dial tcp: connection refused")
	tests := []struct {
		name  string
		errs  []error // what each call returns; nil after the list
		calls int
		err   error
	}{
		{"first try", nil, 1, nil},
		{"server comes up", []error{transient, transient}, 3, nil},
		{"schema too new is final", []error{fmt.Errorf("x: %w", clickhouse.ErrSchemaTooNew)}, 1, clickhouse.ErrSchemaTooNew},
		{"a refused login is final", []error{fmt.Errorf("x: %w", clickhouse.ErrAccess)}, 1, clickhouse.ErrAccess},
		{"schema behind is final", []error{fmt.Errorf("x: %w", errSchema)}, 1, errSchema},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := untilReachable(context.Background(), logger, func(context.Context) error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			require.ErrorIs(t, err, tc.err)
			require.Equal(t, tc.calls, calls)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, untilReachable(ctx, logger, func(context.Context) error { return transient }), transient,
		"a cancelled start gives up at once")
}

// TestReplayClickHouseRawEvents: with --clickhouse-raw-events every
// accepted record is stored once, and contact attributes only as an HMAC.
func TestReplayClickHouseRawEvents(t *testing.T) {
	dsn, conn := chtest.Database(t)
	dir := t.TempDir()
	inter, rec := filepath.Join(dir, "i.jsonl"), filepath.Join(dir, "r.jsonl")
	require.NoError(t, os.WriteFile(inter, []byte(
		`{"event_id":"e1","type":"contact_updated","customer_id":"c1","occurred_at":"2026-11-02T09:00:00Z","tenant":"acme","attributes":{"Email":"alice@example.com","plan":"gold"}}`+"\n"+
			`{"event_id":"e1","type":"contact_updated","customer_id":"c1","occurred_at":"2026-11-02T09:00:00Z","tenant":"acme","attributes":{"Email":"alice@example.com","plan":"gold"}}`+"\n"+
			`{"event_id":"e2","type":"purchase","customer_id":"c2","occurred_at":"2026-11-02T09:05:00Z","tenant":"acme","amount":12.5}`+"\n"+
			`{"event_id":"e3","type":"purchase"`+"\n"), 0o644))
	require.NoError(t, os.WriteFile(rec, []byte(
		`{"receipt_id":"r1","message_id":"m1","customer_id":"c1","channel":"email","status":"delivered","occurred_at":"2026-11-02T09:01:00Z","attempt":1,"tenant":"acme"}`+"\n"), 0o644))
	args := []string{"replay", "--rules", "../../examples/rules.yaml", "--interactions", inter, "--receipts", rec,
		"--out", t.TempDir(), "--quiet", "--clickhouse", dsn, "--clickhouse-raw-events"}

	t.Setenv("CRMPULSE_CLICKHOUSE_HASH_KEY", "")
	require.Equal(t, exitFailure, run(context.Background(), args), "raw events without a hash key are refused")
	t.Setenv("CRMPULSE_CLICKHOUSE_HASH_KEY", "too-short")
	require.Equal(t, exitFailure, run(context.Background(), args), "a hash key under 32 bytes is refused")

	const key = "test-secret-of-at-least-32-bytes!"
	t.Setenv("CRMPULSE_CLICKHOUSE_HASH_KEY", key)
	for range 2 { // twice: stored once all the same
		require.Equal(t, exitOK, run(context.Background(), args))
	}
	require.Equal(t, uint64(2), finalCount(t, conn, "interactions_raw"), "e1 once (its duplicate refused), e2; e3 is malformed")
	require.Equal(t, uint64(1), finalCount(t, conn, "receipts_raw"))

	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte("alice@example.com"))
	var keys, values []string
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT attribute_keys, attribute_values FROM interactions_raw FINAL WHERE event_id = 'e1'").Scan(&keys, &values))
	got := map[string]string{}
	for i := range keys {
		got[keys[i]] = values[i]
	}
	require.Equal(t, map[string]string{"Email": hex.EncodeToString(mac.Sum(nil)), "plan": "gold"}, got)
	var clear uint64
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT count() FROM interactions_raw WHERE has(attribute_values, 'alice@example.com')").Scan(&clear))
	require.Zero(t, clear, "the address is never stored in clear")
}

// TestReplayClickHouseCustomers: `crmpulse replay --customers
// --clickhouse` stores the current profile of each customer in customers,
// birthdays as an HMAC under CRMPULSE_CLICKHOUSE_HASH_KEY or, without a
// key, not at all; the account manager in clear; a second replay changes
// nothing.
func TestReplayClickHouseCustomers(t *testing.T) {
	dir := t.TempDir()
	cust, inter := filepath.Join(dir, "c.jsonl"), filepath.Join(dir, "i.jsonl")
	require.NoError(t, os.WriteFile(cust, []byte(
		`{"customer_id":"c1","updated_at":"2026-11-01T00:00:00Z","tenant":"acme","account_manager":"am1@example.com","tier":"gold","attributes":{"birthday":"1984-03-09","credit_limit":"5000"}}`+"\n"+
			`{"customer_id":"c1","updated_at":"2026-11-02T00:00:00Z","tenant":"acme","account_manager":"am2@example.com","tier":"platinum","attributes":{"birthday":"1984-03-09","credit_limit":"9000"}}`+"\n"+
			`{"customer_id":"c2","updated_at":"2026-11-01T00:00:00Z","tenant":"acme","account_manager":"am1@example.com"}`+"\n"+
			`{"customer_id":"c2","updated_at":"2026-11-03T00:00:00Z","tenant":"acme","deleted":true}`+"\n"), 0o644))
	require.NoError(t, os.WriteFile(inter, []byte(
		`{"event_id":"e1","type":"login","customer_id":"c1","occurred_at":"2026-11-04T09:00:00Z","tenant":"acme"}`+"\n"), 0o644))

	const key = "test-secret-of-at-least-32-bytes!"
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte("1984-03-09"))
	for _, tc := range []struct {
		name, key  string
		wantValues []string
	}{
		{"with a hash key the birthday is hashed", key, []string{hex.EncodeToString(mac.Sum(nil)), "9000"}},
		{"without a hash key the birthday is left out", "", []string{"9000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn, conn := chtest.Database(t)
			t.Setenv("CRMPULSE_CLICKHOUSE_HASH_KEY", tc.key)
			args := []string{"replay", "--rules", "../../examples/rules.yaml", "--customers", cust, "--interactions", inter,
				"--out", t.TempDir(), "--quiet", "--clickhouse", dsn}
			require.Equal(t, exitOK, run(context.Background(), args))
			before := tableDigest(t, conn, clickhouse.TableProfiles)
			require.Equal(t, exitOK, run(context.Background(), args))
			require.Equal(t, before, tableDigest(t, conn, clickhouse.TableProfiles), "a second replay changes nothing")

			var am, tier string
			var keys, values []string
			require.NoError(t, conn.QueryRow(context.Background(),
				"SELECT account_manager, tier, attribute_keys, attribute_values FROM customers FINAL WHERE customer_id = 'c1'").
				Scan(&am, &tier, &keys, &values))
			require.Equal(t, "am2@example.com", am)
			require.Equal(t, "platinum", tier)
			require.Equal(t, tc.wantValues, values)
			require.Len(t, keys, len(tc.wantValues))
			var deleted uint8
			require.NoError(t, conn.QueryRow(context.Background(),
				"SELECT deleted FROM customers FINAL WHERE customer_id = 'c2'").Scan(&deleted))
			require.Equal(t, uint8(1), deleted)
			var clear uint64
			require.NoError(t, conn.QueryRow(context.Background(),
				"SELECT count() FROM customers WHERE has(attribute_values, '1984-03-09')").Scan(&clear))
			require.Zero(t, clear, "the birthday is never stored in clear")
		})
	}
}
