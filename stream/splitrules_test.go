package stream

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor/rules"
)

// TestSplitRulesSegments: segment sets stay with the partition engines;
// the group stage gets them only when one of its rules reads segments.
func TestSplitRulesSegments(t *testing.T) {
	const base = `
version: 1
defaults: {allowed_lateness: 1m}
segments:
  - name: lifecycle
    key: [tenant, customer_id]
    classes: [{name: active, recency_under: 30d}, {name: lapsed}]
rules:
  - {name: complaints, kind: threshold, source: interactions, match: {type: [complaint]}, group_by: [region], window: 1h, value: count, op: ">", threshold: 5}
`
	for _, tc := range []struct {
		name         string
		extra        string
		wantSegments bool
	}{
		{"group rules without segments", "", false},
		{"a group rule on segments", `  - {name: slipping, kind: event, source: segments, match: {to: [lapsed]}, group_by: [tenant]}` + "\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rf, err := rules.Parse([]byte(base + tc.extra))
			require.NoError(t, err)
			local, groups := splitRules(rf)
			require.Len(t, local.Segments, 1, "the partition engines run the segment set")
			require.NotNil(t, groups)
			require.Equal(t, tc.wantSegments, len(groups.Segments) > 0)
		})
	}
}
