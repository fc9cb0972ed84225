package deploytest_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

var update = flag.Bool("update", false, "regenerate deploy/k8s/rules-configmap.yaml from examples/rules.yaml")

var k8sDir = rootPath("deploy", "k8s")

const (
	rulesConfigMapFile = "rules-configmap.yaml"
	namespace          = "crmpulse"
)

// k8sObjects decodes every manifest under deploy/k8s (not the
// kustomization), keyed by kind/name, and checks what every object needs.
func k8sObjects(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	require.NoError(t, err)
	objs := map[string][]byte{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); err != nil {
				require.ErrorContains(t, err, "EOF", "%s: not valid YAML", f)
				break
			}
			var head struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Metadata   struct {
					Name      string `yaml:"name"`
					Namespace string `yaml:"namespace"`
				} `yaml:"metadata"`
			}
			require.NoError(t, node.Decode(&head), f)
			require.NotEmpty(t, head.APIVersion, "%s: apiVersion", f)
			require.NotEmpty(t, head.Kind, "%s: kind", f)
			require.NotEmpty(t, head.Metadata.Name, "%s: metadata.name", f)
			// kustomization.yaml sets the namespace; a different one
			// written here would be overridden silently.
			require.Contains(t, []string{"", namespace}, head.Metadata.Namespace, f)
			key := head.Kind + "/" + head.Metadata.Name
			require.NotContains(t, objs, key, "%s defined twice", key)
			raw, err := yaml.Marshal(&node)
			require.NoError(t, err)
			objs[key] = raw
		}
	}
	return objs
}

func k8sObject(t *testing.T, objs map[string][]byte, key string, v any) {
	t.Helper()
	raw, ok := objs[key]
	require.True(t, ok, "deploy/k8s has no %s", key)
	require.NoError(t, yaml.Unmarshal(raw, v), key)
}

type configMap struct {
	Data map[string]string `yaml:"data"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

type deployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    *int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []struct {
					Name  string   `yaml:"name"`
					Image string   `yaml:"image"`
					Args  []string `yaml:"args"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					ReadinessProbe  probe `yaml:"readinessProbe"`
					LivenessProbe   probe `yaml:"livenessProbe"`
					Resources       map[string]map[string]string
					SecurityContext struct {
						AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
						ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
						Capabilities             struct {
							Drop []string `yaml:"drop"`
						} `yaml:"capabilities"`
					} `yaml:"securityContext"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
						SubPath   string `yaml:"subPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// subset says whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestK8sObjects(t *testing.T) {
	objs := k8sObjects(t)
	for _, key := range []string{
		"Namespace/" + namespace, "ConfigMap/crmpulse-config", "ConfigMap/crmpulse-rules",
		"Deployment/crmpulse", "Service/crmpulse-metrics", "PodDisruptionBudget/crmpulse",
	} {
		require.Contains(t, objs, key)
	}

	// The kustomization lists every manifest, and only existing ones.
	var k struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Namespace  string   `yaml:"namespace"`
		Resources  []string `yaml:"resources"`
		Images     []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	require.NoError(t, err)
	decodeStrict(t, data, &k, "kustomization.yaml")
	require.Equal(t, "kustomize.config.k8s.io/v1beta1", k.APIVersion)
	require.Equal(t, "Kustomization", k.Kind)
	require.Equal(t, namespace, k.Namespace)
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	require.NoError(t, err)
	var manifests []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			manifests = append(manifests, b)
		}
	}
	// Besides its own manifests it includes the dashboards' kustomization,
	// so the dashboards have one source for compose and k8s.
	require.ElementsMatch(t, append(manifests, "../../dashboards"), k.Resources)

	// The image the kustomization sets is the one the Deployment names.
	var d deployment
	k8sObject(t, objs, "Deployment/crmpulse", &d)
	require.Len(t, k.Images, 1)
	require.Equal(t, d.Spec.Template.Spec.Containers[0].Image, k.Images[0].Name)
}

