package clickhouse

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/crmpulse/crmpulse/alerting/followup"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Table names (migrations/0001_init.sql creates them).
const (
	TableRevenue        = aggregate.TableRevenue
	TableActivity       = aggregate.TableActivity
	TableComplaints     = aggregate.TableComplaints
	TableDelivery       = aggregate.TableDelivery
	TableResendOutcomes = followup.Table
	TableAlerts         = "alert_history"
	TableResends        = "resend_triggers"
	TableCustomers      = "customer_state"
)

// Churn states in customer_state.
const (
	ChurnStateChurned = "churned"
	ChurnStateActive  = "active"
)

// Tables lists every table the sink writes, in the order it keeps them.
var Tables = []string{TableRevenue, TableActivity, TableComplaints, TableDelivery, TableResendOutcomes,
	TableAlerts, TableResends, TableCustomers}

// monthlyTables are partitioned by toYYYYMM of a time column, so their old
// months can be dropped (DropPartitionsOlderThan); customer_state is not.
var monthlyTables = map[string]string{
	TableRevenue: "window_start", TableActivity: "window_start", TableComplaints: "window_start",
	TableDelivery: "window_start", TableResendOutcomes: "not_before", TableAlerts: "starts_at",
	TableResends: "not_before",
}

// alertRow is an Alert flattened for alert_history.
type alertRow struct {
	a                           *processor.Alert
	tenant, customerID          string
	labelKeys, labelValues      []string
	annotationKeys, annotValues []string
	emittedAt                   time.Time
}

// customerRow is one churn-state change of customer_state.
type customerRow struct {
	tenant, customerID, rule, state, fingerprint string
	lastActivity, changedAt                      time.Time
	idleFor                                      float64
	ver                                          uint64
}

// Column storage. A table's queue is kept column by column, in the Go
// types clickhouse-go appends without conversion ([]string, []uint64,
// Unix seconds as []int64 for DateTime), so an insert hands slices of the
// queue to the batch as they are: the rows are converted once, on Write.

// colVec is one column of a queue.
type colVec interface {
	name() string
	// head returns the first n values as the slice to append; s.mu held.
	head(n int) any
	// slice returns h[from:to] for a value h that head returned.
	slice(h any, from, to int) any
	drop(n int)
}

// vec holds a column's values; vals[off:] are queued, vals[:off] were
// stored and are cleared.
type vec[V any] struct {
	col  string
	vals []V
	off  int
}

func (v *vec[V]) name() string   { return v.col }
func (v *vec[V]) head(n int) any { return v.vals[v.off : v.off+n : v.off+n] }

func (v *vec[V]) slice(h any, from, to int) any { return h.([]V)[from:to] }

// drop forgets the first n queued values. They are cleared (releasing
// strings and arrays for the GC) but not moved: the queue is compacted
// only when it empties or when the stored prefix is the larger part, so
// inserting a long queue batch by batch does not copy it again each time.
func (v *vec[V]) drop(n int) {
	clear(v.vals[v.off : v.off+n])
	v.off += n
	switch {
	case v.off == len(v.vals):
		v.vals, v.off = v.vals[:0], 0
	case v.off > len(v.vals)-v.off:
		m := copy(v.vals, v.vals[v.off:])
		clear(v.vals[m:])
		v.vals, v.off = v.vals[:m], 0
	}
}

// queue is one table's rows waiting for an insert, stored by column; T is
// the record type it is filled from.
type queue[T any] struct {
	n    int
	cols []colVec
	push []func()
	ver  *vec[uint64] // the version column, filled by add
	// cur is the record being added. The column fillers read it from here
	// rather than through a parameter, which would make every record
	// escape to the heap (one allocation per row).
	cur T
}

// field adds a column to q, filled with get of each record.
func field[T, V any](q *queue[T], name string, get func(*T) V) {
	v := &vec[V]{col: name}
	q.cols = append(q.cols, v)
	q.push = append(q.push, func() { v.vals = append(v.vals, get(&q.cur)) })
}

// withVersion adds the version column last; every table has one.
func (q *queue[T]) withVersion() *queue[T] {
	q.ver = &vec[uint64]{col: "version"}
	q.cols = append(q.cols, q.ver)
	return q
}

// add appends one record with its version; s.mu held.
func (q *queue[T]) add(r T, ver uint64) {
	q.cur = r
	for _, p := range q.push {
		p()
	}
	var zero T
	q.cur = zero // keep nothing of the caller's record
	q.ver.vals = append(q.ver.vals, ver)
	q.n++
}

func (q *queue[T]) len() int { return q.n }

