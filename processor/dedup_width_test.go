package processor

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDedupWidth(t *testing.T) {
	for _, tc := range []struct {
		lateness time.Duration
		want     time.Duration
	}{{0, time.Second}, {2 * time.Second, time.Second}, {10 * time.Second, 2500 * time.Millisecond},
		{2 * time.Minute, 30 * time.Second}, {time.Hour, time.Minute}} {
		require.Equal(t, int64(tc.want), dedupWidth(tc.lateness), "lateness %s", tc.lateness)
	}
}

// TestDedupRestoreOtherWidth: ids of a snapshot with minute buckets (every
// snapshot before the width was adaptive) are still duplicates after a
// restore into narrower buckets, until the watermark passes the end of the
// minute they were in — never forgotten earlier.
func TestDedupRestoreOtherWidth(t *testing.T) {
	base := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	old := &dedup{width: maxDedupBucket, ids: map[string]int64{}, buckets: map[int64][]string{}}
	for i := range 120 {
		require.False(t, old.seen(fmt.Sprintf("id%d", i), base.Add(time.Duration(i)*time.Second)))
	}
	st := old.state()
	st.Width = 0 // as written by a build with fixed minute buckets

	d := newDedup(10 * time.Second)
	d.restore(st)
	require.Equal(t, 120, d.len())
	for i := range 120 {
		require.True(t, d.seen(fmt.Sprintf("id%d", i), base.Add(time.Duration(i)*time.Second)), "id%d", i)
	}
	d.evict(base.Add(time.Minute - time.Nanosecond))
	require.Equal(t, 120, d.len(), "nothing is forgotten before its minute ended")
	d.evict(base.Add(time.Minute))
	require.Equal(t, 60, d.len(), "the first minute's ids go when it ends")
	d.evict(base.Add(2 * time.Minute))
	require.Zero(t, d.len())
}
