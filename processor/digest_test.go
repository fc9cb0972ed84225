package processor_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// digestRules has one daily digest at 09:00 (UTC unless zone is given) per
// tenant and account manager; the event rule big_order lasts `lasts`.
func digestRules(every, at, zone, lasts string) string {
	return fmt.Sprintf(`
version: 1
defaults: {allowed_lateness: 30m}
rules:
  - {name: big_order, kind: event, source: interactions, match: {type: [purchase]}, group_by: [tenant, customer_id], lasts: %s, customer_labels: [account_manager]}
  - {name: quiet, kind: inactivity, source: interactions, match: {type: [login]}, key: [tenant, customer_id], idle_for: 1h, customer_labels: [account_manager]}
  - {name: unlisted, kind: event, source: interactions, match: {type: [complaint]}, group_by: [tenant]}
digests:
  - name: am_daily
    schedule: {every: %s, at: "%s", timezone: %s}
    group_by: [tenant, customer.account_manager]
    alerts: [big_order, quiet]
    metrics:
      - {name: revenue, source: interactions, match: {type: [purchase, refund]}, value: sum(amount)}
      - {name: complaints, source: interactions, match: {type: [complaint]}, value: count}
      - {name: buyers, source: interactions, match: {type: [purchase]}, value: distinct(customer_id)}
      - {name: bounced, source: receipts, match: {status: [hard_bounce]}, value: count}
`, lasts, every, at, zone)
}

var daily = digestRules("day", "09:00", "UTC", "2h")

// dbrief is a digest reduced to what the tables compare: the group's
// account manager, the period as offsets from base, the alerts as
// rule@starts_at (resolved ones rule@starts_at-ends_at) and the metrics.
type dbrief struct {
	AM                    string
	Start, End            string
	Fired, Resolved, Open []string
	Metrics               map[string]float64
}

func dbriefs(out *processor.Output) []dbrief {
	var bs []dbrief
	for _, d := range out.Digests {
		b := dbrief{AM: d.Group["account_manager"], Start: off(d.PeriodStart), End: off(d.PeriodEnd), Metrics: d.Metrics}
		for _, l := range []struct {
			in  []processor.DigestAlert
			out *[]string
		}{{d.Fired, &b.Fired}, {d.Resolved, &b.Resolved}, {d.Open, &b.Open}} {
			for _, a := range l.in {
				s := a.Rule + "@" + off(a.StartsAt)
				if a.EndsAt != nil {
					s += "-" + off(*a.EndsAt)
				}
				*l.out = append(*l.out, s)
			}
		}
		bs = append(bs, b)
	}
	return bs
}

func m(revenue, complaints, buyers, bounced float64) map[string]float64 {
	return map[string]float64{"revenue": revenue, "complaints": complaints, "buyers": buyers, "bounced": bounced}
}

