package clickhouse

import (
	"slices"

	"github.com/crmpulse/crmpulse/record"
)

// Row storage. A table's queue is kept column by column, in the Go types
// clickhouse-go appends without conversion ([]string, []uint64, Unix
// seconds as []int64 for DateTime), so an insert hands slices of the queue
// to the batch as they are: a row is converted once, when Write copies it
// in with plain appends to typed slices (no per-column closures, no
// interface calls per value).
//
// The columns are cut into blocks of BatchRows rows, and a block of the
// queue is a block of the INSERT: a full block is never copied nor grown
// again, a stored one is cleared and reused, so a sink in steady state
// allocates nothing per row, and a burst costs one allocation per column
// per block instead of append's repeated grow-and-copy of ever larger
// arrays (five times the data, for a 200 000-row burst).

// colVec is one column of a block, whatever its value type
// (record.Vector: Part runs with s.mu held and must be cheap; a column
// whose driver form needs work returns a lazyPart, converted later without
// the mutex).
type colVec = record.Vector

// lazyPart is a captured slice of a column whose driver form is computed
// when the insert appends it, outside the mutex.
type lazyPart = record.Lazy

// vec is a column of values of type V.
type vec[V any] = record.Vec[V]

// namedCol is a column of a block with its name in the INSERT.
type namedCol struct {
	name string
	col  colVec
}

// colSet is a table's columns, but version, which every table has: a
// struct of vec fields whose pointer lists them in INSERT order.
type colSet interface{ columns() []namedCol }

// aggCols is a block of a registered aggregate table (record.Columns) as
// a colSet: a run of its rows is added with its own Add, one interface
// call per run and plain appends inside.
type aggCols struct{ record.Columns }

func (c *aggCols) columns() []namedCol {
	list := c.List()
	cols := make([]namedCol, len(list))
	for i, l := range list {
		cols[i] = namedCol{l.Name, l.Vec}
	}
	return cols
}

// aggQueue is the queue of a registered aggregate table.
type aggQueue = queue[aggCols, *aggCols]

// newAggQueue returns the empty queue of t.
func newAggQueue(t record.Table, size int) *aggQueue {
	return &aggQueue{size: size, fresh: func(c *aggCols) { c.Columns = t.NewColumns() }}
}

// block is up to size rows of a table.
type block[C any] struct {
	cols    C
	version vec[uint64]
	list    []namedCol // cols' columns, then version
	n       int        // rows
	room    int        // rows every column has capacity for
}

func (b *block[C]) reset() {
	for _, c := range b.list {
		c.col.Reset()
	}
	b.n = 0
}

// firstBlockRows is the capacity a table's first block starts with: most
// tables (alerts, resends) get a few rows a second and should not hold a
// BatchRows-sized block; a block grows by doubling up to BatchRows.
const firstBlockRows = 1024

// queue is one table's rows waiting for an insert: blocks[0][off:] is the
// oldest queued row, every block but the last is full. C is the table's
// column struct, P its pointer type.
type queue[C any, P interface {
	*C
	colSet
}] struct {
	size   int      // rows per block: Config.BatchRows
	fresh  func(*C) // sets up a new block's columns; nil for a struct of vecs
	blocks []*block[C]
	off    int // rows at the start of blocks[0] that were stored
	n      int // rows queued
	// spare are stored blocks kept for reuse. Like a slice that keeps its
	// capacity, the queue keeps the blocks of its largest backlog (at
	// most MaxBufferedRows rows).
	spare []*block[C]
}

func newQueue[C any, P interface {
	*C
	colSet
}](size int) *queue[C, P] {
	return &queue[C, P]{size: size}
}

// next makes room for one more row with version ver and returns the
// columns to append its other values to; s.mu held. The caller appends
// exactly one value to every column.
func (q *queue[C, P]) next(ver uint64) *C {
	var b *block[C]
	if k := len(q.blocks); k > 0 {
		b = q.blocks[k-1]
	}
	if b == nil || b.n == b.room {
		b = q.makeRoom(b)
	}
	b.n++
	q.n++
	b.version.Add(ver)
	return &b.cols
}

