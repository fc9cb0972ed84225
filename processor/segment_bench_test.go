package processor_test

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
)

const lifecycleOnly = `
version: 1
defaults: {allowed_lateness: 1s}
segments:
  - name: lifecycle
    key: [tenant, customer_id]
    track: {type: [purchase, login, visit]}
    window: 180d
    classes:
      - {name: potential, max_total: 0}
      - {name: new,       tenure_under: 30d}
      - {name: loyal,     min_count: 4, recency_under: 45d}
      - {name: active,    recency_under: 60d}
      - {name: at_risk,   recency_under: 120d}
      - {name: churned}
`

// BenchmarkSegmentMemory tracks 1 M keys in the lifecycle segment set, each
// with two purchases in the look-back, and reports the heap per key next to
// a plain Go map of structs holding the same features (first and last
// purchase, total, class, the look-back purchases) plus one timer heap
// entry per key sharing the key string, built in the same run.
func BenchmarkSegmentMemory(b *testing.B) {
	const customers = 1_000_000
	for range b.N {
		ev := &ingest.Interaction{Type: "purchase", Tenant: "acme", Amount: 10}
		ids := make([]string, customers)
		for i := range ids {
			ids[i] = fmt.Sprintf("c%07d", i)
		}
		before := heapInUse()
		e := newEngine(b, lifecycleOnly)
		firsts := 0
		for round := range 2 {
			for i, id := range ids {
				ev.EventID = strconv.Itoa(round*customers + i)
				ev.CustomerID = id
				ev.OccurredAt = base.Add(time.Duration(round)*time.Hour + time.Duration(i)*time.Millisecond)
				if err := e.Interaction(ev); err != nil {
					b.Fatal(err)
				}
				// As a driver does: advance as records come, drain the output.
				if i%10_000 == 0 {
					e.AdvanceFromEvents()
					firsts += len(e.Output().Transitions)
					e.Output().Reset()
				}
			}
		}
		// Past every purchase: all applied, every key classified and
		// holding one timer, dedup ids forgotten.
		e.Advance(base.Add(3 * time.Hour))
		if firsts += len(e.Output().Transitions); firsts != customers {
			b.Fatalf("%d first classes, want %d", firsts, customers)
		}
		e.Output().Reset()
		after := heapInUse()
		perKey := float64(after-before) / customers

		before = heapInUse()
		// The lifecycle set reads count, not amount: purchase times only.
		type features struct {
			first, last int64
			total       uint32
			class       uint8
			purchases   []int64
		}
		type timer struct {
			at  int64
			key string
		}
		m := make(map[string]features)
		var timers []timer
		for i, id := range ids {
			k := "acme\x1f" + id
			t0 := int64(i)
			m[k] = features{first: t0, last: t0 + 1, total: 2, class: 2,
				purchases: []int64{t0, t0 + 1}}
			timers = append(timers, timer{t0, k})
		}
		mapPerKey := float64(heapInUse()-before) / customers
		runtime.KeepAlive(e)
		runtime.KeepAlive(m)
		runtime.KeepAlive(timers)
		b.ReportMetric(perKey, "bytes/key")
		b.ReportMetric(mapPerKey, "baseline-bytes/key")
		b.ReportMetric(mapPerKey/perKey, "x-smaller")
	}
}

// BenchmarkSegmentAdvance: 100 000 tracked keys whose next change lies
// months away; moving the watermark by a second at a time costs nothing per
// key (the timers are not due), so ns/op stays flat whatever the key count.
func BenchmarkSegmentAdvance(b *testing.B) {
	e := newEngine(b, lifecycleOnly)
	ev := &ingest.Interaction{Type: "purchase", Tenant: "acme", Amount: 10}
	for i := range 100_000 {
		ev.EventID = strconv.Itoa(i)
		ev.CustomerID = "c" + strconv.Itoa(i)
		ev.OccurredAt = base
		if err := e.Interaction(ev); err != nil {
			b.Fatal(err)
		}
	}
	e.Advance(base.Add(time.Second))
	e.Output().Reset()
	b.ResetTimer()
	for i := range b.N {
		e.Advance(base.Add(time.Duration(i+2) * time.Second))
	}
}
