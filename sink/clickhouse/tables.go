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

// stamped is a record with the version the sink gave it (its write time).
type stamped[T any] struct {
	v   T
	ver uint64
}

// alertRow is an Alert flattened for alert_history.
type alertRow struct {
	a                           processor.Alert // maps not used: flattened below
	tenant, customerID          string
	labelKeys, labelValues      []string
	annotationKeys, annotValues []string
	ver                         uint64
}

// customerRow is one churn-state change of customer_state.
type customerRow struct {
	tenant, customerID, rule, state, fingerprint string
	lastActivity, changedAt                      time.Time
	idleFor                                      float64
	ver                                          uint64
}

// column is one column of a table: its name and how to build the
// column-oriented slice clickhouse-go appends for a run of rows.
type column[T any] struct {
	name  string
	build func(rows []T) any
}

func col[T, V any](name string, get func(*T) V) column[T] {
	return column[T]{name: name, build: func(rows []T) any {
		out := make([]V, len(rows))
		for i := range rows {
			out[i] = get(&rows[i])
		}
		return out
	}}
}

// DateTime holds seconds since 1970 in a UInt32, and clickhouse-go wraps
// values outside that range silently: clamp instead.
var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Unix(math.MaxUint32, 0).UTC()
)

func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(minDateTime):
		return minDateTime
	case t.After(maxDateTime):
		return maxDateTime
	}
	return t
}

func timeCol[T any](name string, get func(*T) time.Time) column[T] {
	return col(name, func(r *T) time.Time { return clampTime(get(r)) })
}

func nullTimeCol[T any](name string, get func(*T) *time.Time) column[T] {
	return col(name, func(r *T) *time.Time {
		if t := get(r); t != nil {
			c := clampTime(*t)
			return &c
		}
		return nil
	})
}

// rowBuffer is one table's queue of rows, whatever their type. The Sink
// calls it under its mutex except for the function returned by batch.
type rowBuffer interface {
	len() int
	// batch returns a function that appends the first n rows to a batch;
	// it reads only rows that no later append or drop touches before the
	// insert ends, so it may run without the mutex.
	batch(n int) func(driver.Batch) error
	// drop removes the first n rows (after they were stored).
	drop(n int)
}

// buffer is a rowBuffer of rows of type T for one table.
type buffer[T any] struct {
	rows []T
	cols []column[T]
}

func (b *buffer[T]) len() int { return len(b.rows) }

func (b *buffer[T]) batch(n int) func(driver.Batch) error {
	rows := b.rows[:n:n]
	return func(bt driver.Batch) error {
		for i, c := range b.cols {
			if err := bt.Column(i).Append(c.build(rows)); err != nil {
				return fmt.Errorf("appending column %s: %w", c.name, err)
			}
		}
		return nil
	}
}

func (b *buffer[T]) drop(n int) {
	m := copy(b.rows, b.rows[n:])
	clear(b.rows[m:])
	b.rows = b.rows[:m]
}

func (b *buffer[T]) columns() []string {
	names := make([]string, len(b.cols))
	for i, c := range b.cols {
		names[i] = c.name
	}
	return names
}

func newRevenueBuffer() *buffer[stamped[aggregate.Revenue]] {
	type r = stamped[aggregate.Revenue]
	return &buffer[r]{cols: []column[r]{
		col("tenant", func(r *r) string { return r.v.Tenant }),
		col("segment", func(r *r) string { return r.v.Segment }),
		col("region", func(r *r) string { return r.v.Region }),
		col("channel", func(r *r) string { return r.v.Channel }),
		timeCol("window_start", func(r *r) time.Time { return r.v.WindowStart }),
		timeCol("window_end", func(r *r) time.Time { return r.v.WindowEnd }),
		col("amount", func(r *r) string { return r.v.Amount.String() }),
		col("purchases", func(r *r) uint64 { return r.v.Purchases }),
		col("refunds", func(r *r) uint64 { return r.v.Refunds }),
		col("version", func(r *r) uint64 { return r.ver }),
	}}
}

func newActivityBuffer() *buffer[stamped[aggregate.Activity]] {
	type r = stamped[aggregate.Activity]
	return &buffer[r]{cols: []column[r]{
		col("tenant", func(r *r) string { return r.v.Tenant }),
		col("customer_id", func(r *r) string { return r.v.CustomerID }),
		timeCol("window_start", func(r *r) time.Time { return r.v.WindowStart }),
		timeCol("window_end", func(r *r) time.Time { return r.v.WindowEnd }),
		col("events", func(r *r) uint64 { return r.v.Events }),
		timeCol("last_activity", func(r *r) time.Time { return r.v.LastActivity }),
		col("version", func(r *r) uint64 { return r.ver }),
	}}
}

