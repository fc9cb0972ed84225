package processor_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

const lifecycle = `
version: 1
segments:
  - name: lifecycle
    key: [tenant, customer_id]
    track: {type: [purchase, login, visit]}
    window: 180d
    classes:
      - {name: potential, max_total: 0}
      - {name: new,       tenure_under: 30d}
      - {name: loyal,     min_count: 4, recency_under: 45d}
      - {name: active,    recency_under: 60d}
      - {name: at_risk,   recency_under: 120d}
      - {name: churned}
`

// shortWindow has a 40-day look-back, so purchases leave it within a test.
const shortWindow = `
version: 1
segments:
  - name: lifecycle
    key: [tenant, customer_id]
    window: 40d
    classes:
      - {name: new,    tenure_under: 30d}
      - {name: loyal,  min_count: 4, recency_under: 45d}
      - {name: active, recency_under: 60d}
      - {name: gone}
`

const amounts = `
version: 1
segments:
  - name: value
    key: [customer_id]
    purchase: {type: [purchase, refund]}
    window: 30d
    classes:
      - {name: twice, min_count: 2}
      - {name: big,   min_amount: 100}
      - {name: small}
  - name: plain
    key: [customer_id]
    window: 30d
    classes:
      - {name: big,   min_amount: 100}
      - {name: small}
`

const trackOnly = `
version: 1
segments:
  - name: s
    key: [tenant, customer_id]
    track: {type: [login]}
    classes:
      - {name: buyer,   recency_under: 10d}
      - {name: lapsed,  recency_over: 10d}
      - {name: other}
`

const twoSets = `
version: 1
segments:
  - {name: b_set, key: [tenant, customer_id], classes: [{name: all}]}
  - {name: a_set, key: [tenant, customer_id], classes: [{name: buyer, max_total: 0}, {name: all}]}
`

// trans renders transitions as "set customer from>to @offset" (from "null"
// for a first class), in output order.
func trans(out *processor.Output) []string {
	var s []string
	for _, t := range out.Transitions {
		from := "null"
		if t.From != nil {
			from = *t.From
		}
		s = append(s, t.SegmentSet+" "+t.CustomerID+" "+from+">"+t.To+" @"+off(t.At))
	}
	return s
}

