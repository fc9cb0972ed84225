package datagen

import (
	"bufio"
	"bytes"
	"container/heap"
	"math"
	"math/rand/v2"
)

// fault is how a malformed line is broken.
type fault uint8

const (
	faultNone      fault = iota
	faultNotJSON         // truncated, single-quoted, or wrapped in a log line
	faultMissing         // a required field left out
	faultWrongType       // amount or attempt as a string, customer_id as a number
	faultBadTime         // "yesterday", no zone, a space instead of T
	numFaults
)

// malformedIDBase keeps the ids of malformed lines apart from real ones.
const malformedIDBase = 1 << 40

// encodeFunc appends one record as JSON (without newline), with the given
// id, broken as f says (faultNotJSON is applied by the stream); variant
// picks among the ways to break it.
type encodeFunc func(b []byte, r *rec, id uint64, f fault, variant int) []byte

// noiseFunc says which noise a record may get. Late records are lost to a
// consumer, so only records whose loss changes no alert may be late (and
// the rules' outcomes stay as designed); a sent receipt is never written
// out of order, so its delivery report never overtakes it.
type noiseFunc func(r *rec) (mayBeLate, mayReorder bool)

func interactionNoise(r *rec) (bool, bool) {
	return r.kind == itLogin || r.kind == itVisit || r.kind == itContactUpdated, true
}

func receiptNoise(r *rec) (bool, bool) {
	return r.kind == stOpened || r.kind == stClicked, r.kind != stSent
}

// Delays of the stream's imperfections.
const (
	reorderMin   = 20 * secondMs
	reorderMax   = 4 * minuteMs
	duplicateMin = secondMs
	duplicateMax = 3 * minuteMs
	lateMin      = 2 * hourMs
	lateSpan     = 6 * hourMs
)

// stream writes one output in occurred_at order, apart from the lines it
// holds back on purpose (out of order, late, duplicate), which wait in a
// queue until the stream reaches their release time.
type stream struct {
	w        *bufio.Writer
	err      error
	noise    *rand.Rand
	encode   encodeFunc
	eligible noiseFunc
	stats    *Stats
	lines    *int

	endMs                 int64
	lateness              int64
	reorderHi, lateLo     int64
	lateP, reorderP, dupP float64
	badP                  float64
	maxAt                 int64
	delayed               delayQueue
	// before, when set, writes one in-order line of another source that
	// is due before the given instant and reports whether it did.
	before        func(at int64) bool
	order, badIDs uint64
	line, bad     []byte
}

func newStream(cfg *Config, w *bufio.Writer, noise *rand.Rand, endMs int64, st *Stats, lines *int,
	enc encodeFunc, eligible noiseFunc) *stream {
	lateness := cfg.AllowedLateness.Milliseconds()
	s := &stream{
		w: w, noise: noise, encode: enc, eligible: eligible, stats: st, lines: lines,
		endMs:     endMs,
		lateness:  lateness,
		reorderHi: min(reorderMax, lateness/2),
		lateLo:    max(lateMin, lateness+hourMs),
		lateP:     cfg.LateRate,
		reorderP:  cfg.OutOfOrderRate,
		dupP:      cfg.DuplicateRate,
		maxAt:     math.MinInt64,
	}
	// One malformed line per record with probability badP makes the
	// expected share of malformed lines, duplicates counted, MalformedRate.
	if m := cfg.MalformedRate; m > 0 {
		s.badP = min(1, m*(1+cfg.DuplicateRate)/(1-m))
	}
	return s
}

// writeHour writes one hour's records, sorted by occurred_at.
func (s *stream) writeHour(recs []rec) {
	for i := range recs {
		r := &recs[i]
		for s.before != nil && s.before(r.at) {
		}
		s.release(r.at)
		s.emit(r)
	}
}