func TestDigest(t *testing.T) {
	buy := func(cust, when string, amt float64) step { return ev("purchase", cust, when, amount(amt)) }
	ann := prof("c1", "-48h", am("ann@x"))
	bob := prof("c2", "-48h", am("bob@x"))
	tests := []struct {
		name  string
		rules string
		steps []step
		want  []dbrief
	}{
		{
			name:  "once the watermark is past E, the period [S, E) ends with one record for the group; S is the previous instant",
			rules: daily,
			steps: []step{ann, buy("c1", "10:00", 100), wm("33h"), wm("33h1m")},
			want: []dbrief{{AM: "ann@x", Start: o("9h"), End: o("33h"), Fired: []string{"big_order@" + o("10:00")},
				Resolved: []string{"big_order@" + o("10:00") + "-" + o("12:00")}, Metrics: m(100, 0, 1, 0)}},
		},
		{
			name:  "a period with nothing to report produces no record",
			rules: daily,
			steps: []step{ann, ev("visit", "c1", "10:00"), wm("60h"), buy("c1", "60h", 5), wm("82h")},
			want:  []dbrief{{AM: "ann@x", Start: o("57h"), End: o("81h"), Fired: []string{"big_order@" + o("60h")}, Resolved: []string{"big_order@" + o("60h") + "-" + o("62h")}, Metrics: m(5, 0, 1, 0)}},
		},
		{
			name:  "a watermark jump across several scheduled instants produces every digest, in order",
			rules: daily,
			steps: []step{ann, prof("c2", "-48h", am("ann@x")), prof("c3", "-48h", am("ann@x")), buy("c1", "10:00", 1), buy("c2", "34h", 2), buy("c3", "58h", 3), wm("100h")},
			want: []dbrief{
				{AM: "ann@x", Start: o("9h"), End: o("33h"), Fired: []string{"big_order@" + o("10h")}, Resolved: []string{"big_order@" + o("10h") + "-" + o("12h")}, Metrics: m(1, 0, 1, 0)},
				{AM: "ann@x", Start: o("33h"), End: o("57h"), Fired: []string{"big_order@" + o("34h")}, Resolved: []string{"big_order@" + o("34h") + "-" + o("36h")}, Metrics: m(2, 0, 1, 0)},
				{AM: "ann@x", Start: o("57h"), End: o("81h"), Fired: []string{"big_order@" + o("58h")}, Resolved: []string{"big_order@" + o("58h") + "-" + o("60h")}, Metrics: m(3, 0, 1, 0)},
			},
		},
		{
			name:  "refunds subtract in sum(amount); count and distinct count matching records",
			rules: daily,
			steps: []step{ann, buy("c1", "10:00", 100), ev("refund", "c1", "11:00", amount(30)), buy("c1", "11:30", 5), ev("complaint", "c1", "12:00"), ev("complaint", "c1", "12:10"), wm("34h")},
			want: []dbrief{{AM: "ann@x", Start: o("9h"), End: o("33h"), Fired: []string{"big_order@" + o("10h")},
				Resolved: []string{"big_order@" + o("10h") + "-" + o("13h30m")}, Metrics: m(75, 2, 1, 0)}},
		},
		{
			name:  "an alert fired before S and resolved in the period is in resolved, not in fired or open; one firing at E is open",
			rules: digestRules("day", "09:00", "UTC", "30h"),
			steps: []step{ann, buy("c1", "10:00", 1), wm("58h")},
			want: []dbrief{
				{AM: "ann@x", Start: o("9h"), End: o("33h"), Fired: []string{"big_order@" + o("10h")}, Open: []string{"big_order@" + o("10h")}, Metrics: m(1, 0, 1, 0)},
				{AM: "ann@x", Start: o("33h"), End: o("57h"), Resolved: []string{"big_order@" + o("10h") + "-" + o("40h")}, Metrics: m(0, 0, 0, 0)},
			},
		},
		{
			name:  "an alert still firing is open in every digest until it resolves",
			rules: digestRules("day", "09:00", "UTC", "30h"),
			steps: []step{ann, buy("c1", "10:00", 1), buy("c1", "32h", 1), buy("c1", "56h", 0), wm("82h")},
			want: []dbrief{
				{AM: "ann@x", Start: o("9h"), End: o("33h"), Fired: []string{"big_order@" + o("10h")}, Open: []string{"big_order@" + o("10h")}, Metrics: m(2, 0, 1, 0)},
				{AM: "ann@x", Start: o("33h"), End: o("57h"), Open: []string{"big_order@" + o("10h")}, Metrics: m(0, 0, 1, 0)},
				{AM: "ann@x", Start: o("57h"), End: o("81h"), Open: []string{"big_order@" + o("10h")}, Metrics: m(0, 0, 0, 0)},
			},
		},
		{
			name:  "an alert a timer fires just before E is in the digest at E although the watermark jumps past both; one at E is in the next",
			rules: daily,
			steps: []step{ann, ev("login", "c1", "07:30"), ev("login", "c1", "00:30"), wm("40h")},
			want: []dbrief{
				{AM: "ann@x", Start: o("-15h"), End: o("9h"), Fired: []string{"quiet@" + o("8h30m")}, Open: []string{"quiet@" + o("8h30m")}, Metrics: m(0, 0, 0, 0)},
				{AM: "ann@x", Start: o("9h"), End: o("33h"), Open: []string{"quiet@" + o("8h30m")}, Metrics: m(0, 0, 0, 0)},
			},
		},
		{
			name:  "alerts resolved exactly at E belong to the next period and are not open at E",
			rules: digestRules("day", "09:00", "UTC", "1h"),
			steps: []step{ann, buy("c1", "08:00", 1), wm("34h")},
			want: []dbrief{
				{AM: "ann@x", Start: o("-15h"), End: o("9h"), Fired: []string{"big_order@" + o("8h")}, Metrics: m(1, 0, 1, 0)},
				{AM: "ann@x", Start: o("9h"), End: o("33h"), Resolved: []string{"big_order@" + o("8h") + "-" + o("9h")}, Metrics: m(0, 0, 0, 0)},
			},
		},
		{
			name:  "groups by customer.account_manager: from alert labels (customer_labels) and from records' profiles; absent reads unknown",
			rules: daily,
			steps: []step{ann, bob, buy("c1", "10:00", 1), buy("c2", "10:05", 2), buy("c3", "10:10", 4), rc("m1", "c2", "hard_bounce", "11:00"), wm("34h")},
			want: []dbrief{
				{AM: "ann@x", Start: o("9h"), End: o("33h"), Fired: []string{"big_order@" + o("10h")}, Resolved: []string{"big_order@" + o("10h") + "-" + o("12h")}, Metrics: m(1, 0, 1, 0)},
				{AM: "bob@x", Start: o("9h"), End: o("33h"), Fired: []string{"big_order@" + o("10h5m")}, Resolved: []string{"big_order@" + o("10h5m") + "-" + o("12h5m")}, Metrics: m(2, 0, 1, 1)},
				{AM: "unknown", Start: o("9h"), End: o("33h"), Fired: []string{"big_order@" + o("10h10m")}, Resolved: []string{"big_order@" + o("10h10m") + "-" + o("12h10m")}, Metrics: m(4, 0, 1, 0)},
			},
		},
		{
			name:  "a record reads the profile current at its occurred_at",
			rules: daily,
			steps: []step{ann, ev("refund", "c1", "10:00", amount(1)), prof("c1", "11:00", am("bob@x")), ev("refund", "c1", "12:00", amount(2)), wm("34h")},
			want: []dbrief{
				{AM: "ann@x", Start: o("9h"), End: o("33h"), Metrics: m(-1, 0, 0, 0)},
				{AM: "bob@x", Start: o("9h"), End: o("33h"), Metrics: m(-2, 0, 0, 0)},
			},
		},
		{
			name:  "alerts of rules the digest does not list are not reported",
			rules: daily,
			steps: []step{ann, ev("complaint", "c1", "10:00"), wm("34h")},
			want:  []dbrief{{AM: "ann@x", Start: o("9h"), End: o("33h"), Metrics: m(0, 1, 0, 0)}},
		},
		{
			name:  "digests start with the first E after the first record: a record on an instant opens the period it begins",
			rules: daily,
			steps: []step{ann, buy("c1", "09:00", 1), ev("refund", "c1", "08:59", amount(7)), wm("34h")},
			want:  []dbrief{{AM: "ann@x", Start: o("9h"), End: o("33h"), Fired: []string{"big_order@" + o("9h")}, Resolved: []string{"big_order@" + o("9h") + "-" + o("11h")}, Metrics: m(1, 0, 1, 0)}},
		},
		{
			name:  "weekly digests end on Mondays",
			rules: digestRules("week", "08:00", "UTC", "2h"),
			steps: []step{ann, buy("c1", "50h", 1), wm("100h"), buy("c1", "170h", 2), wm("400h")}, // Wed 4th, Mon 9th 02:00
			want: []dbrief{
				{AM: "ann@x", Start: o("8h"), End: o("176h"), Fired: []string{"big_order@" + o("50h"), "big_order@" + o("170h")},
					Resolved: []string{"big_order@" + o("50h") + "-" + o("52h"), "big_order@" + o("170h") + "-" + o("172h")}, Metrics: m(3, 0, 1, 0)},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, tc.rules, tc.steps...)
			require.Equal(t, tc.want, dbriefs(out))
			for _, d := range out.Digests {
				require.Equal(t, "acme", d.Group["tenant"])
				require.Len(t, d.Group, 2)
				require.Len(t, d.Metrics, 4, "every metric is listed, 0 included")
				require.Empty(t, d.Segments)
				require.True(t, strings.HasPrefix(d.DigestID, "am_daily:"), d.DigestID)
			}
		})
	}
}