func newComplaintsBuffer() *buffer[stamped[aggregate.Complaints]] {
	type r = stamped[aggregate.Complaints]
	return &buffer[r]{cols: []column[r]{
		col("tenant", func(r *r) string { return r.v.Tenant }),
		col("region", func(r *r) string { return r.v.Region }),
		col("segment", func(r *r) string { return r.v.Segment }),
		timeCol("window_start", func(r *r) time.Time { return r.v.WindowStart }),
		timeCol("window_end", func(r *r) time.Time { return r.v.WindowEnd }),
		col("complaints", func(r *r) uint64 { return r.v.Complaints }),
		col("tickets_opened", func(r *r) uint64 { return r.v.TicketsOpened }),
		col("resolved", func(r *r) uint64 { return r.v.Resolved }),
		col("version", func(r *r) uint64 { return r.ver }),
	}}
}

func newDeliveryBuffer() *buffer[stamped[aggregate.Delivery]] {
	type r = stamped[aggregate.Delivery]
	return &buffer[r]{cols: []column[r]{
		col("tenant", func(r *r) string { return r.v.Tenant }),
		col("channel", func(r *r) string { return r.v.Channel }),
		col("provider", func(r *r) string { return r.v.Provider }),
		col("campaign_id", func(r *r) string { return r.v.CampaignID }),
		col("status", func(r *r) string { return r.v.Status }),
		timeCol("window_start", func(r *r) time.Time { return r.v.WindowStart }),
		timeCol("window_end", func(r *r) time.Time { return r.v.WindowEnd }),
		col("receipts", func(r *r) uint64 { return r.v.Receipts }),
		col("version", func(r *r) uint64 { return r.ver }),
	}}
}

func clampUint16(n int) uint16 { return uint16(min(max(n, 0), math.MaxUint16)) }

func newOutcomesBuffer() *buffer[stamped[followup.Event]] {
	type r = stamped[followup.Event]
	return &buffer[r]{cols: []column[r]{
		col("trigger_id", func(r *r) string { return r.v.TriggerID }),
		col("outcome", func(r *r) string { return string(r.v.Outcome) }),
		col("policy", func(r *r) string { return r.v.Policy }),
		col("message_id", func(r *r) string { return r.v.MessageID }),
		col("customer_id", func(r *r) string { return r.v.CustomerID }),
		col("tenant", func(r *r) string { return r.v.Tenant }),
		col("channel", func(r *r) string { return r.v.Channel }),
		col("attempt", func(r *r) uint16 { return clampUint16(r.v.Attempt) }),
		col("reason", func(r *r) string { return r.v.Reason }),
		timeCol("not_before", func(r *r) time.Time { return r.v.NotBefore }),
		timeCol("at", func(r *r) time.Time { return r.v.At }),
		col("latency_ms", func(r *r) uint64 { return uint64(max(r.v.Latency.Milliseconds(), 0)) }),
		col("version", func(r *r) uint64 { return r.ver }),
	}}
}

func newAlertsBuffer() *buffer[alertRow] {
	type r = alertRow
	return &buffer[r]{cols: []column[r]{
		col("rule", func(r *r) string { return r.a.Rule }),
		timeCol("starts_at", func(r *r) time.Time { return r.a.StartsAt }),
		col("fingerprint", func(r *r) string { return r.a.Fingerprint }),
		col("starts_at_nsec", func(r *r) uint32 { return uint32(r.a.StartsAt.Nanosecond()) }),
		col("state", func(r *r) string { return r.a.State }),
		col("kind", func(r *r) string { return r.a.Kind }),
		col("severity", func(r *r) string { return r.a.Severity }),
		col("tenant", func(r *r) string { return r.tenant }),
		col("customer_id", func(r *r) string { return r.customerID }),
		col("label_keys", func(r *r) []string { return r.labelKeys }),
		col("label_values", func(r *r) []string { return r.labelValues }),
		col("annotation_keys", func(r *r) []string { return r.annotationKeys }),
		col("annotation_values", func(r *r) []string { return r.annotValues }),
		col("value", func(r *r) float64 { return finite(r.a.Value) }),
		col("threshold", func(r *r) float64 { return finite(r.a.Threshold) }),
		nullTimeCol("ends_at", func(r *r) *time.Time { return r.a.EndsAt }),
		nullTimeCol("window_start", func(r *r) *time.Time { return r.a.WindowStart }),
		nullTimeCol("window_end", func(r *r) *time.Time { return r.a.WindowEnd }),
		timeCol("emitted_at", func(r *r) time.Time { return r.a.EmittedAt }),
		col("version", func(r *r) uint64 { return r.ver }),
	}}
}