func TestSegments(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		steps []step
		want  []string
	}{
		{
			name:  "a tracked login makes a key known, and its first class has from null",
			rules: lifecycle,
			steps: []step{ev("login", "c1", "1h"), wm("2h")},
			want:  []string{"lifecycle c1 null>potential @" + o("1h")},
		},
		{
			name:  "a change at t waits until the watermark is strictly past t",
			rules: lifecycle,
			steps: []step{ev("login", "c1", "1h"), wm("1h")},
			want:  nil,
		},
		{
			name:  "a change at t is emitted once the watermark is one nanosecond past it",
			rules: lifecycle,
			steps: []step{ev("login", "c1", "1h"), wm("1h1ns")},
			want:  []string{"lifecycle c1 null>potential @" + o("1h")},
		},
		{
			name:  "an interaction that track does not name makes no key known",
			rules: lifecycle,
			steps: []step{ev("complaint", "c1", "1h"), wm("200d")},
			want:  nil,
		},
		{
			name:  "bounds are exact: tenure_under 30d ends at first purchase + 30d, recency_under 60d and 120d at last + 60d and + 120d",
			rules: lifecycle,
			steps: []step{ev("purchase", "c1", "0s"), wm("30d"), wm("30d1ns"), wm("60d"), wm("60d1ns"), wm("120d1ns"), wm("400d")},
			want: []string{
				"lifecycle c1 null>new @" + o("0s"),
				"lifecycle c1 new>active @" + o("30d"),
				"lifecycle c1 active>at_risk @" + o("60d"),
				"lifecycle c1 at_risk>churned @" + o("120d"),
			},
		},
		{
			name:  "at exactly last purchase + 45d recency_under 45d no longer holds",
			rules: lifecycle,
			steps: []step{ev("purchase", "c1", "0s"), ev("purchase", "c1", "1d"), ev("purchase", "c1", "2d"), ev("purchase", "c1", "35d"), wm("80d1ns")},
			want: []string{
				"lifecycle c1 null>new @" + o("0s"),
				"lifecycle c1 new>active @" + o("30d"),
				"lifecycle c1 active>loyal @" + o("35d"),
				"lifecycle c1 loyal>active @" + o("80d"), // 35d + 45d
			},
		},
		{
			name:  "changes at one instant collapse: tenure passing and the fourth purchase at 30d give one new>loyal",
			rules: lifecycle,
			steps: []step{ev("purchase", "c1", "0s"), ev("purchase", "c1", "10d"), ev("purchase", "c1", "20d"), ev("purchase", "c1", "30d"), wm("31d")},
			want: []string{
				"lifecycle c1 null>new @" + o("0s"),
				"lifecycle c1 new>loyal @" + o("30d"),
			},
		},
		{
			name:  "a key that returns to its class at one instant emits nothing; a purchase leaving the look-back moves it",
			rules: shortWindow,
			steps: []step{
				ev("purchase", "c1", "0s"), ev("purchase", "c1", "1d"), ev("purchase", "c1", "2d"), ev("purchase", "c1", "3d"),
				// At 40d the purchase at 0 leaves the look-back and one arrives: still 4.
				ev("purchase", "c1", "40d"), wm("40d1ns"),
				wm("45d"),
			},
			want: []string{
				"lifecycle c1 null>new @" + o("0s"),
				"lifecycle c1 new>loyal @" + o("30d"),
				"lifecycle c1 loyal>active @" + o("41d"), // the purchase at 1d leaves: 3 left
			},
		},
		{
			name:  "a refund matched by purchase only subtracts from amount; one not matched changes nothing",
			rules: amounts,
			steps: []step{ev("purchase", "c1", "0s", amount(150)), ev("refund", "c1", "1h", amount(80)), wm("2h")},
			want: []string{
				"plain c1 null>big @" + o("0s"),
				"value c1 null>big @" + o("0s"),
				"value c1 big>small @" + o("1h"), // 70 left, and the refund is not a second purchase
			},
		},
		{
			name:  "a negative refund amount subtracts all the same",
			rules: amounts,
			steps: []step{ev("purchase", "c1", "0s", amount(150)), ev("refund", "c1", "1h", amount(-80)), wm("2h")},
			want: []string{
				"plain c1 null>big @" + o("0s"),
				"value c1 null>big @" + o("0s"),
				"value c1 big>small @" + o("1h"),
			},
		},
		{
			name:  "amount comes back when a refund leaves the look-back before its purchase",
			rules: amounts,
			steps: []step{ev("refund", "c1", "0s", amount(80)), ev("purchase", "c1", "1h", amount(150)), wm("31d")},
			want: []string{
				"plain c1 null>small @" + o("0s"), // a refund is tracked like any interaction
				"value c1 null>small @" + o("0s"), // amount −80
				"plain c1 small>big @" + o("1h"),
				"value c1 small>big @" + o("30d"), // the refund leaves: 150
				"plain c1 big>small @" + o("30d1h"),
				"value c1 big>small @" + o("30d1h"),
			},
		},
		{
			name:  "purchases are tracked even where track does not name them; an untracked visit is not",
			rules: trackOnly,
			steps: []step{ev("visit", "c2", "0s"), ev("purchase", "c1", "1h"), ev("login", "c3", "2h"), wm("12d")},
			want: []string{
				"s c1 null>buyer @" + o("1h"),
				"s c3 null>lapsed @" + o("2h"), // no purchase: recency is infinite
				"s c1 buyer>lapsed @" + o("10d1h"),
			},
		},
		{
			name:  "a watermark jump across several instants takes them in time order, across keys",
			rules: lifecycle,
			steps: []step{ev("purchase", "c1", "0s"), ev("purchase", "c2", "10d"), wm("10d"), wm("200d")},
			want: []string{
				"lifecycle c1 null>new @" + o("0s"),
				"lifecycle c2 null>new @" + o("10d"),
				"lifecycle c1 new>active @" + o("30d"),
				"lifecycle c2 new>active @" + o("40d"),
				"lifecycle c1 active>at_risk @" + o("60d"),
				"lifecycle c2 active>at_risk @" + o("70d"),
				"lifecycle c1 at_risk>churned @" + o("120d"),
				"lifecycle c2 at_risk>churned @" + o("130d"),
			},
		},
		{
			name:  "a record that arrives early is applied at its own instant, not before",
			rules: lifecycle,
			steps: []step{ev("purchase", "c1", "0s"), wm("1s"), ev("purchase", "c1", "70d"), wm("250d")},
			want: []string{
				"lifecycle c1 null>new @" + o("0s"),
				"lifecycle c1 new>active @" + o("30d"),
				"lifecycle c1 active>at_risk @" + o("60d"),
				"lifecycle c1 at_risk>active @" + o("70d"),
				"lifecycle c1 active>at_risk @" + o("130d"),
				"lifecycle c1 at_risk>churned @" + o("190d"),
			},
		},
		{
			name:  "records out of order within the lateness give the same classes",
			rules: lifecycle,
			steps: []step{ev("purchase", "c1", "2d"), ev("login", "c1", "1d"), ev("purchase", "c1", "0s"), wm("3d")},
			want: []string{
				"lifecycle c1 null>new @" + o("0s"),
			},
		},
		{
			name:  "a login before the first purchase: potential, then new",
			rules: lifecycle,
			steps: []step{ev("login", "c1", "0s"), ev("purchase", "c1", "1d"), wm("2d")},
			want: []string{
				"lifecycle c1 null>potential @" + o("0s"),
				"lifecycle c1 potential>new @" + o("1d"),
			},
		},
		{
			name:  "transitions at one instant are ordered by segment set, then key",
			rules: twoSets,
			steps: []step{ev("login", "c2", "1h"), ev("login", "c1", "1h"), wm("2h")},
			want: []string{
				"a_set c1 null>buyer @" + o("1h"),
				"a_set c2 null>buyer @" + o("1h"),
				"b_set c1 null>all @" + o("1h"),
				"b_set c2 null>all @" + o("1h"),
			},
		},
		{
			name:  "bounds of counts and amounts are inclusive: min_amount 100 holds at exactly 100",
			rules: amounts,
			steps: []step{ev("purchase", "c1", "0s", amount(100)), ev("purchase", "c2", "0s", amount(99.99)), wm("1s")},
			want: []string{
				"plain c1 null>big @" + o("0s"),
				"plain c2 null>small @" + o("0s"),
				"value c1 null>big @" + o("0s"),
				"value c2 null>small @" + o("0s"),
			},
		},
		{
			name: "without a purchase tenure is infinite: tenure_under never holds",
			rules: `
version: 1
segments:
  - {name: s, key: [customer_id], classes: [{name: new, tenure_under: 3650d}, {name: other}]}
`,
			steps: []step{ev("login", "c1", "0s"), ev("purchase", "c1", "1h"), wm("2h")},
			want:  []string{"s c1 null>other @" + o("0s"), "s c1 other>new @" + o("1h")},
		},
		{
			name:  "a late record is refused and changes nothing",
			rules: lifecycle,
			steps: []step{ev("login", "c1", "1h"), wm("2h"), late(ev("purchase", "c1", "90m")), wm("3h")},
			want:  []string{"lifecycle c1 null>potential @" + o("1h")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, tc.rules, tc.steps...)
			require.Equal(t, tc.want, trans(out))
		})
	}
}