// evAt and wmAt are steps at absolute times.
func evAt(typ, cust string, at time.Time) step {
	s := ev(typ, cust, "00:00", amount(1))
	s.i.OccurredAt = at
	return s
}

func wmAt(at time.Time) step { return step{wm: at.Sub(base).String()} }

func periods(out *processor.Output) []string {
	var ps []string
	for _, d := range out.Digests {
		ps = append(ps, d.PeriodStart.Format(time.RFC3339)+" "+d.PeriodEnd.Format(time.RFC3339))
	}
	return ps
}

func TestDigestSchedule(t *testing.T) {
	utc := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	tests := []struct {
		name  string
		rules string
		times []string // a purchase at each, then the watermark past the last period
		until string
		want  []string
	}{
		{
			name:  "daily across the end of DST in Europe/Berlin: 09:00 local every day, a 25-hour period",
			rules: digestRules("day", "09:00", "Europe/Berlin", "1h"),
			times: []string{"2026-10-24T10:00:00Z", "2026-10-25T10:00:00Z"},
			until: "2026-10-26T09:00:00Z",
			want:  []string{"2026-10-24T07:00:00Z 2026-10-25T08:00:00Z", "2026-10-25T08:00:00Z 2026-10-26T08:00:00Z"},
		},
		{
			name:  "daily across the start of DST in America/New_York: a 23-hour period",
			rules: digestRules("day", "09:00", "America/New_York", "1h"),
			times: []string{"2027-03-13T15:00:00Z", "2027-03-14T15:00:00Z"},
			until: "2027-03-15T14:00:00Z",
			want:  []string{"2027-03-13T14:00:00Z 2027-03-14T13:00:00Z", "2027-03-14T13:00:00Z 2027-03-15T13:00:00Z"},
		},
		{
			name:  "a local time that does not exist moves forward to the first that does (02:30 on the day DST starts is 03:00)",
			rules: digestRules("day", "02:30", "Europe/Berlin", "1h"),
			times: []string{"2027-03-27T12:00:00Z", "2027-03-28T12:00:00Z"},
			until: "2027-03-29T01:00:00Z",
			want:  []string{"2027-03-27T01:30:00Z 2027-03-28T01:00:00Z", "2027-03-28T01:00:00Z 2027-03-29T00:30:00Z"},
		},
		{
			name:  "monthly at the 1st: 31-day, 28-day and 29-day months, one jump across them all",
			rules: digestRules("month", "00:00", "Europe/Berlin", "1h"),
			times: []string{"2027-01-15T12:00:00Z", "2027-02-15T12:00:00Z", "2028-02-10T12:00:00Z"},
			until: "2028-03-05T00:00:00Z",
			want: []string{"2026-12-31T23:00:00Z 2027-01-31T23:00:00Z", "2027-01-31T23:00:00Z 2027-02-28T23:00:00Z",
				"2028-01-31T23:00:00Z 2028-02-29T23:00:00Z"},
		},
		{
			name:  "monthly in UTC: the period of a record on the last day of a month ends on the 1st after",
			rules: digestRules("month", "06:00", "UTC", "1h"),
			times: []string{"2026-11-30T23:00:00Z", "2026-12-01T05:59:00Z", "2026-12-01T06:00:00Z"},
			until: "2027-01-02T00:00:00Z",
			want:  []string{"2026-11-01T06:00:00Z 2026-12-01T06:00:00Z", "2026-12-01T06:00:00Z 2027-01-01T06:00:00Z"},
		},
		{
			name:  "weekly on Mondays in a zone east of UTC",
			rules: digestRules("week", "09:00", "Asia/Shanghai", "1h"),
			times: []string{"2026-11-08T20:00:00Z", "2026-11-09T02:00:00Z"}, // Mon 04:00 and 10:00 in Shanghai
			until: "2026-11-17T00:00:00Z",
			want:  []string{"2026-11-02T01:00:00Z 2026-11-09T01:00:00Z", "2026-11-09T01:00:00Z 2026-11-16T01:00:00Z"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var steps []step
			for i, s := range tc.times {
				steps = append(steps, evAt("purchase", fmt.Sprint("c", i), utc(s)))
			}
			steps = append(steps, wmAt(utc(tc.until)))
			out := run(t, tc.rules, steps...)
			require.Equal(t, tc.want, periods(out))
			ends := slices.Clone(periods(out))
			slices.Sort(ends)
			require.Equal(t, ends, periods(out), "digests come in period order")
		})
	}
}

