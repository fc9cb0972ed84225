package clickhouse

import (
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/alerting/followup"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/profilerows"
	"github.com/crmpulse/crmpulse/processor/rawevents"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Table names (migrations/0001_init.sql creates them, but the raw-event
// tables of 0002_raw_events.sql and the customers and account-manager
// tables of 0003_customers.sql).
const (
	TableRevenue        = aggregate.TableRevenue
	TableActivity       = aggregate.TableActivity
	TableComplaints     = aggregate.TableComplaints
	TableDelivery       = aggregate.TableDelivery
	TableResendOutcomes = followup.Table
	TableAlerts         = "alert_history"
	TableResends        = "resend_triggers"
	TableCustomers      = "customer_state"
	TableInteractions   = rawevents.TableInteractions
	TableReceipts       = rawevents.TableReceipts
	// TableProfiles holds the current profile of each customer; not to be
	// confused with TableCustomers, their churn state.
	TableProfiles             = profilerows.Table
	TableAccountManagerAlerts = "account_manager_alerts"
)

// AccountManagerLabel is the alert label that puts an alert in
// account_manager_alerts: the name examples/rules.yaml gives the profile's
// account_manager in customer_labels, and deploy/alertmanager routes on.
const AccountManagerLabel = "account_manager"

// Churn states in customer_state.
const (
	ChurnStateChurned = "churned"
	ChurnStateActive  = "active"
)

// Tables lists every table the sink writes, in the order it keeps them.
var Tables = []string{TableRevenue, TableActivity, TableComplaints, TableDelivery, TableResendOutcomes,
	TableAlerts, TableResends, TableCustomers, TableInteractions, TableReceipts, TableProfiles, TableAccountManagerAlerts}

// monthlyTables are partitioned by toYYYYMM of a time column, so their old
// months can be dropped (DropPartitionsOlderThan); customer_state and
// customers are not.
var monthlyTables = map[string]string{
	TableRevenue: "window_start", TableActivity: "window_start", TableComplaints: "window_start",
	TableDelivery: "window_start", TableResendOutcomes: "not_before", TableAlerts: "starts_at",
	TableResends: "not_before", TableInteractions: "occurred_at", TableReceipts: "occurred_at",
	TableAccountManagerAlerts: "starts_at",
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

// moneyVec is a Decimal(18, 4) column kept as aggregate.Money: Write
// copies an int64, and the decimal strings clickhouse-go takes are made
// by the insert, outside the mutex.
type moneyVec struct{ vec[aggregate.Money] }

func (v *moneyVec) part(from, to int) any { return moneyPart(v.vals[from:to:to]) }

type moneyPart []aggregate.Money

func (p moneyPart) driverValue() any {
	s := make([]string, len(p))
	for i, m := range p {
		s[i] = m.String()
	}
	return s
}

// The column sets, one per table. columns lists a table's columns in
// INSERT order (version, which every table has, comes last); add appends
// one record to every column.

type revenueCols struct {
	tenant, segment, region, channel vec[string]
	shard                            vec[uint16]
	windowStart, windowEnd           vec[int64]
	amount                           moneyVec
	purchases, refunds               vec[uint64]
}

func (c *revenueCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"shard", &c.shard}, {"segment", &c.segment}, {"region", &c.region},
		{"channel", &c.channel}, {"window_start", &c.windowStart}, {"window_end", &c.windowEnd},
		{"amount", &c.amount}, {"purchases", &c.purchases}, {"refunds", &c.refunds}}
}

func (c *revenueCols) add(r *aggregate.Revenue) {
	c.tenant.add(r.Tenant)
	c.shard.add(r.Shard)
	c.segment.add(r.Segment)
	c.region.add(r.Region)
	c.channel.add(r.Channel)
	c.windowStart.add(secs(r.WindowStart))
	c.windowEnd.add(secs(r.WindowEnd))
	c.amount.add(r.Amount)
	c.purchases.add(r.Purchases)
	c.refunds.add(r.Refunds)
}

type activityCols struct {
	tenant, customerID                   vec[string]
	shard                                vec[uint16]
	windowStart, windowEnd, lastActivity vec[int64]
	events                               vec[uint64]
}

func (c *activityCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"shard", &c.shard}, {"customer_id", &c.customerID},
		{"window_start", &c.windowStart}, {"window_end", &c.windowEnd}, {"events", &c.events},
		{"last_activity", &c.lastActivity}}
}

func (c *activityCols) add(r *aggregate.Activity) {
	c.tenant.add(r.Tenant)
	c.shard.add(r.Shard)
	c.customerID.add(r.CustomerID)
	c.windowStart.add(secs(r.WindowStart))
	c.windowEnd.add(secs(r.WindowEnd))
	c.events.add(r.Events)
	c.lastActivity.add(secs(r.LastActivity))
}

