package processor_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
)

// base is Monday 2026-11-02T00:00Z; 09:00 in Asia/Shanghai (the default
// zone) is 01:00Z, so a birthday 11-05 fires at offset 3d1h.
const calendarRules = `
version: 1
defaults: {timezone: Asia/Shanghai, allowed_lateness: 0s}
rules:
  - name: birthday
    kind: calendar
    source: customers
    date: attributes.birthday
    repeat: yearly
    at: "09:00"
    lasts: 12h
    customer_labels: [account_manager]
    labels: {team: crm}
  - name: renewal
    kind: calendar
    source: customers
    match: {tier: [gold]}
    date: attributes.contract_end
    repeat: once
    at: "10:00"
    offset: -1d
  - name: gap
    kind: calendar
    source: customers
    date: attributes.gap_day
    repeat: yearly
    at: "02:30"
`

func utcOff(y int, m time.Month, d, h int) string {
	return off(time.Date(y, m, d, h, 0, 0, 0, time.UTC))
}

func TestCalendar(t *testing.T) {
	bday := func(when, date string, opts ...popt) step {
		return prof("c1", when, append([]popt{pattr("birthday", date)}, opts...)...)
	}
	first := ev("visit", "c9", "00:00") // the first record the engine processes
	tests := []struct {
		name  string
		steps []step
		want  []brief
	}{
		{
			name:  "a yearly date fires at `at` local time in defaults.timezone when the watermark passes it, and resolves after lasts",
			steps: []step{first, bday("00:00", "11-05"), wm("3d0h59m"), wm("3d1h"), wm("3d13h")},
			want: []brief{{State: "firing", Key: "birthday", Starts: o("3d1h")},
				{State: "resolved", Key: "birthday", Starts: o("3d1h"), Ends: o("3d13h")}},
		},
		{
			name:  "the local time is in the customer's timezone",
			steps: []step{first, bday("00:00", "11-05", zone("Europe/Paris")), wm("3d9h")},
			want:  []brief{{State: "firing", Key: "birthday", Starts: o("3d8h")}},
		},
		{
			name:  "yearly fires every year",
			steps: []step{first, bday("00:00", "1984-11-05"), wm("3d13h"), wm("368d2h")},
			want: []brief{{State: "firing", Key: "birthday", Starts: o("3d1h")},
				{State: "resolved", Key: "birthday", Starts: o("3d1h"), Ends: o("3d13h")},
				{State: "firing", Key: "birthday", Starts: utcOff(2027, 11, 5, 1)}},
		},
		{
			name:  "a date with a year repeats from that year on",
			steps: []step{first, bday("00:00", "2027-11-05"), wm("3d2h"), wm("368d2h")},
			want:  []brief{{State: "firing", Key: "birthday", Starts: utcOff(2027, 11, 5, 1)}},
		},
		{
			name:  "29 February gives 28 February in other years",
			steps: []step{first, bday("00:00", "02-29"), wm("200d")},
			want: []brief{{State: "firing", Key: "birthday", Starts: utcOff(2027, 2, 28, 1)},
				{State: "resolved", Key: "birthday", Starts: utcOff(2027, 2, 28, 1), Ends: utcOff(2027, 2, 28, 13)}},
		},
		{
			name:  "once fires one time, its date moved by offset: -1d is the day before at `at`, value = offset",
			steps: []step{first, prof("c1", "00:00", tier("gold"), pattr("contract_end", "2026-11-10")), wm("800d")},
			want: []brief{{State: "firing", Key: "renewal", Starts: o("7d2h"), Value: -86400},
				{State: "resolved", Key: "renewal", Starts: o("7d2h"), Ends: o("8d2h"), Value: -86400}},
		},
		{
			name:  "match reads the profile's own fields",
			steps: []step{first, prof("c1", "00:00", tier("silver"), pattr("contract_end", "2026-11-10")), wm("30d")},
		},
		{
			name:  "once needs YYYY-MM-DD: MM-DD gives no reminder",
			steps: []step{first, prof("c1", "00:00", tier("gold"), pattr("contract_end", "11-10")), wm("800d")},
		},
		{
			name:  "a date that does not parse gives no reminder",
			steps: []step{first, bday("00:00", "5 November"), bday("1d", "2026-13-01"), wm("800d")},
		},
		{
			name:  "an instant counts only when it belongs to the version current at it",
			steps: []step{first, bday("00:00", "11-05"), bday("3d", "11-20"), wm("19d")},
			want: []brief{{State: "firing", Key: "birthday", Starts: o("18d1h")},
				{State: "resolved", Key: "birthday", Starts: o("18d1h"), Ends: o("18d13h")}},
		},
		{
			name:  "a version that begins after the instant does not take it back",
			steps: []step{first, bday("00:00", "11-05"), bday("3d2h", "11-20"), wm("3d2h")},
			want:  []brief{{State: "firing", Key: "birthday", Starts: o("3d1h")}},
		},
		{
			name:  "an instant earlier than the first interaction or receipt processed does not count",
			steps: []step{bday("00:00", "11-03"), ev("visit", "c9", "2d"), wm("3d"), wm("366d2h")},
			want:  []brief{{State: "firing", Key: "birthday", Starts: utcOff(2027, 11, 3, 1)}},
		},
		{
			name:  "a version read after the watermark passed an instant changes nothing for it",
			steps: []step{first, wm("3d2h"), bday("00:00", "11-05"), wm("30d")},
		},
		{
			name:  "a deleted version has no reminders",
			steps: []step{first, bday("00:00", "11-05"), prof("c1", "1d", deleted()), wm("30d")},
		},
		{
			name:  "a tombstone drops the reminders",
			steps: []step{first, bday("00:00", "11-05"), tombstone("c1"), wm("30d")},
		},
		{
			name: "a local time in a DST gap moves forward to the first that exists",
			// Paris skips 02:00–03:00 on 2027-03-28: 02:30 becomes 03:00 CEST = 01:00Z.
			steps: []step{first, prof("c1", "00:00", zone("Europe/Paris"), pattr("gap_day", "03-28")), wm("200d")},
			want: []brief{{State: "firing", Key: "gap", Starts: utcOff(2027, 3, 28, 1)},
				{State: "resolved", Key: "gap", Starts: utcOff(2027, 3, 28, 1), Ends: utcOff(2027, 3, 29, 1)}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, calendarRules, tc.steps...)
			require.Equal(t, tc.want, briefs(out, "alertname"))
			for _, a := range out.Alerts {
				require.Equal(t, "calendar", a.Kind)
				require.Equal(t, "c1", a.Labels["customer_id"])
				require.Equal(t, "acme", a.Labels["tenant"])
				require.Zero(t, a.Threshold)
				require.Nil(t, a.WindowStart)
			}
		})
	}
}

