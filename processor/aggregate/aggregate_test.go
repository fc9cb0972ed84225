package aggregate_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/rules"
)

var day = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// hm is an offset from day: "09:15", or "26:30" for the next day.
func hm(s string) time.Time {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil {
		panic(err)
	}
	return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// step feeds an interaction, a receipt, or advances the watermark.
type step struct {
	i  *ingest.Interaction
	r  *ingest.Receipt
	wm string
}

var seq int

func in(typ, cust, when string, amount float64, dims ...string) step {
	seq++
	e := &ingest.Interaction{EventID: "e" + strconv.Itoa(seq), Type: typ, CustomerID: cust, OccurredAt: hm(when),
		Tenant: "acme", Segment: "smb", Region: "apac", Channel: "web", Amount: amount}
	if len(dims) > 0 {
		e.Segment = dims[0]
	}
	if len(dims) > 1 {
		e.Region = dims[1]
	}
	return step{i: e}
}

func rc(status, when, provider string) step {
	seq++
	return step{r: &ingest.Receipt{ReceiptID: "r" + strconv.Itoa(seq), MessageID: "m" + strconv.Itoa(seq), CustomerID: "c1",
		Channel: "sms", Status: status, OccurredAt: hm(when), Attempt: 1, Tenant: "acme", Provider: provider, CampaignID: "spring"}}
}

func wm(when string) step { return step{wm: when} }

func run(t *testing.T, c *aggregate.Component, steps []step) []processor.Aggregate {
	t.Helper()
	var out processor.Output
	for _, s := range steps {
		switch {
		case s.i != nil:
			c.Interaction(s.i, &out)
		case s.r != nil:
			c.Receipt(s.r, &out)
		default:
			c.Advance(hm(s.wm), &out)
		}
	}
	return out.Aggregates
}

func window(start string, d time.Duration) (time.Time, time.Time) {
	s := hm(start)
	return s, s.Add(d)
}

func revenue(start, seg string, amount string, purchases, refunds uint64) aggregate.Revenue {
	s, e := window(start, time.Hour)
	m, err := strconv.ParseFloat(amount, 64)
	if err != nil {
		panic(err)
	}
	return aggregate.Revenue{Tenant: "acme", Segment: seg, Region: "apac", Channel: "web", WindowStart: s, WindowEnd: e,
		Amount: aggregate.MoneyFromFloat(m), Purchases: purchases, Refunds: refunds}
}

func activity(startDay, cust string, events uint64, last string) aggregate.Activity {
	s, e := window(startDay, 24*time.Hour)
	return aggregate.Activity{Tenant: "acme", CustomerID: cust, WindowStart: s, WindowEnd: e, Events: events, LastActivity: hm(last)}
}

func TestComponent(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []processor.Aggregate
	}{
		{
			name: "revenue with refunds: purchases add, refunds subtract whatever their sign",
			steps: []step{
				in("purchase", "c1", "09:05", 100), in("purchase", "c2", "09:10", 50.25),
				in("refund", "c1", "09:20", 30), in("refund", "c2", "09:30", -0.25),
				in("purchase", "c3", "09:40", 10, "gold"),
				wm("10:00"),
			},
			// Activity is not emitted: its day window is still open.
			want: []processor.Aggregate{revenue("09:00", "gold", "10", 1, 0), revenue("09:00", "smb", "120", 2, 2)},
		},
		{
			name: "a window is final when the watermark reaches its end, and emitted once",
			steps: []step{
				in("purchase", "c1", "09:59", 5),
				wm("09:59"), // nothing: [09:00, 10:00) is still open
				in("purchase", "c1", "09:59", 7),
				wm("10:00"),
				wm("10:30"), // nothing again
				in("purchase", "c1", "10:01", 1),
				wm("11:00"),
			},
			want: []processor.Aggregate{revenue("09:00", "smb", "12", 2, 0), revenue("10:00", "smb", "1", 1, 0)},
		},
		{
			name: "a jump of the watermark closes every window it passes, in order",
			steps: []step{
				in("purchase", "c2", "13:00", 3), in("purchase", "c1", "09:00", 2), in("login", "c1", "23:59", 0),
				in("purchase", "c1", "24:10", 4),
				wm("26:00"),
			},
			want: []processor.Aggregate{
				revenue("09:00", "smb", "2", 1, 0),
				revenue("13:00", "smb", "3", 1, 0),
				activity("00:00", "c1", 2, "23:59"), // the day ends at 24:00, after 13:00's window
				activity("00:00", "c2", 1, "13:00"),
				revenue("24:00", "smb", "4", 1, 0),
			},
		},
		{
			name: "complaints and delivery counts",
			steps: []step{
				in("complaint", "c1", "09:01", 0), in("complaint", "c2", "09:02", 0), in("ticket_opened", "c1", "09:03", 0),
				in("complaint_resolved", "c1", "09:50", 0), in("complaint", "c3", "09:04", 0, "smb", "emea"),
				rc("sent", "09:00", "twilio"), rc("failed", "09:01", "twilio"), rc("sent", "09:02", "twilio"),
				rc("sent", "09:03", "sinch"),
				wm("10:00"),
			},
			want: func() []processor.Aggregate {
				s, e := window("09:00", time.Hour)
				d := func(p, st string, n uint64) aggregate.Delivery {
					return aggregate.Delivery{Tenant: "acme", Channel: "sms", Provider: p, CampaignID: "spring", Status: st,
						WindowStart: s, WindowEnd: e, Receipts: n}
				}
				return []processor.Aggregate{
					aggregate.Complaints{Tenant: "acme", Region: "apac", Segment: "smb", WindowStart: s, WindowEnd: e,
						Complaints: 2, TicketsOpened: 1, Resolved: 1},
					aggregate.Complaints{Tenant: "acme", Region: "emea", Segment: "smb", WindowStart: s, WindowEnd: e, Complaints: 1},
					d("sinch", "sent", 1), d("twilio", "failed", 1), d("twilio", "sent", 2),
				}
			}(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := aggregate.New(aggregate.Config{})
			require.NoError(t, err)
			require.Equal(t, tc.want, run(t, c, tc.steps))
		})
	}
}

