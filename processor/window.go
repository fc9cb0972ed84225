package processor

import "time"

// windowStart is the start of the tumbling window of size w holding t,
// aligned to the Unix epoch in UTC (SPEC §2). Floor division, so times
// before 1970 land in the right window too.
func windowStart(t int64, w int64) int64 {
	s := t - t%w
	if t%w < 0 {
		s -= w
	}
	return s
}

func ts(n int64) time.Time { return time.Unix(0, n).UTC() }

// sortedGroups returns m's keys in ascending order so that every detector
// emits in a deterministic order whatever Go's map iteration does.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}
