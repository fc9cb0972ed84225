package stream_test

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

// TestKfakeHTTP: /healthz, /readyz and /metrics, whose output passes the
// linter behind `promtool check metrics` (and promtool itself when it is
// installed).
func TestKfakeHTTP(t *testing.T) {
	brokers := newKfake(t)
	ds := generate(t, genConfig{customers: 50, days: 1, seed: 8})
	tp := newTopics(t)
	createInputs(t, brokers, tp, 2)
	produce(t, brokers, tp, ds)
	r := startApp(t, appConfig(brokers, tp, tp.prefix), "a")
	base := "http://" + r.app.Addr()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ := get("/healthz")
	require.Equal(t, 200, code)
	require.Eventually(t, func() bool { c, _ := get("/readyz"); return c == 200 }, time.Minute, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		_, m := get("/metrics")
		return strings.Contains(m, `crmpulse_stream_outputs_total{kind="alert"}`) &&
			!strings.Contains(m, `crmpulse_stream_outputs_total{kind="alert"} 0`) &&
			strings.Contains(m, "crmpulse_stream_snapshot_bytes{") && strings.Contains(m, "crmpulse_stream_state_keys{")
	}, time.Minute, 50*time.Millisecond)
	_, metrics := get("/metrics")
	for _, name := range []string{
		"crmpulse_stream_consumed_records_total", "crmpulse_stream_rejected_records_total", "crmpulse_stream_duplicate_records_total",
		"crmpulse_stream_late_records_total", "crmpulse_stream_partition_lag_records", "crmpulse_stream_watermark_seconds",
		"crmpulse_stream_state_keys", "crmpulse_stream_snapshot_bytes", "crmpulse_stream_snapshot_duration_seconds",
		"crmpulse_stream_outputs_total", "crmpulse_rules_reloads_total",
	} {
		require.Contains(t, metrics, name)
	}
	problems, err := promlint.New(strings.NewReader(metrics)).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)
	if promtool := testenv.LookTool(t, "promtool", "deploy/local/alertmanager.sh install brings it (Debian's prometheus package)"); promtool != "" {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(metrics)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
	}
}
