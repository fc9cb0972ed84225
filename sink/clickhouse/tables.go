package clickhouse

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/followup"
	"github.com/crmpulse/crmpulse/processor/profilerows"
	"github.com/crmpulse/crmpulse/processor/rawevents"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Table names (migrations/0001_init.sql creates them, but the raw-event
// tables of 0002_raw_events.sql, the customers and account-manager
// tables of 0003_customers.sql, the segment tables of 0004_segments.sql
// and the digests of 0005_digests.sql).
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
	TableTransitions          = "segment_transitions"
	TableSegmentCurrent       = "segment_current"
	TableDigests              = "digests"
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
	TableAlerts, TableResends, TableCustomers, TableInteractions, TableReceipts, TableProfiles, TableAccountManagerAlerts,
	TableTransitions, TableSegmentCurrent, TableDigests}

// monthlyTables are partitioned by toYYYYMM of a time column, so their old
// months can be dropped (DropPartitionsOlderThan); customer_state,
// customers and segment_current are not.
var monthlyTables = map[string]string{
	TableRevenue: "window_start", TableActivity: "window_start", TableComplaints: "window_start",
	TableDelivery: "window_start", TableResendOutcomes: "not_before", TableAlerts: "starts_at",
	TableResends: "not_before", TableInteractions: "occurred_at", TableReceipts: "occurred_at",
	TableAccountManagerAlerts: "starts_at",
	TableTransitions:          "at",
	TableDigests:              "period_end",
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

// transitionRow is a segment Transition flattened for segment_transitions
// and segment_current.
type transitionRow struct {
	t                  *processor.Transition
	keyID, from        string
	keyKeys, keyValues []string
	emittedAt          time.Time
}

func newTransitionRow(t *processor.Transition, now time.Time) transitionRow {
	r := transitionRow{t: t, keyID: processor.Fingerprint(t.Key), emittedAt: t.EmittedAt}
	if t.From != nil {
		r.from = *t.From
	}
	r.keyKeys, r.keyValues = sortedPairs(t.Key)
	if r.emittedAt.IsZero() {
		r.emittedAt = now
	}
	return r
}

// currentVersion is segment_current's version of a transition: its event
// time, so the latest transition of a key wins whatever the write order.
// A key changes class at most once per instant, so versions of one key
// never tie but for the same transition written again.
func (r *transitionRow) currentVersion() uint64 { return uint64(max(r.t.At.UnixNano(), 0)) }

type transitionsCols struct {
	tenant, segmentSet, customerID, keyID, from, to vec[string]
	at, emittedAt                                   vec[int64]
	atNsec                                          vec[uint32]
	keyKeys, keyValues                              vec[[]string]
}

func (c *transitionsCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"segment_set", &c.segmentSet}, {"customer_id", &c.customerID},
		{"key_id", &c.keyID}, {"at", &c.at}, {"at_nsec", &c.atNsec}, {"from_class", &c.from}, {"to_class", &c.to},
		{"key_keys", &c.keyKeys}, {"key_values", &c.keyValues}, {"emitted_at", &c.emittedAt}}
}

func (c *transitionsCols) add(r *transitionRow) {
	t := r.t
	c.tenant.add(t.Tenant)
	c.segmentSet.add(t.SegmentSet)
	c.customerID.add(t.CustomerID)
	c.keyID.add(r.keyID)
	c.at.add(secs(t.At))
	c.atNsec.add(uint32(t.At.Nanosecond()))
	c.from.add(r.from)
	c.to.add(t.To)
	c.keyKeys.add(r.keyKeys)
	c.keyValues.add(r.keyValues)
	c.emittedAt.add(secs(r.emittedAt))
}

type segmentCurrentCols struct {
	tenant, segmentSet, customerID, keyID, class, previous vec[string]
	since                                                  vec[int64]
	sinceNsec                                              vec[uint32]
	keyKeys, keyValues                                     vec[[]string]
}

func (c *segmentCurrentCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"segment_set", &c.segmentSet}, {"customer_id", &c.customerID},
		{"key_id", &c.keyID}, {"class", &c.class}, {"since", &c.since}, {"since_nsec", &c.sinceNsec},
		{"previous_class", &c.previous}, {"key_keys", &c.keyKeys}, {"key_values", &c.keyValues}}
}

func (c *segmentCurrentCols) add(r *transitionRow) {
	t := r.t
	c.tenant.add(t.Tenant)
	c.segmentSet.add(t.SegmentSet)
	c.customerID.add(t.CustomerID)
	c.keyID.add(r.keyID)
	c.class.add(t.To)
	c.since.add(secs(t.At))
	c.sinceNsec.add(uint32(t.At.Nanosecond()))
	c.previous.add(r.from)
	c.keyKeys.add(r.keyKeys)
	c.keyValues.add(r.keyValues)
}

