package aggregate

import (
	"cmp"
	"strconv"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/processor"
)

// The analytics tables the rows of this package go to (sink/clickhouse
// creates them).
const (
	TableRevenue    = "revenue"
	TableActivity   = "activity_daily"
	TableComplaints = "complaints"
	TableDelivery   = "delivery_status"
)

// Money is an amount in ten-thousandths of the tenant's reporting currency:
// the scale of ClickHouse's Decimal(18, 4). Sums of Money are exact, unlike
// sums of float64, so the numbers in ClickHouse are the numbers computed
// here whatever the order of the additions.
type Money int64

// MoneyScale is the number of Money units in one currency unit.
const MoneyScale = 10_000

// MaxMoney is the largest amount a Decimal(18, 4) holds
// (99999999999999.9999); sums saturate at ±MaxMoney rather than wrap.
const MaxMoney Money = 999_999_999_999_999_999

// MoneyFromFloat rounds f to the nearest ten-thousandth (half away from
// zero), saturating at ±MaxMoney; NaN is 0.
func MoneyFromFloat(f float64) Money {
	switch {
	case f != f:
		return 0
	case f >= MaxMoney.Float():
		return MaxMoney
	case f <= -MaxMoney.Float():
		return -MaxMoney
	case f < 0:
		return -Money(-f*MoneyScale + 0.5)
	}
	return Money(f*MoneyScale + 0.5)
}

// Add is m + n saturated at ±MaxMoney.
func (m Money) Add(n Money) Money {
	// Both are within ±MaxMoney, so the int64 sum cannot overflow.
	return max(min(m+n, MaxMoney), -MaxMoney)
}

// Float is m as a float64 (for display and comparisons, not for sums).
func (m Money) Float() float64 { return float64(m) / MoneyScale }

// String formats m with exactly four decimals ("-12.3400"), the form the
// ClickHouse sink appends to Decimal(18, 4) columns.
func (m Money) String() string {
	var b [24]byte
	out := b[:0]
	u := uint64(m)
	if m < 0 {
		out = append(out, '-')
		u = uint64(-m)
	}
	out = strconv.AppendUint(out, u/MoneyScale, 10)
	frac := u % MoneyScale
	out = append(out, '.', byte('0'+frac/1000), byte('0'+frac/100%10), byte('0'+frac/10%10), byte('0'+frac%10))
	return string(out)
}

// Revenue is the revenue of one tenant × segment × region × channel in one
// window: purchases add their amount, refunds subtract theirs (whatever
// sign the producer gave it, as in the drop detector's sum(amount)).
type Revenue struct {
	Tenant, Segment, Region, Channel string
	Shard                            uint16 // see Config.Shard
	WindowStart, WindowEnd           time.Time
	Amount                           Money
	Purchases, Refunds               uint64
}

// Activity is what one customer did in one day (one ActivityWindow): how
// many interactions of any type, and when the last one happened.
type Activity struct {
	Tenant, CustomerID     string
	Shard                  uint16 // see Config.Shard
	WindowStart, WindowEnd time.Time
	Events                 uint64
	LastActivity           time.Time
}

// Complaints counts the complaint life cycle of one tenant × region ×
// segment in one window.
type Complaints struct {
	Tenant, Region, Segment string
	Shard                   uint16 // see Config.Shard
	WindowStart, WindowEnd  time.Time
	Complaints              uint64 // type complaint
	TicketsOpened           uint64 // type ticket_opened
	Resolved                uint64 // type complaint_resolved
}

// Delivery counts the receipts of one status for one tenant × channel ×
// provider × campaign in one window.
type Delivery struct {
	Tenant, Channel, Provider, CampaignID, Status string
	Shard                                         uint16 // see Config.Shard
	WindowStart, WindowEnd                        time.Time
	Receipts                                      uint64
}

var (
	_ processor.Aggregate = Revenue{}
	_ processor.Aggregate = Activity{}
	_ processor.Aggregate = Complaints{}
	_ processor.Aggregate = Delivery{}
)

// Table implements processor.Aggregate.
func (r Revenue) Table() string { return TableRevenue }

// ID implements processor.Aggregate: table, window and dimensions.
func (r Revenue) ID() string {
	return rowID(TableRevenue, r.Shard, r.WindowStart, r.WindowEnd, r.Tenant, r.Segment, r.Region, r.Channel)
}

// Table implements processor.Aggregate.
func (r Activity) Table() string { return TableActivity }

// ID implements processor.Aggregate.
func (r Activity) ID() string {
	return rowID(TableActivity, r.Shard, r.WindowStart, r.WindowEnd, r.Tenant, r.CustomerID)
}

// Table implements processor.Aggregate.
func (r Complaints) Table() string { return TableComplaints }

// ID implements processor.Aggregate.
func (r Complaints) ID() string {
	return rowID(TableComplaints, r.Shard, r.WindowStart, r.WindowEnd, r.Tenant, r.Region, r.Segment)
}

// Table implements processor.Aggregate.
func (r Delivery) Table() string { return TableDelivery }

// ID implements processor.Aggregate.
func (r Delivery) ID() string {
	return rowID(TableDelivery, r.Shard, r.WindowStart, r.WindowEnd, r.Tenant, r.Channel, r.Provider, r.CampaignID, r.Status)
}

// rowID joins table, shard, window bounds (Unix seconds) and dimensions
// with '|', escaping '|' and '\' inside dimensions so that two different
// rows never share an id: "revenue|0|1700000000|1700003600|acme|gold|apac|web".
func rowID(table string, shard uint16, start, end time.Time, dims ...string) string {
	var b strings.Builder
	b.Grow(len(table) + 30 + 16*len(dims))
	b.WriteString(table)
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(int(shard)))
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(start.Unix(), 10))
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(end.Unix(), 10))
	for _, d := range dims {
		b.WriteByte('|')
		if !strings.ContainsAny(d, `|\`) {
			b.WriteString(d)
			continue
		}
		for i := 0; i < len(d); i++ {
			if d[i] == '|' || d[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(d[i])
		}
	}
	return b.String()
}

// Dimension keys of the open windows. Exported fields: they are gob-encoded
// in snapshots.

type revenueKey struct{ Tenant, Segment, Region, Channel string }

func (a revenueKey) compare(b revenueKey) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Segment, b.Segment),
		cmp.Compare(a.Region, b.Region), cmp.Compare(a.Channel, b.Channel))
}

type activityKey struct{ Tenant, CustomerID string }

func (a activityKey) compare(b activityKey) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.CustomerID, b.CustomerID))
}

type complaintsKey struct{ Tenant, Region, Segment string }

func (a complaintsKey) compare(b complaintsKey) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Region, b.Region), cmp.Compare(a.Segment, b.Segment))
}

type deliveryKey struct{ Tenant, Channel, Provider, CampaignID, Status string }

func (a deliveryKey) compare(b deliveryKey) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Channel, b.Channel),
		cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.CampaignID, b.CampaignID), cmp.Compare(a.Status, b.Status))
}

// Accumulators of the open windows.

type revenueAcc struct {
	Amount             Money
	Purchases, Refunds uint64
}

type activityAcc struct {
	Events uint64
	Last   int64 // Unix ns
}

type complaintsAcc struct{ Complaints, TicketsOpened, Resolved uint64 }

type deliveryAcc struct{ Receipts uint64 }
