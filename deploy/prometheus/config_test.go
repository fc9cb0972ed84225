// Package prometheus_test checks the Prometheus configuration and the rules
// about CRM Pulse itself with the real promtool.
package prometheus_test

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

// promtool returns the path of promtool, skipping the test when it is not
// installed (Debian's prometheus package brings it).
func promtool(t *testing.T) string {
	t.Helper()
	return testenv.Tool(t, "promtool", "deploy/local/alertmanager.sh install brings it (Debian's prometheus package); it checks prometheus.yml and its rules")
}

func TestCheckConfig(t *testing.T) {
	// check config also loads and checks the rule files it names.
	out, err := exec.Command(promtool(t), "check", "config", "prometheus.yml").CombinedOutput()
	require.NoError(t, err, "promtool check config:\n%s", out)
}

func TestRules(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, "check", "rules", "rules/crmpulse.rules.yml").CombinedOutput()
	require.NoError(t, err, "promtool check rules:\n%s", out)
	out, err = exec.Command(bin, "test", "rules", "rules/crmpulse.rules.test.yml").CombinedOutput()
	require.NoError(t, err, "promtool test rules:\n%s", out)
}
