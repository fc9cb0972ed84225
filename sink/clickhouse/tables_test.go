package clickhouse

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/followup"
	"github.com/crmpulse/crmpulse/processor/rawevents"
	"github.com/crmpulse/crmpulse/record"
)

// TestTablesComeFromTheRegistry: with the engine's aggregate packages
// linked (this test imports them, as crmpulse does), the tables they
// register are exactly the sink's aggregate tables, under the names the
// migrations create, and the sink holds a queue for every table it writes.
func TestTablesComeFromTheRegistry(t *testing.T) {
	names := map[string]string{
		aggregate.TableRevenue: TableRevenue, aggregate.TableActivity: TableActivity,
		aggregate.TableComplaints: TableComplaints, aggregate.TableDelivery: TableDelivery,
		followup.Table: TableResendOutcomes, rawevents.TableInteractions: TableInteractions,
		rawevents.TableReceipts: TableReceipts,
	}
	for theirs, ours := range names {
		require.Equal(t, theirs, ours, "the sink's name of a registered table")
	}
	var registered []string
	for _, tb := range record.Tables() {
		registered = append(registered, tb.Name)
	}
	require.ElementsMatch(t, []string{TableRevenue, TableActivity, TableComplaints, TableDelivery,
		TableResendOutcomes, TableInteractions, TableReceipts}, registered)

	s, err := New(Config{DSN: "clickhouse://127.0.0.1:1/test"}, nil, nil)
	require.NoError(t, err)
	defer s.Close()
	var have []string
	for _, tb := range s.tables {
		have = append(have, tb.name)
	}
	require.Equal(t, Tables, have, "a queue per table, in Tables order")
}

// extraRow is an aggregate the sink's code does not know of.
type extraRow struct {
	Key   string
	Count uint64
}

func (extraRow) Table() string { return "extra_counts" }
func (r extraRow) ID() string  { return r.Key }

type extraCols struct {
	key   record.Vec[string]
	count record.Vec[uint64]
}

func (c *extraCols) List() []record.Column {
	return []record.Column{record.Col("key", &c.key), record.Col("count", &c.count)}
}

func (c *extraCols) Add(rows []record.Aggregate) {
	for _, a := range rows {
		r := a.(extraRow)
		c.key.Add(r.Key)
		c.count.Add(r.Count)
	}
}

// TestANewAggregateNeedsNoSinkCode: an aggregate table given to the sink
// (as record.Tables gives the registered ones) gets its queue and its
// INSERT, and its rows are queued in its own columns, beside the built-in
// ones; a row of a table nobody registered is still counted as unsupported.
func TestANewAggregateNeedsNoSinkCode(t *testing.T) {
	extra := record.Table{Name: "extra_counts", Row: extraRow{}, NewColumns: func() record.Columns { return new(extraCols) }}
	s, err := newSink(Config{DSN: "clickhouse://127.0.0.1:1/test"}, nil, nil, append(record.Tables(), extra))
	require.NoError(t, err)
	defer s.Close()
	tb := s.byName["extra_counts"]
	require.NotNil(t, tb, "the registered table has a queue")
	require.Equal(t, "INSERT INTO extra_counts (key, count, version)", tb.insertSQL)

	out := &processor.Output{Aggregates: []processor.Aggregate{
		extraRow{"a", 1}, extraRow{"b", 2}, aggregate.Activity{Tenant: "acme", CustomerID: "c1"}, extraRow{"c", 3},
		unknownRow{}, impostorRow{},
	}}
	require.NoError(t, s.Write(t.Context(), out))
	vals, rows, _ := tb.buf.part(0)
	require.Equal(t, 3, rows)
	require.Equal(t, []string{"a", "b", "c"}, vals[0])
	require.Equal(t, []uint64{1, 2, 3}, vals[1])
	require.Equal(t, 1, s.byName[TableActivity].buf.len(), "the run of extra rows is broken by another table's row")
	require.Equal(t, 4, s.buffered, "every queued row is counted, the unsupported one is not")
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.unsupported.WithLabelValues("no_such_table")))
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.unsupported.WithLabelValues("extra_counts")),
		"a row of another type naming a registered table is not handed to that table's columns")
}

// impostorRow names a registered table but is not its row type.
type impostorRow struct{}

func (impostorRow) Table() string { return "extra_counts" }
func (impostorRow) ID() string    { return "y" }

type unknownRow struct{}

func (unknownRow) Table() string { return "no_such_table" }
func (unknownRow) ID() string    { return "x" }