type complaintsCols struct {
	tenant, region, segment             vec[string]
	shard                               vec[uint16]
	windowStart, windowEnd              vec[int64]
	complaints, ticketsOpened, resolved vec[uint64]
}

func (c *complaintsCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"shard", &c.shard}, {"region", &c.region}, {"segment", &c.segment},
		{"window_start", &c.windowStart}, {"window_end", &c.windowEnd}, {"complaints", &c.complaints},
		{"tickets_opened", &c.ticketsOpened}, {"resolved", &c.resolved}}
}

func (c *complaintsCols) add(r *aggregate.Complaints) {
	c.tenant.add(r.Tenant)
	c.shard.add(r.Shard)
	c.region.add(r.Region)
	c.segment.add(r.Segment)
	c.windowStart.add(secs(r.WindowStart))
	c.windowEnd.add(secs(r.WindowEnd))
	c.complaints.add(r.Complaints)
	c.ticketsOpened.add(r.TicketsOpened)
	c.resolved.add(r.Resolved)
}

type deliveryCols struct {
	tenant, channel, provider, campaignID, status vec[string]
	shard                                         vec[uint16]
	windowStart, windowEnd                        vec[int64]
	receipts                                      vec[uint64]
}

func (c *deliveryCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"shard", &c.shard}, {"channel", &c.channel}, {"provider", &c.provider},
		{"campaign_id", &c.campaignID}, {"status", &c.status}, {"window_start", &c.windowStart},
		{"window_end", &c.windowEnd}, {"receipts", &c.receipts}}
}

func (c *deliveryCols) add(r *aggregate.Delivery) {
	c.tenant.add(r.Tenant)
	c.shard.add(r.Shard)
	c.channel.add(r.Channel)
	c.provider.add(r.Provider)
	c.campaignID.add(r.CampaignID)
	c.status.add(r.Status)
	c.windowStart.add(secs(r.WindowStart))
	c.windowEnd.add(secs(r.WindowEnd))
	c.receipts.add(r.Receipts)
}

type outcomesCols struct {
	triggerID, outcome, policy, messageID, customerID, tenant, channel, reason vec[string]
	attempt                                                                    vec[uint16]
	notBefore, at                                                              vec[int64]
	latencyMS                                                                  vec[uint64]
}

func (c *outcomesCols) columns() []namedCol {
	return []namedCol{{"trigger_id", &c.triggerID}, {"outcome", &c.outcome}, {"policy", &c.policy},
		{"message_id", &c.messageID}, {"customer_id", &c.customerID}, {"tenant", &c.tenant},
		{"channel", &c.channel}, {"attempt", &c.attempt}, {"reason", &c.reason}, {"not_before", &c.notBefore},
		{"at", &c.at}, {"latency_ms", &c.latencyMS}}
}

func (c *outcomesCols) add(r *followup.Event) {
	c.triggerID.add(r.TriggerID)
	c.outcome.add(string(r.Outcome))
	c.policy.add(r.Policy)
	c.messageID.add(r.MessageID)
	c.customerID.add(r.CustomerID)
	c.tenant.add(r.Tenant)
	c.channel.add(r.Channel)
	c.attempt.add(clampUint16(r.Attempt))
	c.reason.add(r.Reason)
	c.notBefore.add(secs(r.NotBefore))
	c.at.add(secs(r.At))
	c.latencyMS.add(uint64(max(r.Latency.Milliseconds(), 0)))
}

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
	c.rule.add(a.Rule)
	c.startsAt.add(secs(a.StartsAt))
	c.fingerprint.add(a.Fingerprint)
	c.startsAtNsec.add(uint32(a.StartsAt.Nanosecond()))
	c.state.add(a.State)
	c.kind.add(a.Kind)
	c.severity.add(a.Severity)
	c.tenant.add(r.tenant)
	c.customerID.add(r.customerID)
	c.labelKeys.add(r.labelKeys)
	c.labelValues.add(r.labelValues)
	c.annotationKeys.add(r.annotationKeys)
	c.annotationValues.add(r.annotValues)
	c.value.add(finite(a.Value))
	c.threshold.add(finite(a.Threshold))
	c.endsAt.add(nullSecs(a.EndsAt))
	c.windowStart.add(nullSecs(a.WindowStart))
	c.windowEnd.add(nullSecs(a.WindowEnd))
	c.emittedAt.add(secs(r.emittedAt))
}

