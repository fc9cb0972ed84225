package followup

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

// TestMetricsLint runs promtool check metrics over this package's series.
func TestMetricsLint(t *testing.T) {
	promtool := testenv.Tool(t, "promtool", "deploy/local/alertmanager.sh install brings it (Debian's prometheus package)")
	reg := prometheus.NewRegistry()
	_, err := New(Config{}, reg)
	require.NoError(t, err)
	families, err := reg.Gather()
	require.NoError(t, err)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		require.NoError(t, enc.Encode(f))
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
}
