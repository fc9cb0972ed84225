package backtest_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rawevents"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
	"github.com/crmpulse/crmpulse/sink/clickhouse/chtest"
)

// fixedNow stamps emitted_at and created_at in both the replay and the
// backtest, so their records compare byte for byte.
var fixedNow = func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

// stored is a data set replayed into a ClickHouse database with
// --clickhouse-raw-events, and the files it came from.
type stored struct {
	conn        driver.Conn
	inter, rec  string
	rules       *rules.File
	first, last time.Time // occurred_at range of the stored rows
}

func seedInto(t *testing.T) (*stored, error) {
	dir := t.TempDir()
	st := &stored{inter: filepath.Join(dir, "interactions.jsonl"), rec: filepath.Join(dir, "receipts.jsonl")}
	fi, err := os.Create(st.inter)
	if err != nil {
		return nil, err
	}
	fr, err := os.Create(st.rec)
	if err != nil {
		return nil, err
	}
	if _, err := datagen.Generate(datagen.Config{Seed: 7, Customers: 400, Days: 10}, fi, fr); err != nil {
		return nil, err
	}
	if err := errors.Join(fi.Close(), fr.Close()); err != nil {
		return nil, err
	}
	if st.rules, err = rules.Load(filepath.Join("..", "examples", "rules.yaml")); err != nil {
		return nil, err
	}
	dsn, conn := chtest.Database(t)
	st.conn = conn
	ctx := context.Background()
	if err := clickhouse.Migrate(ctx, conn); err != nil {
		return nil, err
	}
	sink, err := clickhouse.New(clickhouse.Config{DSN: dsn, FlushInterval: 100 * time.Millisecond}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sink.Run(sctx) }()
	defer func() { stop(); <-done; sink.Close() }()
	raw, err := rawevents.New(rawevents.Config{HashKey: "backtest-test-key-of-32-bytes-or-more"})
	if err != nil {
		return nil, err
	}
	_, err = replay.Run(ctx, replay.Config{
		Rules: st.rules, Interactions: st.inter, Receipts: st.rec, OutDir: filepath.Join(dir, "seed"),
		Extra: []processor.Component{raw},
		OnOutput: func(ctx context.Context, out *processor.Output) error {
			for _, a := range out.Aggregates {
				var at time.Time
				switch r := a.(type) {
				case rawevents.Interaction:
					at = r.OccurredAt
				case rawevents.Receipt:
					at = r.OccurredAt
				}
				if st.first.IsZero() || at.Before(st.first) {
					st.first = at
				}
				if at.After(st.last) {
					st.last = at
				}
			}
			return sink.Write(ctx, out)
		},
	})
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return st, sink.Flush(fctx)
}

// want is what `crmpulse replay` writes for the stored files with the
// watermark taken to until: alerts.jsonl and resends.jsonl, line by line.
func want(t *testing.T, st *stored, until time.Time) (alerts, resends []string) {
	t.Helper()
	out := t.TempDir()
	_, err := replay.Run(context.Background(), replay.Config{
		Rules: st.rules, Interactions: st.inter, Receipts: st.rec, OutDir: out, Until: until, Now: fixedNow,
	})
	require.NoError(t, err)
	return lines(t, filepath.Join(out, "alerts.jsonl")), lines(t, filepath.Join(out, "resends.jsonl"))
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	require.NoError(t, sc.Err())
	return out
}

// encode renders a result as replay writes its files.
func encode(t *testing.T, res *backtest.Result) (alerts, resends []string) {
	t.Helper()
	for i := range res.Alerts {
		b, err := res.Alerts[i].AppendJSON(nil)
		require.NoError(t, err)
		alerts = append(alerts, string(b))
	}
	for i := range res.Resends {
		b, err := res.Resends[i].AppendJSON(nil)
		require.NoError(t, err)
		resends = append(resends, string(b))
	}
	return alerts, resends
}

func runner(t *testing.T, st *stored, lim backtest.Limits) *backtest.Runner {
	t.Helper()
	r, err := backtest.New(backtest.Config{Source: backtest.NewClickHouse(st.conn), Limits: lim, Now: fixedNow})
	require.NoError(t, err)
	return r
}

// TestBacktestOverClickHouse seeds one database by a replay with
// --clickhouse-raw-events, and backtests over it.
func TestBacktestOverClickHouse(t *testing.T) {
	chtest.ServerDSN(t)
	st, err := seedInto(t)
	require.NoError(t, err)
	t.Run("a backtest equals replay", func(t *testing.T) { testEqualsReplay(t, st) })
	t.Run("limits", func(t *testing.T) { testLimits(t, st) })
}

