package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/record"
)

// TestDemoRecipients: the demo's screen names who an alert goes to — the
// account_manager label, else the profile version current at starts_at,
// else the team.
func TestDemoRecipients(t *testing.T) {
	r, err := newRecipients([]byte(`{"customer_id":"c1","tenant":"acme","updated_at":"2026-11-01T00:00:00Z","account_manager":"am1@example.com"}
{"customer_id":"c1","tenant":"acme","updated_at":"2026-11-05T00:00:00Z","account_manager":"am2@example.com"}
{"customer_id":"c1","tenant":"acme","updated_at":"2026-11-09T00:00:00Z","deleted":true}
{"customer_id":"c1","tenant":"globex","updated_at":"2026-11-01T00:00:00Z","account_manager":"am5@example.com"}
`), &rules.File{Rules: []*rules.Rule{
		{Name: "reminder", CustomerLabels: []string{"tier", "account_manager"}},
		{Name: "team_only"},
	}})
	require.NoError(t, err)
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	for _, tc := range []struct {
		name   string
		labels map[string]string
		starts string
		want   string
	}{
		{"the label wins", map[string]string{"account_manager": "am3@example.com", "customer_id": "c1", "tenant": "acme"},
			"2026-11-02T00:00:00Z", "am3@example.com"},
		{"the first version", map[string]string{"customer_id": "c1", "tenant": "acme", "team": "finance"},
			"2026-11-02T00:00:00Z", "am1@example.com (profile)"},
		{"the version current at starts_at", map[string]string{"customer_id": "c1", "tenant": "acme"},
			"2026-11-05T00:00:00Z", "am2@example.com (profile)"},
		{"a deleted profile falls back to the team", map[string]string{"customer_id": "c1", "tenant": "acme", "team": "finance"},
			"2026-11-10T00:00:00Z", "team finance"},
		{"before any version", map[string]string{"customer_id": "c1", "tenant": "acme", "team": "finance"},
			"2026-10-10T00:00:00Z", "team finance"},
		{"another tenant's customer", map[string]string{"customer_id": "c1", "tenant": "globex"},
			"2026-11-10T00:00:00Z", "am5@example.com (profile)"},
		{"a group alert", map[string]string{"tenant": "acme", "segment": "smb", "team": "revenue"},
			"2026-11-10T00:00:00Z", "team revenue"},
		{"no team", map[string]string{"tenant": "acme"}, "2026-11-10T00:00:00Z", "default route"},
		{"a rule without customer_labels goes to its team", map[string]string{"customer_id": "c1", "tenant": "acme", "team": "care"},
			"2026-11-02T00:00:00Z", "team care"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rule := "reminder"
			if strings.HasPrefix(tc.name, "a rule without") { // the one case about the rule
				rule = "team_only"
			}
			a := processor.Alert{Rule: rule, Labels: tc.labels, StartsAt: at(tc.starts)}
			require.Equal(t, tc.want, r.of(&a))
		})
	}
}

// TestDemoDigestLine: a digest on the demo's screen names its recipient
// (the account manager, else the group), its period, its counts, metrics
// and classes.
func TestDemoDigestLine(t *testing.T) {
	end := time.Date(2026, 11, 20, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		d    record.Digest
		want string
	}{
		{record.Digest{Digest: "account_manager_daily", Group: map[string]string{"tenant": "acme", "account_manager": "am2@example.com"},
			PeriodStart: end.Add(-24 * time.Hour), PeriodEnd: end, Fired: make([]record.DigestAlert, 2), Open: make([]record.DigestAlert, 1),
			Metrics: map[string]float64{"revenue": 74330.73000000001, "buyers": 45}, Segments: map[string]int{"new": 47, "loyal": 0}},
			"DIGEST account_manager_daily  → am2@example.com              11-19 01:00..11-20 01:00 fired=2 resolved=0 open=1 buyers=45 revenue=74330.73 classes: loyal=0 new=47"},
		{record.Digest{Digest: "month_end_receivables", Group: map[string]string{"tenant": "acme"},
			PeriodStart: end.Add(-30 * 24 * time.Hour), PeriodEnd: end},
			"DIGEST month_end_receivables  → map[tenant:acme]             10-21 01:00..11-20 01:00 fired=0 resolved=0 open=0"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, digestLine(&tt.d))
	}
}