func TestCalendarRecords(t *testing.T) {
	out := run(t, calendarRules, ev("visit", "c9", "00:00"),
		prof("c1", "00:00", am("am1@x"), pattr("birthday", "11-05")), prof("c1", "3d", am("am2@x"), pattr("birthday", "11-05")),
		wm("3d1h"), prof("c1", "3d2h", am("am3@x"), pattr("birthday", "11-05")), wm("3d13h"))
	require.Len(t, out.Alerts, 2)
	want := map[string]string{"alertname": "birthday", "tenant": "acme", "customer_id": "c1", "team": "crm", "account_manager": "am2@x"}
	require.Equal(t, want, out.Alerts[0].Labels, "customer_labels from the version current at the instant")
	require.Equal(t, want, out.Alerts[1].Labels, "the resolved record carries the firing labels")

	e := newEngine(t, calendarRules)
	for _, c := range []map[string]string{{"birthday": "someday"}, {"contract_end": "11-10"}, {"birthday": "11-05"}, {}} {
		require.NoError(t, e.Customer(&ingest.Customer{CustomerID: "c1", Tenant: "acme", UpdatedAt: base, Attributes: c}))
	}
	require.Equal(t, int64(2), e.Stats().Ignored, "an unparsable date and a once rule's MM-DD are counted; a missing date is not")
}