func TestK8sDeployment(t *testing.T) {
	objs := k8sObjects(t)
	var d deployment
	k8sObject(t, objs, "Deployment/crmpulse", &d)
	spec := d.Spec.Template.Spec
	require.Equal(t, 2, d.Spec.Replicas, "two members of one consumer group")
	podLabels := d.Spec.Template.Metadata.Labels
	require.True(t, subset(d.Spec.Selector.MatchLabels, podLabels), "selector matches the pod template")
	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]

	// The configuration file given to run is the ConfigMap's crmpulse.yaml,
	// and it loads.
	require.Len(t, c.Args, 3)
	require.Equal(t, []string{"run", "--config"}, c.Args[:2])
	volumeConfigMap := map[string]string{}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			volumeConfigMap[v.Name] = v.ConfigMap.Name
		}
	}
	// fileSource finds which ConfigMap key a path in the container is, and
	// whether the mount lets updates through (no subPath).
	fileSource := func(p string) (cm, key string, live bool) {
		for _, m := range c.VolumeMounts {
			name, ok := volumeConfigMap[m.Name]
			if !ok {
				continue
			}
			if m.SubPath != "" && p == m.MountPath {
				return name, m.SubPath, false
			}
			if m.SubPath == "" && path.Dir(p) == m.MountPath {
				return name, path.Base(p), true
			}
		}
		return "", "", false
	}
	cmName, key, _ := fileSource(c.Args[2])
	require.NotEmpty(t, cmName, "--config %s comes from a ConfigMap", c.Args[2])
	var cm configMap
	k8sObject(t, objs, "ConfigMap/"+cmName, &cm)
	require.Contains(t, cm.Data, key)
	cfg := loadRunConfig(t, []byte(cm.Data[key]), nil)

	// The rules are a ConfigMap key mounted as a directory, so that updates
	// reach the pod and are reloaded.
	rulesCM, rulesKey, live := fileSource(cfg.Rules)
	require.NotEmpty(t, rulesCM, "rules %s come from a ConfigMap", cfg.Rules)
	require.True(t, live, "rules are mounted without subPath, or ConfigMap updates never reach the pod")
	var rcm configMap
	k8sObject(t, objs, "ConfigMap/"+rulesCM, &rcm)
	require.Contains(t, rcm.Data, rulesKey)
	parseRules(t, []byte(rcm.Data[rulesKey]), "ConfigMap "+rulesCM)

	// The probes hit the endpoints crmpulse serves, on the port it listens
	// on.
	listen := listenPort(t, cfg.HTTP.Listen)
	require.True(t, strings.HasPrefix(cfg.HTTP.Listen, "0.0.0.0:"), "kubelet probes reach the pod IP")
	portByName := map[string]int{}
	for _, p := range c.Ports {
		portByName[p.Name] = p.ContainerPort
	}
	resolve := func(n yaml.Node) string {
		if n.Tag == "!!int" {
			return n.Value
		}
		p, ok := portByName[n.Value]
		require.True(t, ok, "named port %s is not a container port", n.Value)
		return strconv.Itoa(p)
	}
	require.Contains(t, portByName, "metrics")
	require.Equal(t, listen, strconv.Itoa(portByName["metrics"]))
	for _, tc := range []struct {
		name string
		p    probe
		path string
	}{
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"liveness", c.LivenessProbe, "/healthz"},
	} {
		require.NotNil(t, tc.p.HTTPGet, tc.name)
		require.Equal(t, tc.path, tc.p.HTTPGet.Path, tc.name)
		require.Equal(t, listen, resolve(tc.p.HTTPGet.Port), "%s probe port", tc.name)
	}

	// Resources and a locked-down container.
	require.NotEmpty(t, c.Resources["requests"]["cpu"])
	require.NotEmpty(t, c.Resources["requests"]["memory"])
	require.NotEmpty(t, c.Resources["limits"]["memory"])
	sc := c.SecurityContext
	require.True(t, spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot)
	require.True(t, spec.SecurityContext.RunAsUser != nil && *spec.SecurityContext.RunAsUser != 0)
	require.True(t, sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem)
	require.True(t, sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation)
	require.Equal(t, []string{"ALL"}, sc.Capabilities.Drop)

	// The Service and the PodDisruptionBudget select these pods.
	var svc struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string    `yaml:"name"`
				Port       int       `yaml:"port"`
				TargetPort yaml.Node `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	k8sObject(t, objs, "Service/crmpulse-metrics", &svc)
	require.True(t, subset(svc.Spec.Selector, podLabels), "Service selects the pods")
	require.Len(t, svc.Spec.Ports, 1)
	require.Equal(t, listen, resolve(svc.Spec.Ports[0].TargetPort))

	var pdb struct {
		Spec struct {
			MinAvailable   *int `yaml:"minAvailable"`
			MaxUnavailable *int `yaml:"maxUnavailable"`
			Selector       struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	k8sObject(t, objs, "PodDisruptionBudget/crmpulse", &pdb)
	require.True(t, subset(pdb.Spec.Selector.MatchLabels, podLabels), "PDB selects the pods")
	available := d.Spec.Replicas
	if pdb.Spec.MaxUnavailable != nil {
		available -= *pdb.Spec.MaxUnavailable
	} else {
		require.NotNil(t, pdb.Spec.MinAvailable)
		available = *pdb.Spec.MinAvailable
	}
	require.GreaterOrEqual(t, available, 1, "a drain keeps a replica")
	require.Less(t, available, d.Spec.Replicas, "a drain can proceed")
}

// rulesConfigMap renders examples/rules.yaml as the ConfigMap
// crmpulse-rules. The block scalar keeps every byte: lines are indented,
// never escaped, and the chomping indicator keeps the trailing newlines.
func rulesConfigMap(src []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`# GENERATED from examples/rules.yaml by
#   go test ./deploy/deploytest -run TestK8sRulesConfigMap -update
# Do not edit: deploy/deploytest fails when the two differ. For your own
# rules see README.md.
apiVersion: v1
kind: ConfigMap
metadata:
  name: crmpulse-rules
  labels:
    app.kubernetes.io/name: crmpulse
    app.kubernetes.io/part-of: crmpulse
