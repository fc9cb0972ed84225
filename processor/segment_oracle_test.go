package processor_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// oracleYAML exercises every condition; its class is recomputed from
// scratch by oracleClass.
const oracleYAML = `
version: 1
defaults: {allowed_lateness: 6h}
segments:
  - name: s
    key: [customer_id]
    track: {type: [login, visit]}
    purchase: {type: [purchase, refund]}
    window: 10h
    classes:
      - {name: potential, max_total: 0, recency_over: 1h}
      - {name: heavy, min_count: 3, min_amount: 50, recency_under: 3h}
      - {name: fresh, tenure_under: 5h}
      - {name: few, max_count: 1, recency_under: 8h}
      - {name: recent, recency_under: 4h}
      - {name: lapsed, recency_over: 12h}
      - {name: other}
`

// oracleClass is the class at t of one key from its records, straight
// from SPEC §3.3's definitions, with no state.
func oracleClass(set *rules.SegmentSet, recs []*ingest.Interaction, t time.Time) string {
	var count, total int64
	var amount float64
	var first, last time.Time
	for _, r := range recs {
		if r.OccurredAt.After(t) || !set.PurchaseMatch.Match(rules.Event{I: r}) {
			continue
		}
		inWindow := r.OccurredAt.After(t.Add(-set.Window.D()))
		if r.Type == "refund" {
			if inWindow {
				amount -= math.Abs(r.Amount)
			}
			continue
		}
		if inWindow {
			count++
			amount += r.Amount
		}
		if total == 0 || r.OccurredAt.Before(first) {
			first = r.OccurredAt
		}
		if total == 0 || r.OccurredAt.After(last) {
			last = r.OccurredAt
		}
		total++
	}
	for _, c := range set.Classes {
		ok := true
		if c.MinCount != nil && count < *c.MinCount || c.MaxCount != nil && count > *c.MaxCount ||
			c.MinAmount != nil && amount < *c.MinAmount || c.MaxTotal != nil && total > *c.MaxTotal {
			ok = false
		}
		if c.RecencyUnder != nil && !(total > 0 && t.Sub(last) < c.RecencyUnder.D()) {
			ok = false
		}
		if c.RecencyOver != nil && total > 0 && t.Sub(last) < c.RecencyOver.D() {
			ok = false
		}
		if c.TenureUnder != nil && !(total > 0 && t.Sub(first) < c.TenureUnder.D()) {
			ok = false
		}
		if ok {
			return c.Name
		}
	}
	panic("no class")
}

// TestSegmentsAgainstOracle: on random input, fed in random order within the
// allowed lateness with the watermark following it, the engine emits
// exactly the transitions that evaluating every key at every instant where
// a class can change gives (record times, last purchase + recency bounds,
// first purchase + tenure bounds, look-back record + window).
func TestSegmentsAgainstOracle(t *testing.T) {
	f, err := rules.Parse([]byte(oracleYAML))
	require.NoError(t, err)
	set := f.Segments[0]
	bounds := []time.Duration{time.Hour, 3 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour}
	types := []string{"purchase", "purchase", "purchase", "refund", "login", "visit", "complaint"}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		var recs []*ingest.Interaction
		clock := base
		for i := range 300 {
			clock = clock.Add(time.Duration(rng.IntN(40)) * time.Minute)
			at := clock.Add(-time.Duration(rng.IntN(300)) * time.Minute) // disorder within 6h
			recs = append(recs, &ingest.Interaction{EventID: "e" + itoa(i), Type: types[rng.IntN(len(types))],
				CustomerID: "c" + itoa(rng.IntN(6)), Tenant: "acme", Amount: float64(rng.IntN(4) * 10),
				OccurredAt: at})
		}
		e := newEngine(t, oracleYAML)
		for _, r := range recs {
			require.NoError(t, e.Interaction(r))
			e.AdvanceFromEvents()
		}
		end := clock.Add(48 * time.Hour)
		e.Advance(end)
		var got []string
		for _, tr := range e.Output().Transitions {
			from := "null"
			if tr.From != nil {
				from = *tr.From
			}
			got = append(got, tr.CustomerID+" "+from+">"+tr.To+" @"+off(tr.At))
		}

		byKey := map[string][]*ingest.Interaction{}
		for _, r := range recs {
			if set.PurchaseMatch.Match(rules.Event{I: r}) || set.TrackMatch.Match(rules.Event{I: r}) {
				byKey[r.CustomerID] = append(byKey[r.CustomerID], r)
			}
		}
		type change struct {
			at  time.Time
			key string
			s   string
		}
		var want []change
		for key, rs := range byKey {
			var instants []time.Time
			for _, r := range rs {
				instants = append(instants, r.OccurredAt, r.OccurredAt.Add(set.Window.D()))
				for _, b := range append(bounds, 5*time.Hour) { // 5h: tenure
					instants = append(instants, r.OccurredAt.Add(b))
				}
			}
			slices.SortFunc(instants, func(a, b time.Time) int { return a.Compare(b) })
			instants = slices.Compact(instants)
			firstTracked := slices.MinFunc(rs, func(a, b *ingest.Interaction) int { return a.OccurredAt.Compare(b.OccurredAt) }).OccurredAt
			cls := "null"
			for _, x := range instants {
				if x.Before(firstTracked) || !x.Before(end) {
					continue
				}
				if c := oracleClass(set, rs, x); c != cls {
					want = append(want, change{x, key, key + " " + cls + ">" + c + " @" + off(x)})
					cls = c
				}
			}
		}
		slices.SortStableFunc(want, func(a, b change) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return strings.Compare(a.key, b.key)
		})
		var ws []string
		for _, c := range want {
			ws = append(ws, c.s)
		}
		require.Greater(t, len(ws), 30, "seed %d", seed)
		require.Equal(t, ws, got, "seed %d", seed)
	}
}
