package processor_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Shanghai is UTC+8, Paris UTC+1 and New York UTC−5 in November: a resend
// due at 04:05 UTC is 12:05 in Shanghai (not quiet), 05:05 in Paris (quiet
// until 07:00 UTC) and 23:05 in New York (quiet until 13:00 UTC).
const resendCustomerRules = `
version: 1
defaults: {timezone: Asia/Shanghai, allowed_lateness: 0s}
resend:
  - name: sms_retry
    channel: sms
    on: [soft_bounce, undelivered]
    undelivered_after: 15m
    max_attempts: 3
    backoff: {initial: 5m}
    quiet_hours: {start: "22:00", end: "08:00"}
    suppress_on_interactions: [complaint]
    fallback: {after_attempts: 1, channel: email}
  - name: email_retry
    channel: email
    on: [soft_bounce]
    max_attempts: 3
    backoff: {initial: 5m}
`

func TestResendProfileZone(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  string // not_before of the one trigger
	}{
		{
			name:  "with no zone anywhere, defaults.timezone",
			steps: []step{rc("m1", "c1", "soft_bounce", "04:00")},
			want:  o("04:05"),
		},
		{
			name:  "without a recipient_tz, the customer's profile timezone",
			steps: []step{prof("c1", "01:00", zone("Europe/Paris")), rc("m1", "c1", "soft_bounce", "04:00")},
			want:  o("07:00"),
		},
		{
			name:  "the failing receipt's recipient_tz comes before the profile's",
			steps: []step{prof("c1", "01:00", zone("Europe/Paris")), rc("m1", "c1", "soft_bounce", "04:00", tz("America/New_York"))},
			want:  o("13:00"),
		},
		{
			name: "an earlier receipt of the message comes before the profile's",
			steps: []step{prof("c1", "01:00", zone("Europe/Paris")), rc("m1", "c1", "sent", "03:50", tz("America/New_York")),
				rc("m1", "c1", "soft_bounce", "04:00")},
			want: o("13:00"),
		},
		{
			name:  "the profile version current at the failure time counts, not a later one",
			steps: []step{prof("c1", "05:00", zone("Europe/Paris")), rc("m1", "c1", "soft_bounce", "04:00")},
			want:  o("04:05"),
		},
		{
			name:  "a profile without timezone falls through to defaults.timezone",
			steps: []step{prof("c1", "01:00", tier("gold")), rc("m1", "c1", "soft_bounce", "04:00")},
			want:  o("04:05"),
		},
		{
			name:  "undelivered: the profile zone at sent + undelivered_after",
			steps: []step{prof("c1", "01:00", zone("Europe/Paris")), rc("m1", "c1", "sent", "03:50"), wm("04:05")},
			want:  o("07:00"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := resends(run(t, resendCustomerRules, tc.steps...))
			require.Len(t, got, 1)
			require.Equal(t, tc.want, got[0].NotBefore)
		})
	}
}

func TestSuppressOnInteractions(t *testing.T) {
	tests := []struct {
		name      string
		steps     []step
		triggered bool
	}{
		{
			name:  "an interaction in suppress_on_interactions before the failure suppresses",
			steps: []step{ev("complaint", "c1", "03:00"), rc("m1", "c1", "soft_bounce", "04:00")},
		},
		{
			name:  "at the failure time it suppresses too",
			steps: []step{ev("complaint", "c1", "04:00"), rc("m1", "c1", "soft_bounce", "04:00")},
		},
		{
			name:      "after the failure it does not",
			steps:     []step{rc("m1", "c1", "soft_bounce", "04:00"), ev("complaint", "c1", "04:01")},
			triggered: true,
		},
		{
			name:  "it suppresses every channel: the trigger would use email (fallback), and a complaint is on no channel",
			steps: []step{ev("complaint", "c1", "03:00"), rc("m1", "c1", "soft_bounce", "04:00")},
		},
		{
			name:      "it suppresses only its own customer",
			steps:     []step{ev("complaint", "c2", "03:00"), rc("m1", "c1", "soft_bounce", "04:00")},
			triggered: true,
		},
		{
			name:      "a policy that lists other types is not suppressed by unsubscribe",
			steps:     []step{ev("unsubscribe", "c1", "03:00"), rc("m1", "c1", "soft_bounce", "04:00")},
			triggered: true,
		},
		{
			name:  "the default [unsubscribe]: an unsubscribe suppresses",
			steps: []step{ev("unsubscribe", "c1", "03:00"), rc("m1", "c1", "soft_bounce", "04:00", channel("email"))},
		},
		{
			name:      "the default does not suppress on complaints",
			steps:     []step{ev("complaint", "c1", "03:00"), rc("m1", "c1", "soft_bounce", "04:00", channel("email"))},
			triggered: true,
		},
		{
			name:  "undelivered: at or before sent + undelivered_after",
			steps: []step{rc("m1", "c1", "sent", "03:50"), ev("complaint", "c1", "04:05"), wm("04:05")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := resends(run(t, resendCustomerRules, tc.steps...))
			if tc.triggered {
				require.Len(t, got, 1)
			} else {
				require.Empty(t, got)
			}
		})
	}
}
