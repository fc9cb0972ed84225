package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sample is go test -json for a package with a passing, a skipped and a
// failing test, one passing and one skipped subtest, and a header line of
// scripts/fuzz.sh that is not JSON.
const sample = `== ./x FuzzX (3s)
{"Action":"start","Package":"github.com/crmpulse/crmpulse/x"}
{"Action":"run","Package":"github.com/crmpulse/crmpulse/x","Test":"TestOK"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Test":"TestOK","Output":"    x_test.go:9: chatter\n"}
{"Action":"pass","Package":"github.com/crmpulse/crmpulse/x","Test":"TestOK"}
{"Action":"run","Package":"github.com/crmpulse/crmpulse/x","Test":"TestNeedsServer"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Test":"TestNeedsServer","Output":"=== RUN   TestNeedsServer\n"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Test":"TestNeedsServer","Output":"    x_test.go:12: SERVER is missing: start it\n"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Test":"TestNeedsServer","Output":"--- SKIP: TestNeedsServer (0.00s)\n"}
{"Action":"skip","Package":"github.com/crmpulse/crmpulse/x","Test":"TestNeedsServer"}
{"Action":"run","Package":"github.com/crmpulse/crmpulse/x","Test":"TestTable"}
{"Action":"run","Package":"github.com/crmpulse/crmpulse/x","Test":"TestTable/a"}
{"Action":"pass","Package":"github.com/crmpulse/crmpulse/x","Test":"TestTable/a"}
{"Action":"run","Package":"github.com/crmpulse/crmpulse/x","Test":"TestTable/b"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Test":"TestTable/b","Output":"    x_test.go:20: opt-in\n"}
{"Action":"skip","Package":"github.com/crmpulse/crmpulse/x","Test":"TestTable/b"}
{"Action":"pass","Package":"github.com/crmpulse/crmpulse/x","Test":"TestTable"}
{"Action":"run","Package":"github.com/crmpulse/crmpulse/x","Test":"TestBroken"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Test":"TestBroken","Output":"    x_test.go:30: want 1, got 2\n"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.00s)\n"}
{"Action":"fail","Package":"github.com/crmpulse/crmpulse/x","Test":"TestBroken"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Output":"FAIL\n"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/x","Output":"FAIL\tgithub.com/crmpulse/crmpulse/x\t0.01s\n"}
{"Action":"fail","Package":"github.com/crmpulse/crmpulse/x"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/y","Output":"PASS\n"}
{"Action":"output","Package":"github.com/crmpulse/crmpulse/y","Output":"ok  \tgithub.com/crmpulse/crmpulse/y\t0.01s\n"}
{"Action":"pass","Package":"github.com/crmpulse/crmpulse/y"}
`

func TestLivePrintsWhatGoTestPrints(t *testing.T) {
	var file, out strings.Builder
	failed, err := live(strings.NewReader(sample), &file, &out)
	require.NoError(t, err)
	require.True(t, failed)
	require.Equal(t, `== ./x FuzzX (3s)
    x_test.go:30: want 1, got 2
--- FAIL: TestBroken (0.00s)
FAIL
FAIL	github.com/crmpulse/crmpulse/x	0.01s
ok  	github.com/crmpulse/crmpulse/y	0.01s
`, out.String(), "package lines and failed tests only; passing and skipped tests are quiet")
	require.Equal(t, strings.Count(sample, "\n")-1, strings.Count(file.String(), "\n"), "every JSON line is copied, the header is not")
}

func TestSummaryCountsAndReasons(t *testing.T) {
	dir := t.TempDir()
	var file strings.Builder
	_, err := live(strings.NewReader(sample), &file, &strings.Builder{})
	require.NoError(t, err)
	name := filepath.Join(dir, "main.json")
	require.NoError(t, os.WriteFile(name, []byte(file.String()), 0o644))
	p, err := readPhase(name)
	require.NoError(t, err)
	var out strings.Builder
	require.False(t, report(&out, []phase{p}))
	require.Equal(t, `== test summary (subtests included; ran = passed + failed)
main       ran     4   passed     3   failed   1   skipped   2
total      ran     4   passed     3   failed   1   skipped   2
skipped (2):
  main: x TestNeedsServer: x_test.go:12: SERVER is missing: start it
  main: x TestTable/b: x_test.go:20: opt-in
FAILED (1):
  main: x TestBroken
`, out.String())
}