func TestSegmentTenant(t *testing.T) {
	const byCustomer = `
version: 1
segments:
  - {name: s, key: [customer_id], classes: [{name: all}]}
  - {name: t, key: [tenant, customer_id], classes: [{name: all}]}
`
	other := func(e *ingest.Interaction) { e.Tenant = "globex" }
	out := run(t, byCustomer, ev("login", "c1", "2h"), ev("login", "c1", "1h", other), wm("3h"))
	require.Len(t, out.Transitions, 3)
	// Without a tenant field, the tenant is that of the key's first tracked record.
	require.Equal(t, processor.Transition{SegmentSet: "s", Key: map[string]string{"customer_id": "c1"}, Tenant: "globex",
		CustomerID: "c1", To: "all", At: mustAt("1h")}, out.Transitions[0])
	// With one, it is the key's: two keys, one per tenant.
	require.Equal(t, map[string]string{"tenant": "globex", "customer_id": "c1"}, out.Transitions[1].Key)
	require.Equal(t, "globex", out.Transitions[1].Tenant)
	require.Equal(t, map[string]string{"tenant": "acme", "customer_id": "c1"}, out.Transitions[2].Key)
	require.Equal(t, "acme", out.Transitions[2].Tenant)
}

const slipping = lifecycle + `
rules:
  - name: slipping
    kind: threshold
    source: segments
    match: {segment_set: [lifecycle], to: [at_risk]}
    group_by: [tenant]
    window: 1d
    value: count
    op: ">="
    threshold: 1
  - name: newcomers
    kind: threshold
    source: segments
    match: {from: [""]}
    group_by: [tenant, to]
    window: 1h
    value: distinct(customer_id)
    op: ">="
    threshold: 2
`

func TestRulesOnSegments(t *testing.T) {
	out := run(t, slipping,
		ev("purchase", "c1", "0s"), ev("purchase", "c2", "1d"), ev("login", "c3", "30m"), ev("login", "c4", "40m"),
		wm("300d"))
	require.Equal(t, []string{
		"lifecycle c1 null>new @" + o("0s"),
		"lifecycle c3 null>potential @" + o("30m"),
		"lifecycle c4 null>potential @" + o("40m"),
		"lifecycle c2 null>new @" + o("1d"),
		"lifecycle c1 new>active @" + o("30d"),
		"lifecycle c2 new>active @" + o("31d"),
		"lifecycle c1 active>at_risk @" + o("60d"),
		"lifecycle c2 active>at_risk @" + o("61d"),
		"lifecycle c1 at_risk>churned @" + o("120d"),
		"lifecycle c2 at_risk>churned @" + o("121d"),
	}, trans(out))
	type al struct{ Rule, State, Group, Starts, Ends string }
	var got []al
	for _, a := range out.Alerts {
		x := al{a.Rule, a.State, a.Labels["tenant"] + "/" + a.Labels["to"], off(a.StartsAt), ""}
		if a.EndsAt != nil {
			x.Ends = off(*a.EndsAt)
		}
		got = append(got, x)
	}
	require.Equal(t, []al{
		// null reads as "": c3 and c4 both start as potential within the hour.
		{"newcomers", "firing", "acme/potential", o("40m"), ""},
		{"newcomers", "resolved", "acme/potential", o("40m"), o("1h30m")},
		// The transition at 61d reaches the rule before its timer at 61d
		// (the end of c1's window) fires, so the alert goes on firing.
		{"slipping", "firing", "acme/", o("60d"), ""},
		{"slipping", "resolved", "acme/", o("60d"), o("62d")},
	}, got)
}