data:
  rules.yaml: `)
	body := string(src)
	trimmed := strings.TrimRight(body, "\n")
	switch n := len(body) - len(trimmed); {
	case n == 0:
		b.WriteString("|-")
	case n == 1:
		b.WriteString("|")
	default:
		b.WriteString("|+")
	}
	if strings.HasPrefix(body, " ") || strings.HasPrefix(body, "\n") {
		// Explicit indentation (relative to the key's 2 columns): a first
		// line that is blank or starts with a space cannot set it.
		b.WriteString("2")
	}
	b.WriteString("\n")
	for _, line := range strings.SplitAfter(body, "\n") {
		if line == "" {
			continue
		}
		if line != "\n" {
			b.WriteString("    ")
		}
		b.WriteString(line)
	}
	if !strings.HasSuffix(body, "\n") {
		b.WriteString("\n")
	}
	return b.Bytes()
}

// TestK8sRulesConfigMap keeps the ConfigMap's rules.yaml byte for byte equal
// to examples/rules.yaml (-update regenerates it) and checks it parses.
func TestK8sRulesConfigMap(t *testing.T) {
	src := readFile(t, "examples", "rules.yaml")
	file := filepath.Join(k8sDir, rulesConfigMapFile)
	if *update {
		require.NoError(t, os.WriteFile(file, rulesConfigMap(src), 0o644))
	}
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var cm struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cm))
	require.Equal(t, "ConfigMap", cm.Kind)
	require.Equal(t, "crmpulse-rules", cm.Metadata.Name)
	require.Equal(t, string(src), cm.Data["rules.yaml"],
		"deploy/k8s/%s differs from examples/rules.yaml; run go test ./deploy/deploytest -run TestK8sRulesConfigMap -update", rulesConfigMapFile)
	parseRules(t, []byte(cm.Data["rules.yaml"]), file)
}

// TestRulesConfigMapRendering checks the generator on files whose edges a
// block scalar handles differently.
func TestRulesConfigMapRendering(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"one trailing newline", "version: 1\nrules: []\n"},
		{"no trailing newline", "version: 1\nrules: []"},
		{"several trailing newlines", "version: 1\nrules: []\n\n\n"},
		{"blank and indented lines", "version: 1\n\nrules:\n  - name: x   \n\t# tab\n"},
		{"leading space", "  # indented comment\nversion: 1\n"},
		{"leading blank line", "\nversion: 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cm configMap
			require.NoError(t, yaml.Unmarshal(rulesConfigMap([]byte(tc.src)), &cm))
			require.Equal(t, tc.src, cm.Data["rules.yaml"])
		})
	}
}

// TestKustomizeBuild builds deploy/k8s with kubectl's kustomize when kubectl
// is installed (it needs no cluster).
func TestKustomizeBuild(t *testing.T) {
	kubectl := testenv.OptionalTool(t, "kubectl", "kubectl kustomize checks the kustomization offline")
	out, err := exec.Command(kubectl, "kustomize", k8sDir).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("kubectl kustomize: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)
	var kinds []string
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name      string `yaml:"name"`
				Namespace string `yaml:"namespace"`
			} `yaml:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Image string `yaml:"image"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&o); err != nil {
			break
		}
		kinds = append(kinds, o.Kind)
		if o.Kind != "Namespace" {
			assert.Equal(t, namespace, o.Metadata.Namespace, "%s/%s", o.Kind, o.Metadata.Name)
		}
		if o.Kind == "Deployment" {
			img := o.Spec.Template.Spec.Containers[0].Image
			assert.Contains(t, img, "/crmpulse:", "kustomize set the image")
		}
	}
	slices.Sort(kinds)
	require.Equal(t, []string{"ConfigMap", "ConfigMap", "ConfigMap", "Deployment", "Namespace", "PodDisruptionBudget", "Service"}, kinds)
}
