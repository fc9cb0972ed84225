package processor

import (
	"strings"
	"time"
	"unsafe"
)

// The segment stage answers digests' questions about its sets (the
// segmentCounter of digest.go). The engine asks while the watermark is at
// the digest's E, when the stage has decided every instant before E and
// none at E: each key's class is then its class just before E.

var _ segmentCounter = (*segmentStage)(nil)

func (st *segmentStage) set(name string) *segmentSet {
	for _, s := range st.sets {
		if s.def.Name == name {
			return s
		}
	}
	return nil
}

func (st *segmentStage) segmentClasses(set string) ([]string, bool) {
	s := st.set(set)
	if s == nil {
		return nil, false
	}
	return s.names, true
}

// segmentCounts visits every tracked key of the set once: a digest asks
// once per period, so this costs one pass over the keys a day (or week,
// or month), not one per watermark step.
func (st *segmentStage) segmentCounts(set string, _ time.Time, group func(SegmentKey) []byte) map[string]map[string]int {
	s := st.set(set)
	out := map[string]map[string]int{}
	if s == nil {
		return out
	}
	// One SegmentKey and one value slice for every key: a digest reads
	// them during group's call and copies what it keeps, so a period end
	// over a million keys allocates per group, not per key.
	k := SegmentKey{Fields: make(map[string]string, len(s.def.Fields))}
	vals := make([]string, 0, len(s.def.Fields))
	for i := range s.keys.len() {
		en := s.entries.at(uint32(i))
		if en.Class == 0 {
			continue // not tracked yet
		}
		// The key table's bytes never change once written (its chunks are
		// append-only within their capacity), so they can be read as a
		// string without a copy for the length of this loop.
		b := s.keys.key(uint32(i))
		rest := unsafe.String(unsafe.SliceData(b), len(b))
		vals = vals[:0]
		for {
			v, r, found := strings.Cut(rest, keySep)
			vals = append(vals, v)
			if !found {
				break
			}
			rest = r
		}
		clear(k.Fields)
		for j, f := range s.def.Fields {
			if j < len(vals) {
				k.Fields[f.Label] = vals[j]
			}
		}
		k.Tenant, k.CustomerID = "", ""
		if j := s.def.TenantField; j >= 0 && j < len(vals) {
			k.Tenant = vals[j]
		} else if int(en.Tenant) < len(s.tenants) {
			k.Tenant = s.tenants[en.Tenant]
		}
		if j := s.def.CustomerField; j >= 0 && j < len(vals) {
			k.CustomerID = vals[j]
		}
		g := group(k)
		counts := out[string(g)]
		if counts == nil {
			counts = map[string]int{}
			out[string(g)] = counts
		}
		counts[s.names[en.Class-1]]++
	}
	return out
}
