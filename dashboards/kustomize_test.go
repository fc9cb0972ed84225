package dashboards

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/testenv"
	"gopkg.in/yaml.v3"
)

// TestKustomizeConfigMap builds this directory's kustomization (what
// deploy/k8s includes) and checks that the ConfigMap carries every
// dashboard byte for byte, labelled for Grafana's dashboard sidecar.
func TestKustomizeConfigMap(t *testing.T) {
	kubectl := testenv.OptionalTool(t, "kubectl", "its kustomize builds the ConfigMap offline; make test does not install it")
	out, err := exec.Command(kubectl, "kustomize", ".").Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("kubectl kustomize: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)
	var cm struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
	}
	require.NoError(t, yaml.Unmarshal(out, &cm))
	require.Equal(t, "ConfigMap", cm.Kind)
	require.Equal(t, "crmpulse-dashboards", cm.Metadata.Name)
	require.Equal(t, "1", cm.Metadata.Labels["grafana_dashboard"])
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	require.NoError(t, err)
	require.Len(t, cm.Data, len(files), "every dashboard is in the ConfigMap")
	for _, f := range files {
		want, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Equal(t, string(want), cm.Data[filepath.Base(f)], f)
	}
}