func TestMoney(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.0000"}, {1, "1.0000"}, {-1.5, "-1.5000"}, {0.00005, "0.0001"}, {-0.00005, "-0.0001"},
		{19.99, "19.9900"}, {123456789.12345, "123456789.1235"}, {1e300, "99999999999999.9999"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, aggregate.MoneyFromFloat(tc.in).String(), "%v", tc.in)
	}
	// Ten cents ten times is exactly one unit, unlike float64 sums.
	var m aggregate.Money
	for range 10 {
		m = m.Add(aggregate.MoneyFromFloat(0.1))
	}
	require.Equal(t, "1.0000", m.String())
	require.Equal(t, aggregate.MaxMoney, aggregate.MaxMoney.Add(1))
}

func TestIDs(t *testing.T) {
	s, e := window("09:00", time.Hour)
	a := aggregate.Revenue{Tenant: "a|b", Segment: "c", WindowStart: s, WindowEnd: e}
	b := aggregate.Revenue{Tenant: "a", Segment: "b|c", WindowStart: s, WindowEnd: e}
	require.NotEqual(t, a.ID(), b.ID())
	require.Equal(t, a.ID(), aggregate.Revenue{Tenant: "a|b", Segment: "c", WindowStart: s, WindowEnd: e, Amount: 5}.ID(),
		"the id names the row, not its values")
	require.Equal(t, "revenue|0|1793610000|1793613600|acme|smb|apac|web", revenue("09:00", "smb", "1", 1, 0).ID())
	require.Equal(t, aggregate.TableActivity, activity("00:00", "c1", 1, "01:00").Table())
	other := revenue("09:00", "smb", "1", 1, 0)
	other.Shard = 3
	require.Equal(t, "revenue|3|1793610000|1793613600|acme|smb|apac|web", other.ID(),
		"partial rows of two shards are two rows")
}

// TestShard: every row a component emits carries its shard.
func TestShard(t *testing.T) {
	c, err := aggregate.New(aggregate.Config{Shard: 7})
	require.NoError(t, err)
	rows := run(t, c, []step{
		in("purchase", "c1", "09:05", 10), in("complaint", "c1", "09:06", 0), rc("delivered", "09:07", "ses"),
		wm("48:00"),
	})
	require.Len(t, rows, 4)
	for _, r := range rows {
		require.Contains(t, r.ID(), "|7|", r.Table())
	}
}

func TestConfig(t *testing.T) {
	_, err := aggregate.New(aggregate.Config{Window: 1500 * time.Millisecond})
	require.ErrorContains(t, err, "window")
	_, err = aggregate.New(aggregate.Config{ActivityWindow: -time.Hour})
	require.ErrorContains(t, err, "activity_window")
	_, err = aggregate.New(aggregate.Config{Shard: 1 << 16})
	require.ErrorContains(t, err, "shard")
}

