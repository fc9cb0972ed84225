package followup

import (
	"time"

	"github.com/crmpulse/crmpulse/record"
)

// Event's columnar encoding for the analytics sink (record.Table):
// sink/clickhouse/migrations creates the table.

func init() {
	record.RegisterTable(record.Table{Name: Table, Row: Event{},
		NewColumns: func() record.Columns { return new(outcomesCols) }})
}

type vec[V any] = record.Vec[V]

var col = record.Col

// secs is record.Secs, as a function so that it inlines.
func secs(t time.Time) int64 { return record.Secs(t) }

type outcomesCols struct {
	triggerID, outcome, policy, messageID, customerID, tenant, channel, reason vec[string]
	attempt                                                                    vec[uint16]
	notBefore, at                                                              vec[int64]
	latencyMS                                                                  vec[uint64]
}

func (c *outcomesCols) List() []record.Column {
	return []record.Column{col("trigger_id", &c.triggerID), col("outcome", &c.outcome), col("policy", &c.policy),
		col("message_id", &c.messageID), col("customer_id", &c.customerID), col("tenant", &c.tenant),
		col("channel", &c.channel), col("attempt", &c.attempt), col("reason", &c.reason), col("not_before", &c.notBefore),
		col("at", &c.at), col("latency_ms", &c.latencyMS)}
}

func (c *outcomesCols) Add(rows []record.Aggregate) {
	for _, a := range rows {
		r := a.(Event)
		c.triggerID.Add(r.TriggerID)
		c.outcome.Add(string(r.Outcome))
		c.policy.Add(r.Policy)
		c.messageID.Add(r.MessageID)
		c.customerID.Add(r.CustomerID)
		c.tenant.Add(r.Tenant)
		c.channel.Add(r.Channel)
		c.attempt.Add(record.ClampUint16(r.Attempt))
		c.reason.Add(r.Reason)
		c.notBefore.Add(secs(r.NotBefore))
		c.at.Add(secs(r.At))
		c.latencyMS.Add(uint64(max(r.Latency.Milliseconds(), 0)))
	}
}