// TestSegmentsDoNotDependOnArrivalOrder: the same records, in time order or
// shuffled within the allowed lateness, give the same transitions: classes
// are decided in event time.
func TestSegmentsDoNotDependOnArrivalOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	types := []string{"purchase", "purchase", "refund", "login", "visit", "complaint"}
	var recs []*ingest.Interaction
	for i := range 400 {
		recs = append(recs, &ingest.Interaction{EventID: "e" + itoa(i), Type: types[rng.IntN(len(types))],
			CustomerID: "c" + itoa(rng.IntN(8)), Tenant: "acme", Amount: float64(rng.IntN(5)) * 33.3,
			OccurredAt: base.Add(time.Duration(rng.IntN(3*24*60)) * time.Minute)})
	}
	const yaml = `
version: 1
defaults: {allowed_lateness: 100d}
segments:
  - name: s
    key: [customer_id]
    purchase: {type: [purchase, refund]}
    window: 12h
    classes:
      - {name: heavy, min_count: 3, min_amount: 60}
      - {name: fresh, tenure_under: 6h}
      - {name: recent, recency_under: 2h}
      - {name: lapsed, recency_over: 1d}
      - {name: other}
`
	runOrder := func(recs []*ingest.Interaction) []processor.Transition {
		e := newEngine(t, yaml)
		for _, r := range recs {
			require.NoError(t, e.Interaction(r))
			e.AdvanceFromEvents()
		}
		e.Advance(base.Add(10 * 24 * time.Hour))
		return e.Output().Transitions
	}
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b *ingest.Interaction) int { return a.OccurredAt.Compare(b.OccurredAt) })
	want := runOrder(sorted)
	require.Greater(t, len(want), 50)
	for k := range 3 {
		shuffled := slices.Clone(recs)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		require.Equal(t, want, runOrder(shuffled), "shuffle %d", k)
	}
}

// TestEventRuleOnSegments: the seed's "loyal customer slipping": an event
// rule on transitions, matching a profile field, with the account manager
// from the profile current at the transition in its labels.
func TestEventRuleOnSegments(t *testing.T) {
	const yaml = shortWindow + `
rules:
  - name: slipping
    kind: event
    source: segments
    match: {from: [loyal], to: [active], customer.tier: [gold]}
    group_by: [tenant, customer_id]
    customer_labels: [account_manager]
    lasts: 1d
`
	buys := func(c string) []step {
		return []step{ev("purchase", c, "0s"), ev("purchase", c, "1d"), ev("purchase", c, "2d"), ev("purchase", c, "3d")}
	}
	steps := []step{
		prof("c1", "0s", func(c *ingest.Customer) { c.Tier, c.AccountManager = "gold", "ann@example.com" }),
		// From 40d, c1 is bob's: the transition at 40d (the purchase at 0
		// leaving the look-back) reads that version.
		prof("c1", "40d", func(c *ingest.Customer) { c.Tier, c.AccountManager = "gold", "bob@example.com" }),
		prof("c2", "0s", func(c *ingest.Customer) { c.Tier = "silver" }),
	}
	steps = append(append(append(steps, buys("c1")...), buys("c2")...), wm("50d"))
	out := run(t, yaml, steps...)
	require.Contains(t, trans(out), "lifecycle c2 loyal>active @"+o("40d"))
	require.Len(t, out.Alerts, 2, "c2 is silver: only c1's transition matches")
	fire, res := out.Alerts[0], out.Alerts[1]
	require.Equal(t, "firing", fire.State)
	require.Equal(t, mustAt("40d"), fire.StartsAt)
	require.Equal(t, map[string]string{"alertname": "slipping", "tenant": "acme", "customer_id": "c1",
		"account_manager": "bob@example.com"}, fire.Labels)
	require.Equal(t, "resolved", res.State)
	require.Equal(t, mustAt("41d"), *res.EndsAt)
	require.Equal(t, fire.Labels, res.Labels)
}
