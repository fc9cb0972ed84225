package datagen_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/ingest"
)

// small is a quick data set with every injection placed.
func small(seed int64) datagen.Config {
	return datagen.Config{Seed: seed, Customers: 300, Days: 12}
}

func generate(t testing.TB, cfg datagen.Config) (datagen.Stats, []byte, []byte) {
	t.Helper()
	var i, r bytes.Buffer
	st, err := datagen.Generate(cfg, &i, &r)
	require.NoError(t, err)
	return st, i.Bytes(), r.Bytes()
}

func lines(t testing.TB, b []byte) [][]byte {
	t.Helper()
	if len(b) == 0 {
		return nil
	}
	require.Equal(t, byte('\n'), b[len(b)-1], "output ends with a newline")
	return bytes.Split(b[:len(b)-1], []byte{'\n'})
}

// record is what the tests need of a line: its id and time, or that it is
// malformed.
type record struct {
	id  string
	at  time.Time
	bad bool
	i   ingest.Interaction
	r   ingest.Receipt
}

// parseInteraction decodes a line with encoding/json and checks the
// required fields of SPEC §1.1; a line that fails is malformed.
func parseInteraction(line []byte) record {
	var ev ingest.Interaction
	if err := json.Unmarshal(line, &ev); err != nil {
		return record{bad: true}
	}
	if ev.EventID == "" || ev.Type == "" || ev.CustomerID == "" || ev.OccurredAt.IsZero() {
		return record{bad: true}
	}
	return record{id: ev.EventID, at: ev.OccurredAt, i: ev}
}

// parseReceipt does the same for SPEC §1.2.
func parseReceipt(line []byte) record {
	var rc ingest.Receipt
	if err := json.Unmarshal(line, &rc); err != nil {
		return record{bad: true}
	}
	if rc.ReceiptID == "" || rc.MessageID == "" || rc.CustomerID == "" || rc.Channel == "" ||
		rc.Status == "" || rc.OccurredAt.IsZero() || rc.Attempt < 0 {
		return record{bad: true}
	}
	return record{id: rc.ReceiptID, at: rc.OccurredAt, r: rc}
}

// streamCheck is what a test measures in one stream.
type streamCheck struct {
	lines, bad, dups, behind, late int
	recs                           []record
}

func check(t *testing.T, data []byte, parse func([]byte) record, lateness time.Duration) streamCheck {
	t.Helper()
	var c streamCheck
	seen := map[string][]byte{}
	var maxAt time.Time
	for n, line := range lines(t, data) {
		c.lines++
		rec := parse(line)
		if rec.bad {
			c.bad++
			continue
		}
		if prev, ok := seen[rec.id]; ok {
			require.Equal(t, string(prev), string(line), "line %d repeats id %s with different content", n+1, rec.id)
			c.dups++
		} else {
			seen[rec.id] = line
			c.recs = append(c.recs, rec)
		}
		switch {
		case !rec.at.Before(maxAt):
			maxAt = rec.at
		case maxAt.Sub(rec.at) > lateness:
			c.late++
			c.behind++
		default:
			c.behind++
		}
	}
	return c
}

func TestDeterminism(t *testing.T) {
	tests := []struct {
		name string
		a, b datagen.Config
		same bool
	}{
		{"same seed", small(7), small(7), true},
		{"seed zero", datagen.Config{Seed: 0, Customers: 100, Days: 3}, datagen.Config{Seed: 0, Customers: 100, Days: 3}, true},
		{"different seed", small(7), small(8), false},
		{"different size", small(7), datagen.Config{Seed: 7, Customers: 301, Days: 12}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sa, ia, ra := generate(t, tt.a)
			sb, ib, rb := generate(t, tt.b)
			if tt.same {
				require.Equal(t, sa, sb)
				require.True(t, bytes.Equal(ia, ib), "interactions differ")
				require.True(t, bytes.Equal(ra, rb), "receipts differ")
				return
			}
			require.False(t, bytes.Equal(ia, ib), "interactions are identical")
			require.False(t, bytes.Equal(ra, rb), "receipts are identical")
		})
	}
}

