package processor_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// The day starts at 00:00 UTC = 08:00 in Asia/Shanghai, the default zone,
// so daytime UTC offsets up to 14:00 are outside the quiet hours there.
const resendRules = `
version: 1
defaults: {timezone: Asia/Shanghai, allowed_lateness: 0s}
resend:
  - name: sms_retry
    channel: sms
    on: [soft_bounce, failed, undelivered]
    undelivered_after: 15m
    max_attempts: 3
    backoff: {initial: 5m, multiplier: 2, max: 1h}
    quiet_hours: {start: "22:00", end: "08:00"}
    suppress_on: [hard_bounce, complained, unsubscribed]
    frequency_cap: {max: 3, per: 24h}
    fallback: {after_attempts: 2, channel: email}
`

// rs is a resend record reduced for tables.
type rs struct {
	Action, Msg string
	Attempt     int
	Channel     string
	Reason      string
	NotBefore   string
}

func resends(out *processor.Output) []rs {
	var r []rs
	for _, x := range out.Resends {
		r = append(r, rs{x.Action, x.MessageID, x.Attempt, x.Channel, x.Reason, off(x.NotBefore)})
	}
	return r
}

func TestResend(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []rs
	}{
		{
			name:  "a failure status in on triggers attempt k+1 after backoff(k)",
			steps: []step{rc("m1", "c1", "sent", "02:00"), rc("m1", "c1", "soft_bounce", "02:01")},
			want:  []rs{{"resend", "m1", 2, "sms", "soft_bounce", o("02:06")}},
		},
		{
			name:  "backoff grows: attempt 2 failing waits initial × multiplier, and fallback switches attempt 3 to email",
			steps: []step{rc("m1", "c1", "failed", "02:00", attempt(2))},
			want:  []rs{{"resend", "m1", 3, "email", "failed", o("02:10")}},
		},
		{
			name:  "no trigger once k ≥ max_attempts",
			steps: []step{rc("m1", "c1", "failed", "02:00", attempt(3))},
		},
		{
			name:  "statuses not in on do not trigger",
			steps: []step{rc("m1", "c1", "rejected", "02:00")},
		},
		{
			name:  "other channels are not this policy's",
			steps: []step{rc("m1", "c1", "failed", "02:00", channel("push"))},
		},
		{
			name:  "undelivered: sent and no outcome within undelivered_after; failure time = sent + undelivered_after",
			steps: []step{rc("m1", "c1", "sent", "02:00"), wm("02:14"), wm("02:15")},
			want:  []rs{{"resend", "m1", 2, "sms", "undelivered", o("02:20")}},
		},
		{
			name:  "a delivery in time means not undelivered",
			steps: []step{rc("m1", "c1", "sent", "02:00"), rc("m1", "c1", "delivered", "02:10"), wm("03:00")},
		},
		{
			name:  "a late delivery report before not_before cancels the trigger with the same id",
			steps: []step{rc("m1", "c1", "sent", "02:00"), wm("02:15"), rc("m1", "c1", "delivered", "02:17")},
			want:  []rs{{"resend", "m1", 2, "sms", "undelivered", o("02:20")}, {"cancel", "m1", 2, "sms", "undelivered", o("02:20")}},
		},
		{
			name:  "a delivery report after not_before does not cancel",
			steps: []step{rc("m1", "c1", "sent", "02:00"), wm("02:21"), rc("m1", "c1", "delivered", "02:21")},
			want:  []rs{{"resend", "m1", 2, "sms", "undelivered", o("02:20")}},
		},
		{
			name: "one trigger per attempt: a second failure receipt and the undelivered timer add nothing",
			steps: []step{rc("m1", "c1", "sent", "02:00"), rc("m1", "c1", "soft_bounce", "02:01"),
				rc("m1", "c1", "failed", "02:02"), wm("03:00")},
			want: []rs{{"resend", "m1", 2, "sms", "soft_bounce", o("02:06")}},
		},
		{
			name:  "suppressed by an earlier unsubscribe interaction, on every channel",
			steps: []step{ev("unsubscribe", "c1", "01:00"), rc("m1", "c1", "soft_bounce", "02:00")},
		},
		{
			name:  "an unsubscribe after the failure does not suppress it",
			steps: []step{rc("m1", "c1", "soft_bounce", "02:00"), ev("unsubscribe", "c1", "03:00")},
			want:  []rs{{"resend", "m1", 2, "sms", "soft_bounce", o("02:05")}},
		},
		{
			name:  "suppressed by an earlier suppress_on receipt on the channel the trigger would use",
			steps: []step{rc("m0", "c1", "hard_bounce", "01:00"), rc("m1", "c1", "soft_bounce", "02:00")},
		},
		{
			name:  "a suppress_on receipt on another channel does not suppress",
			steps: []step{rc("m0", "c1", "complained", "01:00", channel("push")), rc("m1", "c1", "soft_bounce", "02:00")},
			want:  []rs{{"resend", "m1", 2, "sms", "soft_bounce", o("02:05")}},
		},
		{
			name:  "suppression is checked on the fallback channel",
			steps: []step{rc("m0", "c1", "unsubscribed", "01:00", channel("email")), rc("m1", "c1", "failed", "02:00", attempt(2))},
		},
		{
			name: "frequency cap: at most max triggers per customer whose failure time lies in the last per",
			steps: []step{rc("m1", "c1", "failed", "02:00"), rc("m2", "c1", "failed", "03:00"),
				rc("m3", "c1", "failed", "04:00"), rc("m4", "c1", "failed", "05:00"),
				rc("m5", "c2", "failed", "05:00"), rc("m6", "c1", "failed", "26h30m")},
			want: []rs{
				{"resend", "m1", 2, "sms", "failed", o("02:05")},
				{"resend", "m2", 2, "sms", "failed", o("03:05")},
				{"resend", "m3", 2, "sms", "failed", o("04:05")},
				{"resend", "m5", 2, "sms", "failed", o("05:05")},
				{"resend", "m6", 2, "sms", "failed", o("26h35m")},
			},
		},
		{
			name:  "quiet hours move not_before to their end in the recipient's zone (Shanghai, wraps midnight)",
			steps: []step{rc("m1", "c1", "failed", "14:00")}, // 22:05 local → 08:00 local next day
			want:  []rs{{"resend", "m1", 2, "sms", "failed", o("24h")}},
		},
		{
			name:  "after midnight inside wrapped quiet hours, the same day's end (New York)",
			steps: []step{rc("m1", "c1", "failed", "06:00", tz("America/New_York"))}, // 01:05 EST → 08:00 EST = 13:00 UTC
			want:  []rs{{"resend", "m1", 2, "sms", "failed", o("13:00")}},
		},
		{
			name:  "just before quiet hours start it is not moved (Berlin)",
			steps: []step{rc("m1", "c1", "failed", "20:54", tz("Europe/Berlin"))}, // 21:59 CET
			want:  []rs{{"resend", "m1", 2, "sms", "failed", o("20:59")}},
		},
		{
			name:  "inside quiet hours before midnight (Berlin) → next morning",
			steps: []step{rc("m1", "c1", "failed", "21:00", tz("Europe/Berlin"))}, // 22:05 CET → 08:00 CET = 07:00 UTC next day
			want:  []rs{{"resend", "m1", 2, "sms", "failed", o("31h")}},
		},
		{
			name: "receipts of a resent attempt on the fallback channel stay with the policy",
			steps: []step{rc("m1", "c1", "failed", "02:00", attempt(2)), rc("m1", "c1", "sent", "02:10", attempt(3), channel("email")),
				rc("m1", "c1", "failed", "02:11", attempt(3), channel("email"))},
			want: []rs{{"resend", "m1", 3, "email", "failed", o("02:10")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, resends(run(t, resendRules, tc.steps...)))
		})
	}
}