func (q *queue[T]) batch(n, block int) func(driver.Batch) error {
	heads := make([]any, len(q.cols))
	for i, c := range q.cols {
		heads[i] = c.head(n)
	}
	return func(bt driver.Batch) error {
		for off := 0; off < n; off += block {
			end := min(off+block, n)
			for i, h := range heads {
				if err := bt.Column(i).Append(q.cols[i].slice(h, off, end)); err != nil {
					return fmt.Errorf("appending column %s: %w", q.cols[i].name(), err)
				}
			}
			if end < n {
				// Send this block and start the next in the same INSERT:
				// the driver holds one block at a time, and the server
				// squashes the blocks into as few parts as one big block.
				if err := bt.Flush(); err != nil {
					return fmt.Errorf("sending a block: %w", err)
				}
			}
		}
		return nil
	}
}

func (q *queue[T]) drop(n int) {
	for _, c := range q.cols {
		c.drop(n)
	}
	q.n -= n
}

func (q *queue[T]) columns() []string {
	names := make([]string, len(q.cols))
	for i, c := range q.cols {
		names[i] = c.name()
	}
	return names
}

// rowBuffer is a queue whatever its record type. The Sink calls it with
// s.mu held, except for the function batch returns.
type rowBuffer interface {
	len() int
	// batch returns a function that appends the first n rows to a batch
	// in blocks of block rows. It holds slices of the first n values of
	// each column, which no later add (it writes past them) nor drop (it
	// runs after the insert) touches, so it may run without the mutex.
	batch(n, block int) func(driver.Batch) error
	// drop removes the first n rows (after they were stored).
	drop(n int)
	columns() []string
}

// DateTime holds seconds since 1970 in a UInt32, and clickhouse-go wraps
// values outside that range silently: clamp instead.
func secs(t time.Time) int64 { return min(max(t.Unix(), 0), math.MaxUint32) }

func nullSecs(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	s := secs(*t)
	return &s
}

func clampUint16(n int) uint16 { return uint16(min(max(n, 0), math.MaxUint16)) }

// finite keeps NaN and infinities (a ratio over nothing) out of Float64
// columns, where they would break sums; the engine does not emit them, but
// the table must not depend on it.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func newRevenueQueue() *queue[aggregate.Revenue] {
	q := &queue[aggregate.Revenue]{}
	type r = aggregate.Revenue
	field(q, "tenant", func(r *r) string { return r.Tenant })
	field(q, "shard", func(r *r) uint16 { return r.Shard })
	field(q, "segment", func(r *r) string { return r.Segment })
	field(q, "region", func(r *r) string { return r.Region })
	field(q, "channel", func(r *r) string { return r.Channel })
	field(q, "window_start", func(r *r) int64 { return secs(r.WindowStart) })
	field(q, "window_end", func(r *r) int64 { return secs(r.WindowEnd) })
	field(q, "amount", func(r *r) string { return r.Amount.String() })
	field(q, "purchases", func(r *r) uint64 { return r.Purchases })
	field(q, "refunds", func(r *r) uint64 { return r.Refunds })
	return q.withVersion()
}

func newActivityQueue() *queue[aggregate.Activity] {
	q := &queue[aggregate.Activity]{}
	type r = aggregate.Activity
	field(q, "tenant", func(r *r) string { return r.Tenant })
	field(q, "shard", func(r *r) uint16 { return r.Shard })
	field(q, "customer_id", func(r *r) string { return r.CustomerID })
	field(q, "window_start", func(r *r) int64 { return secs(r.WindowStart) })
	field(q, "window_end", func(r *r) int64 { return secs(r.WindowEnd) })
	field(q, "events", func(r *r) uint64 { return r.Events })
	field(q, "last_activity", func(r *r) int64 { return secs(r.LastActivity) })
	return q.withVersion()
}

func newComplaintsQueue() *queue[aggregate.Complaints] {
	q := &queue[aggregate.Complaints]{}
	type r = aggregate.Complaints
	field(q, "tenant", func(r *r) string { return r.Tenant })
	field(q, "shard", func(r *r) uint16 { return r.Shard })
	field(q, "region", func(r *r) string { return r.Region })
	field(q, "segment", func(r *r) string { return r.Segment })
	field(q, "window_start", func(r *r) int64 { return secs(r.WindowStart) })
	field(q, "window_end", func(r *r) int64 { return secs(r.WindowEnd) })
	field(q, "complaints", func(r *r) uint64 { return r.Complaints })
	field(q, "tickets_opened", func(r *r) uint64 { return r.TicketsOpened })
	field(q, "resolved", func(r *r) uint64 { return r.Resolved })
	return q.withVersion()
}