// TestNoiseLeavesEventsAlone: the stream imperfections draw from their own
// random streams, so switching them off keeps the valid events as they were.
func TestNoiseLeavesEventsAlone(t *testing.T) {
	noisy := small(3)
	noisy.MalformedRate, noisy.DuplicateRate = 0.05, 0.05
	clean := small(3)
	clean.MalformedRate, clean.DuplicateRate, clean.LateRate, clean.OutOfOrderRate = -1, -1, -1, -1
	_, in, rn := generate(t, noisy)
	_, ic, rc := generate(t, clean)
	ids := func(data []byte, parse func([]byte) record) map[string]bool {
		m := map[string]bool{}
		for _, l := range lines(t, data) {
			if r := parse(l); !r.bad {
				m[r.id] = true
			}
		}
		return m
	}
	require.Equal(t, ids(ic, parseInteraction), ids(in, parseInteraction))
	require.Equal(t, ids(rc, parseReceipt), ids(rn, parseReceipt))
}

func TestStreamsMatchStats(t *testing.T) {
	tests := []struct {
		name string
		cfg  datagen.Config
	}{
		{"defaults, small", small(1)},
		{"noisy", datagen.Config{Seed: 2, Customers: 400, Days: 10, MalformedRate: 0.02, DuplicateRate: 0.02,
			OutOfOrderRate: 0.03, LateRate: 0.02}},
		{"clean", datagen.Config{Seed: 3, Customers: 200, Days: 9, MalformedRate: -1, DuplicateRate: -1,
			OutOfOrderRate: -1, LateRate: -1}},
		{"tight lateness", datagen.Config{Seed: 4, Customers: 200, Days: 9, AllowedLateness: time.Minute,
			OutOfOrderRate: 0.05}},
		{"one customer, one day", datagen.Config{Seed: 5, Customers: 1, Days: 1}},
		{"more tenants than customers", datagen.Config{Seed: 6, Customers: 4, Days: 10,
			Tenants: []string{"a", "b", "c", "d", "e", `we"ird`}}},
		{"not a midnight start", datagen.Config{Seed: 7, Customers: 100, Days: 9,
			Start: time.Date(2027, 3, 28, 13, 17, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, id, rd := generate(t, tt.cfg)
			lateness := tt.cfg.AllowedLateness
			if lateness == 0 {
				lateness = datagen.DefaultConfig().AllowedLateness
			}
			ci := check(t, id, parseInteraction, lateness)
			cr := check(t, rd, parseReceipt, lateness)

			require.Equal(t, st.Interactions, ci.lines, "interaction lines")
			require.Equal(t, st.Receipts, cr.lines, "receipt lines")
			require.Equal(t, st.Malformed, ci.bad+cr.bad, "malformed lines")
			require.Equal(t, st.Duplicates, ci.dups+cr.dups, "duplicate lines")
			require.Equal(t, st.Events(), len(ci.recs)+len(cr.recs), "valid distinct records")
			// Every line behind its stream's newest one was put there on
			// purpose, and the late ones are exactly those counted late.
			require.Equal(t, st.Late+st.OutOfOrder, ci.behind+cr.behind, "out-of-order lines")
			require.Equal(t, st.Late, ci.late+cr.late, "late lines")

			start := datagen.DefaultConfig().Start
			if !tt.cfg.Start.IsZero() {
				start = tt.cfg.Start
			}
			end := start.AddDate(0, 0, tt.cfg.Days)
			for _, r := range append(ci.recs, cr.recs...) {
				require.False(t, r.at.Before(start) || !r.at.Before(end), "record %s at %s outside the data set", r.id, r.at)
			}
		})
	}
}

// TestLinesDecode checks every line against the pipeline's own decoder:
// valid lines are accepted with SPEC's fields, malformed ones refused.
func TestLinesDecode(t *testing.T) {
	cfg := small(11)
	cfg.MalformedRate = 0.03
	st, id, rd := generate(t, cfg)
	reasons := map[ingest.Reason]int{}
	var zones = map[string]int{}
	for _, tc := range []struct {
		name   string
		data   []byte
		decode func([]byte) error
		parse  func([]byte) record
	}{
		{"interactions", id, func(b []byte) error {
			var ev ingest.Interaction
			return ingest.DecodeInteraction(b, &ev)
		}, parseInteraction},
		{"receipts", rd, func(b []byte) error {
			var rc ingest.Receipt
			return ingest.DecodeReceipt(b, &rc)
		}, parseReceipt},
	} {
		for n, line := range lines(t, tc.data) {
			err := tc.decode(line)
			rec := tc.parse(line)
			if rec.bad {
				require.Error(t, err, "%s line %d is malformed but accepted: %s", tc.name, n+1, line)
				var re *ingest.RejectError
				require.ErrorAs(t, err, &re)
				reasons[re.Reason]++
				continue
			}
			require.NoError(t, err, "%s line %d: %s", tc.name, n+1, line)
			switch {
			case bytes.Contains(line, []byte(`+08:00"`)):
				zones["+08:00"]++
			case bytes.Contains(line, []byte(`Z"`)):
				zones["Z"]++
			}
		}
	}
	for _, r := range []ingest.Reason{ingest.ReasonNotJSON, ingest.ReasonMissingField, ingest.ReasonWrongType, ingest.ReasonBadTime} {
		require.Positive(t, reasons[r], "no malformed line refused with reason %s", r)
	}
	sum := 0
	for _, n := range reasons {
		sum += n
	}
	require.Equal(t, st.Malformed, sum)
	require.Positive(t, zones["Z"])
	require.Positive(t, zones["+08:00"])
}

func TestMalformedRate(t *testing.T) {
	tests := []struct {
		name string
		rate float64
	}{
		{"default", 0},
		{"one percent", 0.01},
		{"five percent", 0.05},
		{"off", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := datagen.Config{Seed: 5, Customers: 1000, Days: 10, MalformedRate: tt.rate}
			st, _, _ := generate(t, cfg)
			want := tt.rate
			switch {
			case want == 0:
				want = datagen.DefaultConfig().MalformedRate
			case want < 0:
				require.Zero(t, st.Malformed)
				return
			}
			n := float64(st.Interactions + st.Receipts)
			got := float64(st.Malformed) / n
			sigma := math.Sqrt(want * (1 - want) / n)
			require.InDelta(t, want, got, 5*sigma, "malformed share %.5f over %d lines", got, int(n))
		})
	}
}

