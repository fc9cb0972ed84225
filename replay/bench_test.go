package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// BenchmarkReplayVsDecodeOnly replays a generated data set and, in the same
// run, reads the same files decoding each line with encoding/json into the
// record structs (the baseline of issue 2). It reports both rates and their
// ratio. Set CRMPULSE_BENCH_DIR to a directory holding interactions.jsonl,
// receipts.jsonl and rules.yaml (scripts/bench.sh makes one with
// `crmpulse gen`); without it the benchmark is skipped.
func BenchmarkReplayVsDecodeOnly(b *testing.B) {
	dir := os.Getenv("CRMPULSE_BENCH_DIR")
	if dir == "" {
		b.Skip("CRMPULSE_BENCH_DIR not set; run scripts/bench.sh")
	}
	inter, rec := filepath.Join(dir, "interactions.jsonl"), filepath.Join(dir, "receipts.jsonl")
	rf, err := rules.Load(filepath.Join(dir, "rules.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	// Read both files once so neither side pays for a cold page cache.
	decodeOnly(b, inter, func([]byte) error { return nil })
	decodeOnly(b, rec, func([]byte) error { return nil })
	for range b.N {
		start := time.Now()
		n := decodeOnly(b, inter, func(line []byte) error { var ev ingest.Interaction; return json.Unmarshal(line, &ev) })
		n += decodeOnly(b, rec, func(line []byte) error { var r ingest.Receipt; return json.Unmarshal(line, &r) })
		base := float64(n) / time.Since(start).Seconds()

		start = time.Now()
		sum, err := Run(context.Background(), Config{Rules: rf, Interactions: inter, Receipts: rec, OutDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		total := sum.Interactions + sum.Receipts + sum.Duplicates + sum.RejectedTotal()
		rate := float64(total) / time.Since(start).Seconds()
		b.ReportMetric(float64(total), "records")
		b.ReportMetric(base, "baseline-records/s")
		b.ReportMetric(rate, "replay-records/s")
		b.ReportMetric(rate/base, "ratio")
	}
}

func decodeOnly(b *testing.B, path string, decode func([]byte) error) int {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		_ = decode(sc.Bytes()) // malformed lines cost the same as in replay
		n++
	}
	return n
}
