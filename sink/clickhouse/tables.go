package clickhouse

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/record"
)

// Table names (migrations/0001_init.sql creates them, but the raw-event
// tables of 0002_raw_events.sql). The sink encodes the alert, resend and
// customer tables itself; the aggregate tables' rows are encoded by their
// own packages (record.RegisterTable: processor/aggregate, processor/followup,
// processor/rawevents), which name the same tables.
const (
	TableRevenue        = "revenue"
	TableActivity       = "activity_daily"
	TableComplaints     = "complaints"
	TableDelivery       = "delivery_status"
	TableResendOutcomes = "resend_outcomes"
	TableAlerts         = "alert_history"
	TableResends        = "resend_triggers"
	TableCustomers      = "customer_state"
	TableInteractions   = "interactions_raw"
	TableReceipts       = "receipts_raw"
)

// Churn states in customer_state.
const (
	ChurnStateChurned = "churned"
	ChurnStateActive  = "active"
)

// Tables lists every table the sink writes, in the order it keeps them.
var Tables = []string{TableRevenue, TableActivity, TableComplaints, TableDelivery, TableResendOutcomes,
	TableAlerts, TableResends, TableCustomers, TableInteractions, TableReceipts}

// monthlyTables are partitioned by toYYYYMM of a time column, so their old
// months can be dropped (DropPartitionsOlderThan); customer_state is not.
var monthlyTables = map[string]string{
	TableRevenue: "window_start", TableActivity: "window_start", TableComplaints: "window_start",
	TableDelivery: "window_start", TableResendOutcomes: "not_before", TableAlerts: "starts_at",
	TableResends: "not_before", TableInteractions: "occurred_at", TableReceipts: "occurred_at",
}

// alertRow is an Alert flattened for alert_history.
type alertRow struct {
	a                           *record.Alert
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

// secs is record.Secs: DateTime seconds, clamped to its UInt32.
func secs(t time.Time) int64 { return record.Secs(t) }

func nullSecs(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	s := secs(*t)
	return &s
}

func clampUint16(n int) uint16 { return record.ClampUint16(n) }

// finite is record.Finite: NaN and infinities are stored as 0. The engine
// does not emit them, but the table must not depend on it.
func finite(f float64) float64 { return record.Finite(f) }

// The column sets, one per table. columns lists a table's columns in
// INSERT order (version, which every table has, comes last); add appends
// one record to every column.

type alertsCols struct {
	rule, fingerprint, state, kind, severity, tenant, customerID vec[string]
	startsAt, emittedAt                                          vec[int64]
	startsAtNsec                                                 vec[uint32]
	labelKeys, labelValues, annotationKeys, annotationValues     vec[[]string]
	value, threshold                                             vec[float64]
	endsAt, windowStart, windowEnd                               vec[*int64]
}

func (c *alertsCols) columns() []namedCol {
	return []namedCol{{"rule", &c.rule}, {"starts_at", &c.startsAt}, {"fingerprint", &c.fingerprint},
		{"starts_at_nsec", &c.startsAtNsec}, {"state", &c.state}, {"kind", &c.kind}, {"severity", &c.severity},
		{"tenant", &c.tenant}, {"customer_id", &c.customerID}, {"label_keys", &c.labelKeys},
		{"label_values", &c.labelValues}, {"annotation_keys", &c.annotationKeys},
		{"annotation_values", &c.annotationValues}, {"value", &c.value}, {"threshold", &c.threshold},
		{"ends_at", &c.endsAt}, {"window_start", &c.windowStart}, {"window_end", &c.windowEnd},
		{"emitted_at", &c.emittedAt}}
}

func (c *alertsCols) add(r *alertRow) {
	a := r.a
	c.rule.Add(a.Rule)
	c.startsAt.Add(secs(a.StartsAt))
	c.fingerprint.Add(a.Fingerprint)
	c.startsAtNsec.Add(uint32(a.StartsAt.Nanosecond()))
	c.state.Add(a.State)
	c.kind.Add(a.Kind)
	c.severity.Add(a.Severity)
	c.tenant.Add(r.tenant)
	c.customerID.Add(r.customerID)
	c.labelKeys.Add(r.labelKeys)
	c.labelValues.Add(r.labelValues)
	c.annotationKeys.Add(r.annotationKeys)
	c.annotationValues.Add(r.annotValues)
	c.value.Add(finite(a.Value))
	c.threshold.Add(finite(a.Threshold))
	c.endsAt.Add(nullSecs(a.EndsAt))
	c.windowStart.Add(nullSecs(a.WindowStart))
	c.windowEnd.Add(nullSecs(a.WindowEnd))
	c.emittedAt.Add(secs(r.emittedAt))
}

// resendRow is a Resend with the created_at the sink stamps on it.
type resendRow struct {
	r         *record.Resend
	createdAt time.Time
}

type resendsCols struct {
	tenant, triggerID, action, policy, messageID, customerID, channel, reason vec[string]
	attempt                                                                   vec[uint16]
	notBefore, createdAt                                                      vec[int64]
}

func (c *resendsCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"trigger_id", &c.triggerID}, {"action", &c.action},
		{"policy", &c.policy}, {"message_id", &c.messageID}, {"customer_id", &c.customerID},
		{"channel", &c.channel}, {"attempt", &c.attempt}, {"reason", &c.reason}, {"not_before", &c.notBefore},
		{"created_at", &c.createdAt}}
}