// testEqualsReplay: a backtest over the raw events stored by a replay
// fires exactly what replay fires from the original files, record for
// record and in the same order.
func testEqualsReplay(t *testing.T, st *stored) {
	from := st.first.Truncate(time.Hour)
	to := st.last.Truncate(time.Hour).Add(time.Hour)
	wantAlerts, wantResends := want(t, st, to)
	require.NotEmpty(t, wantAlerts)
	require.NotEmpty(t, wantResends)

	res, err := runner(t, st, backtest.Limits{MaxRecords: 1 << 20}).Run(context.Background(),
		backtest.Query{Rules: st.rules, From: from, To: to})
	require.NoError(t, err)
	require.False(t, res.Truncated)
	gotAlerts, gotResends := encode(t, res)
	require.Equal(t, strings.Join(wantAlerts, "\n"), strings.Join(gotAlerts, "\n"))
	require.Equal(t, strings.Join(wantResends, "\n"), strings.Join(gotResends, "\n"))
	require.Equal(t, to, res.Stats.Watermark)
	require.Equal(t, res.Stats.Interactions+res.Stats.Receipts+res.Stats.Duplicates+res.Stats.Rejected, res.Stats.RowsRead)
	require.Equal(t, int64(len(wantAlerts)), res.Stats.Firing+res.Stats.Resolved)
	require.Equal(t, int64(len(wantResends)), res.Stats.Resends+res.Stats.Cancels)
	t.Logf("%d rows, %d alerts, %d resends", res.Stats.RowsRead, len(gotAlerts), len(gotResends))
}

// testLimits: a result capped by max_records is the head of the
// whole one, with whole counts; a read capped by max_rows stops there; a
// cancelled or timed-out backtest returns no result but says why; an
// empty range is an empty, whole result.
func testLimits(t *testing.T, st *stored) {
	from := st.first.Truncate(time.Hour)
	to := st.last.Truncate(time.Hour).Add(time.Hour)
	q := backtest.Query{Rules: st.rules, From: from, To: to}
	ctx := context.Background()
	whole, err := runner(t, st, backtest.Limits{MaxRecords: 1 << 20}).Run(ctx, q)
	require.NoError(t, err)
	wholeAlerts, wholeResends := encode(t, whole)
	require.Greater(t, len(wholeAlerts), 5)

	t.Run("max_records keeps the first records and the whole counts", func(t *testing.T) {
		res, err := runner(t, st, backtest.Limits{MaxRecords: 5}).Run(ctx, q)
		require.NoError(t, err)
		require.True(t, res.Truncated)
		require.Equal(t, backtest.TruncatedByRecords, res.TruncatedBy)
		require.Equal(t, 5, len(res.Alerts)+len(res.Resends))
		a, r := encode(t, res)
		require.Equal(t, strings.Join(wholeAlerts[:len(a)], "\n"), strings.Join(a, "\n"))
		require.Equal(t, strings.Join(wholeResends[:len(r)], "\n"), strings.Join(r, "\n"))
		require.Equal(t, whole.Stats, res.Stats)
	})
	t.Run("max_rows stops reading there", func(t *testing.T) {
		res, err := runner(t, st, backtest.Limits{MaxRows: 1000, MaxRecords: 1 << 20}).Run(ctx, q)
		require.NoError(t, err)
		require.True(t, res.Truncated)
		require.Equal(t, backtest.TruncatedByRows, res.TruncatedBy)
		require.Equal(t, int64(1000), res.Stats.RowsRead)
		require.True(t, res.Stats.Watermark.Before(to))
		require.Less(t, len(res.Alerts)+len(res.Resends), len(wholeAlerts)+len(wholeResends))
	})
	t.Run("a cancelled backtest says so", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		res, err := runner(t, st, backtest.Limits{}).Run(cctx, q)
		require.ErrorIs(t, err, context.Canceled)
		require.Nil(t, res)
	})
	t.Run("a timed-out backtest says so", func(t *testing.T) {
		res, err := runner(t, st, backtest.Limits{Timeout: time.Nanosecond}).Run(ctx, q)
		require.ErrorIs(t, err, backtest.ErrTimeout)
		require.Nil(t, res)
	})
	t.Run("a range without rows is an empty whole result", func(t *testing.T) {
		res, err := runner(t, st, backtest.Limits{}).Run(ctx, backtest.Query{Rules: st.rules,
			From: from.AddDate(-1, 0, 0), To: from.AddDate(-1, 0, 1)})
		require.NoError(t, err)
		require.False(t, res.Truncated)
		require.Zero(t, res.Stats.RowsRead)
		require.Empty(t, res.Alerts)
	})
	t.Run("missing tables are a source error", func(t *testing.T) {
		_, conn := chtest.Database(t)
		r, err := backtest.New(backtest.Config{Source: backtest.NewClickHouse(conn)})
		require.NoError(t, err)
		_, err = r.Run(ctx, q)
		require.ErrorIs(t, err, backtest.ErrSource)
	})
}