// digestRow is a Digest flattened for digests. body is the record's JSON
// as every other destination gets it, emitted_at included.
type digestRow struct {
	d                      *processor.Digest
	groupKeys, groupValues []string
	fingerprints           []string
	metricNames            []string
	metricValues           []float64
	classes                []string
	counts                 []uint64
	body                   string
	emittedAt              time.Time
}

func newDigestRow(d *processor.Digest, now time.Time) (digestRow, error) {
	r := digestRow{d: d, emittedAt: d.EmittedAt}
	if r.emittedAt.IsZero() {
		r.emittedAt = now
	}
	r.groupKeys, r.groupValues = sortedPairs(d.Group)
	r.fingerprints = make([]string, 0, len(d.Fired)+len(d.Resolved)+len(d.Open))
	for _, l := range [][]processor.DigestAlert{d.Fired, d.Resolved, d.Open} {
		for i := range l {
			r.fingerprints = append(r.fingerprints, l[i].Fingerprint)
		}
	}
	r.metricNames = slices.Sorted(maps.Keys(d.Metrics))
	r.metricValues = make([]float64, len(r.metricNames))
	for i, n := range r.metricNames {
		r.metricValues[i] = finite(d.Metrics[n])
	}
	r.classes = slices.Sorted(maps.Keys(d.Segments))
	r.counts = make([]uint64, len(r.classes))
	for i, c := range r.classes {
		r.counts[i] = uint64(max(d.Segments[c], 0))
	}
	stamped := *d
	stamped.EmittedAt = r.emittedAt
	body, err := stamped.AppendJSON(nil)
	if err != nil {
		return digestRow{}, fmt.Errorf("clickhouse sink: encoding digest %s: %w", d.DigestID, err)
	}
	r.body = string(body)
	return r, nil
}

type digestsCols struct {
	tenant, digest, accountManager, digestID, body vec[string]
	periodStart, periodEnd, emittedAt              vec[int64]
	fired, resolved, open                          vec[uint32]
	groupKeys, groupValues, fingerprints           vec[[]string]
	metricNames, classes                           vec[[]string]
	metricValues                                   vec[[]float64]
	counts                                         vec[[]uint64]
}

func (c *digestsCols) columns() []namedCol {
	return []namedCol{{"tenant", &c.tenant}, {"digest", &c.digest}, {"account_manager", &c.accountManager},
		{"digest_id", &c.digestID}, {"period_start", &c.periodStart}, {"period_end", &c.periodEnd},
		{"group_keys", &c.groupKeys}, {"group_values", &c.groupValues}, {"fired", &c.fired},
		{"resolved", &c.resolved}, {"open", &c.open}, {"alert_fingerprints", &c.fingerprints},
		{"metric_names", &c.metricNames}, {"metric_values", &c.metricValues},
		{"segment_classes", &c.classes}, {"segment_counts", &c.counts}, {"body", &c.body},
		{"emitted_at", &c.emittedAt}}
}

func (c *digestsCols) add(r *digestRow) {
	d := r.d
	c.tenant.add(d.Group["tenant"])
	c.digest.add(d.Digest)
	c.accountManager.add(d.Group[AccountManagerLabel])
	c.digestID.add(d.DigestID)
	c.periodStart.add(secs(d.PeriodStart))
	c.periodEnd.add(secs(d.PeriodEnd))
	c.groupKeys.add(r.groupKeys)
	c.groupValues.add(r.groupValues)
	c.fired.add(uint32(min(len(d.Fired), math.MaxUint32)))
	c.resolved.add(uint32(min(len(d.Resolved), math.MaxUint32)))
	c.open.add(uint32(min(len(d.Open), math.MaxUint32)))
	c.fingerprints.add(r.fingerprints)
	c.metricNames.add(r.metricNames)
	c.metricValues.add(r.metricValues)
	c.classes.add(r.classes)
	c.counts.add(r.counts)
	c.body.add(r.body)
	c.emittedAt.add(secs(r.emittedAt))
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
	transitions  *queue[transitionsCols, *transitionsCols]
	segments     *queue[segmentCurrentCols, *segmentCurrentCols]
	digests      *queue[digestsCols, *digestsCols]
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
		transitions:  newQueue[transitionsCols](blockRows),
		segments:     newQueue[segmentCurrentCols](blockRows),
		digests:      newQueue[digestsCols](blockRows),
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
		TableTransitions: b.transitions, TableSegmentCurrent: b.segments,
		TableDigests: b.digests,
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
