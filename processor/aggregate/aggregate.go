// Package aggregate computes the built-in per-window aggregates that the
// analytics sink stores (sink/clickhouse): revenue by tenant × segment ×
// region × channel, activity per customer per day, the complaint life cycle
// by tenant × region × segment, and delivery status counts by tenant ×
// channel × provider × campaign. Resend outcomes are rows of
// processor/followup (followup.Event), which runs beside this component.
//
// The Component is an engine component like a detector: pure (no clock, no
// I/O, no goroutines), fed every accepted record, advanced by the
// watermark. Windows are tumbling, aligned to the Unix epoch in UTC
// (SPEC §2), and a window's rows are emitted once, when the watermark
// reaches its end: the engine refuses records behind the watermark as late,
// so a final window never changes again.
package aggregate

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

// Default window sizes.
const (
	DefaultWindow         = time.Hour
	DefaultActivityWindow = 24 * time.Hour
)

// Name is the component's name in engine snapshots.
const Name = "aggregate"

// Interaction types that the aggregates count.
const (
	typePurchase          = "purchase"
	typeRefund            = "refund"
	typeComplaint         = "complaint"
	typeTicketOpened      = "ticket_opened"
	typeComplaintResolved = "complaint_resolved"
)

// Config sets the window sizes. Zero values take the defaults.
type Config struct {
	// Window is the tumbling window of revenue, complaints and delivery
	// counts. Default 1h.
	Window time.Duration
	// ActivityWindow is the tumbling window of per-customer activity.
	// Default 24h (one UTC day).
	ActivityWindow time.Duration
	// Shard names the slice of the input this component sees: the Kafka
	// partition in `crmpulse run`, 0 in a replay. Group-level rows
	// (revenue, complaints, delivery) of one window and group come from
	// every shard that saw the group, one partial row each; readers sum
	// them (docs/clickhouse.md). Per-customer activity has one shard.
	Shard int
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.ActivityWindow == 0 {
		c.ActivityWindow = DefaultActivityWindow
	}
	return c
}

func (c Config) validate() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"window", c.Window}, {"activity_window", c.ActivityWindow}} {
		if f.d < time.Second || f.d%time.Second != 0 {
			return fmt.Errorf("aggregate config: %s: must be a whole number of seconds ≥ 1s, got %s", f.name, f.d)
		}
	}
	if c.Shard < 0 || c.Shard > math.MaxUint16 {
		return fmt.Errorf("aggregate config: shard: must be in [0, %d], got %d", math.MaxUint16, c.Shard)
	}
	return nil
}

// Component computes the aggregates. It is not safe for concurrent use; a
// pipeline runs one per engine (per partition).
type Component struct {
	cfg        Config
	revenue    *windows[revenueKey, revenueAcc]
	activity   *windows[activityKey, activityAcc]
	complaints *windows[complaintsKey, complaintsAcc]
	delivery   *windows[deliveryKey, deliveryAcc]
	// sets lists the four in the order their rows are emitted when several
	// windows end at the same instant.
	sets [4]windowSet
	due  []dueWindow // scratch for Advance
}

var _ processor.Component = (*Component)(nil)

// New returns a Component with no open windows.
func New(cfg Config) (*Component, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Component{cfg: cfg}
	c.reset()
	return c, nil
}

func (c *Component) reset() {
	w, aw := int64(c.cfg.Window), int64(c.cfg.ActivityWindow)
	sh := uint16(c.cfg.Shard)
	c.revenue = newWindows(w, revenueKey.compare, func(start, end int64, k revenueKey, a *revenueAcc, out *processor.Output) {
		emitRevenue(sh, start, end, k, a, out)
	})
	c.activity = newWindows(aw, activityKey.compare, func(start, end int64, k activityKey, a *activityAcc, out *processor.Output) {
		emitActivity(sh, start, end, k, a, out)
	})
	c.complaints = newWindows(w, complaintsKey.compare, func(start, end int64, k complaintsKey, a *complaintsAcc, out *processor.Output) {
		emitComplaints(sh, start, end, k, a, out)
	})
	c.delivery = newWindows(w, deliveryKey.compare, func(start, end int64, k deliveryKey, a *deliveryAcc, out *processor.Output) {
		emitDelivery(sh, start, end, k, a, out)
	})
	c.sets = [4]windowSet{c.revenue, c.activity, c.complaints, c.delivery}
}

