package kafka

import (
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

func rec(off int64, at string) Record {
	if at == "bad" {
		return Record{Msg: kafkago.Message{Offset: off}, Err: errBad}
	}
	t, err := time.Parse("15:04", at)
	if err != nil {
		panic(err)
	}
	return Record{Msg: kafkago.Message{Offset: off}, At: t}
}

var errBad = &struct{ error }{}

func batch(caught bool, next int64, recs ...Record) *Batch {
	return &Batch{Records: recs, CaughtUp: caught, Next: next, HighWaterMark: next + map[bool]int64{true: 0, false: 5}[caught]}
}

func TestMerger(t *testing.T) {
	type fed struct {
		src int
		b   *Batch
	}
	tests := []struct {
		name string
		feed []fed
		// want is the merge order as "i<offset>" / "r<offset>", "-" where
		// Next must wait.
		want []string
	}{
		{
			name: "both pending: by time, interaction first on a tie",
			feed: []fed{
				{Interactions, batch(false, 3, rec(0, "10:00"), rec(1, "10:05"), rec(2, "10:10"))},
				{Receipts, batch(true, 2, rec(0, "10:05"), rec(1, "10:07"))},
			},
			want: []string{"i0", "i1", "r0", "r1", "i2", "-"},
		},
		{
			name: "a caught-up input does not hold the other back",
			feed: []fed{
				{Interactions, batch(false, 2, rec(0, "10:00"), rec(1, "10:05"))},
				{Receipts, batch(true, 0)},
			},
			want: []string{"i0", "i1", "-"},
		},
		{
			name: "an input with records pending holds the other back",
			feed: []fed{
				{Interactions, batch(true, 2, rec(0, "10:00"), rec(1, "10:05"))},
				{Receipts, batch(false, 0)},
			},
			want: []string{"-"},
		},
		{
			name: "a record that did not decode goes first",
			feed: []fed{
				{Interactions, batch(false, 2, rec(0, "10:00"), rec(1, "10:05"))},
				{Receipts, batch(false, 1, rec(0, "bad"))},
			},
			want: []string{"r0", "-"}, // then receipts, with records pending, holds i0 back
		},
		{
			name: "before the first batch of an input, wait",
			feed: []fed{{Interactions, batch(true, 1, rec(0, "10:00"))}},
			want: []string{"-"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMerger(nil, nil, make(chan *Batch, 8), make(chan *Batch, 8), 0, 0)
			for _, f := range tc.feed {
				m.Feed(f.src, f.b)
			}
			now := time.Now()
			var got []string
			for range tc.want {
				r, src := m.Next(now)
				if r == nil {
					got = append(got, "-")
					break
				}
				got = append(got, map[int]string{Interactions: "i", Receipts: "r"}[src]+itoa(r.Msg.Offset))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestMergerOrderWait(t *testing.T) {
	m := NewMerger(nil, nil, make(chan *Batch, 8), make(chan *Batch, 8), 0, 0)
	m.OrderWait = time.Second
	m.Feed(Interactions, batch(true, 1, rec(0, "10:00")))
	m.Feed(Receipts, batch(false, 0))
	now := time.Now()
	r, _ := m.Next(now)
	require.Nil(t, r)
	require.Equal(t, now.Add(time.Second), m.WaitDeadline())
	r, _ = m.Next(now.Add(999 * time.Millisecond))
	require.Nil(t, r)
	r, src := m.Next(now.Add(time.Second))
	require.NotNil(t, r, "a silent input stops holding the other back after OrderWait")
	require.Equal(t, Interactions, src)
	require.EqualValues(t, 1, m.Offset(Interactions))
	require.EqualValues(t, 0, m.Offset(Receipts))
	require.EqualValues(t, 5, m.Lag(Receipts))
}

func itoa(n int64) string { return string(rune('0' + n)) }

func TestCopartitionBalancer(t *testing.T) {
	var parts []kafkago.Partition
	for _, topic := range []string{"i", "r"} {
		for p := 0; p < 5; p++ {
			parts = append(parts, kafkago.Partition{Topic: topic, ID: p})
		}
	}
	members := []kafkago.GroupMember{{ID: "b", Topics: []string{"i", "r"}}, {ID: "a", Topics: []string{"i", "r"}}}
	got := CopartitionBalancer{}.AssignGroups(members, parts)
	require.Equal(t, kafkago.GroupMemberAssignments{
		"a": {"i": {0, 1, 2}, "r": {0, 1, 2}},
		"b": {"i": {3, 4}, "r": {3, 4}},
	}, got)
	one := CopartitionBalancer{}.AssignGroups(members[:1], parts)
	require.Equal(t, []int{0, 1, 2, 3, 4}, one["b"]["r"])
}

// TestMergerTakesWaitingBatch: an input whose wait looks expired (the
// caller stalled, e.g. on a full sink) is not passed over while a batch of
// it is already waiting on its channel.
func TestMergerTakesWaitingBatch(t *testing.T) {
	chI, chR := make(chan *Batch, 4), make(chan *Batch, 4)
	m := NewMerger(chI, chR, make(chan *Batch, 8), make(chan *Batch, 8), 0, 0)
	m.OrderWait = time.Second
	m.Feed(Interactions, batch(false, 2, rec(0, "10:00"), rec(1, "10:05")))
	m.Feed(Receipts, batch(false, 0))
	now := time.Now()
	r, _ := m.Next(now)
	require.Nil(t, r, "receipts are pending: wait")
	chR <- batch(true, 1, rec(0, "10:01"))
	// A minute later, as after a stall: the receipt that is now at hand
	// must still come in order, between the two interactions.
	var got []int
	for {
		r, src := m.Next(now.Add(time.Minute))
		if r == nil {
			break
		}
		got = append(got, src)
	}
	require.Equal(t, []int{Interactions, Receipts, Interactions}, got)
}

func TestMergerWithCustomers(t *testing.T) {
	type fed struct {
		src int
		b   *Batch
	}
	tombstone := func(off int64) Record { return Record{Msg: kafkago.Message{Offset: off}, Tombstone: true} }
	tests := []struct {
		name string
		feed []fed
		// want is the merge order as "c<offset>" / "i<offset>" /
		// "r<offset>", "-" where Next must wait.
		want []string
	}{
		{
			name: "on a tie the profile comes first, then the interaction, then the receipt",
			feed: []fed{
				{Interactions, batch(true, 1, rec(0, "10:00"))},
				{Receipts, batch(true, 1, rec(0, "10:00"))},
				{Customers, batch(true, 1, rec(0, "10:00"))},
			},
			want: []string{"c0", "i0", "r0", "-"},
		},
		{
			name: "profiles merge by updated_at between the events",
			feed: []fed{
				{Interactions, batch(true, 2, rec(0, "10:00"), rec(1, "10:10"))},
				{Receipts, batch(true, 1, rec(0, "10:20"))},
				{Customers, batch(true, 2, rec(0, "09:00"), rec(1, "10:05"))},
			},
			want: []string{"c0", "i0", "c1", "i1", "r0", "-"},
		},
		{
			name: "a caught-up customers topic does not hold the events back",
			feed: []fed{
				{Interactions, batch(true, 2, rec(0, "10:00"), rec(1, "10:05"))},
				{Receipts, batch(true, 0)},
				{Customers, batch(true, 0)},
			},
			want: []string{"i0", "i1", "-"},
		},
		{
			name: "a customers topic with profiles pending holds the events back",
			feed: []fed{
				{Interactions, batch(true, 1, rec(0, "10:00"))},
				{Receipts, batch(true, 0)},
				{Customers, batch(false, 0)},
			},
			want: []string{"-"},
		},
		{
			name: "a profile later than every event waits for the events' merge",
			feed: []fed{
				{Interactions, batch(false, 1, rec(0, "10:00"))},
				{Receipts, batch(true, 0)},
				{Customers, batch(true, 1, rec(0, "11:00"))},
			},
			want: []string{"i0", "-"},
		},
		{
			name: "profiles flow when the events are caught up",
			feed: []fed{
				{Interactions, batch(true, 0)},
				{Receipts, batch(true, 0)},
				{Customers, batch(true, 2, rec(0, "11:00"), rec(1, "12:00"))},
			},
			want: []string{"c0", "c1", "-"},
		},
		{
			name: "a tombstone is taken as soon as it is at the head",
			feed: []fed{
				{Interactions, batch(true, 1, rec(0, "10:00"))},
				{Receipts, batch(true, 0)},
				{Customers, batch(true, 2, rec(0, "09:00"), tombstone(1))},
			},
			want: []string{"c0", "c1", "i0", "-"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMerger(nil, nil, make(chan *Batch, 8), make(chan *Batch, 8), 0, 0).WithCustomers(nil, make(chan *Batch, 8), 0)
			require.True(t, m.HasCustomers())
			for _, f := range tc.feed {
				m.Feed(f.src, f.b)
			}
			now := time.Now()
			var got []string
			for range tc.want {
				r, src := m.Next(now)
				if r == nil {
					got = append(got, "-")
					break
				}
				got = append(got, map[int]string{Interactions: "i", Receipts: "r", Customers: "c"}[src]+itoa(r.Msg.Offset))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestMergerStartedIgnoresCustomers: the profile input never counts for
// Started, which says whether the partition may hold the watermark back.
func TestMergerStartedIgnoresCustomers(t *testing.T) {
	m := NewMerger(nil, nil, make(chan *Batch, 8), make(chan *Batch, 8), 0, 0).WithCustomers(nil, make(chan *Batch, 8), 0)
	m.Feed(Interactions, batch(true, 0))
	m.Feed(Receipts, batch(true, 0))
	require.True(t, m.Started(), "started without a batch of the customers topic")
	require.False(t, NewMerger(nil, nil, nil, nil, 0, 0).HasCustomers())
}

// TestMergerCustomersOrderWait: a customers topic that stays silent for
// OrderWait although profiles were pending stops holding the events back.
func TestMergerCustomersOrderWait(t *testing.T) {
	m := NewMerger(nil, nil, make(chan *Batch, 8), make(chan *Batch, 8), 0, 0).WithCustomers(nil, make(chan *Batch, 8), 0)
	m.OrderWait = time.Second
	m.Feed(Interactions, batch(true, 1, rec(0, "10:00")))
	m.Feed(Receipts, batch(true, 0))
	m.Feed(Customers, batch(false, 0))
	now := time.Now()
	r, _ := m.Next(now)
	require.Nil(t, r)
	require.Equal(t, now.Add(time.Second), m.WaitDeadline())
	r, src := m.Next(now.Add(time.Second))
	require.NotNil(t, r)
	require.Equal(t, Interactions, src)
	require.EqualValues(t, 5, m.Lag(Customers))
}
