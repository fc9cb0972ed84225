package rulestest

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestPassingFiles(t *testing.T) {
	for _, path := range []string{
		"testdata/tests/passing.yaml",
		"testdata/tests/inline-rules.yaml",
		"../../examples/rules_test.yaml",
	} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var out bytes.Buffer
			res, err := Run(path, &out, Options{Verbose: true})
			require.NoError(t, err)
			require.Zero(t, res.Failed, "output:\n%s", out.String())
			require.Equal(t, res.Tests, res.Passed)
			require.NotContains(t, out.String(), "FAIL")
		})
	}
}

// TestFailingFile checks the failure report word for word: it is what a
// rule author reads, so its layout is part of the contract.
func TestFailingFile(t *testing.T) {
	var out bytes.Buffer
	res, err := Run("testdata/tests/failing.yaml", &out, Options{})
	require.NoError(t, err)
	require.Equal(t, Result{Tests: 4, Passed: 1, Failed: 3}, res)
	golden := "testdata/tests/failing.golden"
	if *update {
		require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String())
}

func TestRunSelectsTests(t *testing.T) {
	var out bytes.Buffer
	res, err := Run("testdata/tests/failing.yaml", &out, Options{Run: regexp.MustCompile("^passes$")})
	require.NoError(t, err)
	require.Equal(t, Result{Tests: 4, Passed: 1, Skipped: 3}, res)
	require.Equal(t, "testdata/tests/failing.yaml: 4 tests, 1 passed, 0 failed, 3 skipped\n", out.String())
}

// TestBadFiles checks that each problem in a test file is reported, with
// the file and line it is on, and that nothing is run.
func TestBadFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"bad-yaml.yaml", []string{"bad-yaml.yaml:3: not a YAML document"}},
		{"bad-fields.yaml", []string{
			"bad-fields.yaml:1: test file: unknown field rule_files (use rule_file:",
			"bad-fields.yaml:1: rule_file: missing",
			"bad-fields.yaml:5: test #1: unknown field eval_time",
			"bad-fields.yaml:14: expect_alerts: firing #1: unknown field state",
		}},
		{"bad-records.yaml", []string{
			`bad-records.yaml:6: test "bad records": interaction #1: missing_field: field customer_id`,
			`bad-records.yaml:7: test "bad records": interaction #2: occurred_at: relative time "+1h" needs the test's start`,
			`bad-records.yaml:8: test "bad records": interaction #3: wrong_type: field customer_id`,
			`bad-records.yaml:9: test "bad records": interaction #4: occurred_at: "2026-11-02 00:00:00" is neither`,
			`bad-records.yaml:11: test "bad records": receipt #1: wrong_type: field attempt`,
			`bad-records.yaml:12: test "bad records": receipt #2: must be a mapping or a JSON string`,
		}},
		{"bad-names.yaml", []string{
			`bad-names.yaml:4: test "names that are not in the rules": no rule "chrun" in the rules`,
			`bad-names.yaml:6: test "names that are not in the rules": no rule "complaint" in the rules`,
			`bad-names.yaml:10: test "names that are not in the rules": no resend policy "email_retry" in the rules`,
		}},
		// The inline rules' own messages carry the test file's line.
		{"bad-inline-rules.yaml", []string{`bad-inline-rules.yaml:2: inline rules: rule "r": field threshhold: unknown field (line 11)`}},
		{"bad-structure.yaml", []string{
			`bad-structure.yaml:6: test "same name": name already used by the test on line 3`,
			`bad-structure.yaml:8: test "same name": watermark: 2026-11-02T01:00:00Z is before the last expect_alerts time 2026-11-02T02:00:00Z`,
			`bad-structure.yaml:14: test "same name": expect_alerts: firing #2: churn{customer_id="c1"} already expected on line 13`,
			`bad-structure.yaml:15: test "same name": expect_alerts: firing #3: value: want a number, got "lots"`,
			`bad-structure.yaml:16: test "same name": expect_alerts: firing: missing (write firing: [] to expect none)`,
			`bad-structure.yaml:17: test "expects nothing": expects nothing`,
			`bad-structure.yaml:22: test "repeat without ids": interaction #1: repeat: needs a string event_id and a time in occurred_at`,
			`bad-structure.yaml:23: test "repeat without ids": interaction #2: every: needs repeat`,
			`bad-structure.yaml:24: test "repeat without ids": interaction #3: repeat: want a count from 1 to`,
		}},
		{"bad-rule-file.yaml", []string{"bad-rule-file.yaml:1: reading rules file: open testdata/tests/does-not-exist.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			var out bytes.Buffer
			res, err := Run("testdata/tests/"+tc.file, &out, Options{})
			require.Error(t, err)
			require.Zero(t, res.Tests)
			require.Empty(t, out.String())
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(tc.want), "one line per problem:\n%s", err)
			var pe *Error
			require.True(t, errors.As(err, &pe), "errors are *Error")
		})
	}
}

