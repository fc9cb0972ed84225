package kafka

import (
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// BenchmarkMergerNext measures the merge per record: two event topics with
// interleaved times, with and without a caught-up (idle) customers topic.
func BenchmarkMergerNext(b *testing.B) {
	for _, withCustomers := range []bool{false, true} {
		name := map[bool]string{false: "events", true: "events+idle_customers"}[withCustomers]
		b.Run(name, func(b *testing.B) {
			const n = 512
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			mk := func(odd int) *Batch {
				bt := &Batch{Records: make([]Record, n), CaughtUp: true, Next: n, HighWaterMark: 1 << 40}
				for i := range bt.Records {
					bt.Records[i] = Record{Msg: kafkago.Message{Offset: int64(i)}, At: t0.Add(time.Duration(2*i+odd) * time.Millisecond)}
				}
				return bt
			}
			bi, br := mk(0), mk(1)
			free := make(chan *Batch, 8)
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				m := NewMerger(nil, nil, free, free, 0, 0)
				if withCustomers {
					m.WithCustomers(nil, free, 0)
					m.Feed(Customers, &Batch{CaughtUp: true})
				}
				m.Feed(Interactions, bi)
				m.Feed(Receipts, br)
				for done < b.N {
					r, _ := m.Next(now)
					if r == nil {
						break
					}
					done++
				}
				for len(free) > 0 {
					<-free
				}
			}
		})
	}
}