// TestInjections checks the anomalies in the data itself, independently of
// the pipeline: counts as configured, switched off by negative knobs.
func TestInjections(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		cfg := datagen.Config{Seed: 9}
		st, id, rd := generate(t, cfg)
		def := datagen.DefaultConfig()
		inj := st.Injected
		require.Equal(t, 1, inj.RevenueDrops)
		require.Equal(t, def.ComplaintBursts, inj.ComplaintBursts)
		require.Equal(t, def.ComplaintBursts*def.ComplaintBurstSize, inj.BurstComplaints)
		require.Equal(t, def.UnresolvedComplaints, inj.UnresolvedComplaints)
		require.Equal(t, def.ProviderIncidents, inj.ProviderIncidents)
		require.Equal(t, def.BacklashCampaigns, inj.BacklashCampaigns)
		require.InDelta(t, def.ChurnRate*float64(def.Customers), inj.ChurnedCustomers, 20)
		for name, n := range map[string]int{
			"undelivered": inj.Undelivered, "retries": inj.Retries, "soft bounces": inj.SoftBounces,
			"hard bounces": inj.HardBounces, "failed": inj.Failed, "rejected": inj.Rejected,
			"complained": inj.Complained, "unsubscribed": inj.Unsubscribed, "unsubscribes": inj.Unsubscribes,
		} {
			require.Positive(t, n, name)
		}
		require.NotEmpty(t, inj.Notes)

		end := def.Start.AddDate(0, 0, def.Days)
		ci := check(t, id, parseInteraction, def.AllowedLateness)
		cr := check(t, rd, parseReceipt, def.AllowedLateness)

		// Complaints without a resolution, early enough that every normal
		// one would have been resolved, are exactly the injected ones.
		opened := map[string]time.Time{}
		for _, r := range ci.recs {
			switch r.i.Type {
			case "complaint":
				opened[r.i.Attributes["ticket_id"]] = r.at
			case "complaint_resolved":
				delete(opened, r.i.Attributes["ticket_id"])
			}
		}
		unresolved := 0
		for _, at := range opened {
			if at.Before(end.Add(-48 * time.Hour)) {
				unresolved++
			}
		}
		require.Equal(t, inj.UnresolvedComplaints, unresolved)

		// Attempts with nothing after sent (in-app reports may come a day
		// later) are exactly the undelivered ones.
		type attempt struct {
			msg string
			n   int
		}
		onlySent := map[attempt]bool{}
		for _, r := range cr.recs {
			k := attempt{r.r.MessageID, max(1, r.r.Attempt)}
			if r.r.Status == "sent" && r.r.Channel != "inapp" && r.at.Before(end.Add(-3*time.Hour)) {
				if _, ok := onlySent[k]; !ok {
					onlySent[k] = true
				}
				continue
			}
			onlySent[k] = false
		}
		undelivered := 0
		for _, v := range onlySent {
			if v {
				undelivered++
			}
		}
		require.Equal(t, inj.Undelivered, undelivered)

		retries := 0
		for _, r := range cr.recs {
			if r.r.Status == "sent" && r.r.Attempt > 1 {
				retries++
			}
		}
		require.Equal(t, inj.Retries, retries)
	})

	t.Run("switched off", func(t *testing.T) {
		cfg := datagen.Config{Seed: 9, Customers: 500,
			ChurnRate: -1, RevenueDropDays: -1, ComplaintBursts: -1, UnresolvedComplaints: -1,
			ProviderIncidents: -1, BacklashCampaigns: -1, UndeliveredRate: -1, RetryRate: -1,
			MalformedRate: -1, DuplicateRate: -1, OutOfOrderRate: -1, LateRate: -1}
		st, _, _ := generate(t, cfg)
		inj := st.Injected
		for name, n := range map[string]int{
			"churned": inj.ChurnedCustomers, "drops": inj.RevenueDrops, "bursts": inj.ComplaintBursts,
			"unresolved": inj.UnresolvedComplaints, "incidents": inj.ProviderIncidents,
			"backlash": inj.BacklashCampaigns, "undelivered": inj.Undelivered, "retries": inj.Retries,
			"malformed": st.Malformed, "duplicates": st.Duplicates, "out of order": st.OutOfOrder, "late": st.Late,
		} {
			require.Zero(t, n, name)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   datagen.Config
		field string
	}{
		{"drop tenant unknown", datagen.Config{RevenueDropTenant: "nope"}, "RevenueDropTenant"},
		{"drop segment unknown", datagen.Config{RevenueDropSegment: "whales"}, "RevenueDropSegment"},
		{"rate above one", datagen.Config{DuplicateRate: 1.5}, "DuplicateRate"},
		{"mostly malformed", datagen.Config{MalformedRate: 0.7}, "MalformedRate"},
		{"too many customers", datagen.Config{Customers: 10_000_000}, "Customers"},
		{"empty tenant", datagen.Config{Tenants: []string{"acme", ""}}, "Tenants"},
		{"tenant twice", datagen.Config{Tenants: []string{"acme", "globex", "acme"}}, "Tenants"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := datagen.Generate(tt.cfg, io.Discard, io.Discard)
			require.ErrorContains(t, err, "field "+tt.field)
		})
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, fmt.Errorf("disk full")
	}
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	_, err := datagen.Generate(small(1), io.Discard, &failingWriter{after: 1 << 20})
	require.ErrorContains(t, err, "writing receipts: disk full")
}

