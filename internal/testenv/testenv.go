// Package testenv decides what a test does when something it needs from
// outside the process is not there: a real server (its address comes in an
// environment variable) or a tool on PATH. Alone, such a test skips and
// says why. Under `make test`, which starts every server and installs
// every tool it provides (deploy/local/up.sh exports CRMPULSE_INTEGRATION=1),
// the same absence is a broken setup, so the test fails instead of
// skipping quietly.
//
// Tests that skip for a reason that also holds under make test (an opt-in
// such as the *_RESTART_TEST variables, a tool make test does not install)
// use OptIn and OptionalTool, which skip in both cases.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// IntegrationEnv is the variable deploy/local/up.sh exports as 1 once every
// server it starts is up.
const IntegrationEnv = "CRMPULSE_INTEGRATION"

// Integration reports whether the servers and tools of make test are meant
// to be there.
func Integration() bool { return os.Getenv(IntegrationEnv) == "1" }

// Require stops t because name (a server or a tool) is missing: a skip
// that says why, or, under CRMPULSE_INTEGRATION=1, a failure.
func Require(t testing.TB, name, why string) {
	t.Helper()
	if Integration() {
		t.Fatalf("%s is missing although %s=1 says make test provides it: %s", name, IntegrationEnv, why)
	}
	t.Skipf("%s is missing: %s", name, why)
}

// Env returns the value of the environment variable name, or Requires it
// when it is unset or empty.
func Env(t testing.TB, name, why string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Require(t, name, why)
	}
	return v
}

// Tool returns the path of the executable name on PATH, or Requires it.
func Tool(t testing.TB, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Require(t, name+" (on PATH)", why)
	}
	return p
}

// LookTool is Tool for a check that is only part of a test: without the
// tool, outside make test, it logs why and returns "" so that the rest of
// the test still runs; under CRMPULSE_INTEGRATION=1 it fails the test.
func LookTool(t testing.TB, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if Integration() {
		t.Fatalf("%s is not on PATH although %s=1 says make test provides it: %s", name, IntegrationEnv, why)
	}
	t.Logf("%s is not on PATH, its check is left out: %s", name, why)
	return ""
}

// OptionalTool returns the path of the executable name, or skips t, also
// under make test: for tools that make test does not install.
func OptionalTool(t testing.TB, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH (optional, make test does not install it): %s", name, why)
	}
	return p
}

// OptIn skips t unless the environment variable name is 1, also under make
// test: for tests that must be asked for, like the ones that stop the
// shared servers (make test runs them in a later, sequential phase).
func OptIn(t testing.TB, name, why string) {
	t.Helper()
	if os.Getenv(name) != "1" {
		t.Skipf("opt-in: set %s=1 to run it: %s", name, why)
	}
}
