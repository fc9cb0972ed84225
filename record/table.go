package record

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// The columnar encoding of aggregate rows, for the analytics sink. Each
// Aggregate type's package registers its table (RegisterTable): the
// column vectors a block of its rows is kept in and how one row is added
// to them. The sink holds a queue of such blocks per registered table and
// hands the vectors to the ClickHouse driver as they are, so adding an
// aggregate means registering its table (and writing its migration), not
// editing the sink. The values are in the Go types the driver appends
// without conversion: string, uint16, uint32, uint64, float64, []string,
// and DateTime as Unix seconds in an int64 (Secs); a column whose driver
// form needs work returns a Lazy part, converted outside the sink's lock.

// Vector is one column of a block of rows.
type Vector interface {
	// Part returns the values [from:to] as the slice the driver appends,
	// or a Lazy that makes it. The sink calls it with its lock held and
	// reads the result after releasing it, while later rows are added
	// past to: Part must be cheap and must not copy.
	Part(from, to int) any
	// Grow makes room for rows values in all.
	Grow(rows int)
	// Reset empties the column, releasing what its values point to.
	Reset()
}

// Lazy is a Part whose driver form is computed when the insert appends it.
type Lazy interface{ DriverValue() any }

// Vec is a Vector of values of type V.
type Vec[V any] struct{ Vals []V }

// Add appends one value.
func (v *Vec[V]) Add(x V) { v.Vals = append(v.Vals, x) }

// Part implements Vector.
func (v *Vec[V]) Part(from, to int) any { return v.Vals[from:to:to] }

// Grow implements Vector.
func (v *Vec[V]) Grow(rows int) { v.Vals = slices.Grow(v.Vals, rows-len(v.Vals)) }

// Reset implements Vector.
func (v *Vec[V]) Reset() { clear(v.Vals); v.Vals = v.Vals[:0] }

// Column is a Vector with its name in the INSERT.
type Column struct {
	Name string
	Vec  Vector
}

// Columns is a block of one table's rows, column by column.
type Columns interface {
	// List returns the columns in INSERT order. The sink adds a version
	// column of its own, which no table lists.
	List() []Column
	// Add appends rows, one value per row to every column. Every row is
	// of the table's Row type (the sink groups them by type first), so an
	// implementation asserts it and appends: a run of rows costs one
	// interface call, not one per row.
	Add(rows []Aggregate)
}

// Table is an aggregate table the analytics sink writes.
type Table struct {
	// Name is the table's name, what its rows' Table() returns.
	Name string
	// Row is a row of the table, e.g. the zero value: its Go type is the
	// key the sink files rows under, so only rows of that type reach
	// NewColumns' Add.
	Row Aggregate
	// NewColumns returns an empty block of the table.
	NewColumns func() Columns
}

var registry struct {
	sync.Mutex
	tables map[string]Table
}

// RegisterTable makes t known to the sinks; the package that defines an
// Aggregate type calls it from an init function. Registering a name twice
// panics (two row types would claim one table), as does a Row whose
// Table() is not Name.
func RegisterTable(t Table) {
	if t.Name == "" || t.Row == nil || t.NewColumns == nil {
		panic("record.RegisterTable: a table needs a name, a Row and NewColumns")
	}
	if t.Row.Table() != t.Name {
		panic(fmt.Sprintf("record.RegisterTable: table %q: its Row names table %q", t.Name, t.Row.Table()))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.tables[t.Name]; dup {
		panic(fmt.Sprintf("record.RegisterTable: table %q registered twice", t.Name))
	}
	if registry.tables == nil {
		registry.tables = map[string]Table{}
	}
	registry.tables[t.Name] = t
}

// Tables returns the registered tables, sorted by name.
func Tables() []Table {
	registry.Lock()
	defer registry.Unlock()
	ts := make([]Table, 0, len(registry.tables))
	for _, t := range registry.tables {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b Table) int { return cmp.Compare(a.Name, b.Name) })
	return ts
}

// Secs is t as the seconds of a ClickHouse DateTime: a UInt32 that the
// driver would wrap silently outside its range, so clamped instead.
func Secs(t time.Time) int64 { return min(max(t.Unix(), 0), math.MaxUint32) }

// ClampUint16 is n clamped to a UInt16 column's range.
func ClampUint16(n int) uint16 { return uint16(min(max(n, 0), math.MaxUint16)) }

// Finite keeps NaN and infinities (a ratio over nothing) out of Float64
// columns, where they would break sums: 0 instead.
func Finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// OrEmpty is s, or an empty slice for nil: Array columns want a slice.
func OrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Col is the Column name of v.
func Col(name string, v Vector) Column { return Column{Name: name, Vec: v} }
