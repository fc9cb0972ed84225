package clickhouse

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
)

// values turns a part's column values into their driver form.
func driverValues(vals []any) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		if l, ok := v.(lazyPart); ok {
			v = l.driverValue()
		}
		out[i] = v
	}
	return out
}

// TestQueuesFillEveryColumn: writing one record of every kind leaves each
// table with one value in every column, in the driver types of its
// columns. A column that add forgot, or filled twice, fails here before
// ClickHouse would refuse the INSERT.
func TestQueuesFillEveryColumn(t *testing.T) {
	s, err := New(Config{DSN: "clickhouse://127.0.0.1:1/test"}, nil, nil)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Write(t.Context(), fixture()))
	for _, tb := range s.tables {
		t.Run(tb.name, func(t *testing.T) {
			n := tb.buf.len()
			require.Positive(t, n, "the fixture has rows for every table")
			vals, rows, last := tb.buf.part(0)
			require.Equal(t, n, rows)
			require.True(t, last)
			require.Len(t, vals, len(tb.columns))
			for i, v := range driverValues(vals) {
				rv := reflect.ValueOf(v)
				require.Equal(t, reflect.Slice, rv.Kind(), "column %s", tb.columns[i])
				require.Equal(t, n, rv.Len(), "column %s", tb.columns[i])
			}
			require.Equal(t, "version", tb.columns[len(tb.columns)-1])
		})
	}
}

// activityRow is a distinguishable row for the queue tests.
func activityRow(i int) aggregate.Activity {
	return aggregate.Activity{Tenant: "acme", CustomerID: strconv.Itoa(i), WindowStart: t0, WindowEnd: t0.Add(time.Hour)}
}

// customers returns the customer_id values of a part, in order.
func customers(t *testing.T, q *queue[activityCols, *activityCols], from int) ([]string, bool) {
	t.Helper()
	vals, rows, last := q.part(from)
	if rows == 0 {
		return nil, last
	}
	ids := vals[2].([]string)
	require.Len(t, ids, rows)
	return ids, last
}

func ids(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return s
}

// TestQueueBlocks: rows come out in order, one block at a time, and drop
// forgets exactly the rows stored, whether it ends inside a block or on a
// block boundary.
func TestQueueBlocks(t *testing.T) {
	q := newQueue[activityCols](4)
	add := func(from, to int) {
		for i := from; i < to; i++ {
			r := activityRow(i)
			q.next(uint64(i)).add(&r)
		}
	}
	add(0, 10)
	require.Equal(t, 10, q.len())
	tests := []struct {
		from int
		want []string
		last bool
	}{
		{0, ids(0, 4), false},
		{4, ids(4, 8), false},
		{5, ids(5, 8), false},
		{8, ids(8, 10), true},
		{10, nil, true},
	}
	for _, tc := range tests {
		got, last := customers(t, q, tc.from)
		require.Equal(t, tc.want, got, "from %d", tc.from)
		require.Equal(t, tc.last, last, "from %d", tc.from)
	}

	// A part taken before more rows arrive keeps its rows: adds write past it.
	held, _ := customers(t, q, 8)
	add(10, 13)
	require.Equal(t, ids(8, 10), held)

	q.drop(5) // inside the second block
	require.Equal(t, 8, q.len())
	got, last := customers(t, q, 0)
	require.Equal(t, ids(5, 8), got)
	require.False(t, last)
	got, _ = customers(t, q, 3)
	require.Equal(t, ids(8, 12), got)

	q.drop(7) // to a block boundary and beyond
	require.Equal(t, 1, q.len())
	got, last = customers(t, q, 0)
	require.Equal(t, ids(12, 13), got)
	require.True(t, last)

	q.drop(1) // everything: the block being filled is emptied in place
	require.Zero(t, q.len())
	got, last = customers(t, q, 0)
	require.Empty(t, got)
	require.True(t, last)
	add(13, 15)
	got, _ = customers(t, q, 0)
	require.Equal(t, ids(13, 15), got)

	vals, _, _ := q.part(0)
	require.Equal(t, []uint64{13, 14}, vals[len(vals)-1], "the version column")
}

// TestQueueGrowth: a table's first block starts small and doubles up to
// BatchRows; a part taken before the block grew still reads its rows.
func TestQueueGrowth(t *testing.T) {
	q := newQueue[activityCols](3000)
	r := activityRow(0)
	q.next(1).add(&r)
	require.Equal(t, firstBlockRows, q.blocks[0].room)
	held, _ := customers(t, q, 0)
	for i := 1; i < 3000; i++ {
		r := activityRow(i)
		q.next(1).add(&r)
	}
	require.Len(t, q.blocks, 1)
	require.Equal(t, 3000, q.blocks[0].room)
	require.Equal(t, []string{"0"}, held)
	r = activityRow(3000)
	q.next(1).add(&r)
	require.Len(t, q.blocks, 2)
	require.Equal(t, 3000, q.blocks[1].room, "after a full block, the next is full-sized at once")
}

// TestWriteAllocatesNothing: once a table's blocks exist, writing and
// storing rows allocates nothing per row.
func TestWriteAllocatesNothing(t *testing.T) {
	s, err := New(Config{DSN: "clickhouse://127.0.0.1:1/test", BatchRows: 1000}, nil, nil)
	require.NoError(t, err)
	defer s.Close()
	out := &processor.Output{}
	for i := range 2500 {
		out.Aggregates = append(out.Aggregates, activityRow(i), aggregate.Revenue{Tenant: "acme", Amount: aggregate.Money(i)})
	}
	tables := []*table{s.byName[TableActivity], s.byName[TableRevenue]}
	cycle := func() {
		require.NoError(t, s.Write(t.Context(), out))
		s.mu.Lock()
		for _, tb := range tables {
			n := tb.buf.len()
			tb.buf.drop(n)
			s.buffered -= n
		}
		s.mu.Unlock()
	}
	cycle()
	allocs := testing.AllocsPerRun(10, cycle)
	require.LessOrEqual(t, allocs, 2.0, "per Write of 5000 rows")
}