func newDeliveryQueue() *queue[aggregate.Delivery] {
	q := &queue[aggregate.Delivery]{}
	type r = aggregate.Delivery
	field(q, "tenant", func(r *r) string { return r.Tenant })
	field(q, "shard", func(r *r) uint16 { return r.Shard })
	field(q, "channel", func(r *r) string { return r.Channel })
	field(q, "provider", func(r *r) string { return r.Provider })
	field(q, "campaign_id", func(r *r) string { return r.CampaignID })
	field(q, "status", func(r *r) string { return r.Status })
	field(q, "window_start", func(r *r) int64 { return secs(r.WindowStart) })
	field(q, "window_end", func(r *r) int64 { return secs(r.WindowEnd) })
	field(q, "receipts", func(r *r) uint64 { return r.Receipts })
	return q.withVersion()
}

func newOutcomesQueue() *queue[followup.Event] {
	q := &queue[followup.Event]{}
	type r = followup.Event
	field(q, "trigger_id", func(r *r) string { return r.TriggerID })
	field(q, "outcome", func(r *r) string { return string(r.Outcome) })
	field(q, "policy", func(r *r) string { return r.Policy })
	field(q, "message_id", func(r *r) string { return r.MessageID })
	field(q, "customer_id", func(r *r) string { return r.CustomerID })
	field(q, "tenant", func(r *r) string { return r.Tenant })
	field(q, "channel", func(r *r) string { return r.Channel })
	field(q, "attempt", func(r *r) uint16 { return clampUint16(r.Attempt) })
	field(q, "reason", func(r *r) string { return r.Reason })
	field(q, "not_before", func(r *r) int64 { return secs(r.NotBefore) })
	field(q, "at", func(r *r) int64 { return secs(r.At) })
	field(q, "latency_ms", func(r *r) uint64 { return uint64(max(r.Latency.Milliseconds(), 0)) })
	return q.withVersion()
}

func newAlertsQueue() *queue[alertRow] {
	q := &queue[alertRow]{}
	type r = alertRow
	field(q, "rule", func(r *r) string { return r.a.Rule })
	field(q, "starts_at", func(r *r) int64 { return secs(r.a.StartsAt) })
	field(q, "fingerprint", func(r *r) string { return r.a.Fingerprint })
	field(q, "starts_at_nsec", func(r *r) uint32 { return uint32(r.a.StartsAt.Nanosecond()) })
	field(q, "state", func(r *r) string { return r.a.State })
	field(q, "kind", func(r *r) string { return r.a.Kind })
	field(q, "severity", func(r *r) string { return r.a.Severity })
	field(q, "tenant", func(r *r) string { return r.tenant })
	field(q, "customer_id", func(r *r) string { return r.customerID })
	field(q, "label_keys", func(r *r) []string { return r.labelKeys })
	field(q, "label_values", func(r *r) []string { return r.labelValues })
	field(q, "annotation_keys", func(r *r) []string { return r.annotationKeys })
	field(q, "annotation_values", func(r *r) []string { return r.annotValues })
	field(q, "value", func(r *r) float64 { return finite(r.a.Value) })
	field(q, "threshold", func(r *r) float64 { return finite(r.a.Threshold) })
	field(q, "ends_at", func(r *r) *int64 { return nullSecs(r.a.EndsAt) })
	field(q, "window_start", func(r *r) *int64 { return nullSecs(r.a.WindowStart) })
	field(q, "window_end", func(r *r) *int64 { return nullSecs(r.a.WindowEnd) })
	field(q, "emitted_at", func(r *r) int64 { return secs(r.emittedAt) })
	return q.withVersion()
}

// resendRow is a Resend with the created_at the sink stamps on it.
type resendRow struct {
	r         *processor.Resend
	createdAt time.Time
}

func newResendsQueue() *queue[resendRow] {
	q := &queue[resendRow]{}
	type r = resendRow
	field(q, "tenant", func(r *r) string { return r.r.Tenant })
	field(q, "trigger_id", func(r *r) string { return r.r.TriggerID })
	field(q, "action", func(r *r) string { return r.r.Action })
	field(q, "policy", func(r *r) string { return r.r.Policy })
	field(q, "message_id", func(r *r) string { return r.r.MessageID })
	field(q, "customer_id", func(r *r) string { return r.r.CustomerID })
	field(q, "channel", func(r *r) string { return r.r.Channel })
	field(q, "attempt", func(r *r) uint16 { return clampUint16(r.r.Attempt) })
	field(q, "reason", func(r *r) string { return r.r.Reason })
	field(q, "not_before", func(r *r) int64 { return secs(r.r.NotBefore) })
	field(q, "created_at", func(r *r) int64 { return secs(r.createdAt) })
	return q.withVersion()
}

