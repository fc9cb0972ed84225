package replay

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// benchSegments is the lifecycle set of SPEC §3.3 with a rule on it.
const benchSegments = `
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

// BenchmarkReplaySegments replays generated data (CRMPULSE_BENCH_CUSTOMERS
// customers, default 20 000, over 30 days) through examples/rules.yaml and
// through the same rules plus the lifecycle segment set, alternating, and
// reports both rates and the cost of the segments, by wall clock and by
// the process's CPU time (less disturbed by other processes on a shared
// machine).
func BenchmarkReplaySegments(b *testing.B) {
	customers := 20_000
	if v, err := strconv.Atoi(os.Getenv("CRMPULSE_BENCH_CUSTOMERS")); err == nil && v > 0 {
		customers = v
	}
	dir := b.TempDir()
	cfg := datagen.DefaultConfig()
	cfg.Customers, cfg.Days = customers, 30
	ip, rp := filepath.Join(dir, "i.jsonl"), filepath.Join(dir, "r.jsonl")
	fi, err := os.Create(ip)
	if err != nil {
		b.Fatal(err)
	}
	fr, err := os.Create(rp)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := datagen.Generate(cfg, fi, fr); err != nil {
		b.Fatal(err)
	}
	fi.Close()
	fr.Close()
	example, err := os.ReadFile("../examples/rules.yaml")
	if err != nil {
		b.Fatal(err)
	}
	plain, err := rules.Parse(example)
	if err != nil {
		b.Fatal(err)
	}
	withSeg, err := rules.Parse(append(example, benchSegments...))
	if err != nil {
		b.Fatal(err)
	}
	rate := func(rf *rules.File) (wall, cpu float64, transitions int64) {
		start, cpu0 := time.Now(), cpuTime(b)
		sum, err := Run(context.Background(), Config{Rules: rf, Interactions: ip, Receipts: rp, OutDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		total := float64(sum.Interactions + sum.Receipts + sum.Duplicates + sum.RejectedTotal())
		return total / time.Since(start).Seconds(), total / (cpuTime(b) - cpu0).Seconds(), sum.Transitions
	}
	rate(plain) // warm the page cache
	for range b.N {
		base, baseCPU, _ := rate(plain)
		seg, segCPU, n := rate(withSeg)
		b.ReportMetric(base, "baseline-records/s")
		b.ReportMetric(seg, "segments-records/s")
		b.ReportMetric(100*(1-seg/base), "cost-%")
		b.ReportMetric(100*(1-segCPU/baseCPU), "cpu-cost-%")
		b.ReportMetric(float64(n), "transitions")
	}
}

// cpuTime is the user and system CPU time of the process so far.
