package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// BenchmarkReplayVsDecodeOnly replays a generated data set and, in the same
// run, reads the same files decoding each line with encoding/json into the
// record structs (the baseline of issue 2). It reports both rates and their
// ratio. Set CRMPULSE_BENCH_DIR to a directory holding interactions.jsonl,
// receipts.jsonl and rules.yaml, and optionally customers.jsonl, which both
// sides then read too (scripts/bench.sh makes one with `crmpulse gen`);
// without it the benchmark is skipped.
func BenchmarkReplayVsDecodeOnly(b *testing.B) {
	dir := os.Getenv("CRMPULSE_BENCH_DIR")
	if dir == "" {
		b.Skip("CRMPULSE_BENCH_DIR not set; run scripts/bench.sh")
	}
	inter, rec := filepath.Join(dir, "interactions.jsonl"), filepath.Join(dir, "receipts.jsonl")
	cust := filepath.Join(dir, "customers.jsonl")
	if _, err := os.Stat(cust); err != nil {
		cust = ""
	}
	rf, err := rules.Load(filepath.Join(dir, "rules.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	// Read the files once so neither side pays for a cold page cache.
	decodeOnly(b, inter, func([]byte) error { return nil })
	decodeOnly(b, rec, func([]byte) error { return nil })
	if cust != "" {
		decodeOnly(b, cust, func([]byte) error { return nil })
	}
	for range b.N {
		start, cpu0 := time.Now(), cpuTime(b)
		n := decodeOnly(b, inter, func(line []byte) error { var ev ingest.Interaction; return json.Unmarshal(line, &ev) })
		n += decodeOnly(b, rec, func(line []byte) error { var r ingest.Receipt; return json.Unmarshal(line, &r) })
		if cust != "" {
			n += decodeOnly(b, cust, func(line []byte) error { var c ingest.Customer; return json.Unmarshal(line, &c) })
		}
		base := float64(n) / time.Since(start).Seconds()
		cpu1 := cpuTime(b)
		baseCPU := float64(n) / (cpu1 - cpu0).Seconds()

		start = time.Now()
		sum, err := Run(context.Background(), Config{Rules: rf, Interactions: inter, Receipts: rec, Customers: cust,
			OutDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		total := sum.Interactions + sum.Receipts + sum.Customers + sum.Duplicates + sum.RejectedTotal()
		rate := float64(total) / time.Since(start).Seconds()
		rateCPU := float64(total) / (cpuTime(b) - cpu1).Seconds()
		b.ReportMetric(float64(total), "records")
		b.ReportMetric(base, "baseline-records/s")
		b.ReportMetric(rate, "replay-records/s")
		b.ReportMetric(rate/base, "ratio")
		// Per CPU second (user + system, all threads): what each side
		// costs, which a loaded machine moves far less than wall time.
		// Replay decodes on a second core, so its wall ratio can exceed
		// this one on an idle machine.
		b.ReportMetric(baseCPU, "baseline-records/cpu-s")
		b.ReportMetric(rateCPU, "replay-records/cpu-s")
		b.ReportMetric(rateCPU/baseCPU, "cpu-ratio")
	}
}

// cpuTime is the CPU time the process has used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