func (s *stream) emit(r *rec) {
	s.line = s.encode(s.line[:0], r, r.seq, faultNone, 0)
	mayBeLate, mayReorder := s.eligible(r)
	switch {
	case mayBeLate && s.lateP > 0 && r.at+s.lateLo+lateSpan < s.endMs-hourMs && s.noise.Float64() < s.lateP:
		s.hold(r.at+s.lateLo+s.noise.Int64N(lateSpan), r.at, s.line, false)
	case mayReorder && s.reorderP > 0 && s.reorderHi > reorderMin && s.noise.Float64() < s.reorderP:
		s.hold(r.at+reorderMin+s.noise.Int64N(s.reorderHi-reorderMin), r.at, s.line, false)
	default:
		s.write(r.at, s.line, false)
	}
	if s.dupP > 0 && s.noise.Float64() < s.dupP {
		s.hold(r.at+duplicateMin+s.noise.Int64N(duplicateMax-duplicateMin), r.at, s.line, true)
	}
	if s.badP > 0 && s.noise.Float64() < s.badP {
		s.malformed(r)
	}
}

// malformed writes a broken line made from r, with an id of its own.
func (s *stream) malformed(r *rec) {
	f := fault(1 + s.noise.IntN(int(numFaults)-1))
	variant := s.noise.IntN(12)
	s.badIDs++
	b := s.encode(s.bad[:0], r, malformedIDBase+s.badIDs, f, variant)
	if f == faultNotJSON {
		switch variant % 3 {
		case 0: // cut off mid-record
			b = b[:len(b)*3/5]
		case 1: // a producer that printed a Python dict
			b = bytes.ReplaceAll(b, []byte{'"'}, []byte{'\''})
		case 2: // a log line in the topic
			b = append([]byte("WARN producer retry: "), b...)
		}
	}
	s.bad = b
	s.stats.Malformed++
	s.put(b)
}

// putInOrder writes a line of another source, in time order and free of
// noise. It does not touch the stream's random draws, so the stream's own
// lines are the same with or without it; but it moves maxAt, so a held
// line written after a newer one is counted out of order, as a consumer
// sees it.
func (s *stream) putInOrder(at int64, line []byte) { s.write(at, line, false) }

func (s *stream) hold(release, at int64, line []byte, dup bool) {
	s.order++
	heap.Push(&s.delayed, held{release: release, order: s.order, at: at, dup: dup,
		line: append([]byte(nil), line...)})
}

// release writes the held lines due at or before t.
func (s *stream) release(t int64) {
	for len(s.delayed) > 0 && s.delayed[0].release <= t {
		h := heap.Pop(&s.delayed).(held)
		s.write(h.at, h.line, h.dup)
	}
}

// write writes a valid line and classifies its place in the stream.
func (s *stream) write(at int64, line []byte, dup bool) {
	switch {
	case at >= s.maxAt:
		s.maxAt = at
	case s.maxAt-at > s.lateness:
		s.stats.Late++
	default:
		s.stats.OutOfOrder++
	}
	if dup {
		s.stats.Duplicates++
	}
	s.put(line)
}

func (s *stream) put(line []byte) {
	*s.lines++
	if s.err != nil {
		return
	}
	if _, err := s.w.Write(line); err != nil {
		s.err = err
		return
	}
	s.err = s.w.WriteByte('\n')
}

// close writes every held line and flushes.
func (s *stream) close() error {
	s.release(math.MaxInt64)
	if s.err != nil {
		return s.err
	}
	return s.w.Flush()
}

type held struct {
	release, at int64
	order       uint64
	dup         bool
	line        []byte
}

type delayQueue []held

func (q delayQueue) Len() int { return len(q) }
func (q delayQueue) Less(i, j int) bool {
	if q[i].release != q[j].release {
		return q[i].release < q[j].release
	}
	return q[i].order < q[j].order
}
func (q delayQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *delayQueue) Push(x any)   { *q = append(*q, x.(held)) }
func (q *delayQueue) Pop() any {
	old := *q
	h := old[len(old)-1]
	*q = old[:len(old)-1]
	return h
}