func TestResendTriggerRecord(t *testing.T) {
	out := run(t, resendRules, rc("m1", "c1", "soft_bounce", "02:00"))
	require.Len(t, out.Resends, 1)
	r := out.Resends[0]
	require.Equal(t, processor.TriggerID("m1", 2), r.TriggerID)
	require.Equal(t, "sms_retry", r.Policy)
	require.Equal(t, "c1", r.CustomerID)
	require.Equal(t, "acme", r.Tenant)
	require.NotEqual(t, processor.TriggerID("m1", 3), r.TriggerID)
	require.Len(t, r.TriggerID, 32)
}

func TestAfterQuietHours(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	ny, _ := time.LoadLocation("America/New_York")
	wrap := &rules.QuietHours{StartMin: 22 * 60, EndMin: 8 * 60}
	day := &rules.QuietHours{StartMin: 12 * 60, EndMin: 13 * 60}
	tests := []struct {
		name string
		q    *rules.QuietHours
		loc  *time.Location
		in   time.Time
		want time.Time
	}{
		{"outside", wrap, sh, time.Date(2026, 3, 1, 12, 0, 0, 0, sh), time.Date(2026, 3, 1, 12, 0, 0, 0, sh)},
		{"at start is inside", wrap, sh, time.Date(2026, 3, 1, 22, 0, 0, 0, sh), time.Date(2026, 3, 2, 8, 0, 0, 0, sh)},
		{"at end is outside", wrap, sh, time.Date(2026, 3, 1, 8, 0, 0, 0, sh), time.Date(2026, 3, 1, 8, 0, 0, 0, sh)},
		{"after midnight", wrap, ny, time.Date(2026, 3, 1, 3, 0, 0, 0, ny), time.Date(2026, 3, 1, 8, 0, 0, 0, ny)},
		{"before midnight, across the DST change", wrap, ny, time.Date(2026, 3, 7, 23, 0, 0, 0, ny), time.Date(2026, 3, 8, 8, 0, 0, 0, ny)},
		{"on the day DST ends, the wall clock counts, not the time since midnight", wrap, ny, time.Date(2026, 11, 1, 7, 10, 0, 0, ny), time.Date(2026, 11, 1, 8, 0, 0, 0, ny)},
		{"on the day DST starts, likewise", wrap, ny, time.Date(2026, 3, 8, 22, 30, 0, 0, ny), time.Date(2026, 3, 9, 8, 0, 0, 0, ny)},
		{"non-wrapping inside", day, sh, time.Date(2026, 3, 1, 12, 30, 0, 0, sh), time.Date(2026, 3, 1, 13, 0, 0, 0, sh)},
		{"non-wrapping outside", day, sh, time.Date(2026, 3, 1, 13, 0, 0, 0, sh), time.Date(2026, 3, 1, 13, 0, 0, 0, sh)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.True(t, tc.want.Equal(processor.AfterQuietHours(tc.in, tc.q, tc.loc)), "got %s", processor.AfterQuietHours(tc.in, tc.q, tc.loc).In(tc.loc))
		})
	}
}