// finite keeps NaN and infinities (a ratio over nothing) out of Float64
// columns, where they would break sums; the engine does not emit them, but
// the table must not depend on it.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func newResendsBuffer() *buffer[stamped[processor.Resend]] {
	type r = stamped[processor.Resend]
	return &buffer[r]{cols: []column[r]{
		col("tenant", func(r *r) string { return r.v.Tenant }),
		col("trigger_id", func(r *r) string { return r.v.TriggerID }),
		col("action", func(r *r) string { return r.v.Action }),
		col("policy", func(r *r) string { return r.v.Policy }),
		col("message_id", func(r *r) string { return r.v.MessageID }),
		col("customer_id", func(r *r) string { return r.v.CustomerID }),
		col("channel", func(r *r) string { return r.v.Channel }),
		col("attempt", func(r *r) uint16 { return clampUint16(r.v.Attempt) }),
		col("reason", func(r *r) string { return r.v.Reason }),
		timeCol("not_before", func(r *r) time.Time { return r.v.NotBefore }),
		timeCol("created_at", func(r *r) time.Time { return r.v.CreatedAt }),
		col("version", func(r *r) uint64 { return r.ver }),
	}}
}

func newCustomersBuffer() *buffer[customerRow] {
	type r = customerRow
	return &buffer[r]{cols: []column[r]{
		col("tenant", func(r *r) string { return r.tenant }),
		col("customer_id", func(r *r) string { return r.customerID }),
		col("rule", func(r *r) string { return r.rule }),
		col("churn_state", func(r *r) string { return r.state }),
		timeCol("last_activity", func(r *r) time.Time { return r.lastActivity }),
		timeCol("changed_at", func(r *r) time.Time { return r.changedAt }),
		col("idle_for_seconds", func(r *r) float64 { return finite(r.idleFor) }),
		col("fingerprint", func(r *r) string { return r.fingerprint }),
		col("version", func(r *r) uint64 { return r.ver }),
	}}
}

// buffers holds one typed buffer per table.
type buffers struct {
	revenue    *buffer[stamped[aggregate.Revenue]]
	activity   *buffer[stamped[aggregate.Activity]]
	complaints *buffer[stamped[aggregate.Complaints]]
	delivery   *buffer[stamped[aggregate.Delivery]]
	outcomes   *buffer[stamped[followup.Event]]
	alerts     *buffer[alertRow]
	resends    *buffer[stamped[processor.Resend]]
	customers  *buffer[customerRow]
}

func newBuffers() *buffers {
	return &buffers{
		revenue: newRevenueBuffer(), activity: newActivityBuffer(), complaints: newComplaintsBuffer(),
		delivery: newDeliveryBuffer(), outcomes: newOutcomesBuffer(), alerts: newAlertsBuffer(),
		resends: newResendsBuffer(), customers: newCustomersBuffer(),
	}
}

// byTable returns the buffers keyed by table name with their column lists.
func (b *buffers) byTable() map[string]struct {
	buf     rowBuffer
	columns []string
} {
	type entry = struct {
		buf     rowBuffer
		columns []string
	}
	return map[string]entry{
		TableRevenue:        {b.revenue, b.revenue.columns()},
		TableActivity:       {b.activity, b.activity.columns()},
		TableComplaints:     {b.complaints, b.complaints.columns()},
		TableDelivery:       {b.delivery, b.delivery.columns()},
		TableResendOutcomes: {b.outcomes, b.outcomes.columns()},
		TableAlerts:         {b.alerts, b.alerts.columns()},
		TableResends:        {b.resends, b.resends.columns()},
		TableCustomers:      {b.customers, b.customers.columns()},
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

// newAlertRow flattens a for alert_history; the maps are copied out, so
// the row does not share memory with the engine's output.
func newAlertRow(a *processor.Alert, ver uint64, now time.Time) alertRow {
	r := alertRow{a: *a, tenant: a.Labels["tenant"], customerID: a.Labels["customer_id"], ver: ver}
	r.a.Labels, r.a.Annotations = nil, nil
	r.labelKeys, r.labelValues = sortedPairs(a.Labels)
	r.annotationKeys, r.annotValues = sortedPairs(a.Annotations)
	if r.a.EmittedAt.IsZero() {
		r.a.EmittedAt = now
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