// countingWriter counts lines without keeping them.
type countingWriter struct{ lines, bytes int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.lines += bytes.Count(p, []byte{'\n'})
	w.bytes += len(p)
	return len(p), nil
}

// TestMillionEvents: a million events stream out, every one of them
// counted in the stats. How fast is BenchmarkMillionEvents' figure: a
// wall-clock bound here would fail by chance on a loaded machine.
func TestMillionEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: it writes a million events")
	}
	var iw, rw countingWriter
	st, err := datagen.Generate(millionEvents, &iw, &rw)
	require.NoError(t, err)
	require.GreaterOrEqual(t, st.Events(), 1_000_000)
	require.Equal(t, st.Interactions, iw.lines)
	require.Equal(t, st.Receipts, rw.lines)
}

// millionEvents is the configuration of TestMillionEvents and its benchmark.
var millionEvents = datagen.Config{Seed: 1, Customers: 9000, Days: 14}

// BenchmarkMillionEvents: the time to write TestMillionEvents' data set
// (it used to be bounded at 20 s inside the test).
func BenchmarkMillionEvents(b *testing.B) {
	events, written := 0, 0
	for b.Loop() {
		var iw, rw countingWriter
		st, err := datagen.Generate(millionEvents, &iw, &rw)
		if err != nil {
			b.Fatal(err)
		}
		events += st.Events()
		written += iw.bytes + rw.bytes
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(written)/float64(1<<20)/b.Elapsed().Seconds(), "MB/s")
}

func BenchmarkGenerate(b *testing.B) {
	cfg := datagen.Config{Seed: 1, Customers: 2000, Days: 14}
	events := 0
	for b.Loop() {
		st, err := datagen.Generate(cfg, io.Discard, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		events += st.Events()
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
