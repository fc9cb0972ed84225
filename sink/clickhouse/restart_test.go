package clickhouse

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
)

// restartEnv enables TestSinkRestartLosesNothing, which stops and starts
// the ClickHouse of deploy/local/clickhouse.sh: other tests using that
// server at the same time would fail, so `make test` runs it in a second,
// sequential phase. The DSN must point at the server the script manages
// (same CRMPULSE_LOCAL, CLICKHOUSE_PORT).
const restartEnv = "CRMPULSE_CLICKHOUSE_RESTART_TEST"

func clickhouseScript(t *testing.T, arg string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "local", "clickhouse.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, arg).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", script, arg, out)
}

// TestSinkRestartLosesNothing stops ClickHouse in the middle of a stream of
// writes and starts it again: Write blocks once the buffer is full
// (backpressure), Flush does not return while rows are not stored (so a
// driver commits nothing past them), and at the end every row is stored
// exactly once.
func TestSinkRestartLosesNothing(t *testing.T) {
	serverDSN(t)
	testenv.OptIn(t, restartEnv, "it stops and restarts the shared test ClickHouse (no other tests may use it meanwhile; make test runs it in its sequential phase)")
	dsn, conn := migrated(t)
	s, _ := startSink(t, Config{DSN: dsn, FlushInterval: 100 * time.Millisecond, MaxBufferedRows: 3000,
		MaxRetryBackoff: 500 * time.Millisecond, InsertTimeout: 5 * time.Second})

	const (
		outputs = 400
		perOut  = 50
	)
	ctx := context.Background()
	var written, flushed atomic.Int64 // outputs written; outputs known stored by a Flush
	var inWrite atomic.Bool           // the writer is inside s.Write
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := range outputs {
			out := &processor.Output{}
			for j := range perOut {
				out.Aggregates = append(out.Aggregates, aggregate.Activity{Tenant: "acme", CustomerID: fmt.Sprintf("c%05d", i*perOut+j),
					WindowStart: t0, WindowEnd: t0.Add(24 * time.Hour), Events: uint64(j + 1), LastActivity: t0})
			}
			out.Alerts = append(out.Alerts, processor.Alert{Fingerprint: fmt.Sprint("f", i), Rule: "r", Kind: "threshold",
				State: processor.StateFiring, StartsAt: t0.Add(time.Duration(i) * time.Second)})
			inWrite.Store(true)
			err := s.Write(ctx, out)
			inWrite.Store(false)
			if err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			written.Store(int64(i + 1))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// A driver's checkpoints: Flush, then "commit" what was written before.
	stopCommits := make(chan struct{})
	var commits sync.WaitGroup
	commits.Go(func() {
		for {
			select {
			case <-stopCommits:
				return
			case <-time.After(200 * time.Millisecond):
			}
			mark := written.Load()
			fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			if s.Flush(fctx) == nil {
				flushed.Store(mark)
			}
			cancel()
		}
	})

	require.Eventually(t, func() bool { return written.Load() >= outputs/4 }, time.Minute, 10*time.Millisecond)
	clickhouseScript(t, "stop")
	down := true
	t.Cleanup(func() {
		if down {
			clickhouseScript(t, "start")
		}
	})
	stoppedAt := written.Load()
	committedAtStop := flushed.Load()
	time.Sleep(3 * time.Second)
	// While it is down: the buffer filled and the writer is blocked; no
	// checkpoint got past what was stored before the stop.
	require.Less(t, written.Load(), int64(outputs), "the writer is held back")
	// Held inside Write (backpressure), not between writes: with the
	// server down nothing drains the full buffer, so this cannot be a
	// moment between two Writes.
	require.True(t, inWrite.Load(), "Write blocks while ClickHouse is down")
	require.GreaterOrEqual(t, s.Buffered(), 3000-perOut-1, "the buffer is full")
	require.LessOrEqual(t, flushed.Load(), stoppedAt, "no Flush succeeded for rows written while down")
	require.Positive(t, testutil.ToFloat64(s.m.inserts.WithLabelValues(TableActivity, outcomeFailure)), "inserts failed and are retried")
	t.Logf("down: %d outputs written before the stop (%d committed), %d now, %d rows buffered",
		stoppedAt, committedAtStop, written.Load(), s.Buffered())

	clickhouseScript(t, "start")
	down = false
	<-writerDone
	close(stopCommits)
	commits.Wait()
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, s.Flush(fctx))

	// A fresh connection: the old one may have died with the server.
	conn = open(t, dsn)
	var rows, distinct, alerts uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(), uniqExact(customer_id) FROM activity_daily FINAL").Scan(&rows, &distinct))
	require.Equal(t, uint64(outputs*perOut), rows, "no row lost")
	require.Equal(t, rows, distinct, "none duplicated")
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM alert_history FINAL").Scan(&alerts))
	require.Equal(t, uint64(outputs), alerts)
	var sumEvents uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT sum(events) FROM activity_daily FINAL").Scan(&sumEvents))
	require.Equal(t, uint64(outputs*perOut*(perOut+1)/2), sumEvents)
	require.NoError(t, conn.Exec(ctx, "OPTIMIZE TABLE activity_daily FINAL"))
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM activity_daily").Scan(&rows))
	require.Equal(t, uint64(outputs*perOut), rows, "after a merge, one physical row per key")
}
