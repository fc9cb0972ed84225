package rules

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocsRulesExamples parses every example of docs/rules.md that is a
// rule, a resend policy list, a segments section or a rules section: each
// must be accepted as it stands (wrapped in a file with defaults), so the
// page cannot teach a key the loader refuses.
func TestDocsRulesExamples(t *testing.T) {
	src, err := os.ReadFile("../../docs/rules.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(src), -1)
	const header = "version: 1\ndefaults: {timezone: UTC, allowed_lateness: 10m}\n"
	var segments string
	for _, b := range blocks {
		if strings.HasPrefix(b[1], "segments:") {
			segments = b[1]
		}
	}
	var checked int
	for _, b := range blocks {
		body := b[1]
		first := strings.SplitN(body, "\n", 2)[0]
		var file string
		switch {
		case strings.HasPrefix(first, "- name:"), strings.HasPrefix(first, "  - name:"):
			file = header + "rules:\n" + indentTo(body, "  ")
		case strings.HasPrefix(first, "resend:"), strings.HasPrefix(first, "segments:"):
			file = header + body
		case strings.HasPrefix(first, "rules:"):
			file = header + segments + body // rules on segments need the set
		default:
			continue // a fragment (annotations), the file outline, Alertmanager config
		}
		t.Run(first, func(t *testing.T) {
			_, err := Parse([]byte(file))
			require.NoError(t, err, "docs/rules.md example:\n%s", file)
		})
		checked++
	}
	require.GreaterOrEqual(t, checked, 12, "the page's examples were found")
}

// indentTo re-indents a YAML list so that its items start at prefix.
func indentTo(body, prefix string) string {
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	cut := len(lines[0]) - len(strings.TrimLeft(lines[0], " "))
	for i, l := range lines {
		if len(l) >= cut {
			l = l[cut:]
		}
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
