package replay

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// withoutSegments is a rules file without its segment sets, its digests
// and the rules on segments: the baseline of BenchmarkReplaySegments.
func withoutSegments(b *testing.B, data []byte) []byte {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		b.Fatal(err)
	}
	delete(doc, "segments")
	delete(doc, "digests")
	var kept []any
	for _, r := range doc["rules"].([]any) {
		if r.(map[string]any)["source"] != "segments" {
			kept = append(kept, r)
		}
	}
	doc["rules"] = kept
	out, err := yaml.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkReplaySegments replays generated data (CRMPULSE_BENCH_CUSTOMERS
// customers, default 20 000, over 30 days, profiles included) through
// examples/rules.yaml as it is, with its lifecycle segment set, the rule
// on it and its two digests, and through the same file without them,
// alternating, and reports both rates and the cost of segments and
// digests, by wall clock and by the process's CPU time (less disturbed by
// other processes on a shared machine).
func BenchmarkReplaySegments(b *testing.B) {
	customers := 20_000
	if v, err := strconv.Atoi(os.Getenv("CRMPULSE_BENCH_CUSTOMERS")); err == nil && v > 0 {
		customers = v
	}
	dir := b.TempDir()
	cfg := datagen.DefaultConfig()
	cfg.Customers, cfg.Days = customers, 30
	files, _, err := datagen.WriteFiles(cfg, dir)
	if err != nil {
		b.Fatal(err)
	}
	ip, rp, cp := files.Interactions, files.Receipts, files.Customers
	example, err := os.ReadFile("../examples/rules.yaml")
	if err != nil {
		b.Fatal(err)
	}
	plain, err := rules.Parse(withoutSegments(b, example))
	if err != nil {
		b.Fatal(err)
	}
	if len(plain.Segments)+len(plain.Digests) > 0 {
		b.Fatal("the baseline still has segments or digests")
	}
	withSeg, err := rules.Parse(example)
	if err != nil {
		b.Fatal(err)
	}
	rate := func(rf *rules.File) (wall, cpu float64, transitions, digests int64) {
		start, cpu0 := time.Now(), cpuTime(b)
		sum, err := Run(context.Background(), Config{Rules: rf, Interactions: ip, Receipts: rp, Customers: cp, OutDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		total := float64(sum.Interactions + sum.Receipts + sum.Duplicates + sum.RejectedTotal())
		return total / time.Since(start).Seconds(), total / (cpuTime(b) - cpu0).Seconds(), sum.Transitions, sum.Digests
	}
	rate(plain) // warm the page cache
	for range b.N {
		base, baseCPU, _, _ := rate(plain)
		seg, segCPU, n, nd := rate(withSeg)
		b.ReportMetric(base, "baseline-records/s")
		b.ReportMetric(seg, "segments-records/s")
		b.ReportMetric(100*(1-seg/base), "cost-%")
		b.ReportMetric(100*(1-segCPU/baseCPU), "cpu-cost-%")
		b.ReportMetric(float64(n), "transitions")
		b.ReportMetric(float64(nd), "digests")
	}
}

// cpuTime is the user and system CPU time of the process so far.