// resendRow is a Resend with the created_at the sink stamps on it.
type resendRow struct {
	r         *processor.Resend
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
	c.tenant.add(r.Tenant)
	c.triggerID.add(r.TriggerID)
	c.action.add(r.Action)
	c.policy.add(r.Policy)
	c.messageID.add(r.MessageID)
	c.customerID.add(r.CustomerID)
	c.channel.add(r.Channel)
	c.attempt.add(clampUint16(r.Attempt))
	c.reason.add(r.Reason)
	c.notBefore.add(secs(r.NotBefore))
	c.createdAt.add(secs(row.createdAt))
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
	c.tenant.add(r.tenant)
	c.customerID.add(r.customerID)
	c.rule.add(r.rule)
	c.churnState.add(r.state)
	c.lastActivity.add(secs(r.lastActivity))
	c.changedAt.add(secs(r.changedAt))
	c.idleFor.add(finite(r.idleFor))
	c.fingerprint.add(r.fingerprint)
}

type interactionsCols struct {
	tenant, customerID, eventID, typ, segment, region, channel, currency vec[string]
	shard                                                                vec[uint16]
	occurredAt                                                           vec[int64]
	occurredAtNsec                                                       vec[uint32]
	amount                                                               vec[float64]
	attributeKeys, attributeValues                                       vec[[]string]
}

func (c *interactionsCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"shard", &c.shard}, {"customer_id", &c.customerID},
		{"occurred_at", &c.occurredAt}, {"event_id", &c.eventID}, {"occurred_at_nsec", &c.occurredAtNsec},
		{"type", &c.typ}, {"segment", &c.segment}, {"region", &c.region}, {"channel", &c.channel},
		{"amount", &c.amount}, {"currency", &c.currency}, {"attribute_keys", &c.attributeKeys},
		{"attribute_values", &c.attributeValues}}
}

func (c *interactionsCols) add(r *rawevents.Interaction) {
	c.tenant.add(r.Tenant)
	c.shard.add(r.Shard)
	c.customerID.add(r.CustomerID)
	c.occurredAt.add(secs(r.OccurredAt))
	c.eventID.add(r.EventID)
	c.occurredAtNsec.add(uint32(r.OccurredAt.Nanosecond()))
	c.typ.add(r.Type)
	c.segment.add(r.Segment)
	c.region.add(r.Region)
	c.channel.add(r.Channel)
	c.amount.add(finite(r.Amount))
	c.currency.add(r.Currency)
	c.attributeKeys.add(orEmpty(r.AttributeKeys))
	c.attributeValues.add(orEmpty(r.AttributeValues))
}

// orEmpty is s, or an empty slice for nil: Array columns want a slice.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type receiptsCols struct {
	tenant, customerID, receiptID, messageID, channel, status vec[string]
	campaignID, templateID, provider, errorCode, recipientTZ  vec[string]
	shard, attempt                                            vec[uint16]
	occurredAt                                                vec[int64]
	occurredAtNsec                                            vec[uint32]
}

func (c *receiptsCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"shard", &c.shard}, {"customer_id", &c.customerID},
		{"occurred_at", &c.occurredAt}, {"receipt_id", &c.receiptID}, {"occurred_at_nsec", &c.occurredAtNsec},
		{"message_id", &c.messageID}, {"channel", &c.channel}, {"status", &c.status}, {"attempt", &c.attempt},
		{"campaign_id", &c.campaignID}, {"template_id", &c.templateID}, {"provider", &c.provider},
		{"error_code", &c.errorCode}, {"recipient_tz", &c.recipientTZ}}
}

func (c *receiptsCols) add(r *rawevents.Receipt) {
	c.tenant.add(r.Tenant)
	c.shard.add(r.Shard)
	c.customerID.add(r.CustomerID)
	c.occurredAt.add(secs(r.OccurredAt))
	c.receiptID.add(r.ReceiptID)
	c.occurredAtNsec.add(uint32(r.OccurredAt.Nanosecond()))
	c.messageID.add(r.MessageID)
	c.channel.add(r.Channel)
	c.status.add(r.Status)
	c.attempt.add(clampUint16(r.Attempt))
	c.campaignID.add(r.CampaignID)
	c.templateID.add(r.TemplateID)
	c.provider.add(r.Provider)
	c.errorCode.add(r.ErrorCode)
	c.recipientTZ.add(r.RecipientTZ)
}

type profilesCols struct {
	tenant, customerID, accountManager, tier, segment, region, timezone vec[string]
	updatedAt                                                           vec[int64]
	attributeKeys, attributeValues                                      vec[[]string]
	deleted                                                             vec[uint8]
}