const inlineRules = `rules:
  version: 1
  rules:
    - {name: churn, kind: inactivity, source: interactions, key: [customer_id], idle_for: 1d, labels: {team: t}}
`

func mustParse(t *testing.T, src string) *Suite {
	t.Helper()
	s, err := Parse("t.yaml", []byte(src))
	require.NoError(t, err)
	return s
}

func TestRecordsExpansion(t *testing.T) {
	s := mustParse(t, inlineRules+`tests:
  - name: x
    start: "2026-11-02T10:00:00Z"
    input:
      interactions:
        - {type: login, customer_id: c2, occurred_at: "+1h"}
        - {event_id: b, type: login, customer_id: c1, occurred_at: "+0s", repeat: 3, every: 30m}
        - '{"event_id":"j","type":"login","customer_id":"c3","occurred_at":"2026-11-02T10:30:00+08:00"}'
        - &base {event_id: "n{n}", type: login, customer_id: "c{n}", occurred_at: "+2h", repeat: 2, every: 1h}
        - {<<: *base, event_id: m, repeat: 1}
      receipts:
        - {message_id: m, customer_id: c1, channel: sms, status: sent, occurred_at: "+1h"}
    expect_records: []
`)
	recs := s.Tests[0].records
	var got []string
	for _, r := range recs {
		id := ""
		if r.i != nil {
			id = r.i.EventID
		} else {
			id = r.r.ReceiptID
		}
		got = append(got, id+"@"+r.at.UTC().Format("15:04"))
	}
	// Time order; the interaction before the receipt on a tie; ids filled
	// in by position and suffixed by copy unless they hold {n}; merge keys
	// apply.
	require.Equal(t, []string{"j@02:30", "b-1@10:00", "b-2@10:30", "i1@11:00", "b-3@11:00", "r1@11:00",
		"n1@12:00", "m@12:00", "n2@13:00"}, got)
	var customers []string
	for _, r := range recs[6:] {
		customers = append(customers, r.i.CustomerID)
	}
	require.Equal(t, []string{"c1", "c1", "c2"}, customers, "{n} is the copy number")
}

func TestFiringLabelsAreExact(t *testing.T) {
	base := inlineRules + `tests:
  - name: x
    start: "2026-11-02T10:00:00Z"
    input:
      interactions:
        - {type: login, customer_id: c1, occurred_at: "+0s"}
    expect_alerts:
      - at: "+1d"
        rule: churn
        firing:
          - labels: LABELS
`
	for _, tc := range []struct {
		labels string
		pass   bool
	}{
		{`{customer_id: c1, team: t}`, true},
		{`{customer_id: c1, team: t, alertname: churn}`, true},
		{`{customer_id: c1, team: t, alertname: other}`, false},
		{`{customer_id: c1}`, false},
		{`{customer_id: c1, team: t, extra: x}`, false},
	} {
		t.Run(tc.labels, func(t *testing.T) {
			s := mustParse(t, strings.Replace(base, "LABELS", tc.labels, 1))
			var out bytes.Buffer
			res, err := s.Run(&out, Options{})
			require.NoError(t, err)
			require.Equal(t, tc.pass, res.Failed == 0, out.String())
		})
	}
}

func TestLatenessOverride(t *testing.T) {
	// c1's deadline is +1d. c2's login at +1d3m moves the watermark past
	// it only when no lateness is allowed; with the file's default (10m)
	// c1's own login at +1d5m arrives first and churn never fires.
	src := inlineRules + `tests:
  - name: x
    start: "2026-11-02T10:00:00Z"
    LATENESS
    input:
      interactions:
        - {type: login, customer_id: c1, occurred_at: "+0s"}
        - {type: login, customer_id: c2, occurred_at: "+1d3m"}
        - {type: login, customer_id: c1, occurred_at: "+1d5m"}
    expect_records: []
`
	for _, tc := range []struct {
		lateness string
		want     string
	}{
		{"", ""},
		{"allowed_lateness: 1h", ""},
		{"allowed_lateness: 0s", "want 0, got 2"},
	} {
		t.Run(tc.lateness, func(t *testing.T) {
			s := mustParse(t, strings.Replace(src, "LATENESS", tc.lateness, 1))
			var out bytes.Buffer
			res, err := s.Run(&out, Options{})
			require.NoError(t, err)
			if tc.want == "" {
				require.Zero(t, res.Failed, out.String())
				return
			}
			require.Contains(t, out.String(), tc.want)
			require.Contains(t, out.String(), `+ #1 unexpected  firing churn{customer_id="c1", team="t"} value=86400 starts_at=+1d`)
			require.Contains(t, out.String(), `ends_at=+1d5m`)
		})
	}
}

