package clickhouse_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
)

// digestRules adds a daily digest per tenant to segmentRules: the churn
// alerts, two metrics and the lifecycle classes.
const digestRules = segmentRules + `digests:
  - name: tenant_daily
    schedule: {every: day, at: "06:00", timezone: Asia/Shanghai}
    group_by: [tenant]
    alerts: [churn]
    metrics:
      - {name: revenue, source: interactions, match: {type: [purchase, refund]}, value: sum(amount)}
      - {name: purchases, source: interactions, match: {type: [purchase]}, value: count}
    segments: lifecycle
`

// TestReplayDigestsIntoClickHouse: a replay with a digest stores one row
// per digest_id whose columns and body are the record's, and a second
// replay into the same database changes no table.
func TestReplayDigestsIntoClickHouse(t *testing.T) {
	clickhouse.ServerDSN(t)
	inter, rec := generated(t, datagen.Config{Seed: 21, Customers: 200, Days: 8})
	rf, err := rules.Parse([]byte(digestRules))
	require.NoError(t, err)

	dsn, conn := clickhouse.Migrated(t)
	want := replayInto(t, dsn, rf, inter, rec)
	require.GreaterOrEqual(t, len(want.digests), 5, "several days, several tenants")
	byID := map[string]processor.Digest{}
	for _, d := range want.digests {
		_, dup := byID[d.DigestID]
		require.False(t, dup, "the engine emitted %s twice", d.DigestID)
		byID[d.DigestID] = d
	}

	type stored struct {
		tenant, digest, am    string
		start, end            time.Time
		fired, resolved, open uint32
		fps, metrics, classes []string
		values                []float64
		counts                []uint64
		body                  string
	}
	got := query(t, conn, `SELECT digest_id, tenant, digest, account_manager, period_start, period_end, fired, resolved, open,
		alert_fingerprints, metric_names, metric_values, segment_classes, segment_counts, body FROM digests FINAL`,
		func(r driver.Rows) map[string]stored {
			var id string
			var s stored
			require.NoError(t, r.Scan(&id, &s.tenant, &s.digest, &s.am, &s.start, &s.end, &s.fired, &s.resolved, &s.open,
				&s.fps, &s.metrics, &s.values, &s.classes, &s.counts, &s.body))
			return map[string]stored{id: s}
		})
	require.Len(t, got, len(byID), "one row per digest_id")
	anyAlerts, anyClasses := false, false
	for _, g := range got {
		for id, s := range g {
			d, ok := byID[id]
			require.True(t, ok, "stored digest %s is not the replay's", id)
			require.Equal(t, []string{d.Group["tenant"], "tenant_daily", ""}, []string{s.tenant, s.digest, s.am}, id)
			require.Equal(t, []time.Time{sec(d.PeriodStart), sec(d.PeriodEnd)}, []time.Time{s.start.UTC(), s.end.UTC()}, id)
			require.Equal(t, []uint32{uint32(len(d.Fired)), uint32(len(d.Resolved)), uint32(len(d.Open))},
				[]uint32{s.fired, s.resolved, s.open}, id)
			var fps []string
			for _, l := range [][]processor.DigestAlert{d.Fired, d.Resolved, d.Open} {
				for _, a := range l {
					fps = append(fps, a.Fingerprint)
				}
			}
			require.Equal(t, fps, nilIfEmpty(s.fps), id)
			require.Equal(t, slices.Sorted(maps.Keys(d.Metrics)), s.metrics, id)
			for i, m := range s.metrics {
				require.InDelta(t, d.Metrics[m], s.values[i], 1e-9, "%s %s", id, m)
			}
			require.Equal(t, slices.Sorted(maps.Keys(d.Segments)), s.classes, id)
			for i, c := range s.classes {
				require.Equal(t, uint64(d.Segments[c]), s.counts[i], "%s %s", id, c)
				anyClasses = anyClasses || s.counts[i] > 0
			}
			anyAlerts = anyAlerts || s.fired+s.resolved+s.open > 0
			var body map[string]any
			require.NoError(t, json.Unmarshal([]byte(s.body), &body), id)
			require.Equal(t, id, body["digest_id"])
			require.NotEmpty(t, body["emitted_at"], "the body is stamped")
		}
	}
	require.True(t, anyAlerts, "some digest lists churn alerts")
	require.True(t, anyClasses, "some digest counts keys per class")

	// The same replay again: the rows are replaced, not added.
	before := clickhouse.DumpAll(t, conn)
	replayInto(t, dsn, rf, inter, rec)
	require.Equal(t, before, clickhouse.DumpAll(t, conn))
	require.NoError(t, conn.Exec(context.Background(), "OPTIMIZE TABLE digests FINAL"))
	var raw uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM digests").Scan(&raw))
	require.Equal(t, uint64(len(byID)), raw, "merged, one copy per digest")
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
