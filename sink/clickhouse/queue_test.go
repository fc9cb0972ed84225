package clickhouse

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/record"
)

// values turns a part's column values into their driver form.
func driverValues(vals []any) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		if l, ok := v.(lazyPart); ok {
			v = l.DriverValue()
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

// newActivityQueue is a queue of the activity table that processor/aggregate
// registered.
func newActivityQueue(t *testing.T, size int) *aggQueue {
	t.Helper()
	for _, tb := range record.Tables() {
		if tb.Name == TableActivity {
			return newAggQueue(tb, size)
		}
	}
	t.Fatalf("no table %s is registered", TableActivity)
	return nil
}

// customers returns the customer_id values of a part, in order.
func customers(t *testing.T, q *aggQueue, from int) ([]string, bool) {
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
	q := newActivityQueue(t, 4)
	// Rows come in runs, as Write adds them, cut where a block is full.
	add := func(from, to int) {
		var run []record.Aggregate
		for i := from; i < to; i++ {
			run = append(run, activityRow(i))
		}
		for len(run) > 0 {
			cols, n := q.nextRun(uint64(to), len(run))
			require.Positive(t, n)
			cols.Add(run[:n])
			run = run[n:]
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
	require.Equal(t, []uint64{15, 15}, vals[len(vals)-1], "the version column, one value per row")
}

// TestQueueGrowth: a table's first block starts small and doubles up to
// BatchRows; a part taken before the block grew still reads its rows.
func TestQueueGrowth(t *testing.T) {
	q := newActivityQueue(t, 3000)
	r := activityRow(0)
	q.next(1).Add([]record.Aggregate{r})
	require.Equal(t, firstBlockRows, q.blocks[0].room)
	held, _ := customers(t, q, 0)
	for i := 1; i < 3000; i++ {
		r := activityRow(i)
		q.next(1).Add([]record.Aggregate{r})
	}
	require.Len(t, q.blocks, 1)
	require.Equal(t, 3000, q.blocks[0].room)
	require.Equal(t, []string{"0"}, held)
	r = activityRow(3000)
	q.next(1).Add([]record.Aggregate{r})
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

// fakeConn records the INSERTs the sink makes, block by block.
type fakeConn struct {
	driver.Conn // methods the sink does not call
	batches     []*fakeBatch
	onFlush     func(b *fakeBatch) // called after each block is sent
}

func (c *fakeConn) PrepareBatch(context.Context, string, ...driver.PrepareBatchOption) (driver.Batch, error) {
	b := &fakeBatch{conn: c}
	c.batches = append(c.batches, b)
	return b, nil
}

func (c *fakeConn) Close() error { return nil }

type fakeBatch struct {
	driver.Batch
	conn   *fakeConn
	blocks []int // rows per block sent
	rows   int   // rows of the block being filled (its first column)
	sent   bool
}

type fakeColumn struct {
	b     *fakeBatch
	first bool
}

func (c fakeColumn) Append(v any) error {
	if l, ok := v.(lazyPart); ok {
		v = l.DriverValue()
	}
	if c.first {
		c.b.rows += reflect.ValueOf(v).Len()
	}
	return nil
}

func (c fakeColumn) AppendRow(any) error { return errors.New("not used") }

func (b *fakeBatch) Column(i int) driver.BatchColumn { return fakeColumn{b: b, first: i == 0} }

func (b *fakeBatch) Flush() error {
	b.blocks = append(b.blocks, b.rows)
	b.rows = 0
	if b.conn.onFlush != nil {
		b.conn.onFlush(b)
	}
	return nil
}

func (b *fakeBatch) Send() error {
	b.blocks = append(b.blocks, b.rows)
	b.rows = 0
	b.sent = true
	return nil
}

func (b *fakeBatch) Close() error { return nil }

// TestInsertTakesBlocksFilledMeanwhile: rows written while an INSERT is
// being sent join it, block by block, up to the newest block as far as it
// is filled; nothing is left to wait for FlushInterval.
func TestInsertTakesBlocksFilledMeanwhile(t *testing.T) {
	s, err := New(Config{DSN: "clickhouse://127.0.0.1:1/test", BatchRows: 1000}, nil, nil)
	require.NoError(t, err)
	defer s.Close()
	fake := &fakeConn{}
	s.conn = fake
	rows := func(from, to int) *processor.Output {
		out := &processor.Output{}
		for i := from; i < to; i++ {
			out.Aggregates = append(out.Aggregates, activityRow(i))
		}
		return out
	}
	ctx := t.Context()
	require.NoError(t, s.Write(ctx, rows(0, 1500)))
	more := []*processor.Output{rows(1500, 3200), nil}
	fake.onFlush = func(*fakeBatch) {
		if more[0] != nil {
			require.NoError(t, s.Write(ctx, more[0])) // while block 1 is on its way
			more = more[1:]
		}
	}
	tb := s.byName[TableActivity]
	require.NoError(t, s.insert(ctx, tb))

	require.Len(t, fake.batches, 1, "one INSERT")
	require.True(t, fake.batches[0].sent)
	require.Equal(t, []int{1000, 1000, 1000, 200}, fake.batches[0].blocks,
		"one queue block per INSERT block, the newest as far as it was filled")
	require.Zero(t, s.Buffered())
	require.Equal(t, uint64(3200), tb.stored)

	// The queue goes on from where the insert stopped.
	require.NoError(t, s.Write(ctx, rows(3200, 3300)))
	fake.onFlush = nil
	require.NoError(t, s.insert(ctx, tb))
	require.Equal(t, []int{100}, fake.batches[1].blocks)
}
