package record

import (
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
)

// Fingerprint is a stable hash of the label set (which holds the rule name
// as alertname), in the spirit of Prometheus' label fingerprints. Alert
// ids, Alertmanager and webhook deduplication all rest on it: it must not
// change between versions.
func Fingerprint(labels map[string]string) string {
	names := slices.Sorted(maps.Keys(labels))
	h := fnv.New64a()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[n]))
		h.Write([]byte{0xff})
	}
	return strconv.FormatUint(h.Sum64()|1<<63, 16)
}
