package processor

import (
	"bytes"
	"hash/maphash"
	"unsafe"
)

// keyTable interns byte keys into dense uint32 indexes with a few bytes of
// overhead per key: key bytes live in fixed-size arena chunks (no slack from
// slice doubling, no per-string header), and the hash index is an open
// addressing table of uint32. A Go map[string]T costs 40+ bytes per entry
// before the value; with millions of tracked customers that is the
// difference between fitting in memory and not (DESIGN §3).
//
// A key of any length is kept whole: a key too long for the 16-bit length
// of its offset word (64 KiB or more, which only a group_by over several
// long fields can build) gets its own allocation in long, and the offset
// word says so. Cutting it instead would merge two ids that share their
// first 64 KiB, and give an id longer than that a new index on every
// event, because its lookup would never match the cut copy.
type keyTable struct {
	seed   maphash.Seed
	chunks [][]byte
	long   [][]byte      // keys of longKey bytes or more, one allocation each
	offs   pages[uint64] // per index: chunk<<40 | pos<<16 | len, or i<<40 | longKey for long[i]
	// slots: 0 = empty, else index+1; while the table holds fewer than
	// tagLimit keys, the top 8 bits of a slot are a tag from the key's
	// hash, so a probe that meets another key's slot almost never reads
	// that key (each read is a cache miss on a big table). Beyond it the
	// slots hold the whole index, untagged.
	slots  []uint32
	tagged bool
	n      int
}

// tagLimit is where a table stops tagging its slots: indexes then need
// more than 24 bits. A variable so tests can reach it.
var tagLimit = 1<<24 - 1

const tagShift = 24

// tag is the 8 bits of h a tagged slot carries: never 0, so a tagged slot
// is never empty.
func tag(h uint64) uint32 { return uint32(h>>56) | 1 }

const (
	arenaChunk = 1 << 16
	// longKey, as the length of an offset word, marks a key kept in long.
	// Shorter keys always fit in one arena chunk.
	longKey = 1<<16 - 1
)

func newKeyTable() *keyTable {
	return &keyTable{seed: maphash.MakeSeed(), slots: make([]uint32, 16), tagged: true}
}

// len is the number of keys.
func (t *keyTable) len() int { return t.n }

// key returns the bytes of key i; valid until the table is garbage.
func (t *keyTable) key(i uint32) []byte {
	o := *t.offs.at(i)
	c, p, l := o>>40, (o>>16)&(1<<24-1), o&0xffff
	if l == longKey {
		return t.long[c]
	}
	return t.chunks[c][p : p+l]
}

// lookup finds k, returning its index and whether it exists.
func (t *keyTable) lookup(k []byte) (uint32, bool) {
	mask := uint64(len(t.slots) - 1)
	h := maphash.Bytes(t.seed, k)
	// Untagged, want is 0 and idx keeps every bit: every slot is a
	// candidate and holds the whole index.
	want, idx := uint32(0), ^uint32(0)
	if t.tagged {
		want, idx = tag(h)<<tagShift, 1<<tagShift-1
	}
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if s&^idx == want && bytes.Equal(t.key(s&idx-1), k) {
			return s&idx - 1, true
		}
	}
}

// intern returns the index of k, adding it when new.
func (t *keyTable) intern(k []byte) (idx uint32, added bool) {
	if i, ok := t.lookup(k); ok {
		return i, false
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow(len(t.slots) * 2)
	}
	if t.tagged && t.n+1 >= tagLimit {
		t.tagged = false
		t.grow(len(t.slots))
	}
	idx = uint32(t.n)
	if len(k) >= longKey {
		*t.offs.add() = uint64(len(t.long))<<40 | longKey
		t.long = append(t.long, bytes.Clone(k))
	} else {
		last := len(t.chunks) - 1
		if last < 0 || len(t.chunks[last])+len(k) > cap(t.chunks[last]) {
			t.chunks = append(t.chunks, make([]byte, 0, arenaChunk))
			last++
		}
		pos := len(t.chunks[last])
		t.chunks[last] = append(t.chunks[last], k...)
		*t.offs.add() = uint64(last)<<40 | uint64(pos)<<16 | uint64(len(k))
	}
	t.n++
	t.place(idx, k)
	return idx, true
}

func (t *keyTable) place(idx uint32, k []byte) {
	mask := uint64(len(t.slots) - 1)
	h := maphash.Bytes(t.seed, k)
	v := idx + 1
	if t.tagged {
		v |= tag(h) << tagShift
	}
	for i := h & mask; ; i = (i + 1) & mask {
		if t.slots[i] == 0 {
			t.slots[i] = v
			return
		}
	}
}

// grow rebuilds the index with size slots (a power of two).
func (t *keyTable) grow(size int) {
	t.slots = make([]uint32, size)
	for i := 0; i < t.n; i++ {
		t.place(uint32(i), t.key(uint32(i)))
	}
}

// pages is a growable array in fixed pages, so a million-element table
// never holds the up-to-25% spare capacity of a doubled slice, and growing
// never copies.
type pages[T any] struct {
	p [][]T
	n int
}

const pageSize = 4096

func (p *pages[T]) at(i uint32) *T { return &p.p[i/pageSize][i%pageSize] }

func (p *pages[T]) add() *T {
	if p.n%pageSize == 0 {
		p.p = append(p.p, make([]T, pageSize))
	}
	p.n++
	return p.at(uint32(p.n - 1))
}

// lookupString is lookup for a string key, without copying it: maphash
// hashes a string and its bytes alike, and lookup only reads k.
func (t *keyTable) lookupString(k string) (uint32, bool) {
	return t.lookup(unsafe.Slice(unsafe.StringData(k), len(k)))
}
