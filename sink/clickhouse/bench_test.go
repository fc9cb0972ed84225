package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/record"
)

// benchRows is the size of one measured load: four full batches of the
// default BatchRows, so the sink never waits for FlushInterval and the
// comparison is throughput against throughput.
const (
	benchRows      = 4 * DefaultBatchRows
	benchOutputLen = 1000 // rows per Output, about what an engine drains at a time
)

func activityRows(n int) []aggregate.Activity {
	rows := make([]aggregate.Activity, n)
	for i := range rows {
		day := t0.Truncate(24 * time.Hour).Add(time.Duration(i%7) * 24 * time.Hour)
		rows[i] = aggregate.Activity{Tenant: []string{"acme", "globex", "initech"}[i%3], Shard: uint16(i % 4), CustomerID: fmt.Sprintf("cust-%08d", i),
			WindowStart: day, WindowEnd: day.Add(24 * time.Hour), Events: uint64(i%50 + 1), LastActivity: day.Add(time.Duration(i%86400) * time.Second)}
	}
	return rows
}

func revenueRows(n int) []aggregate.Revenue {
	rows := make([]aggregate.Revenue, n)
	for i := range rows {
		h := t0.Add(time.Duration(i/100) * time.Hour)
		rows[i] = aggregate.Revenue{Tenant: []string{"acme", "globex", "initech"}[i%3], Shard: uint16(i % 4), Segment: fmt.Sprint("seg", i%10),
			Region: fmt.Sprint("region", i%7), Channel: []string{"web", "app", "store"}[i%3], WindowStart: h, WindowEnd: h.Add(time.Hour),
			Amount: aggregate.Money(int64(i)*12345 - 5_000_000), Purchases: uint64(i % 40), Refunds: uint64(i % 3)}
	}
	return rows
}

// rawRowWise is the plain clickhouse-go way: one batch, Append per row.
func rawRowWise[T any](ctx context.Context, conn driver.Conn, sql string, rows []T, values func(*T) []any) error {
	b, err := conn.PrepareBatch(ctx, sql)
	if err != nil {
		return err
	}
	defer b.Close()
	for i := range rows {
		if err := b.Append(values(&rows[i])...); err != nil {
			return err
		}
	}
	return b.Send()
}

// rawColumnar is the fastest clickhouse-go way: one batch, whole columns.
func rawColumnar(ctx context.Context, conn driver.Conn, sql string, fill func(driver.Batch) error) error {
	b, err := conn.PrepareBatch(ctx, sql)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := fill(b); err != nil {
		return err
	}
	return b.Send()
}

