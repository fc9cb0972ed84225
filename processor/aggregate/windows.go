package aggregate

import (
	"math"
	"slices"

	"github.com/crmpulse/crmpulse/processor"
)

// windowSet is what Advance needs of one aggregate's open windows,
// whatever their key and accumulator types.
type windowSet interface {
	size() int64
	nextEnd() int64
	takeDue(wm int64) []int64
	emit(start int64, out *processor.Output)
	groups() int
}

// windows holds the open tumbling windows of one aggregate: per window
// start (Unix ns), an accumulator per dimension key. Windows that became
// final are emitted and forgotten, so only the windows the watermark has
// not reached are held.
type windows[K comparable, A any] struct {
	width   int64
	open    map[int64]map[K]*A
	next    int64 // end of the earliest open window, MaxInt64 when none
	compare func(K, K) int
	row     func(start, end int64, k K, a *A, out *processor.Output)
	pending map[int64]map[K]*A // taken by takeDue, emitted by emit
	starts  []int64            // scratch
}

func newWindows[K comparable, A any](width int64, compare func(K, K) int,
	row func(start, end int64, k K, a *A, out *processor.Output)) *windows[K, A] {
	return &windows[K, A]{
		width: width, open: map[int64]map[K]*A{}, next: math.MaxInt64,
		compare: compare, row: row, pending: map[int64]map[K]*A{},
	}
}

func (w *windows[K, A]) size() int64    { return w.width }
func (w *windows[K, A]) nextEnd() int64 { return w.next }

// windowStart is the start of the epoch-aligned window holding t (floor
// division, so instants before 1970 land in the right window too).
func windowStart(t, width int64) int64 {
	s := t - t%width
	if t%width < 0 {
		s -= width
	}
	return s
}

// acc returns the accumulator of key k in the window holding t, creating
// both as needed.
func (w *windows[K, A]) acc(t int64, k K) *A {
	s := windowStart(t, w.width)
	b := w.open[s]
	if b == nil {
		b = map[K]*A{}
		w.open[s] = b
		w.next = min(w.next, s+w.width)
	}
	a := b[k]
	if a == nil {
		a = new(A)
		b[k] = a
	}
	return a
}

// takeDue moves the windows whose end is at or before wm out of the open
// set and returns their starts in ascending order.
func (w *windows[K, A]) takeDue(wm int64) []int64 {
	if wm < w.next {
		return nil
	}
	starts := w.starts[:0]
	w.next = math.MaxInt64
	for s, b := range w.open {
		if s+w.width <= wm {
			starts = append(starts, s)
			w.pending[s] = b
			delete(w.open, s)
			continue
		}
		w.next = min(w.next, s+w.width)
	}
	slices.Sort(starts)
	w.starts = starts[:0]
	return starts
}

// emit appends the rows of the window taken at start, sorted by key.
func (w *windows[K, A]) emit(start int64, out *processor.Output) {
	b := w.pending[start]
	delete(w.pending, start)
	keys := make([]K, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, w.compare)
	for _, k := range keys {
		w.row(start, start+w.width, k, b[k], out)
	}
}

func (w *windows[K, A]) groups() int {
	n := 0
	for _, b := range w.open {
		n += len(b)
	}
	return n
}

// entry is one accumulator in a snapshot.
type entry[K comparable, A any] struct {
	Start int64
	Key   K
	Acc   A
}

// entries lists the open accumulators sorted by window start and key.
func (w *windows[K, A]) entries() []entry[K, A] {
	var es []entry[K, A]
	for s, b := range w.open {
		for k, a := range b {
			es = append(es, entry[K, A]{Start: s, Key: k, Acc: *a})
		}
	}
	slices.SortFunc(es, func(x, y entry[K, A]) int {
		if x.Start != y.Start {
			return cmpInt(x.Start, y.Start)
		}
		return w.compare(x.Key, y.Key)
	})
	return es
}

// load adds snapshot entries to the open windows.
func (w *windows[K, A]) load(es []entry[K, A]) {
	for _, e := range es {
		b := w.open[e.Start]
		if b == nil {
			b = map[K]*A{}
			w.open[e.Start] = b
			w.next = min(w.next, e.Start+w.width)
		}
		a := e.Acc
		b[e.Key] = &a
	}
}