// nextRun makes room for up to want more rows with version ver, as many as
// the last block holds, and returns the columns to append them to and
// their number n (at least 1 for want ≥ 1); s.mu held. The caller appends
// exactly n values to every column.
func (q *queue[C, P]) nextRun(ver uint64, want int) (*C, int) {
	var b *block[C]
	if k := len(q.blocks); k > 0 {
		b = q.blocks[k-1]
	}
	if b == nil || b.n == b.room {
		b = q.makeRoom(b)
	}
	n := min(want, b.room-b.n)
	b.n += n
	q.n += n
	for range n {
		b.version.Add(ver)
	}
	return &b.cols, n
}

// makeRoom grows the last block b (nil when there is none) or starts a
// new one, and returns the block to append to.
func (q *queue[C, P]) makeRoom(b *block[C]) *block[C] {
	if b != nil && b.room < q.size {
		b.room = min(2*b.room, q.size)
		for _, c := range b.list {
			c.col.Grow(b.room)
		}
		return b
	}
	rows := min(firstBlockRows, q.size)
	if b != nil {
		rows = q.size // the last block filled up: a burst, go to full blocks at once
	}
	var nb *block[C]
	if k := len(q.spare); k > 0 {
		nb = q.spare[k-1]
		q.spare = q.spare[:k-1]
	} else {
		nb = &block[C]{}
		if q.fresh != nil {
			q.fresh(&nb.cols)
		}
		nb.list = append(P(&nb.cols).columns(), namedCol{"version", &nb.version})
	}
	if nb.room < rows {
		nb.room = rows
		for _, c := range nb.list {
			c.col.Grow(rows)
		}
	}
	q.blocks = append(q.blocks, nb)
	return nb
}

func (q *queue[C, P]) len() int { return q.n }

func (q *queue[C, P]) columns() []string {
	var b block[C]
	if q.fresh != nil {
		q.fresh(&b.cols)
	}
	cols := P(&b.cols).columns()
	names := make([]string, 0, len(cols)+1)
	for _, c := range cols {
		names = append(names, c.name)
	}
	return append(names, "version")
}

// part returns the queued rows from the from-th on, up to the end of the
// block that holds it, as one value per column (in columns order); rows is
// their number, 0 when fewer than from+1 rows are queued, and last tells
// whether that block is the newest one. Later adds write past the
// returned slices (into spare capacity or new blocks), and drop runs only
// after the insert, so the slices may be read without the mutex.
func (q *queue[C, P]) part(from int) (vals []any, rows int, last bool) {
	for i, b := range q.blocks {
		start := 0
		if i == 0 {
			start = q.off
		}
		if avail := b.n - start; from >= avail {
			from -= avail
			continue
		}
		start += from
		vals = make([]any, len(b.list))
		for j, c := range b.list {
			vals[j] = c.col.Part(start, b.n)
		}
		return vals, b.n - start, i == len(q.blocks)-1
	}
	return nil, 0, true
}

// drop removes the first n rows, which were stored. A block wholly stored
// is cleared (releasing strings and arrays for the GC) and kept as a
// spare, or, when it is the block still being filled, emptied in place.
// Rows stored from a block that still has queued rows are released with
// the block: at most one block's worth.
func (q *queue[C, P]) drop(n int) {
	q.n -= n
	for n > 0 {
		b := q.blocks[0]
		k := min(n, b.n-q.off)
		q.off += k
		n -= k
		if q.off < b.n {
			return
		}
		q.off = 0
		b.reset()
		if len(q.blocks) == 1 && b.room < q.size {
			return // still the block being filled; it keeps growing from empty
		}
		q.blocks = slices.Delete(q.blocks, 0, 1)
		q.spare = append(q.spare, b)
	}
}

// rowBuffer is a queue whatever its record type. The Sink calls it with
// s.mu held, and reads the values part returns after releasing it.
type rowBuffer interface {
	len() int
	// part returns queued rows from the from-th, one block's worth
	// (see queue.part).
	part(from int) (vals []any, rows int, last bool)
	// drop removes the first n rows (after they were stored).
	drop(n int)
	columns() []string
}
