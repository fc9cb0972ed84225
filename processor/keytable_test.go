package processor

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyTable(t *testing.T) {
	prefix := strings.Repeat("k", 1<<16) // the old cut-off was 64 KiB - 1
	tests := []struct {
		name string
		keys []string // interned in order
		want int      // distinct keys the table must end up holding
	}{
		{name: "short keys", keys: []string{"a", "b", "a", "", "c", ""}, want: 4},
		{name: "keys either side of the long-key boundary", keys: []string{
			strings.Repeat("x", longKey-1), strings.Repeat("x", longKey), strings.Repeat("x", longKey+1),
			strings.Repeat("x", longKey-1), strings.Repeat("x", longKey), strings.Repeat("x", longKey+1),
		}, want: 3},
		{name: "two ids sharing their first 64 KiB stay apart", keys: []string{prefix + "-alice", prefix + "-bob", prefix + "-alice"}, want: 2},
		{name: "a long key repeated is one key", keys: []string{prefix + "x", prefix + "x", prefix + "x"}, want: 1},
		{name: "short keys after a long one go to a fresh chunk", keys: []string{"s1", prefix + "x", "s2", "", prefix + "y", "s1"}, want: 5},
		{name: "a key of several megabytes", keys: []string{strings.Repeat("m", 5<<20), strings.Repeat("m", 5<<20) + "!", "m"}, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kt := newKeyTable()
			idx := map[string]uint32{}
			for _, k := range tt.keys {
				i, added := kt.intern([]byte(k))
				prev, seen := idx[k]
				require.Equal(t, !seen, added, "key of %d bytes", len(k))
				if seen {
					require.Equal(t, prev, i, "key of %d bytes changed index", len(k))
				}
				idx[k] = i
			}
			require.Equal(t, tt.want, kt.len())
			require.Len(t, idx, tt.want)
			for k, i := range idx {
				require.True(t, bytes.Equal([]byte(k), kt.key(i)), "key %d of %d bytes comes back as %d bytes", i, len(k), len(kt.key(i)))
				got, ok := kt.lookup([]byte(k))
				require.True(t, ok)
				require.Equal(t, i, got)
			}
		})
	}
}

func TestKeyTableGrowsWithLongKeys(t *testing.T) {
	kt := newKeyTable()
	long := strings.Repeat("L", longKey+10)
	var want []string
	for i := range 5000 {
		k := "c" + strconv.Itoa(i)
		if i%500 == 0 {
			k = long + k
		}
		want = append(want, k)
		_, added := kt.intern([]byte(k))
		require.True(t, added)
	}
	require.Equal(t, len(want), kt.len())
	for i, k := range want {
		require.Equal(t, k, string(kt.key(uint32(i))))
	}
}

// FuzzKeyTable interns keys built from the input, some stretched past the
// 16-bit length of an offset word, and checks the table against a map:
// every key comes back whole, equal keys share an index, different keys
// never do.
func FuzzKeyTable(f *testing.F) {
	f.Add([]byte("alice\x00bob\x00alice"), uint16(0))
	f.Add([]byte("a\x00a\x00b"), uint16(1<<16-1))
	f.Add([]byte("x\x00xx\x00x"), uint16(40000))
	f.Fuzz(func(t *testing.T, data []byte, stretch uint16) {
		kt := newKeyTable()
		ref := map[string]uint32{}
		for n, part := range bytes.Split(data, []byte{0}) {
			k := part
			if n%2 == 1 && stretch > 0 {
				// Repeat the part so that short inputs make keys around
				// and past the long-key boundary.
				k = append(bytes.Repeat([]byte{'#'}, int(stretch)+len(part)), part...)
			}
			i, added := kt.intern(k)
			prev, seen := ref[string(k)]
			require.Equal(t, !seen, added)
			if seen {
				require.Equal(t, prev, i)
			}
			ref[string(k)] = i
		}
		require.Equal(t, len(ref), kt.len())
		for k, i := range ref {
			require.Equal(t, k, string(kt.key(i)))
		}
	})
}

// TestKeyTableStopsTaggingAtTheLimit: a table that outgrows the 24 bits a
// tagged slot leaves its index rebuilds its slots untagged and still finds
// every key, before and after, by bytes and by string.
func TestKeyTableStopsTaggingAtTheLimit(t *testing.T) {
	defer func(l int) { tagLimit = l }(tagLimit)
	tagLimit = 1000
	kt := newKeyTable()
	for i := range 3000 {
		k := "cust-" + strconv.Itoa(i)
		idx, added := kt.intern([]byte(k))
		require.True(t, added)
		require.Equal(t, uint32(i), idx)
		require.Equal(t, i+1 < tagLimit, kt.tagged, "after %d keys", i+1)
		for _, j := range []int{0, i / 2, i} {
			kj := "cust-" + strconv.Itoa(j)
			got, ok := kt.lookup([]byte(kj))
			require.True(t, ok, "%s after %d keys", kj, i+1)
			require.Equal(t, uint32(j), got)
			got, ok = kt.lookupString(kj)
			require.True(t, ok)
			require.Equal(t, uint32(j), got)
		}
		_, ok := kt.lookupString("absent-" + strconv.Itoa(i))
		require.False(t, ok)
	}
}
