package stream

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// noTime marks a partition that has not seen a record yet.
const noTime = math.MinInt64

// partitionClock is what one partition publishes for the pipeline
// watermark; its worker writes it, everyone reads it.
type partitionClock struct {
	wm         atomic.Int64 // highest occurred_at seen − allowed lateness, Unix nanos; noTime before any record
	lastRecord atomic.Int64 // wall clock of the last record (or of the assignment), Unix nanos
	pending    atomic.Bool  // records are known to be waiting in Kafka
}

// watermarks computes the instance's pipeline watermark (SPEC §2): the
// minimum over active partitions of each one's watermark; a partition
// without records for idleTimeout (and none pending) does not hold it back;
// when every partition is idle it is the highest partition watermark, moved
// on by the wall clock (now − allowed lateness).
//
// Each engine follows its own partition's watermark while records flow
// (an engine owns only its partition's customers, so nothing else can
// change its results) and is advanced to the pipeline watermark when its
// partition goes idle. Driving busy engines by the minimum instead would
// make their output depend on how fast the other partitions happen to be
// read: during a backlog an engine would see a customer's next event before
// the watermark fired that customer's timer, and output would differ from
// replay's and from run to run.
type watermarks struct {
	idle time.Duration
	mu   sync.RWMutex
	part map[int]*partitionClock
}

func newWatermarks(idle time.Duration) *watermarks {
	return &watermarks{idle: idle, part: map[int]*partitionClock{}}
}

func (w *watermarks) add(p int, now time.Time) *partitionClock {
	c := &partitionClock{}
	c.wm.Store(noTime)
	c.lastRecord.Store(now.UnixNano())
	w.mu.Lock()
	w.part[p] = c
	w.mu.Unlock()
	return c
}

func (w *watermarks) remove(p int, c *partitionClock) {
	w.mu.Lock()
	if w.part[p] == c {
		delete(w.part, p)
	}
	w.mu.Unlock()
}

// idleAt reports whether c is idle at now.
func (w *watermarks) idleAt(c *partitionClock, now time.Time) bool {
	return !c.pending.Load() && now.UnixNano()-c.lastRecord.Load() >= int64(w.idle)
}

// pipeline is the watermark at now, or ok false when no partition has
// one (nothing assigned, or none has seen a record and some are active).
func (w *watermarks) pipeline(now time.Time, lateness time.Duration) (time.Time, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	minActive, maxAll := int64(math.MaxInt64), int64(noTime)
	active := false
	for _, c := range w.part {
		wm := c.wm.Load()
		maxAll = max(maxAll, wm)
		if !w.idleAt(c, now) {
			active = true
			minActive = min(minActive, wm)
		}
	}
	switch {
	case len(w.part) == 0:
		return time.Time{}, false
	case active && minActive == noTime:
		return time.Time{}, false
	case active:
		return time.Unix(0, minActive), true
	}
	return time.Unix(0, max(maxAll, now.Add(-lateness).UnixNano())), true
}