// TestResendEdges puts failures, suppressions and watermarks exactly on
// the documented edges (SPEC §3.2, README "Semantics we chose"): the
// frequency cap counts triggers whose failure time lies in
// (failure − per, failure], so neither one exactly per earlier nor one
// with a later failure time (an out-of-order arrival) counts; suppression
// applies at or before the failure time; the undelivered timer fires when
// the watermark reaches sent + undelivered_after; a delivery report
// cancels only when it is before not_before.
func TestResendEdges(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []rs
	}{
		{
			name: "frequency cap: a trigger exactly per before the failure is outside the window",
			steps: []step{rc("m1", "c1", "failed", "02:00"), rc("m2", "c1", "failed", "03:00"),
				rc("m3", "c1", "failed", "04:00"), rc("m4", "c1", "failed", "26h")},
			want: []rs{
				{"resend", "m1", 2, "sms", "failed", o("02:05")},
				{"resend", "m2", 2, "sms", "failed", o("03:05")},
				{"resend", "m3", 2, "sms", "failed", o("04:05")},
				{"resend", "m4", 2, "sms", "failed", o("26h5m")},
			},
		},
		{
			name: "frequency cap: a trigger one second less than per before the failure is inside it",
			steps: []step{rc("m1", "c1", "failed", "02:00"), rc("m2", "c1", "failed", "03:00"),
				rc("m3", "c1", "failed", "04:00"), rc("m4", "c1", "failed", "25h59m59s")},
			want: []rs{
				{"resend", "m1", 2, "sms", "failed", o("02:05")},
				{"resend", "m2", 2, "sms", "failed", o("03:05")},
				{"resend", "m3", 2, "sms", "failed", o("04:05")},
			},
		},
		{
			name: "frequency cap: triggers at exactly the failure time count",
			steps: []step{rc("m1", "c1", "failed", "05:00"), rc("m2", "c1", "failed", "05:00"),
				rc("m3", "c1", "failed", "05:00"), rc("m4", "c1", "failed", "05:00")},
			want: []rs{
				{"resend", "m1", 2, "sms", "failed", o("05:05")},
				{"resend", "m2", 2, "sms", "failed", o("05:05")},
				{"resend", "m3", 2, "sms", "failed", o("05:05")},
			},
		},
		{
			name: "frequency cap: triggers with later failure times, arrived first, do not count",
			steps: []step{rc("m1", "c1", "failed", "05:00"), rc("m2", "c1", "failed", "06:00"),
				rc("m3", "c1", "failed", "07:00"), rc("m4", "c1", "failed", "04:00")},
			want: []rs{
				{"resend", "m1", 2, "sms", "failed", o("05:05")},
				{"resend", "m2", 2, "sms", "failed", o("06:05")},
				{"resend", "m3", 2, "sms", "failed", o("07:05")},
				{"resend", "m4", 2, "sms", "failed", o("04:05")},
			},
		},
		{
			name: "frequency cap: a trigger later cancelled still counts",
			steps: []step{rc("m1", "c1", "sent", "02:00"), wm("02:15"), rc("m1", "c1", "delivered", "02:16"),
				rc("m2", "c1", "failed", "03:00"), rc("m3", "c1", "failed", "04:00"), rc("m4", "c1", "failed", "05:00")},
			want: []rs{
				{"resend", "m1", 2, "sms", "undelivered", o("02:20")},
				{"cancel", "m1", 2, "sms", "undelivered", o("02:20")},
				{"resend", "m2", 2, "sms", "failed", o("03:05")},
				{"resend", "m3", 2, "sms", "failed", o("04:05")},
			},
		},
		{
			name:  "a suppress_on receipt exactly at the failure time suppresses",
			steps: []step{rc("m0", "c1", "hard_bounce", "02:00"), rc("m1", "c1", "soft_bounce", "02:00")},
		},
		{
			name:  "a suppress_on receipt one second after the failure time, arrived first, does not suppress",
			steps: []step{rc("m0", "c1", "hard_bounce", "2h0m1s"), rc("m1", "c1", "soft_bounce", "02:00")},
			want:  []rs{{"resend", "m1", 2, "sms", "soft_bounce", o("02:05")}},
		},
		{
			name:  "an unsubscribe exactly at the failure time suppresses",
			steps: []step{ev("unsubscribe", "c1", "02:00"), rc("m1", "c1", "soft_bounce", "02:00")},
		},
		{
			name:  "an unsubscribe one second after the failure time, arrived first, does not suppress",
			steps: []step{ev("unsubscribe", "c1", "2h0m1s"), rc("m1", "c1", "soft_bounce", "02:00")},
			want:  []rs{{"resend", "m1", 2, "sms", "soft_bounce", o("02:05")}},
		},
		{
			name:  "undelivered: an unsubscribe exactly at sent + undelivered_after suppresses",
			steps: []step{rc("m1", "c1", "sent", "02:00"), ev("unsubscribe", "c1", "02:15"), wm("02:15")},
		},
		{
			name:  "undelivered: a suppress_on receipt exactly at sent + undelivered_after suppresses",
			steps: []step{rc("m1", "c1", "sent", "02:00"), rc("m0", "c1", "complained", "02:15"), wm("02:15")},
		},
		{
			name:  "undelivered: one second before sent + undelivered_after the timer has not fired",
			steps: []step{rc("m1", "c1", "sent", "02:00"), wm("2h14m59s")},
		},
		{
			name:  "undelivered: the watermark exactly at sent + undelivered_after fires the timer",
			steps: []step{rc("m1", "c1", "sent", "02:00"), wm("2h14m59s"), wm("02:15")},
			want:  []rs{{"resend", "m1", 2, "sms", "undelivered", o("02:20")}},
		},
		{
			name:  "a late delivery report one second before not_before cancels",
			steps: []step{rc("m1", "c1", "sent", "02:00"), wm("02:15"), rc("m1", "c1", "delivered", "2h19m59s")},
			want:  []rs{{"resend", "m1", 2, "sms", "undelivered", o("02:20")}, {"cancel", "m1", 2, "sms", "undelivered", o("02:20")}},
		},
		{
			name:  "a late delivery report exactly at not_before does not cancel",
			steps: []step{rc("m1", "c1", "sent", "02:00"), wm("02:15"), rc("m1", "c1", "delivered", "02:20")},
			want:  []rs{{"resend", "m1", 2, "sms", "undelivered", o("02:20")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, resends(run(t, resendRules, tc.steps...)))
		})
	}
}
