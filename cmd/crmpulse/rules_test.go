package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRulesTestExitCodes(t *testing.T) {
	const dir = "../../processor/rulestest/testdata/tests/"
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"pass", []string{dir + "passing.yaml"}, exitOK, "4 tests, 4 passed, 0 failed"},
		{"example", []string{"../../examples/rules_test.yaml"}, exitOK, "0 failed"},
		{"fail", []string{dir + "failing.yaml"}, exitFailure, "FAIL  wrong firing set"},
		{"bad file", []string{dir + "bad-names.yaml"}, exitUsage, ""},
		{"bad file wins over a failure", []string{dir + "failing.yaml", dir + "bad-yaml.yaml", dir + "passing.yaml"}, exitUsage, "4 tests, 4 passed"},
		{"run selects", []string{"--run", "^passes$", dir + "failing.yaml"}, exitOK, "3 skipped"},
		{"no files", nil, exitUsage, ""},
		{"bad regexp", []string{"--run", "(", dir + "passing.yaml"}, exitUsage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cmdRulesTest(tc.args, &stdout, &stderr)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			require.Contains(t, stdout.String(), tc.out)
			if tc.code == exitUsage {
				require.NotEmpty(t, stderr.String())
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, exitOK, cmdVersion(&out, nil))
	require.Contains(t, out.String(), "crmpulse, version ")
	require.Contains(t, out.String(), "go version:")
	out.Reset()
	require.Equal(t, exitOK, cmdVersion(&out, []string{"--help"}))
	require.True(t, strings.HasPrefix(out.String(), "Usage: crmpulse version"), out.String())
	require.Equal(t, exitUsage, cmdVersion(&out, []string{"extra"}))
}

// TestEverySubcommandHelp: every subcommand's --help exits 0 and starts
// with the same "Usage: crmpulse <command>" line.
func TestEverySubcommandHelp(t *testing.T) {
	for _, cmd := range [][]string{
		{"run"}, {"replay"}, {"migrate"}, {"rules"}, {"rules", "check"}, {"rules", "test"},
		{"demo"}, {"gen"}, {"version"},
	} {
		t.Run(strings.Join(cmd, " "), func(t *testing.T) {
			code, out := runCrmpulse(t, nil, append(cmd, "--help")...)
			require.Equal(t, exitOK, code, out)
			first, _, _ := strings.Cut(out, "\n")
			require.True(t, strings.HasPrefix(first, "Usage: crmpulse "+cmd[0]), "first line %q", first)
		})
	}
	code, out := runCrmpulse(t, nil, "help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "Usage:")
}