// randomSteps is a day and a half of mixed traffic with the watermark
// following the events at 10 minutes' lateness.
func randomSteps(seed uint64, n int) []step {
	r := rand.New(rand.NewPCG(seed, 1))
	types := []string{"purchase", "refund", "login", "complaint", "ticket_opened", "complaint_resolved", "visit"}
	statuses := []string{"sent", "delivered", "failed", "soft_bounce"}
	var steps []step
	cur := 0 // minutes since day
	for range n {
		cur += r.IntN(3)
		at := max(cur-r.IntN(10), 0) // up to 10 minutes out of order
		when := fmt.Sprintf("%02d:%02d", at/60, at%60)
		if r.IntN(4) == 0 {
			steps = append(steps, rc(statuses[r.IntN(len(statuses))], when, []string{"a", "b"}[r.IntN(2)]))
		} else {
			steps = append(steps, in(types[r.IntN(len(types))], "c"+strconv.Itoa(r.IntN(20)), when,
				float64(r.IntN(10000))/100, []string{"smb", "gold"}[r.IntN(2)], []string{"apac", "emea"}[r.IntN(2)]))
		}
		w := max(cur-10, 0)
		steps = append(steps, wm(fmt.Sprintf("%02d:%02d", w/60, w%60)))
	}
	end := cur + 24*60
	return append(steps, wm(fmt.Sprintf("%02d:%02d", end/60, end%60)))
}

// TestSnapshotRestore checks that a component restored from a snapshot
// taken anywhere mid-stream continues exactly like one never interrupted.
func TestSnapshotRestore(t *testing.T) {
	steps := randomSteps(7, 1500)
	ref, err := aggregate.New(aggregate.Config{})
	require.NoError(t, err)
	want := run(t, ref, steps)
	require.Greater(t, len(want), 100)
	require.Zero(t, ref.OpenWindows())

	for _, cut := range []int{1, 500, 1001, 1777, 2999} {
		t.Run(strconv.Itoa(cut), func(t *testing.T) {
			a, err := aggregate.New(aggregate.Config{})
			require.NoError(t, err)
			got := run(t, a, steps[:cut])
			snap, err := a.MarshalState()
			require.NoError(t, err)
			again, err := a.MarshalState()
			require.NoError(t, err)
			require.Equal(t, snap, again, "snapshots are deterministic")

			b, err := aggregate.New(aggregate.Config{})
			require.NoError(t, err)
			require.NoError(t, b.UnmarshalState(snap))
			require.Equal(t, a.OpenWindows(), b.OpenWindows())
			got = append(got, run(t, b, steps[cut:])...)
			require.Equal(t, want, got)
		})
	}

	t.Run("other window sizes are refused", func(t *testing.T) {
		a, err := aggregate.New(aggregate.Config{})
		require.NoError(t, err)
		snap, err := a.MarshalState()
		require.NoError(t, err)
		b, err := aggregate.New(aggregate.Config{Window: 30 * time.Minute})
		require.NoError(t, err)
		require.ErrorContains(t, b.UnmarshalState(snap), "windows 1h0m0s/24h0m0s")
		require.Error(t, b.UnmarshalState([]byte("junk")))
	})
}

// TestInEngine runs the component inside the real engine: late records
// never reach it, so every window is emitted once, and the engine's
// snapshot carries the component's state.
func TestInEngine(t *testing.T) {
	rf, err := rules.Parse([]byte("version: 1\ndefaults: {timezone: UTC, allowed_lateness: 10m}\nrules: []\n"))
	require.NoError(t, err)
	newEngine := func() *processor.Engine {
		c, err := aggregate.New(aggregate.Config{})
		require.NoError(t, err)
		e, err := processor.New(processor.Config{Rules: rf, Extra: []processor.Component{c}})
		require.NoError(t, err)
		return e
	}
	feed := func(e *processor.Engine, steps []step) []processor.Aggregate {
		for _, s := range steps {
			switch {
			case s.i != nil:
				_ = e.Interaction(s.i) // late and duplicate records are refused; that is the point
			case s.r != nil:
				_ = e.Receipt(s.r)
			default:
				continue
			}
			e.AdvanceFromEvents()
		}
		out := append([]processor.Aggregate(nil), e.Output().Aggregates...)
		e.Output().Reset()
		return out
	}
	steps := []step{
		in("purchase", "c1", "09:05", 10), in("purchase", "c1", "10:09", 1), // watermark 09:59
		in("purchase", "c1", "09:59", 5), // at the watermark: still in time
		in("purchase", "c1", "10:30", 1), // watermark 10:20: 09:00 is final
		in("purchase", "c1", "09:30", 5), // late: refused, 09:00 not re-emitted
	}
	whole := newEngine()
	want := feed(whole, steps)
	whole.Advance(hm("48:00"))
	want = append(want, whole.Output().Aggregates...)

	first := newEngine()
	got := feed(first, steps[:2])
	snap, err := first.Snapshot()
	require.NoError(t, err)
	second := newEngine()
	require.NoError(t, second.Restore(snap))
	got = append(got, feed(second, steps[2:])...)
	second.Advance(hm("48:00"))
	got = append(got, second.Output().Aggregates...)
	require.Equal(t, want, got)

	var rev []processor.Aggregate
	for _, a := range got {
		if a.Table() == aggregate.TableRevenue {
			rev = append(rev, a)
		}
	}
	require.Equal(t, []processor.Aggregate{revenue("09:00", "smb", "15", 2, 0), revenue("10:00", "smb", "2", 2, 0)}, rev)
}