func TestDigestJSONMatchesEncodingJSON(t *testing.T) {
	out := run(t, daily, prof("c1", "-48h", am("ann@x")), ev("purchase", "c1", "10:00", amount(12.5)), ev("purchase", "c1", "11:00", amount(1)), wm("34h"))
	require.Len(t, out.Digests, 1)
	d := out.Digests[0]
	d.EmittedAt = base.Add(40 * time.Hour)
	b, err := d.AppendJSON(nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"digest_id":"`+d.DigestID+`","digest":"am_daily","group":{"account_manager":"ann@x","tenant":"acme"},
		"period_start":"2026-11-02T09:00:00Z","period_end":"2026-11-03T09:00:00Z",
		"alerts":{"fired":[{"fingerprint":"`+d.Fired[0].Fingerprint+`","rule":"big_order","labels":{"account_manager":"ann@x","alertname":"big_order","customer_id":"c1","tenant":"acme"},"starts_at":"2026-11-02T10:00:00Z","ends_at":null,"value":1}],
		"resolved":[{"fingerprint":"`+d.Fired[0].Fingerprint+`","rule":"big_order","labels":{"account_manager":"ann@x","alertname":"big_order","customer_id":"c1","tenant":"acme"},"starts_at":"2026-11-02T10:00:00Z","ends_at":"2026-11-02T13:00:00Z","value":2}],
		"open":[]},"metrics":{"bounced":0,"buyers":1,"complaints":0,"revenue":13.5},"segments":{},"emitted_at":"2026-11-03T16:00:00Z"}`, string(b))
	require.Equal(t, byte('{'), b[0])

	// The id is deterministic in (digest, group, period_end) and tells
	// groups and periods apart.
	again := run(t, daily, prof("c1", "-48h", am("ann@x")), ev("purchase", "c1", "10:30", amount(99)), wm("34h"))
	require.Equal(t, d.DigestID, again.Digests[0].DigestID)
	other := run(t, daily, prof("c1", "-48h", am("bob@x")), ev("purchase", "c1", "10:30", amount(99)), wm("34h"))
	require.NotEqual(t, d.DigestID, other.Digests[0].DigestID)
	later := run(t, daily, prof("c1", "-48h", am("ann@x")), ev("purchase", "c1", "34h", amount(99)), wm("58h"))
	require.NotEqual(t, d.DigestID, later.Digests[0].DigestID)
}

func TestDigestSnapshotMidPeriod(t *testing.T) {
	f, err := rules.Parse([]byte(digestRules("day", "09:00", "UTC", "30h")))
	require.NoError(t, err)
	steps := []*ingest.Interaction{
		{EventID: "a", Type: "purchase", CustomerID: "c1", Tenant: "acme", Amount: 3, OccurredAt: base.Add(10 * time.Hour)},
		{EventID: "b", Type: "complaint", CustomerID: "c1", Tenant: "acme", OccurredAt: base.Add(11 * time.Hour)},
		{EventID: "c", Type: "purchase", CustomerID: "c2", Tenant: "acme", Amount: 4, OccurredAt: base.Add(35 * time.Hour)},
	}
	whole, err := processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	for _, s := range steps {
		require.NoError(t, whole.Interaction(s))
	}
	whole.Advance(base.Add(100 * time.Hour))
	require.Len(t, whole.Output().Digests, 3)
	for cut := range len(steps) + 1 {
		first, err := processor.New(processor.Config{Rules: f})
		require.NoError(t, err)
		for _, s := range steps[:cut] {
			require.NoError(t, first.Interaction(s))
		}
		if cut < len(steps) {
			first.Advance(steps[cut].OccurredAt)
		} else {
			first.Advance(base.Add(50 * time.Hour))
		}
		snap, err := first.Snapshot()
		require.NoError(t, err)
		second, err := processor.New(processor.Config{Rules: f})
		require.NoError(t, err)
		require.NoError(t, second.Restore(snap))
		for _, s := range steps[cut:] {
			require.NoError(t, second.Interaction(s))
		}
		second.Advance(base.Add(100 * time.Hour))
		got := append(slices.Clone(first.Output().Digests), second.Output().Digests...)
		require.Equal(t, whole.Output().Digests, got, "cut %d", cut)
	}
}

// lagRules has a drop rule whose `for: 2` fires one window after the
// condition began: its firing is decided after E while its starts_at is
// before E.
const lagRules = `
version: 1
defaults: {allowed_lateness: 1m}
rules:
  - {name: orders_drop, kind: drop, source: interactions, match: {type: [purchase]}, group_by: [tenant], window: 1h, value: count, baseline: {windows: 2}, drop_pct: 50, min_baseline: 1, for: 2}
digests:
  - name: tenant_daily
    schedule: {every: day, at: "08:30"}
    group_by: [tenant]
    alerts: [orders_drop]
`

func TestDigestDoesNotDependOnWatermarkSteps(t *testing.T) {
	var input []step
	for i := range 4 {
		input = append(input, ev("purchase", "c1", fmt.Sprintf("06:%02d", i*10)))
		input = append(input, ev("purchase", "c1", fmt.Sprintf("05:%02d", 30+i*5)))
	}
	jump := run(t, lagRules, append(slices.Clone(input), wm("40h"))...)
	var fine []step
	fine = append(fine, input...)
	for m := 7 * 60; m <= 40*60; m += 7 {
		fine = append(fine, wm(fmt.Sprintf("%dm", m)))
	}
	stepped := run(t, lagRules, fine...)
	require.Equal(t, briefs(jump, "tenant"), briefs(stepped, "tenant"), "the alerts themselves do not depend on the steps")
	require.Equal(t, jump.Digests, stepped.Digests)

	// The drop fires at 09:00 with starts_at 08:00: after the digest at
	// 08:30 was made, so it is in no fired list (and that digest had
	// nothing to report); its resolution at 10:00 is in the next one.
	require.Contains(t, briefs(jump, "tenant"), brief{State: "firing", Key: "acme", Starts: o("08:00"), Value: 0})
	got := dbriefs(jump)
	require.NotEmpty(t, got)
	for _, d := range got {
		require.Empty(t, d.Fired, "period ending %s", d.End)
	}
	require.Equal(t, []dbrief{{Start: o("08:30"), End: o("32h30m"), Resolved: []string{"orders_drop@" + o("08:00") + "-" + o("10:00")}, Metrics: map[string]float64{}}}, got)
}

func TestDigestWithoutGroupByAndFromReceipts(t *testing.T) {
	yaml := `
version: 1
digests:
  - name: all_daily
    schedule: {every: day, at: "00:00"}
    metrics:
      - {name: bounces, source: receipts, match: {status: [hard_bounce]}, value: count}
      - {name: senders, source: receipts, value: distinct(customer_id)}
`
	out := run(t, yaml, rc("m1", "c1", "sent", "10:00"), rc("m1", "c1", "hard_bounce", "10:05"), rc("m2", "c2", "sent", "11:00"), wm("25h"))
	require.Len(t, out.Digests, 1, "a receipt starts digests too")
	d := out.Digests[0]
	require.Empty(t, d.Group, "no group_by: one group")
	require.Equal(t, map[string]float64{"bounces": 1, "senders": 2}, d.Metrics)
	require.Equal(t, base, d.PeriodStart)
	require.Equal(t, base.Add(24*time.Hour), d.PeriodEnd)
	b, err := d.AppendJSON(nil)
	require.NoError(t, err)
	require.Contains(t, string(b), `"group":{}`)
}
