package processor

import (
	"slices"
	"strings"
	"time"
)

// dedup remembers the ids of accepted records whose occurred_at is not yet
// behind the watermark. That bound is safe because a record older than the
// watermark is refused as late before dedup matters: a repeat of a forgotten
// id can only be late, so it is never counted twice. Memory is therefore
// bounded by the records of one allowed_lateness of event time (plus one
// bucket), whatever the total volume.
type dedup struct {
	width   int64            // bucket width, ns
	peak    int              // largest len(ids) since ids was last rebuilt
	ids     map[string]int64 // id → bucket
	buckets map[int64][]string
	order   []int64 // bucket keys, ascending
}

// Buckets group ids so that eviction is one map delete per id and one slice
// walk per bucket, not a scan. An id is kept until the watermark passes its
// bucket's end, so a bucket adds up to its width to the ids held: a quarter
// of the allowed lateness (at least a second, at most a minute) keeps that
// overhead small at high rates, where every id held is also snapshotted
// every commit interval.
const (
	maxDedupBucket = int64(time.Minute)
	minDedupBucket = int64(time.Second)
)

func dedupWidth(lateness time.Duration) int64 {
	return min(max(int64(lateness)/4, minDedupBucket), maxDedupBucket)
}

func newDedup(lateness time.Duration) *dedup {
	return &dedup{width: dedupWidth(lateness), ids: map[string]int64{}, buckets: map[int64][]string{}}
}

// seen reports whether id was already accepted, and records it if not.
func (d *dedup) seen(id string, at time.Time) bool {
	if _, ok := d.ids[id]; ok {
		return true
	}
	b := at.UnixNano() / d.width
	// The decoder backs all of a record's strings with one allocation;
	// keeping the id alone must not keep the whole record alive.
	id = strings.Clone(id)
	d.ids[id] = b
	d.peak = max(d.peak, len(d.ids))
	list, ok := d.buckets[b]
	if !ok {
		i, _ := slices.BinarySearch(d.order, b)
		d.order = slices.Insert(d.order, i, b)
	}
	d.buckets[b] = append(list, id)
	return false
}

// evict forgets ids in buckets wholly before wm.
func (d *dedup) evict(wm time.Time) {
	limit := wm.UnixNano() / d.width // buckets < limit end at or before wm
	n := 0
	for _, b := range d.order {
		if b >= limit {
			break
		}
		for _, id := range d.buckets[b] {
			delete(d.ids, id)
		}
		delete(d.buckets, b)
		n++
	}
	d.order = d.order[n:]
	// Go maps never give memory back; after a burst, rebuild.
	if n > 0 && len(d.ids) < d.peak/4 {
		ids := make(map[string]int64, len(d.ids))
		for k, v := range d.ids {
			ids[k] = v
		}
		d.ids, d.peak = ids, len(ids)
		buckets := make(map[int64][]string, len(d.buckets))
		for k, v := range d.buckets {
			buckets[k] = v
		}
		d.buckets = buckets
	}
}

func (d *dedup) len() int { return len(d.ids) }

type dedupState struct {
	Buckets map[int64][]string
	// Width is the bucket width in ns; zero in snapshots from before it
	// was adaptive, whose buckets are a minute wide.
	Width int64
}

func (d *dedup) state() dedupState { return dedupState{Buckets: d.buckets, Width: d.width} }

// restore loads s; ids of a snapshot with other buckets are re-bucketed by
// their bucket's end, which keeps each at least as long as before.
func (d *dedup) restore(s dedupState) {
	from := s.Width
	if from == 0 {
		from = maxDedupBucket
	}
	*d = dedup{width: d.width, ids: map[string]int64{}, buckets: map[int64][]string{}}
	for b, ids := range s.Buckets {
		nb := b
		if from != d.width {
			nb = ((b+1)*from - 1) / d.width
		}
		if _, ok := d.buckets[nb]; !ok {
			d.order = append(d.order, nb)
		}
		d.buckets[nb] = append(d.buckets[nb], ids...)
		for _, id := range ids {
			d.ids[id] = nb
		}
	}
	slices.Sort(d.order)
}
