package processor

import (
	"strings"
	"time"
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
func (st *segmentStage) segmentCounts(set string, _ time.Time, group func(SegmentKey) string) map[string]map[string]int {
	s := st.set(set)
	out := map[string]map[string]int{}
	if s == nil {
		return out
	}
	for i := range s.keys.len() {
		en := s.entries.at(uint32(i))
		if en.Class == 0 {
			continue // not tracked yet
		}
		vals := strings.Split(string(s.keys.key(uint32(i))), keySep)
		k := SegmentKey{Fields: make(map[string]string, len(s.def.Fields))}
		for j, f := range s.def.Fields {
			if j < len(vals) {
				k.Fields[f.Label] = vals[j]
			}
		}
		if j := s.def.TenantField; j >= 0 && j < len(vals) {
			k.Tenant = vals[j]
		} else if int(en.Tenant) < len(s.tenants) {
			k.Tenant = s.tenants[en.Tenant]
		}
		if j := s.def.CustomerField; j >= 0 && j < len(vals) {
			k.CustomerID = vals[j]
		}
		g := group(k)
		if out[g] == nil {
			out[g] = map[string]int{}
		}
		out[g][s.names[en.Class-1]]++
	}
	return out
}
