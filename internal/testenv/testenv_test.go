package testenv_test

import (
	"os/exec"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

// outcome runs f on a fresh testing.T in its own goroutine (Skip and Fatal
// end it with runtime.Goexit) and says how it ended.
func outcome(f func(t testing.TB)) string {
	var result string
	done := make(chan struct{})
	t := &recorder{}
	go func() {
		defer close(done)
		defer func() {
			switch {
			case t.failed:
				result = "failed"
			case t.skipped:
				result = "skipped"
			default:
				result = "ran"
			}
		}()
		f(t)
	}()
	<-done
	return result
}

// recorder is a testing.TB that remembers whether it skipped or failed.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Logf(string, ...any)   {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }
func (r *recorder) Skipf(string, ...any)  { r.skipped = true; runtime.Goexit() }

func TestMissingThings(t *testing.T) {
	const unset = "CRMPULSE_TESTENV_SURELY_UNSET"
	const noTool = "crmpulse-no-such-tool"
	_, err := exec.LookPath(noTool)
	require.Error(t, err)
	tests := []struct {
		name        string
		integration string
		f           func(t testing.TB)
		want        string
	}{
		{"a missing server variable skips alone", "", func(t testing.TB) { testenv.Env(t, unset, "x") }, "skipped"},
		{"a missing server variable fails under make test", "1", func(t testing.TB) { testenv.Env(t, unset, "x") }, "failed"},
		{"a missing tool skips alone", "", func(t testing.TB) { testenv.Tool(t, noTool, "x") }, "skipped"},
		{"a missing tool fails under make test", "1", func(t testing.TB) { testenv.Tool(t, noTool, "x") }, "failed"},
		{"a missing partial tool lets the test go on alone", "", func(t testing.TB) { testenv.LookTool(t, noTool, "x") }, "ran"},
		{"a missing partial tool fails under make test", "1", func(t testing.TB) { testenv.LookTool(t, noTool, "x") }, "failed"},
		{"an optional tool skips under make test too", "1", func(t testing.TB) { testenv.OptionalTool(t, noTool, "x") }, "skipped"},
		{"an opt-in skips under make test too", "1", func(t testing.TB) { testenv.OptIn(t, unset, "x") }, "skipped"},
		{"a present variable runs", "1", func(t testing.TB) { testenv.Env(t, testenv.IntegrationEnv, "x") }, "ran"},
		{"a present tool runs", "1", func(t testing.TB) { testenv.Tool(t, "go", "x") }, "ran"},
		{"an opt-in that is set runs", "1", func(t testing.TB) { testenv.OptIn(t, testenv.IntegrationEnv, "x") }, "ran"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(testenv.IntegrationEnv, tc.integration)
			require.Equal(t, tc.want, outcome(tc.f))
		})
	}
}