func newCustomersQueue() *queue[customerRow] {
	q := &queue[customerRow]{}
	type r = customerRow
	field(q, "tenant", func(r *r) string { return r.tenant })
	field(q, "customer_id", func(r *r) string { return r.customerID })
	field(q, "rule", func(r *r) string { return r.rule })
	field(q, "churn_state", func(r *r) string { return r.state })
	field(q, "last_activity", func(r *r) int64 { return secs(r.lastActivity) })
	field(q, "changed_at", func(r *r) int64 { return secs(r.changedAt) })
	field(q, "idle_for_seconds", func(r *r) float64 { return finite(r.idleFor) })
	field(q, "fingerprint", func(r *r) string { return r.fingerprint })
	return q.withVersion()
}

// buffers holds one queue per table.
type buffers struct {
	revenue    *queue[aggregate.Revenue]
	activity   *queue[aggregate.Activity]
	complaints *queue[aggregate.Complaints]
	delivery   *queue[aggregate.Delivery]
	outcomes   *queue[followup.Event]
	alerts     *queue[alertRow]
	resends    *queue[resendRow]
	customers  *queue[customerRow]
}

func newBuffers() *buffers {
	return &buffers{
		revenue: newRevenueQueue(), activity: newActivityQueue(), complaints: newComplaintsQueue(),
		delivery: newDeliveryQueue(), outcomes: newOutcomesQueue(), alerts: newAlertsQueue(),
		resends: newResendsQueue(), customers: newCustomersQueue(),
	}
}

// byTable returns the queues keyed by table name.
func (b *buffers) byTable() map[string]rowBuffer {
	return map[string]rowBuffer{
		TableRevenue: b.revenue, TableActivity: b.activity, TableComplaints: b.complaints,
		TableDelivery: b.delivery, TableResendOutcomes: b.outcomes, TableAlerts: b.alerts,
		TableResends: b.resends, TableCustomers: b.customers,
	}
}

// insertSQL is the INSERT with its explicit column list (clickhouse-go
// needs one for PrepareBatch on 18.16; it also pins the column order).
func insertSQL(table string, columns []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ")"
}

// sortedPairs flattens a string map into key and value slices sorted by key.
func sortedPairs(m map[string]string) (keys, values []string) {
	if len(m) == 0 {
		return []string{}, []string{}
	}
	keys = slices.Sorted(maps.Keys(m))
	values = make([]string, len(keys))
	for i, k := range keys {
		values[i] = m[k]
	}
	return keys, values
}

// newAlertRow flattens a for alert_history. The row points at a only
// until the queue's add has copied its fields into the columns.
func newAlertRow(a *processor.Alert, now time.Time) alertRow {
	r := alertRow{a: a, tenant: a.Labels["tenant"], customerID: a.Labels["customer_id"], emittedAt: a.EmittedAt}
	r.labelKeys, r.labelValues = sortedPairs(a.Labels)
	r.annotationKeys, r.annotValues = sortedPairs(a.Annotations)
	if r.emittedAt.IsZero() {
		r.emittedAt = now
	}
	return r
}

// customerStateOf turns an inactivity alert about a customer into a
// customer_state row; ok is false for other alerts.
func customerStateOf(a *processor.Alert) (customerRow, bool) {
	cust, has := a.Labels["customer_id"]
	if a.Kind != rules.KindInactivity || !has {
		return customerRow{}, false
	}
	r := customerRow{tenant: a.Labels["tenant"], customerID: cust, rule: a.Rule, fingerprint: a.Fingerprint,
		idleFor: a.Threshold}
	resolved := uint64(0)
	switch {
	case a.State == processor.StateResolved && a.EndsAt != nil:
		r.state, r.changedAt, r.lastActivity = ChurnStateActive, *a.EndsAt, *a.EndsAt
		resolved = 1
	case a.State == processor.StateResolved:
		r.state, r.changedAt, r.lastActivity = ChurnStateActive, a.StartsAt, a.StartsAt
		resolved = 1
	default:
		r.state, r.changedAt = ChurnStateChurned, a.StartsAt
		r.lastActivity = a.StartsAt.Add(-time.Duration(a.Threshold * float64(time.Second)))
	}
	// Event time, doubled so that a resolve at the same instant as the
	// firing it ends still wins.
	r.ver = uint64(max(r.changedAt.UnixNano(), 0))*2 + resolved
	return r, true
}
