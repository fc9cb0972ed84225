package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"90s", 90 * time.Second, false},
		{"15m", 15 * time.Minute, false},
		{"36h", 36 * time.Hour, false},
		{"90d", 90 * 24 * time.Hour, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"1w2d", 9 * 24 * time.Hour, false},
		{"", 0, true},
		{"d", 0, true},
		{"5x", 0, true},
		{"1h2d", 0, true},
		{"-5m", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

const head = "version: 1\nrules:\n"

func TestParseRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every substring must appear in the error
	}{
		{"unknown kind", head + "  - {name: a, kind: spike, source: interactions}\n", []string{`rule "a"`, "field kind", `unknown kind "spike"`}},
		{"missing kind", head + "  - {name: a, source: interactions}\n", []string{`rule "a"`, "field kind", "missing"}},
		{"unknown field", head + "  - {name: a, kind: inactivity, source: interactions, key: [customer_id], idle_for: 1h, idel: 2}\n", []string{`rule "a"`, "field idel: unknown field"}},
		{"parameter of another kind", head + "  - {name: a, kind: inactivity, source: interactions, key: [customer_id], idle_for: 1h, threshold: 2}\n", []string{`rule "a"`, "field threshold: unknown field"}},
		{"duplicate name", head + "  - {name: a, kind: inactivity, source: interactions, key: [customer_id], idle_for: 1h}\n  - {name: a, kind: inactivity, source: interactions, key: [customer_id], idle_for: 2h}\n", []string{`rule "a"`, "duplicate rule name"}},
		{"missing parameter", head + "  - {name: a, kind: inactivity, source: interactions, key: [customer_id]}\n", []string{`rule "a"`, "field idle_for", "missing required parameter"}},
		{"bad duration", head + "  - {name: a, kind: inactivity, source: interactions, key: [customer_id], idle_for: 3 days}\n", []string{`rule "a"`, "invalid duration"}},
		{"unknown event field in match", head + "  - {name: a, kind: inactivity, source: interactions, match: {colour: [red]}, key: [customer_id], idle_for: 1h}\n", []string{`rule "a"`, "field match", `unknown event field "colour"`}},
		{"unknown event field in group_by", head + "  - {name: a, kind: threshold, source: receipts, group_by: [segment], window: 1h, value: count, op: '>', threshold: 1}\n", []string{`rule "a"`, "field group_by", `unknown event field "segment" for source receipts`}},
		{"bad name", head + "  - {name: Churn-1, kind: inactivity, source: interactions, key: [customer_id], idle_for: 1h}\n", []string{`rule "Churn-1"`, "field name", "[a-z0-9_]+"}},
		{"bad op", head + "  - {name: a, kind: threshold, source: interactions, group_by: [tenant], window: 1h, value: count, op: '=>', threshold: 1}\n", []string{`rule "a"`, "field op"}},
		{"bad value", head + "  - {name: a, kind: threshold, source: interactions, group_by: [tenant], window: 1h, value: avg(amount), op: '>', threshold: 1}\n", []string{`rule "a"`, "field value", "avg(amount)"}},
		{"sum of a non-numeric field", head + "  - {name: a, kind: threshold, source: interactions, group_by: [tenant], window: 1h, value: sum(region), op: '>', threshold: 1}\n", []string{"field value", "not numeric"}},
		{"bad baseline", head + "  - {name: a, kind: drop, source: interactions, group_by: [tenant], window: 1h, value: count, baseline: {}, drop_pct: 50}\n", []string{`rule "a"`, "field baseline"}},
		{"season not a multiple of window", head + "  - {name: a, kind: drop, source: interactions, group_by: [tenant], window: 7h, value: count, baseline: {season: 24h, seasons: 2}, drop_pct: 50}\n", []string{"baseline.season"}},
		{"bad source", head + "  - {name: a, kind: inactivity, source: clicks, key: [customer_id], idle_for: 1h}\n", []string{`rule "a"`, "field source"}},
		{"bad version", "version: 2\n", []string{"field version"}},
		{"unknown top-level key", "version: 1\nrulez: []\n", []string{"field rulez: unknown field"}},
		{"bad timezone", "version: 1\ndefaults: {timezone: Mars/Olympus}\n", []string{"field timezone", "Mars/Olympus"}},
		{"policy without on", "version: 1\nresend:\n  - {name: p, channel: sms, max_attempts: 2}\n", []string{`resend policy "p"`, "field on"}},
		{"policy with undelivered but no undelivered_after", "version: 1\nresend:\n  - {name: p, channel: sms, on: [undelivered], max_attempts: 2}\n", []string{`resend policy "p"`, "field undelivered_after"}},
		{"policy bad quiet hours", "version: 1\nresend:\n  - {name: p, channel: sms, on: [failed], max_attempts: 2, quiet_hours: {start: '25:00', end: '08:00'}}\n", []string{`resend policy "p"`, "quiet_hours.start"}},
		{"policy unknown nested field", "version: 1\nresend:\n  - {name: p, channel: sms, on: [failed], max_attempts: 2, backoff: {initial: 5m, factor: 2}}\n", []string{`resend policy "p"`, "backoff", "field factor"}},
		{"policy unknown status", "version: 1\nresend:\n  - {name: p, channel: sms, on: [bounced], max_attempts: 2}\n", []string{`resend policy "p"`, `"bounced"`}},
		{"bad annotation template", head + "  - {name: a, kind: inactivity, source: interactions, key: [customer_id], idle_for: 1h, annotations: {summary: '{{ .Labels.x '}}\n", []string{`rule "a"`, "annotations.summary"}},
		{"not yaml", "version: [1\n", []string{"not a YAML document"}},
		{"every problem is reported", head + "  - {name: a, kind: spike, source: interactions}\n  - {name: b, kind: inactivity, source: interactions, key: [customer_id]}\n", []string{`rule "a"`, `rule "b"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestFixtures parses testdata/rules: *-good.yaml must load, *-bad.yaml
// must be refused with the error in the file's first comment line.
func TestFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/rules/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			_, err = Parse(data)
			if strings.HasSuffix(path, "-good.yaml") {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			first, _, _ := strings.Cut(string(data), "\n")
			want := strings.TrimSpace(strings.TrimPrefix(first, "# want:"))
			require.Contains(t, err.Error(), want)
		})
	}
}

func TestParseCompilesAndDefaults(t *testing.T) {
	f, err := Parse([]byte(`
version: 1
rules:
  - name: r
    kind: threshold
    source: interactions
    match: {type: [complaint]}
    group_by: [tenant, attributes.complaint_type]
    window: 1h
    value: count
    op: ">="
    threshold: 3
resend:
  - {name: p, channel: sms, on: [failed], max_attempts: 3, backoff: {initial: 5m, multiplier: 2, max: 12m}}
`))
	require.NoError(t, err)
	require.Equal(t, DefaultAllowedLateness, f.Defaults.AllowedLateness.D())
	require.Equal(t, time.UTC, f.Defaults.Location)
	r := f.Rules[0]
	require.Equal(t, "complaint_type", r.Fields[1].Label)
	require.True(t, r.Compare(3, 3))
	require.False(t, r.Compare(2, 3))
	b := f.Resend[0].Backoff
	require.Equal(t, 5*time.Minute, b.Delay(1))
	require.Equal(t, 10*time.Minute, b.Delay(2))
	require.Equal(t, 12*time.Minute, b.Delay(3), "capped at max")
	require.Len(t, f.Hash, 16)
}

func TestAnnotationFuncs(t *testing.T) {
	f, err := Parse([]byte(`
version: 1
rules:
  - name: r
    kind: inactivity
    source: interactions
    key: [customer_id]
    idle_for: 7d
    annotations:
      idle: "{{ .Value | humanizeDuration }}"
      rate: "{{ humanizePercentage 0.8438 }}"
      big: "{{ humanize 12345 }}"
      who: "{{ .Labels.customer_id | toUpper }}"
`))
	require.NoError(t, err)
	got := f.Rules[0].RenderAnnotations(map[string]string{"customer_id": "c1"}, 7*86400+3661)
	require.Equal(t, map[string]string{"idle": "7d 1h 1m 1s", "rate": "84.38%", "big": "12.35k", "who": "C1"}, got)
}
