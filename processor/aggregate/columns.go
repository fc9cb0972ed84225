package aggregate

import (
	"time"

	"github.com/crmpulse/crmpulse/record"
)

// The rows' columnar encoding for the analytics sink (record.Table):
// sink/clickhouse/migrations creates these tables. columns lists a table's
// columns in INSERT order; Add appends a run of rows to every column.

func init() {
	record.RegisterTable(record.Table{Name: TableRevenue, Row: Revenue{},
		NewColumns: func() record.Columns { return new(revenueCols) }})
	record.RegisterTable(record.Table{Name: TableActivity, Row: Activity{},
		NewColumns: func() record.Columns { return new(activityCols) }})
	record.RegisterTable(record.Table{Name: TableComplaints, Row: Complaints{},
		NewColumns: func() record.Columns { return new(complaintsCols) }})
	record.RegisterTable(record.Table{Name: TableDelivery, Row: Delivery{},
		NewColumns: func() record.Columns { return new(deliveryCols) }})
}

type vec[V any] = record.Vec[V]

var col = record.Col

// secs is record.Secs, as a function so that it inlines.
func secs(t time.Time) int64 { return record.Secs(t) }

// moneyVec is a Decimal(18, 4) column kept as Money: a row costs an int64
// copy, and the decimal strings clickhouse-go takes are made by the
// insert, outside the sink's lock.
type moneyVec struct{ vec[Money] }

func (v *moneyVec) Part(from, to int) any { return moneyPart(v.Vals[from:to:to]) }

type moneyPart []Money

func (p moneyPart) DriverValue() any {
	s := make([]string, len(p))
	for i, m := range p {
		s[i] = m.String()
	}
	return s
}

type revenueCols struct {
	tenant, segment, region, channel vec[string]
	shard                            vec[uint16]
	windowStart, windowEnd           vec[int64]
	amount                           moneyVec
	purchases, refunds               vec[uint64]
}

func (c *revenueCols) List() []record.Column {
	return []record.Column{col("tenant", &c.tenant), col("shard", &c.shard), col("segment", &c.segment), col("region", &c.region),
		col("channel", &c.channel), col("window_start", &c.windowStart), col("window_end", &c.windowEnd),
		col("amount", &c.amount), col("purchases", &c.purchases), col("refunds", &c.refunds)}
}

func (c *revenueCols) Add(rows []record.Aggregate) {
	for _, a := range rows {
		r := a.(Revenue)
		c.tenant.Add(r.Tenant)
		c.shard.Add(r.Shard)
		c.segment.Add(r.Segment)
		c.region.Add(r.Region)
		c.channel.Add(r.Channel)
		c.windowStart.Add(secs(r.WindowStart))
		c.windowEnd.Add(secs(r.WindowEnd))
		c.amount.Add(r.Amount)
		c.purchases.Add(r.Purchases)
		c.refunds.Add(r.Refunds)
	}
}

type activityCols struct {
	tenant, customerID                   vec[string]
	shard                                vec[uint16]
	windowStart, windowEnd, lastActivity vec[int64]
	events                               vec[uint64]
}

func (c *activityCols) List() []record.Column {
	return []record.Column{col("tenant", &c.tenant), col("shard", &c.shard), col("customer_id", &c.customerID),
		col("window_start", &c.windowStart), col("window_end", &c.windowEnd), col("events", &c.events),
		col("last_activity", &c.lastActivity)}
}

func (c *activityCols) Add(rows []record.Aggregate) {
	for _, a := range rows {
		r := a.(Activity)
		c.tenant.Add(r.Tenant)
		c.shard.Add(r.Shard)
		c.customerID.Add(r.CustomerID)
		c.windowStart.Add(secs(r.WindowStart))
		c.windowEnd.Add(secs(r.WindowEnd))
		c.events.Add(r.Events)
		c.lastActivity.Add(secs(r.LastActivity))
	}
}

type complaintsCols struct {
	tenant, region, segment             vec[string]
	shard                               vec[uint16]
	windowStart, windowEnd              vec[int64]
	complaints, ticketsOpened, resolved vec[uint64]
}

func (c *complaintsCols) List() []record.Column {
	return []record.Column{col("tenant", &c.tenant), col("shard", &c.shard), col("region", &c.region), col("segment", &c.segment),
		col("window_start", &c.windowStart), col("window_end", &c.windowEnd), col("complaints", &c.complaints),
		col("tickets_opened", &c.ticketsOpened), col("resolved", &c.resolved)}
}

func (c *complaintsCols) Add(rows []record.Aggregate) {
	for _, a := range rows {
		r := a.(Complaints)
		c.tenant.Add(r.Tenant)
		c.shard.Add(r.Shard)
		c.region.Add(r.Region)
		c.segment.Add(r.Segment)
		c.windowStart.Add(secs(r.WindowStart))
		c.windowEnd.Add(secs(r.WindowEnd))
		c.complaints.Add(r.Complaints)
		c.ticketsOpened.Add(r.TicketsOpened)
		c.resolved.Add(r.Resolved)
	}
}

type deliveryCols struct {
	tenant, channel, provider, campaignID, status vec[string]
	shard                                         vec[uint16]
	windowStart, windowEnd                        vec[int64]
	receipts                                      vec[uint64]
}

func (c *deliveryCols) List() []record.Column {
	return []record.Column{col("tenant", &c.tenant), col("shard", &c.shard), col("channel", &c.channel), col("provider", &c.provider),
		col("campaign_id", &c.campaignID), col("status", &c.status), col("window_start", &c.windowStart),
		col("window_end", &c.windowEnd), col("receipts", &c.receipts)}
}

func (c *deliveryCols) Add(rows []record.Aggregate) {
	for _, a := range rows {
		r := a.(Delivery)
		c.tenant.Add(r.Tenant)
		c.shard.Add(r.Shard)
		c.channel.Add(r.Channel)
		c.provider.Add(r.Provider)
		c.campaignID.Add(r.CampaignID)
		c.status.Add(r.Status)
		c.windowStart.Add(secs(r.WindowStart))
		c.windowEnd.Add(secs(r.WindowEnd))
		c.receipts.Add(r.Receipts)
	}
}