// BenchmarkSinkVsRaw measures the sink's rows/s (Write of 1000-row outputs,
// then Flush) against a raw clickhouse-go batch insert of the same rows in
// the same run, both the plain row-wise Append and a column-wise insert,
// into the same table (truncated before each load). Reported metrics:
// sink_rows/s, raw_rows/s, raw_columnar_rows/s, sink/raw and
// sink/raw_columnar (goal ≥ 0.9), inserts per load.
func BenchmarkSinkVsRaw(b *testing.B) {
	dsn, conn := migrated(b)
	ctx := context.Background()
	ver := uint64(time.Now().UnixNano())

	type load struct {
		name     string
		table    string
		outputs  []*processor.Output
		rowWise  func() error
		columnar func() error
	}
	chunk := func(rows []processor.Aggregate) []*processor.Output {
		var outs []*processor.Output
		for i := 0; i < len(rows); i += benchOutputLen {
			outs = append(outs, &processor.Output{Aggregates: rows[i:min(i+benchOutputLen, len(rows))]})
		}
		return outs
	}
	act := activityRows(benchRows)
	actAgg := make([]processor.Aggregate, len(act))
	for i, r := range act {
		actAgg[i] = r
	}
	rev := revenueRows(benchRows)
	revAgg := make([]processor.Aggregate, len(rev))
	for i, r := range rev {
		revAgg[i] = r
	}
	bufs := newBuffers(DefaultBatchRows, record.Tables())
	actSQL := insertSQL(TableActivity, bufs.aggs[TableActivity].columns())
	revSQL := insertSQL(TableRevenue, bufs.aggs[TableRevenue].columns())
	loads := []load{
		{
			name: "activity", table: TableActivity, outputs: chunk(actAgg),
			rowWise: func() error {
				return rawRowWise(ctx, conn, actSQL, act, func(r *aggregate.Activity) []any {
					return []any{r.Tenant, r.Shard, r.CustomerID, r.WindowStart, r.WindowEnd, r.Events, r.LastActivity, ver}
				})
			},
			columnar: func() error {
				return rawColumnar(ctx, conn, actSQL, func(bt driver.Batch) error {
					n := len(act)
					tenant, cust := make([]string, n), make([]string, n)
					shard := make([]uint16, n)
					ws, we, last := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
					events, vers := make([]uint64, n), make([]uint64, n)
					for i, r := range act {
						tenant[i], shard[i], cust[i], ws[i], we[i], events[i], last[i], vers[i] = r.Tenant, r.Shard, r.CustomerID, r.WindowStart, r.WindowEnd, r.Events, r.LastActivity, ver
					}
					for i, c := range []any{tenant, shard, cust, ws, we, events, last, vers} {
						if err := bt.Column(i).Append(c); err != nil {
							return err
						}
					}
					return nil
				})
			},
		},
		{
			name: "revenue", table: TableRevenue, outputs: chunk(revAgg),
			rowWise: func() error {
				return rawRowWise(ctx, conn, revSQL, rev, func(r *aggregate.Revenue) []any {
					return []any{r.Tenant, r.Shard, r.Segment, r.Region, r.Channel, r.WindowStart, r.WindowEnd, r.Amount.String(), r.Purchases, r.Refunds, ver}
				})
			},
			columnar: func() error {
				return rawColumnar(ctx, conn, revSQL, func(bt driver.Batch) error {
					n := len(rev)
					tenant, seg, region, channel, amount := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
					shard := make([]uint16, n)
					ws, we := make([]time.Time, n), make([]time.Time, n)
					purchases, refunds, vers := make([]uint64, n), make([]uint64, n), make([]uint64, n)
					for i, r := range rev {
						shard[i] = r.Shard
						tenant[i], seg[i], region[i], channel[i], ws[i], we[i] = r.Tenant, r.Segment, r.Region, r.Channel, r.WindowStart, r.WindowEnd
						amount[i], purchases[i], refunds[i], vers[i] = r.Amount.String(), r.Purchases, r.Refunds, ver
					}
					for i, c := range []any{tenant, shard, seg, region, channel, ws, we, amount, purchases, refunds, vers} {
						if err := bt.Column(i).Append(c); err != nil {
							return err
						}
					}
					return nil
				})
			},
		},
	}
	for _, l := range loads {
		b.Run(l.name, func(b *testing.B) {
			s, _ := startSink(b, Config{DSN: dsn})
			truncate := func() { require.NoError(b, conn.Exec(ctx, "TRUNCATE TABLE "+l.table)) }
			timed := func(f func() error) time.Duration {
				truncate()
				start := time.Now()
				require.NoError(b, f())
				return time.Since(start)
			}
			// One untimed load first: the first INSERT into a fresh table
			// is slower (the server creates its first partition), and
			// whichever variant ran first paid for it.
			truncate()
			require.NoError(b, l.columnar())
			var sinkT, rawT, colT time.Duration
			var inserts float64
			b.ResetTimer()
			sinkLoad := func() error {
				before := insertsOf(s, l.table)
				defer func() { inserts += insertsOf(s, l.table) - before }()
				for _, out := range l.outputs {
					if err := s.Write(ctx, out); err != nil {
						return err
					}
				}
				return s.Flush(ctx)
			}
			for i := range b.N {
				// Rotate the order, so that no variant always runs while
				// the server merges the parts of the same one before it,
				// nor always first; benchRuns carries the rotation across
				// the invocations of -benchtime 1x -count N.
				i += benchRuns[l.name]
				runs := []func(){
					func() { sinkT += timed(sinkLoad) },
					func() { rawT += timed(l.rowWise) },
					func() { colT += timed(l.columnar) },
				}
				for j := range runs {
					runs[(i+j)%len(runs)]()
				}
			}
			b.StopTimer()
			benchRuns[l.name] += b.N
			var n uint64
			require.NoError(b, conn.QueryRow(ctx, "SELECT count() FROM "+l.table+" FINAL").Scan(&n))
			require.Equal(b, uint64(benchRows), n)
			rows := float64(b.N * benchRows)
			b.ReportMetric(rows/sinkT.Seconds(), "sink_rows/s")
			b.ReportMetric(rows/rawT.Seconds(), "raw_rows/s")
			b.ReportMetric(rows/colT.Seconds(), "raw_columnar_rows/s")
			b.ReportMetric(rawT.Seconds()/sinkT.Seconds(), "sink/raw")
			b.ReportMetric(colT.Seconds()/sinkT.Seconds(), "sink/raw_columnar")
			b.ReportMetric(inserts/float64(b.N), "inserts/load")
		})
	}
}

// benchRuns counts the loads BenchmarkSinkVsRaw made per sub-benchmark in
// this process.
var benchRuns = map[string]int{}

func insertsOf(s *Sink, table string) float64 {
	return testutil.ToFloat64(s.m.inserts.WithLabelValues(table, outcomeSuccess))
}

// BenchmarkSinkWrite measures Write alone, without a server: the per-row
// cost of queueing, which decides whether the writer keeps ahead of the
// inserts. ns/op is per load of benchRows rows.
func BenchmarkSinkWrite(b *testing.B) {
	ctx := context.Background()
	act := activityRows(benchRows)
	rev := revenueRows(benchRows)
	for _, l := range []struct {
		name string
		rows []processor.Aggregate
	}{
		{"activity", toAggregates(act)},
		{"revenue", toAggregates(rev)},
	} {
		b.Run(l.name, func(b *testing.B) {
			s, err := New(Config{DSN: "clickhouse://127.0.0.1:1/bench", MaxBufferedRows: 2 * benchRows}, nil, nil)
			require.NoError(b, err)
			defer s.Close()
			var outs []*processor.Output
			for i := 0; i < len(l.rows); i += benchOutputLen {
				outs = append(outs, &processor.Output{Aggregates: l.rows[i:min(i+benchOutputLen, len(l.rows))]})
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, out := range outs {
					if err := s.Write(ctx, out); err != nil {
						b.Fatal(err)
					}
				}
				s.mu.Lock()
				t := s.byName[l.rows[0].Table()]
				n := t.buf.len()
				t.buf.drop(n)
				s.buffered -= n
				s.mu.Unlock()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRows), "ns/row")
		})
	}
}

func toAggregates[T processor.Aggregate](rows []T) []processor.Aggregate {
	out := make([]processor.Aggregate, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out
}