func (c *resendsCols) add(row *resendRow) {
	r := row.r
	c.tenant.Add(r.Tenant)
	c.triggerID.Add(r.TriggerID)
	c.action.Add(r.Action)
	c.policy.Add(r.Policy)
	c.messageID.Add(r.MessageID)
	c.customerID.Add(r.CustomerID)
	c.channel.Add(r.Channel)
	c.attempt.Add(clampUint16(r.Attempt))
	c.reason.Add(r.Reason)
	c.notBefore.Add(secs(r.NotBefore))
	c.createdAt.Add(secs(row.createdAt))
}

type customersCols struct {
	tenant, customerID, rule, churnState, fingerprint vec[string]
	lastActivity, changedAt                           vec[int64]
	idleFor                                           vec[float64]
}

func (c *customersCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"customer_id", &c.customerID}, {"rule", &c.rule},
		{"churn_state", &c.churnState}, {"last_activity", &c.lastActivity}, {"changed_at", &c.changedAt},
		{"idle_for_seconds", &c.idleFor}, {"fingerprint", &c.fingerprint}}
}

func (c *customersCols) add(r *customerRow) {
	c.tenant.Add(r.tenant)
	c.customerID.Add(r.customerID)
	c.rule.Add(r.rule)
	c.churnState.Add(r.state)
	c.lastActivity.Add(secs(r.lastActivity))
	c.changedAt.Add(secs(r.changedAt))
	c.idleFor.Add(finite(r.idleFor))
	c.fingerprint.Add(r.fingerprint)
}

// buffers holds one queue per table: the sink's own tables, and one for
// every aggregate table registered in record (the aggregate's package
// encodes its rows; the sink keeps them in blocks and inserts them).
type buffers struct {
	alerts    *queue[alertsCols, *alertsCols]
	resends   *queue[resendsCols, *resendsCols]
	customers *queue[customersCols, *customersCols]
	aggs      map[string]*aggQueue       // by table name
	byType    map[reflect.Type]*aggQueue // by the Go type of the table's rows
}

// newBuffers returns empty queues cut in blocks of blockRows rows, for the
// sink's own tables and aggs.
func newBuffers(blockRows int, aggs []record.Table) *buffers {
	b := &buffers{
		alerts:    newQueue[alertsCols](blockRows),
		resends:   newQueue[resendsCols](blockRows),
		customers: newQueue[customersCols](blockRows),
		aggs:      map[string]*aggQueue{},
		byType:    map[reflect.Type]*aggQueue{},
	}
	for _, t := range aggs {
		switch t.Name {
		case TableAlerts, TableResends, TableCustomers:
			continue // the sink's own; an aggregate cannot claim them
		}
		q := newAggQueue(t, blockRows)
		b.aggs[t.Name] = q
		b.byType[reflect.TypeOf(t.Row)] = q
	}
	return b
}

// runs calls f for every run of rows of one Go type in aggs, with the
// queue of that type (nil for a type no table was registered for): the
// engine emits an aggregate's rows together, so a batch is a few runs.
// reflect.TypeOf only reads the interface's type word.
func (b *buffers) runs(aggs []record.Aggregate, f func(run []record.Aggregate, q *aggQueue)) {
	for i := 0; i < len(aggs); {
		t := reflect.TypeOf(aggs[i])
		j := i + 1
		for j < len(aggs) && reflect.TypeOf(aggs[j]) == t {
			j++
		}
		f(aggs[i:j], b.byType[t])
		i = j
	}
}

// byTable returns the queues keyed by table name.
func (b *buffers) byTable() map[string]rowBuffer {
	m := map[string]rowBuffer{TableAlerts: b.alerts, TableResends: b.resends, TableCustomers: b.customers}
	for name, q := range b.aggs {
		m[name] = q
	}
	return m
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
func newAlertRow(a *record.Alert, now time.Time) alertRow {
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
func customerStateOf(a *record.Alert) (customerRow, bool) {
	cust, has := a.Labels["customer_id"]
	if a.Kind != record.KindInactivity || !has {
		return customerRow{}, false
	}
	r := customerRow{tenant: a.Labels["tenant"], customerID: cust, rule: a.Rule, fingerprint: a.Fingerprint,
		idleFor: a.Threshold}
	resolved := uint64(0)
	switch {
	case a.State == record.StateResolved && a.EndsAt != nil:
		r.state, r.changedAt, r.lastActivity = ChurnStateActive, *a.EndsAt, *a.EndsAt
		resolved = 1
	case a.State == record.StateResolved:
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
