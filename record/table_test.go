package record

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type oneCol struct{ v Vec[string] }

type row string

func (r row) Table() string { return string(r) }
func (r row) ID() string    { return string(r) }

func (c *oneCol) List() []Column { return []Column{Col("v", &c.v)} }
func (c *oneCol) Add(rows []Aggregate) {
	for _, a := range rows {
		c.v.Add(a.ID())
	}
}

func newOneCol() Columns { return new(oneCol) }

// withRegistry runs t with an empty registry, restored after it.
func withRegistry(t *testing.T) {
	t.Helper()
	registry.Lock()
	saved := registry.tables
	registry.tables = nil
	registry.Unlock()
	t.Cleanup(func() { registry.Lock(); registry.tables = saved; registry.Unlock() })
}

func TestRegisterTable(t *testing.T) {
	withRegistry(t)
	RegisterTable(Table{Name: "b", Row: row("b"), NewColumns: newOneCol})
	RegisterTable(Table{Name: "a", Row: row("a"), NewColumns: newOneCol})
	var names []string
	for _, tb := range Tables() {
		names = append(names, tb.Name)
	}
	require.Equal(t, []string{"a", "b"}, names, "sorted by name")
	require.PanicsWithValue(t, `record.RegisterTable: table "a" registered twice`,
		func() { RegisterTable(Table{Name: "a", Row: row("a"), NewColumns: newOneCol}) }, "two row types cannot claim one table")
	require.Panics(t, func() { RegisterTable(Table{Name: "c", Row: row("c")}) }, "a table without columns is refused")
	require.Panics(t, func() { RegisterTable(Table{Row: row(""), NewColumns: newOneCol}) }, "a table without a name is refused")
	require.Panics(t, func() { RegisterTable(Table{Name: "d", NewColumns: newOneCol}) }, "a table without a row type is refused")
	require.PanicsWithValue(t, `record.RegisterTable: table "e": its Row names table "f"`,
		func() { RegisterTable(Table{Name: "e", Row: row("f"), NewColumns: newOneCol}) })
}

// TestVec: a part is the values asked for and stays as it was while later
// values are added; Reset empties the column but keeps its room.
func TestVec(t *testing.T) {
	var v Vec[string]
	v.Grow(4)
	require.GreaterOrEqual(t, cap(v.Vals), 4)
	v.Add("a")
	v.Add("b")
	part := v.Part(0, 2).([]string)
	v.Add("c")
	require.Equal(t, []string{"a", "b"}, part)
	require.Len(t, part, 2)
	require.Equal(t, 2, cap(part), "a part cannot be appended into the column's room")
	v.Reset()
	require.Empty(t, v.Vals)
	require.GreaterOrEqual(t, cap(v.Vals), 4)
}

func TestColumnHelpers(t *testing.T) {
	require.Equal(t, int64(0), Secs(time.Unix(-5, 0)), "before 1970 is 1970")
	require.Equal(t, int64(math.MaxUint32), Secs(time.Unix(math.MaxUint32+10, 0)), "past 2106 is 2106")
	require.Equal(t, int64(1700000000), Secs(time.Unix(1700000000, 999)))
	require.Equal(t, uint16(0), ClampUint16(-1))
	require.Equal(t, uint16(math.MaxUint16), ClampUint16(1<<20))
	require.Equal(t, 0.0, Finite(math.NaN()))
	require.Equal(t, 0.0, Finite(math.Inf(-1)))
	require.Equal(t, 2.5, Finite(2.5))
	require.Equal(t, []string{}, OrEmpty(nil))
	require.Equal(t, []string{"x"}, OrEmpty([]string{"x"}))
}
