package clickhouse_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
)

// segmentRules are the example rules' churn rule with a segment set sized
// for ten days of generated data, so that keys pass through several
// classes and some come back to one.
const segmentRules = `version: 1
defaults: {timezone: UTC, allowed_lateness: 2m}
segments:
  - name: lifecycle
    key: [tenant, customer_id]
    track: {type: [purchase, login, visit]}
    window: 5d
    classes:
      - {name: potential, max_total: 0}
      - {name: new, tenure_under: 1d}
      - {name: loyal, min_count: 3, recency_under: 2d}
      - {name: active, recency_under: 3d}
      - {name: at_risk, recency_under: 6d}
      - {name: churned}
rules:
  - name: churn
    kind: inactivity
    source: interactions
    match: {type: [login, purchase, visit]}
    key: [tenant, customer_id]
    idle_for: 3d
`

// TestReplaySegmentsIntoClickHouse: a replay with a segment set stores
// each transition once in segment_transitions, segment_current holds one
// row per key with the class and since of its latest transition, and a
// second replay into the same database changes no table.
func TestReplaySegmentsIntoClickHouse(t *testing.T) {
	clickhouse.ServerDSN(t)
	inter, rec := generated(t, datagen.Config{Seed: 12, Customers: 300, Days: 10})
	rf, err := rules.Parse([]byte(segmentRules))
	require.NoError(t, err)

	dsn, conn := clickhouse.Migrated(t)
	want := replayInto(t, dsn, rf, inter, rec)
	require.NotEmpty(t, want.trans)

	// Every transition once, by its id.
	wantIDs := map[string]processor.Transition{}
	latest := map[string]processor.Transition{} // by key fingerprint
	classes := map[string]bool{}
	for _, tr := range want.trans {
		_, dup := wantIDs[tr.ID()]
		require.False(t, dup, "the engine emitted %s twice", tr.ID())
		wantIDs[tr.ID()] = tr
		k := processor.Fingerprint(tr.Key)
		if l, ok := latest[k]; !ok || tr.At.After(l.At) {
			latest[k] = tr
		}
		classes[tr.To] = true
	}
	require.Greater(t, len(want.trans), len(latest), "some keys change class more than once")
	require.GreaterOrEqual(t, len(classes), 3, "the data reaches several classes: %v", classes)

	type stored struct {
		id, tenant, customer, from, to string
		keys, values                   []string
	}
	got := query(t, conn, `SELECT segment_set, key_id, at, at_nsec, tenant, customer_id, from_class, to_class, key_keys, key_values
		FROM segment_transitions FINAL`, func(r driver.Rows) stored {
		var set, keyID, from, to, tenant, customer string
		var at time.Time
		var nsec uint32
		var keys, values []string
		require.NoError(t, r.Scan(&set, &keyID, &at, &nsec, &tenant, &customer, &from, &to, &keys, &values))
		id := set + ":" + keyID + ":" + at.Add(time.Duration(nsec)).UTC().Format(time.RFC3339Nano)
		return stored{id: id, tenant: tenant, customer: customer, from: from, to: to, keys: keys, values: values}
	})
	require.Len(t, got, len(wantIDs), "one row per transition")
	for _, g := range got {
		w, ok := wantIDs[g.id]
		require.True(t, ok, "stored transition %s is not the replay's", g.id)
		wantFrom := ""
		if w.From != nil {
			wantFrom = *w.From
		}
		require.Equal(t, []string{w.Tenant, w.CustomerID, wantFrom, w.To}, []string{g.tenant, g.customer, g.from, g.to}, g.id)
		require.Equal(t, w.Key, zip(g.keys, g.values), g.id)
	}
	var raw uint64
	require.NoError(t, conn.Exec(context.Background(), "OPTIMIZE TABLE segment_transitions FINAL"))
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM segment_transitions").Scan(&raw))
	require.Equal(t, uint64(len(wantIDs)), raw, "merged, one copy per transition")

	// The current class: one row per key, its latest transition's.
	type current struct{ key, class, previous, since string }
	cur := query(t, conn, `SELECT key_id, class, previous_class, since, since_nsec FROM segment_current FINAL`,
		func(r driver.Rows) current {
			var c current
			var since time.Time
			var nsec uint32
			require.NoError(t, r.Scan(&c.key, &c.class, &c.previous, &since, &nsec))
			c.since = since.Add(time.Duration(nsec)).UTC().Format(time.RFC3339Nano)
			return c
		})
	require.Len(t, cur, len(latest), "one row per key")
	for _, c := range cur {
		l, ok := latest[c.key]
		require.True(t, ok, "segment_current has key %s the replay never tracked", c.key)
		prev := ""
		if l.From != nil {
			prev = *l.From
		}
		require.Equal(t, current{c.key, l.To, prev, l.At.UTC().Format(time.RFC3339Nano)}, c)
	}
	var perClass string
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT arrayStringConcat(groupArray(concat(class, '=', toString(n))), ',') FROM (SELECT class, count() AS n FROM segment_current FINAL GROUP BY class ORDER BY class)").Scan(&perClass))
	t.Logf("%d transitions of %d keys; current classes %s", len(wantIDs), len(latest), perClass)

	// The same replay again, into the same tables: nothing changes.
	before := clickhouse.DumpAll(t, conn)
	replayInto(t, dsn, rf, inter, rec)
	require.Equal(t, before, clickhouse.DumpAll(t, conn))
}