func (c *profilesCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"customer_id", &c.customerID}, {"updated_at", &c.updatedAt},
		{"account_manager", &c.accountManager}, {"tier", &c.tier}, {"segment", &c.segment}, {"region", &c.region},
		{"timezone", &c.timezone}, {"attribute_keys", &c.attributeKeys}, {"attribute_values", &c.attributeValues},
		{"deleted", &c.deleted}}
}

func (c *profilesCols) add(r *profilerows.Profile) {
	c.tenant.add(r.Tenant)
	c.customerID.add(r.CustomerID)
	c.updatedAt.add(secs(r.UpdatedAt))
	c.accountManager.add(r.AccountManager)
	c.tier.add(r.Tier)
	c.segment.add(r.Segment)
	c.region.add(r.Region)
	c.timezone.add(r.Timezone)
	c.attributeKeys.add(orEmpty(r.AttributeKeys))
	c.attributeValues.add(orEmpty(r.AttributeValues))
	var d uint8
	if r.Deleted {
		d = 1
	}
	c.deleted.add(d)
}

// amAlertsCols are the account_manager_alerts columns of an alertRow whose
// alert carries the AccountManagerLabel.
type amAlertsCols struct {
	tenant, accountManager, rule, fingerprint, state, kind, severity, customerID vec[string]
	startsAt                                                                     vec[int64]
	startsAtNsec                                                                 vec[uint32]
	endsAt                                                                       vec[*int64]
}

func (c *amAlertsCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"account_manager", &c.accountManager}, {"starts_at", &c.startsAt},
		{"rule", &c.rule}, {"fingerprint", &c.fingerprint}, {"starts_at_nsec", &c.startsAtNsec}, {"state", &c.state},
		{"kind", &c.kind}, {"severity", &c.severity}, {"customer_id", &c.customerID}, {"ends_at", &c.endsAt}}
}

func (c *amAlertsCols) add(r *alertRow) {
	a := r.a
	c.tenant.add(r.tenant)
	c.accountManager.add(a.Labels[AccountManagerLabel])
	c.startsAt.add(secs(a.StartsAt))
	c.rule.add(a.Rule)
	c.fingerprint.add(a.Fingerprint)
	c.startsAtNsec.add(uint32(a.StartsAt.Nanosecond()))
	c.state.add(a.State)
	c.kind.add(a.Kind)
	c.severity.add(a.Severity)
	c.customerID.add(r.customerID)
	c.endsAt.add(nullSecs(a.EndsAt))
}

// buffers holds one queue per table.
type buffers struct {
	revenue      *queue[revenueCols, *revenueCols]
	activity     *queue[activityCols, *activityCols]
	complaints   *queue[complaintsCols, *complaintsCols]
	delivery     *queue[deliveryCols, *deliveryCols]
	outcomes     *queue[outcomesCols, *outcomesCols]
	alerts       *queue[alertsCols, *alertsCols]
	resends      *queue[resendsCols, *resendsCols]
	customers    *queue[customersCols, *customersCols]
	interactions *queue[interactionsCols, *interactionsCols]
	receipts     *queue[receiptsCols, *receiptsCols]
	profiles     *queue[profilesCols, *profilesCols]
	amAlerts     *queue[amAlertsCols, *amAlertsCols]
}

// newBuffers returns empty queues cut in blocks of blockRows rows.
func newBuffers(blockRows int) *buffers {
	return &buffers{
		revenue:      newQueue[revenueCols](blockRows),
		activity:     newQueue[activityCols](blockRows),
		complaints:   newQueue[complaintsCols](blockRows),
		delivery:     newQueue[deliveryCols](blockRows),
		outcomes:     newQueue[outcomesCols](blockRows),
		alerts:       newQueue[alertsCols](blockRows),
		resends:      newQueue[resendsCols](blockRows),
		customers:    newQueue[customersCols](blockRows),
		interactions: newQueue[interactionsCols](blockRows),
		receipts:     newQueue[receiptsCols](blockRows),
		profiles:     newQueue[profilesCols](blockRows),
		amAlerts:     newQueue[amAlertsCols](blockRows),
	}
}

// byTable returns the queues keyed by table name.
func (b *buffers) byTable() map[string]rowBuffer {
	return map[string]rowBuffer{
		TableRevenue: b.revenue, TableActivity: b.activity, TableComplaints: b.complaints,
		TableDelivery: b.delivery, TableResendOutcomes: b.outcomes, TableAlerts: b.alerts,
		TableResends: b.resends, TableCustomers: b.customers,
		TableInteractions: b.interactions, TableReceipts: b.receipts,
		TableProfiles: b.profiles, TableAccountManagerAlerts: b.amAlerts,
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
