package rawevents

import (
	"time"

	"github.com/crmpulse/crmpulse/record"
)

// The rows' columnar encoding for the analytics sink (record.Table):
// sink/clickhouse/migrations/0002_raw_events.sql creates these tables.

func init() {
	record.RegisterTable(record.Table{Name: TableInteractions, Row: Interaction{},
		NewColumns: func() record.Columns { return new(interactionsCols) }})
	record.RegisterTable(record.Table{Name: TableReceipts, Row: Receipt{},
		NewColumns: func() record.Columns { return new(receiptsCols) }})
}

type vec[V any] = record.Vec[V]

var col = record.Col

// secs is record.Secs, as a function so that it inlines.
func secs(t time.Time) int64 { return record.Secs(t) }

type interactionsCols struct {
	tenant, customerID, eventID, typ, segment, region, channel, currency vec[string]
	shard                                                                vec[uint16]
	occurredAt                                                           vec[int64]
	occurredAtNsec                                                       vec[uint32]
	amount                                                               vec[float64]
	attributeKeys, attributeValues                                       vec[[]string]
}

func (c *interactionsCols) List() []record.Column {
	return []record.Column{col("tenant", &c.tenant), col("shard", &c.shard), col("customer_id", &c.customerID),
		col("occurred_at", &c.occurredAt), col("event_id", &c.eventID), col("occurred_at_nsec", &c.occurredAtNsec),
		col("type", &c.typ), col("segment", &c.segment), col("region", &c.region), col("channel", &c.channel),
		col("amount", &c.amount), col("currency", &c.currency), col("attribute_keys", &c.attributeKeys),
		col("attribute_values", &c.attributeValues)}
}

func (c *interactionsCols) Add(rows []record.Aggregate) {
	for _, a := range rows {
		r := a.(Interaction)
		c.tenant.Add(r.Tenant)
		c.shard.Add(r.Shard)
		c.customerID.Add(r.CustomerID)
		c.occurredAt.Add(secs(r.OccurredAt))
		c.eventID.Add(r.EventID)
		c.occurredAtNsec.Add(uint32(r.OccurredAt.Nanosecond()))
		c.typ.Add(r.Type)
		c.segment.Add(r.Segment)
		c.region.Add(r.Region)
		c.channel.Add(r.Channel)
		c.amount.Add(record.Finite(r.Amount))
		c.currency.Add(r.Currency)
		c.attributeKeys.Add(record.OrEmpty(r.AttributeKeys))
		c.attributeValues.Add(record.OrEmpty(r.AttributeValues))
	}
}

type receiptsCols struct {
	tenant, customerID, receiptID, messageID, channel, status vec[string]
	campaignID, templateID, provider, errorCode, recipientTZ  vec[string]
	shard, attempt                                            vec[uint16]
	occurredAt                                                vec[int64]
	occurredAtNsec                                            vec[uint32]
}

func (c *receiptsCols) List() []record.Column {
	return []record.Column{col("tenant", &c.tenant), col("shard", &c.shard), col("customer_id", &c.customerID),
		col("occurred_at", &c.occurredAt), col("receipt_id", &c.receiptID), col("occurred_at_nsec", &c.occurredAtNsec),
		col("message_id", &c.messageID), col("channel", &c.channel), col("status", &c.status), col("attempt", &c.attempt),
		col("campaign_id", &c.campaignID), col("template_id", &c.templateID), col("provider", &c.provider),
		col("error_code", &c.errorCode), col("recipient_tz", &c.recipientTZ)}
}

func (c *receiptsCols) Add(rows []record.Aggregate) {
	for _, a := range rows {
		r := a.(Receipt)
		c.tenant.Add(r.Tenant)
		c.shard.Add(r.Shard)
		c.customerID.Add(r.CustomerID)
		c.occurredAt.Add(secs(r.OccurredAt))
		c.receiptID.Add(r.ReceiptID)
		c.occurredAtNsec.Add(uint32(r.OccurredAt.Nanosecond()))
		c.messageID.Add(r.MessageID)
		c.channel.Add(r.Channel)
		c.status.Add(r.Status)
		c.attempt.Add(record.ClampUint16(r.Attempt))
		c.campaignID.Add(r.CampaignID)
		c.templateID.Add(r.TemplateID)
		c.provider.Add(r.Provider)
		c.errorCode.Add(r.ErrorCode)
		c.recipientTZ.Add(r.RecipientTZ)
	}
}
