package processor

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

var day0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func TestProfileLookupDoesNotAllocate(t *testing.T) {
	s := newProfileStore(0)
	for i := range 1000 {
		s.put(&ingest.Customer{CustomerID: fmt.Sprintf("cus-%07d", i), Tenant: "acme", UpdatedAt: day0, Tier: "gold",
			Attributes: map[string]string{"birthday": "03-09"}})
	}
	at := day0.Add(time.Hour).UnixNano()
	var p *ingest.Profile
	allocs := testing.AllocsPerRun(1000, func() { p = s.at("acme", "cus-0000500", at) })
	require.Zero(t, allocs)
	require.Equal(t, "03-09", p.Attr("birthday"))

	// The whole per-record path: the engine attaching the profile, and a
	// rule's customer.* getter reading it.
	f, err := rules.Parse([]byte("version: 1\nrules:\n  - {name: g, kind: event, source: interactions, match: {customer.tier: [gold]}, group_by: [customer_id]}\n"))
	require.NoError(t, err)
	e, err := New(Config{Rules: f})
	require.NoError(t, err)
	e.profiles = s
	ev := &ingest.Interaction{Tenant: "acme", CustomerID: "cus-0000500", OccurredAt: day0.Add(time.Hour)}
	m := f.Rules[0].Matcher
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		e.attachProfile(&ev.Profile, &ev.ProfileFrom)
		if !m.Match(rules.Event{I: ev}) {
			t.Fatal("gold customer does not match")
		}
	}))
}

func BenchmarkProfileLookup(b *testing.B) {
	s := newProfileStore(0)
	ids := make([]string, 100000)
	for i := range ids {
		ids[i] = fmt.Sprintf("cus-%07d", i)
		s.put(&ingest.Customer{CustomerID: ids[i], Tenant: "acme", UpdatedAt: day0, Tier: "gold"})
	}
	at := day0.Add(time.Hour).UnixNano()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if s.at("acme", ids[i%len(ids)], at) == nil {
			b.Fatal("missing")
		}
		i++
	}
}

// TestProfilePruning: only the version current at watermark − horizon and
// newer ones are kept; what they answer does not change.
func TestProfilePruning(t *testing.T) {
	s := newProfileStore(time.Hour)
	put := func(h int, tierV string, del bool) {
		s.put(&ingest.Customer{CustomerID: "c1", Tenant: "acme", UpdatedAt: day0.Add(time.Duration(h) * time.Hour), Tier: tierV, Deleted: del})
	}
	for h := range 10 {
		put(h, fmt.Sprint("t", h), false)
	}
	require.Len(t, *s.versions.at(0), 10, "nothing is pruned before the watermark moves")
	s.advance(day0.Add(6*time.Hour + 30*time.Minute)) // cut at 05:30
	put(10, "t10", false)
	vs := *s.versions.at(0)
	require.Len(t, vs, 6, "05:00 (current at the cut) and newer")
	require.Equal(t, "t5", s.at("acme", "c1", day0.Add(5*time.Hour+30*time.Minute).UnixNano()).Tier)
	require.Equal(t, "t10", s.at("acme", "c1", day0.Add(11*time.Hour).UnixNano()).Tier)

	s.advance(day0.Add(20 * time.Hour))
	put(11, "", true)
	require.Nil(t, *s.versions.at(0), "a deletion current at the cut leaves nothing to keep")
	require.Zero(t, s.len())
}

// TestOldSnapshotRestores: a snapshot written before profiles existed has
// no Profiles field; it restores to an empty store.
func TestOldSnapshotRestores(t *testing.T) {
	type oldState struct {
		Version    int
		RulesHash  string
		Watermark  time.Time
		Max        time.Time
		Stats      Stats
		DedupI     dedupState
		DedupR     dedupState
		Components map[string][]byte
	}
	f, err := rules.Parse([]byte("version: 1\n"))
	require.NoError(t, err)
	e, err := New(Config{Rules: f})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, gob.NewEncoder(&buf).Encode(oldState{Version: snapshotVersion, RulesHash: f.Hash, Watermark: day0, Components: map[string][]byte{}}))
	require.NoError(t, e.Customer(&ingest.Customer{CustomerID: "c1", Tenant: "acme", UpdatedAt: day0}))
	require.NoError(t, e.Restore(buf.Bytes()))
	require.Equal(t, day0, e.Watermark())
	require.Zero(t, e.StateKeys())
	require.NoError(t, e.Customer(&ingest.Customer{CustomerID: "c1", Tenant: "acme", UpdatedAt: day0}))
	require.NotNil(t, e.Profile("acme", "c1", day0))
}

// BenchmarkProfileMemory reports the heap bytes per profile held, for a
// store of 1M profiles like the generator's (an account
// manager, tier, segment, region, zone and two attributes each), next to
// a plain map of ingest.Customer structs.
func BenchmarkProfileMemory(b *testing.B) {
	const n = 1_000_000
	mk := func(i int) *ingest.Customer {
		return &ingest.Customer{CustomerID: fmt.Sprintf("cus-%07d", i), Tenant: "acme", UpdatedAt: day0,
			AccountManager: fmt.Sprintf("am%d@example.com", i%200), Tier: []string{"gold", "silver", "platinum"}[i%3],
			Segment: "smb", Region: "apac", Timezone: "Asia/Shanghai",
			Attributes: map[string]string{"birthday": fmt.Sprintf("%02d-%02d", 1+i%12, 1+i%28), "contract_end": "2027-06-30"}}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for b.Loop() {
		before := heap()
		s := newProfileStore(0)
		for i := range n {
			s.put(mk(i))
		}
		b.ReportMetric(float64(heap()-before)/n, "store-B/profile")
		runtime.KeepAlive(s)
		s = nil
		before = heap()
		m := make(map[string]ingest.Customer)
		for i := range n {
			c := mk(i)
			m[c.Tenant+"\x1f"+c.CustomerID] = *c
		}
		b.ReportMetric(float64(heap()-before)/n, "map-B/profile")
		runtime.KeepAlive(m)
	}
}