// Name implements processor.Component.
func (c *Component) Name() string { return Name }

// Interaction implements processor.Component. Revenue follows the drop
// detector's sum(amount): a purchase adds its amount as given, a refund
// subtracts the absolute value of its amount.
func (c *Component) Interaction(ev *ingest.Interaction, out *processor.Output) {
	t := ev.OccurredAt.UnixNano()
	a := c.activity.acc(t, activityKey{ev.Tenant, ev.CustomerID})
	a.Events++
	a.Last = max(a.Last, t)
	switch ev.Type {
	case typePurchase:
		r := c.revenue.acc(t, revenueKey{ev.Tenant, ev.Segment, ev.Region, ev.Channel})
		r.Amount = addMoney(r.Amount, ev.Amount, out)
		r.Purchases++
	case typeRefund:
		r := c.revenue.acc(t, revenueKey{ev.Tenant, ev.Segment, ev.Region, ev.Channel})
		r.Amount = addMoney(r.Amount, -math.Abs(ev.Amount), out)
		r.Refunds++
	case typeComplaint:
		c.complaints.acc(t, complaintsKey{ev.Tenant, ev.Region, ev.Segment}).Complaints++
	case typeTicketOpened:
		c.complaints.acc(t, complaintsKey{ev.Tenant, ev.Region, ev.Segment}).TicketsOpened++
	case typeComplaintResolved:
		c.complaints.acc(t, complaintsKey{ev.Tenant, ev.Region, ev.Segment}).Resolved++
	}
}

// addMoney is sum + f as Money, saturated at ±MaxMoney (MoneyFromFloat,
// Money.Add); a clamp of either is counted in out.Saturated, which the
// engine reports as Stats.Saturated.
func addMoney(sum Money, f float64, out *processor.Output) Money {
	m := MoneyFromFloat(f)
	s := sum.Add(m)
	// Both are within ±MaxMoney, so sum+m is exact in int64.
	if f != f || math.Abs(f) >= MaxMoney.Float() || s != sum+m {
		out.Saturated++
	}
	return s
}

// Receipt implements processor.Component.
func (c *Component) Receipt(r *ingest.Receipt, _ *processor.Output) {
	k := deliveryKey{r.Tenant, r.Channel, r.Provider, r.CampaignID, r.Status}
	c.delivery.acc(r.OccurredAt.UnixNano(), k).Receipts++
}

// dueWindow is one window that became final.
type dueWindow struct {
	end, start int64
	set        int // index in Component.sets
}

