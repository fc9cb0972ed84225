package alertmanager

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
)

// Tests of the owners of alerts: the partition workers and the group stage
// whose restored state hands the notifier their firing alerts (Assign) and
// who stop re-posting them when their partition moves (Release).

func TestAssignRepostsRestoredAlertsAtOnceAndEveryResendDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, _ := run(t, Config{ResendDelay: time.Minute}, fake)
		synctest.Wait()
		start := time.Now()
		ev := start.Add(-time.Hour)
		n.Assign("3", []processor.Alert{firing("churn", "c1", ev), firing("churn", "c2", ev)})
		synctest.Wait()
		posts := fake.take()
		require.Len(t, posts, 1)
		require.Equal(t, start, posts[0].at, "restored alerts are posted at once, before they expire in Alertmanager")
		got := byName(posts)
		require.Len(t, got, 2)
		require.Equal(t, ev.UTC(), got["churn/c1"].StartsAt, "startsAt is the original event time")
		require.Equal(t, start.Add(4*time.Minute).UTC(), got["churn/c1"].EndsAt, "posted as firing")
		require.Equal(t, 2.0, testutil.ToFloat64(n.metrics.active))

		time.Sleep(time.Minute)
		synctest.Wait()
		got = byName(fake.take())
		require.Len(t, got, 2, "restored alerts are re-posted like any firing alert")
		require.Equal(t, start.Add(5*time.Minute).UTC(), got["churn/c2"].EndsAt)
	})
}

func TestReleaseStopsRepostingAnOwnersAlertsWithoutResolvingThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, _ := run(t, Config{ResendDelay: time.Minute}, fake)
		ev := time.Now().Add(-time.Hour)
		n.NotifyFor("1", firing("churn", "c1", ev))
		n.NotifyFor("2", firing("churn", "c2", ev))
		n.Assign("groups", []processor.Alert{firing("segment_drop", "", ev)})
		synctest.Wait()
		require.Len(t, byName(fake.take()), 3)

		n.Release("1")
		synctest.Wait()
		require.Empty(t, fake.take(), "a release posts nothing: in particular no resolution")
		require.Equal(t, 2.0, testutil.ToFloat64(n.metrics.active))
		require.Len(t, n.Active(), 2)

		for range 3 {
			time.Sleep(time.Minute)
			synctest.Wait()
			got := byName(fake.take())
			require.Len(t, got, 2, "the released owner's alert is no longer re-posted")
			require.Contains(t, got, "churn/c2")
			require.Contains(t, got, "segment_drop/")
		}

		n.Release("groups")
		n.Release("nobody")
		time.Sleep(time.Minute)
		synctest.Wait()
		got := byName(fake.take())
		require.Equal(t, []string{"churn/c2"}, keys(got))
		require.True(t, got["churn/c2"].EndsAt.After(time.Now()), "still firing")
	})
}

func TestReleaseKeepsDeliveringAnOwnersResolutions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, _ := run(t, Config{ResendDelay: time.Hour, MaxBackoff: time.Second}, fake)
		ev := time.Now().Add(-time.Hour)
		a := firing("churn", "c1", ev)
		n.NotifyFor("1", a)
		synctest.Wait()
		fake.take()

		fake.set(true, 0)
		ends := ev.Add(30 * time.Minute)
		n.NotifyFor("1", resolved(a, ends))
		time.Sleep(3 * time.Second)
		synctest.Wait()
		n.Release("1") // the partition moved while the resolution was owed
		fake.take()

		fake.set(false, 0)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := byName(fake.take())
		require.Contains(t, got, "churn/c1", "the resolution is still delivered")
		require.True(t, got["churn/c1"].EndsAt.Equal(ends), "posted as resolved")
		require.Empty(t, n.Active())
	})
}

func TestAssignDoesNotUndoANewerResolution(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, _ := run(t, Config{ResendDelay: time.Hour, MaxBackoff: time.Second}, fake)
		ev := time.Now().Add(-time.Hour)
		a, b := firing("churn", "c1", ev), firing("churn", "c2", ev)
		fake.set(true, 0)
		ends := ev.Add(10 * time.Minute)
		n.NotifyFor("1", a, b, resolved(a, ends), resolved(b, ends))
		// The partition restarts from a snapshot older than both
		// resolutions, which are still owed to Alertmanager; c2 fired again
		// since, c1 did not.
		n.Release("1")
		again := firing("churn", "c2", ev.Add(20*time.Minute))
		n.Assign("1", []processor.Alert{a, again})
		require.Equal(t, map[string]string{"alertname": "churn", "tenant": "t1", "customer_id": "c2", "severity": "warning"},
			n.Active()[again.Fingerprint])
		require.Len(t, n.Active(), 1)

		fake.set(false, 0)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := byName(fake.take())
		require.True(t, got["churn/c1"].EndsAt.Equal(ends), "c1 stays resolved")
		require.True(t, got["churn/c2"].EndsAt.After(time.Now()), "c2 fires again")
		require.Equal(t, ev.Add(20*time.Minute).UTC(), got["churn/c2"].StartsAt)
	})
}

func TestAnAlertBelongsToItsLatestOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, _ := run(t, Config{ResendDelay: time.Minute}, fake)
		ev := time.Now().Add(-time.Hour)
		a := firing("churn", "c1", ev)
		n.NotifyFor("1", a)
		n.Release("1")
		n.Assign("1", []processor.Alert{a}) // the same partition, reassigned to this instance
		n.Notify(firing("churn", "c2", ev))
		n.Assign("2", []processor.Alert{firing("churn", "c2", ev)})
		n.Release("")
		synctest.Wait()
		fake.take()
		require.Len(t, n.Active(), 2, "c2 moved from no owner to 2, so releasing no owner keeps it")

		n.Release("2")
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Equal(t, []string{"churn/c1"}, keys(byName(fake.take())))
	})
}

func keys(m map[string]postableAlert) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
