package processor_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
)

const churnOnly = `
version: 1
rules:
  - {name: churn, kind: inactivity, source: interactions, key: [tenant, customer_id], idle_for: 30d}
`

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkInactivityMemory tracks 1 M customers (CRMPULSE_BENCH_CUSTOMERS
// to change it) under one inactivity rule and reports the engine's heap per
// tracked customer, next to what the same keys cost as a plain Go
// map[string]int64 (the obvious implementation) in the same run.
func BenchmarkInactivityMemory(b *testing.B) {
	customers := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("CRMPULSE_BENCH_CUSTOMERS")); err == nil && v > 0 {
		customers = v
	}
	for range b.N {
		ev := &ingest.Interaction{Type: "login", Tenant: "acme"}
		ids := make([]string, customers)
		for i := range ids {
			ids[i] = fmt.Sprintf("c%07d", i)
		}
		before := heapInUse()
		e := newEngine(b, churnOnly)
		for i, id := range ids {
			ev.EventID = strconv.Itoa(i)
			ev.CustomerID = id
			ev.OccurredAt = base.Add(time.Duration(i) * time.Millisecond)
			if err := e.Interaction(ev); err != nil {
				b.Fatal(err)
			}
		}
		// The watermark passes every event, so dedup has forgotten them all
		// and what remains is the detector's state.
		e.Advance(base.Add(time.Duration(customers)*time.Millisecond + time.Hour))
		after := heapInUse()
		perKey := float64(after-before) / float64(customers)

		before = heapInUse()
		// The straightforward design: a map from key to last activity plus
		// a timer heap entry per key sharing the key string.
		type timer struct {
			at  int64
			key string
		}
		m := make(map[string]int64)
		var timers []timer
		for i, id := range ids {
			k := "acme\x1f" + id
			m[k] = int64(i)
			timers = append(timers, timer{int64(i), k})
		}
		mapPerKey := float64(heapInUse()-before) / float64(customers)
		runtime.KeepAlive(e)
		runtime.KeepAlive(m)
		runtime.KeepAlive(timers)
		b.ReportMetric(perKey, "bytes/customer")
		b.ReportMetric(mapPerKey, "baseline-bytes/customer")
		b.ReportMetric(mapPerKey/perKey, "x-smaller")
	}
}