// Advance implements processor.Component: it emits the rows of every window
// whose end the watermark reached, ordered by window end, then table
// (revenue, activity, complaints, delivery), then dimensions.
func (c *Component) Advance(wm time.Time, out *processor.Output) {
	w := wm.UnixNano()
	next := int64(math.MaxInt64)
	for _, s := range c.sets {
		next = min(next, s.nextEnd())
	}
	if w < next {
		return // the common case: replay advances after every record
	}
	due := c.due[:0]
	for i, s := range c.sets {
		for _, start := range s.takeDue(w) {
			due = append(due, dueWindow{end: start + s.size(), start: start, set: i})
		}
	}
	slices.SortFunc(due, func(a, b dueWindow) int {
		if a.end != b.end {
			return cmpInt(a.end, b.end)
		}
		return a.set - b.set
	})
	for _, d := range due {
		c.sets[d.set].emit(d.start, out)
	}
	c.due = due[:0]
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// OpenWindows is the number of (window, dimensions) accumulators held; for
// tests and metrics.
func (c *Component) OpenWindows() int {
	n := 0
	for _, s := range c.sets {
		n += s.groups()
	}
	return n
}

func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func emitRevenue(shard uint16, start, end int64, k revenueKey, a *revenueAcc, out *processor.Output) {
	out.Aggregates = append(out.Aggregates, Revenue{
		Shard:  shard,
		Tenant: k.Tenant, Segment: k.Segment, Region: k.Region, Channel: k.Channel,
		WindowStart: utc(start), WindowEnd: utc(end),
		Amount: a.Amount, Purchases: a.Purchases, Refunds: a.Refunds,
	})
}

func emitActivity(shard uint16, start, end int64, k activityKey, a *activityAcc, out *processor.Output) {
	out.Aggregates = append(out.Aggregates, Activity{
		Shard:  shard,
		Tenant: k.Tenant, CustomerID: k.CustomerID,
		WindowStart: utc(start), WindowEnd: utc(end),
		Events: a.Events, LastActivity: utc(a.Last),
	})
}

func emitComplaints(shard uint16, start, end int64, k complaintsKey, a *complaintsAcc, out *processor.Output) {
	out.Aggregates = append(out.Aggregates, Complaints{
		Shard:  shard,
		Tenant: k.Tenant, Region: k.Region, Segment: k.Segment,
		WindowStart: utc(start), WindowEnd: utc(end),
		Complaints: a.Complaints, TicketsOpened: a.TicketsOpened, Resolved: a.Resolved,
	})
}

func emitDelivery(shard uint16, start, end int64, k deliveryKey, a *deliveryAcc, out *processor.Output) {
	out.Aggregates = append(out.Aggregates, Delivery{
		Shard:  shard,
		Tenant: k.Tenant, Channel: k.Channel, Provider: k.Provider, CampaignID: k.CampaignID, Status: k.Status,
		WindowStart: utc(start), WindowEnd: utc(end), Receipts: a.Receipts,
	})
}

// stateVersion guards against restoring a snapshot of an incompatible build.
const stateVersion = 1

// state is the snapshot: the window sizes (a snapshot is refused by a
// component configured with other sizes, whose windows would not line up)
// and every open accumulator, sorted so equal states encode to equal bytes.
type state struct {
	Version                int
	Window, ActivityWindow int64
	Revenue                []entry[revenueKey, revenueAcc]
	Activity               []entry[activityKey, activityAcc]
	Complaints             []entry[complaintsKey, complaintsAcc]
	Delivery               []entry[deliveryKey, deliveryAcc]
}

// MarshalState implements processor.Component.
func (c *Component) MarshalState() ([]byte, error) {
	st := state{
		Version: stateVersion, Window: int64(c.cfg.Window), ActivityWindow: int64(c.cfg.ActivityWindow),
		Revenue: c.revenue.entries(), Activity: c.activity.entries(),
		Complaints: c.complaints.entries(), Delivery: c.delivery.entries(),
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return nil, fmt.Errorf("encoding aggregate state: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalState implements processor.Component. It replaces every open
// window of c.
func (c *Component) UnmarshalState(data []byte) error {
	var st state
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("decoding aggregate state: %w", err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("aggregate state version %d, this build reads %d", st.Version, stateVersion)
	}
	if st.Window != int64(c.cfg.Window) || st.ActivityWindow != int64(c.cfg.ActivityWindow) {
		return fmt.Errorf("aggregate state has windows %s/%s, the component is configured with %s/%s",
			time.Duration(st.Window), time.Duration(st.ActivityWindow), c.cfg.Window, c.cfg.ActivityWindow)
	}
	c.reset()
	c.revenue.load(st.Revenue)
	c.activity.load(st.Activity)
	c.complaints.load(st.Complaints)
	c.delivery.load(st.Delivery)
	return nil
}

// StateKeys is the number of open aggregate groups.
func (c *Component) StateKeys() int { return c.OpenWindows() }