func TestTimes(t *testing.T) {
	c := &testCtx{p: &parser{file: "t"}, t: &Test{Start: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}}
	for in, want := range map[string]string{
		"+0s":                       "2026-11-02T10:00:00Z",
		"+7d":                       "2026-11-09T10:00:00Z",
		"+1d2h30m":                  "2026-11-03T12:30:00Z",
		"-90m":                      "2026-11-02T08:30:00Z",
		"+1w":                       "2026-11-09T10:00:00Z",
		"2026-11-02T18:00:00+08:00": "2026-11-02T10:00:00Z",
	} {
		got, err := c.parseWhen(in)
		require.NoError(t, err, in)
		require.Equal(t, want, fmtAbs(got), in)
	}
	for _, bad := range []string{"7d", "+", "+1 day", "2026-11-02", "+-1h", ""} {
		_, err := c.parseWhen(bad)
		require.Error(t, err, bad)
	}
	tf := timeFmt{start: c.t.Start}
	for d, want := range map[time.Duration]string{
		0: "+0s", 7 * 24 * time.Hour: "+7d", 26*time.Hour + 30*time.Minute: "+1d2h30m",
		90 * time.Second: "+1m30s", -2 * time.Hour: "-2h", time.Millisecond: "+1ms",
	} {
		require.Equal(t, want, tf.fmt(c.t.Start.Add(d)))
		back, err := c.parseWhen(want)
		require.NoError(t, err, "rendered times read back: %s", want)
		require.Equal(t, c.t.Start.Add(d), back)
	}
}

// TestCustomerRecords: profiles are fed by updated_at, before an
// interaction and a receipt at the same instant (SPEC §5's tie order), a
// relative updated_at resolves against start, and a profile the decoder
// refuses is an error on its line.
func TestCustomerRecords(t *testing.T) {
	src := `rules:
  version: 1
  rules:
    - {name: big, kind: event, source: interactions, match: {customer.tier: [platinum]},
       group_by: [tenant, customer_id], customer_labels: [account_manager]}
tests:
  - name: x
    start: "2026-11-02T10:00:00Z"
    allowed_lateness: 0s
    input:
      receipts:
        - {message_id: m, customer_id: c1, channel: sms, status: sent, occurred_at: "+1h"}
      interactions:
        - {type: purchase, customer_id: c1, occurred_at: "+1h"}
        - {type: purchase, customer_id: c2, occurred_at: "+1h"}
      customers:
        - {customer_id: c1, updated_at: "+1h", tier: platinum, account_manager: am1@example.com}
        - {customer_id: c2, updated_at: "+1h1s", tier: platinum, account_manager: am2@example.com}
        - '{"customer_id":"c3","updated_at":"2026-11-02T09:00:00Z","deleted":true}'
    expect_alerts:
      - at: "+2h"
        rule: big
        firing:
          - labels: {tenant: default, customer_id: c1, account_manager: am1@example.com}
`
	s := mustParse(t, src)
	var got []string
	for _, r := range s.Tests[0].records {
		switch {
		case r.cu != nil:
			got = append(got, "profile "+r.cu.CustomerID+"@"+r.at.UTC().Format("15:04:05"))
		case r.i != nil:
			got = append(got, "interaction "+r.i.CustomerID+"@"+r.at.UTC().Format("15:04:05"))
		default:
			got = append(got, "receipt "+r.r.CustomerID+"@"+r.at.UTC().Format("15:04:05"))
		}
	}
	require.Equal(t, []string{"profile c3@09:00:00", "profile c1@11:00:00", "interaction c1@11:00:00",
		"interaction c2@11:00:00", "receipt c1@11:00:00", "profile c2@11:00:01"}, got)
	// c1's profile comes first at the tie, so its purchase is a platinum
	// customer's; c2's profile comes a second after its purchase.
	var out bytes.Buffer
	res, err := s.Run(&out, Options{})
	require.NoError(t, err)
	require.Zero(t, res.Failed, out.String())

	_, err = Parse("t.yaml", []byte(strings.Replace(src, "tier: platinum, account_manager: am1@example.com",
		"timezone: Mars/Olympus", 1)))
	require.ErrorContains(t, err, `t.yaml:17: test "x": customer #1: bad_value: field timezone`)
	_, err = Parse("t.yaml", []byte(strings.Replace(src, `updated_at: "+1h1s", `, "", 1)))
	require.ErrorContains(t, err, `t.yaml:18: test "x": customer #2: missing_field: field updated_at`)
}
