package deploytest_test

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// composeDir is deploy/compose, where relative paths in the compose file
// start.
var composeDir = rootPath("deploy", "compose")

// composeFile is the part of the Compose specification these files use.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Profiles    []string `yaml:"profiles"`
	Healthcheck any      `yaml:"healthcheck"`
	ReadOnly    bool     `yaml:"read_only"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	data, err := os.ReadFile(filepath.Join(composeDir, "docker-compose.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &c), "docker-compose.yml")
	require.NotEmpty(t, c.Services)
	return c
}

var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

// interpolate resolves ${VAR:-default} to its default, as Compose does with
// VAR unset.
func interpolate(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		return interpolation.FindStringSubmatch(m)[2]
	})
}

// mount is one entry of a service's volumes (short syntax).
type mount struct {
	source, target string
	bind           bool // a host path (else a named volume)
}

func (s composeService) mounts(t *testing.T) []mount {
	t.Helper()
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		require.GreaterOrEqual(t, len(parts), 2, "volume %q: source:target", v)
		src := parts[0]
		out = append(out, mount{source: src, target: parts[1],
			bind: strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/")})
	}
	return out
}

// hostPath maps a path inside the service's container to the file on this
// machine through its bind mounts ("" when none covers it).
func (s composeService) hostPath(t *testing.T, p string) string {
	t.Helper()
	for _, m := range s.mounts(t) {
		if !m.bind {
			continue
		}
		if p == m.target {
			return filepath.Join(composeDir, m.source)
		}
		if rel, ok := strings.CutPrefix(p, m.target+"/"); ok {
			return filepath.Join(composeDir, m.source, rel)
		}
	}
	return ""
}

// published returns the container ports published by the service and the
// host addresses they are published on.
func (s composeService) published(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range s.Ports {
		p, _, _ = strings.Cut(p, "/") // protocol
		parts := strings.Split(p, ":")
		require.Len(t, parts, 3, "port %q: publish as HOST_IP:HOST_PORT:CONTAINER_PORT", p)
		out[parts[2]] = parts[0] + ":" + parts[1]
	}
	return out
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	require.Equal(t, "crmpulse", c.Name)
	for _, tc := range []struct {
		service string
		image   *regexp.Regexp
		ports   []string // container ports published on the host
	}{
		{"kafka", regexp.MustCompile(`^apache/kafka:(3\.9|4)\.\d+(\.\d+)?$`), []string{"19092"}},
		{"topic-init", regexp.MustCompile(`^apache/kafka:`), nil},
		{"clickhouse", regexp.MustCompile(`^clickhouse/clickhouse-server:24\.8(\.|$)`), []string{"9000", "8123"}},
		{"alertmanager", regexp.MustCompile(`^prom/alertmanager:v\d+\.\d+\.\d+$`), []string{"9093"}},
		{"prometheus", regexp.MustCompile(`^prom/prometheus:v\d+\.\d+\.\d+$`), []string{"9090"}},
		{"grafana", regexp.MustCompile(`^grafana/grafana:\d+\.\d+\.\d+$`), []string{"3000"}},
		{"crmpulse", regexp.MustCompile(`^crmpulse:`), []string{"9464"}},
	} {
		t.Run(tc.service, func(t *testing.T) {
			s, ok := c.Services[tc.service]
			require.True(t, ok, "service %s is missing", tc.service)
			require.Regexp(t, tc.image, s.Image)
			require.Empty(t, s.Profiles, "part of the default stack")
			pub := s.published(t)
			for _, p := range tc.ports {
				require.Contains(t, pub, p, "container port %s is published", p)
			}
			for cp, host := range pub {
				require.True(t, strings.HasPrefix(host, "127.0.0.1:"), "port %s is published on %s: loopback only", cp, host)
			}
		})
	}
	require.Equal(t, c.Services["kafka"].Image, c.Services["topic-init"].Image, "topic-init uses the broker's own tools")

	// crmpulse is built from the repository's Dockerfile.
	b := c.Services["crmpulse"].Build
	require.NotNil(t, b, "crmpulse is built, not pulled")
	ctx, err := filepath.Abs(filepath.Join(composeDir, b.Context))
	require.NoError(t, err)
	want, err := filepath.Abs(root)
	require.NoError(t, err)
	require.Equal(t, want, ctx, "build context is the repository root")
	require.FileExists(t, filepath.Join(ctx, b.Dockerfile))
	// Its command is the image's CMD, spelled out.
	require.Equal(t, []string{"run", "--config", "/etc/crmpulse/crmpulse.yaml"}, c.Services["crmpulse"].Command)
	require.True(t, c.Services["crmpulse"].ReadOnly, "read-only root file system")

	for name, s := range c.Services {
		// Every bind mount exists; every named volume is declared.
		for _, m := range s.mounts(t) {
			if m.bind {
				_, err := os.Stat(filepath.Join(composeDir, m.source))
				assert.NoError(t, err, "%s mounts %s", name, m.source)
			} else {
				assert.Contains(t, c.Volumes, m.source, "%s: named volume %s is declared", name, m.source)
			}
		}
		// Dependencies exist, never wait on health checks (the crmpulse image
		// cannot have one; the others need none), and the default stack
		// never depends on the demo profile.
		for dep, d := range s.DependsOn {
			require.Contains(t, c.Services, dep, "%s depends on %s", name, dep)
			assert.Contains(t, []string{"service_started", "service_completed_successfully"}, d.Condition, "%s → %s", name, dep)
			if len(s.Profiles) == 0 {
				assert.Empty(t, c.Services[dep].Profiles, "%s (default stack) depends on %s (a profile)", name, dep)
			}
		}
		if s.Image != "" {
			assert.NotContains(t, s.Image, ":latest", "%s: pin the image", name)
		}
	}
	cp := c.Services["crmpulse"].DependsOn
	require.Equal(t, "service_completed_successfully", cp["topic-init"].Condition, "crmpulse starts once the input topics exist")
	require.Nil(t, c.Services["crmpulse"].Healthcheck, "distroless: no health check")

	// The demo profile: gen in the crmpulse image, then a producer.
	for _, name := range []string{"demo-gen", "demo-producer"} {
		require.Equal(t, []string{"demo"}, c.Services[name].Profiles, name)
	}
	require.Equal(t, c.Services["crmpulse"].Image, c.Services["demo-gen"].Image)
	require.Equal(t, "gen", c.Services["demo-gen"].Command[0])
	require.Equal(t, "service_completed_successfully", c.Services["demo-producer"].DependsOn["demo-gen"].Condition)
	require.Equal(t, "service_completed_successfully", c.Services["demo-producer"].DependsOn["topic-init"].Condition)
}

// TestComposeRunConfig loads crmpulse's configuration as the container does
// and checks that it points at the other services.
func TestComposeRunConfig(t *testing.T) {
	c := loadCompose(t)
	s := c.Services["crmpulse"]
	i := slices.Index(s.Command, "--config")
	require.GreaterOrEqual(t, i, 0)
	configFile := s.hostPath(t, s.Command[i+1])
	require.NotEmpty(t, configFile, "the --config file is bind-mounted")
	data, err := os.ReadFile(configFile)
	require.NoError(t, err)
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = interpolate(v)
	}
	cfg := loadRunConfig(t, data, env)

	// Brokers: the broker's advertised listener for containers.
	advertised := c.Services["kafka"].Environment["KAFKA_ADVERTISED_LISTENERS"]
	for _, b := range cfg.Kafka.Brokers {
		require.Contains(t, advertised, "://"+b, "broker %s is one Kafka advertises", b)
	}
	// Alertmanager: the compose service, on its port.
	require.NotEmpty(t, cfg.Alertmanager.URLs)
	for _, u := range cfg.Alertmanager.URLs {
		pu, err := url.Parse(u)
		require.NoError(t, err)
		require.Equal(t, "alertmanager", pu.Hostname())
		require.Contains(t, c.Services["alertmanager"].published(t), pu.Port())
	}
	// The metrics listener is reachable from other containers, published,
	// and scraped by Prometheus.
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	require.NoError(t, err)
	require.Contains(t, []string{"0.0.0.0", "", "::"}, host)
	require.Contains(t, s.published(t), port)
	require.Contains(t, scrapeTargets(t, "crmpulse"), "crmpulse:"+port)

	// The rules file is mounted and parses.
	rulesFile := s.hostPath(t, cfg.Rules)
	require.NotEmpty(t, rulesFile, "rules %s is bind-mounted", cfg.Rules)
	rulesData, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	parseRules(t, rulesData, rulesFile)

	// topic-init creates exactly the input topics, and the demo produces
	// into them.
	ti := c.Services["topic-init"].Environment
	require.Equal(t, []string{cfg.Topics.Interactions, cfg.Topics.Receipts}, strings.Fields(ti["CRMPULSE_INPUT_TOPICS"]))
	require.Regexp(t, `^\d+$`, interpolate(ti["CRMPULSE_PARTITIONS"]))
	require.Contains(t, advertised, "://"+ti["KAFKA_BOOTSTRAP"])
	dp := c.Services["demo-producer"].Environment
	require.Equal(t, cfg.Topics.Interactions, dp["CRMPULSE_TOPIC_INTERACTIONS"])
	require.Equal(t, cfg.Topics.Receipts, dp["CRMPULSE_TOPIC_RECEIPTS"])
	require.Contains(t, advertised, "://"+dp["KAFKA_BOOTSTRAP"])
}

// TestComposeScripts checks the one-shot containers' scripts: they are
// mounted where the entrypoints expect them and are valid POSIX sh.
func TestComposeScripts(t *testing.T) {
	c := loadCompose(t)
	var scripts []string
	for _, name := range []string{"topic-init", "demo-producer"} {
		s := c.Services[name]
		require.Len(t, s.Entrypoint, 2, name)
		require.Equal(t, "/bin/sh", s.Entrypoint[0], "%s: the apache/kafka image is Alpine: POSIX sh", name)
		p := s.hostPath(t, s.Entrypoint[1])
		require.NotEmpty(t, p, "%s: %s is bind-mounted", name, s.Entrypoint[1])
		require.FileExists(t, p)
		scripts = append(scripts, p)
	}
	for _, p := range scripts {
		out, err := exec.Command("sh", "-n", p).CombinedOutput()
		require.NoError(t, err, "sh -n %s:\n%s", p, out)
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		out, err := exec.Command(sc, append([]string{"--shell=sh"}, scripts...)...).CombinedOutput()
		require.NoError(t, err, "shellcheck:\n%s", out)
	} else {
		t.Log("shellcheck not on PATH: only sh -n checked")
	}
}

// TestComposeDemoKeys runs the demo producer's key extraction (the awk
// program of scripts/demo-produce.sh) on generated records: every line gets
// its customer_id as key, a line without one an empty key.
func TestComposeDemoKeys(t *testing.T) {
	sh := lookTool(t, "sh", "needed to run the script's function")
	lookTool(t, "awk", "needed by the producer script")
	script := filepath.Join(composeDir, "scripts", "demo-produce.sh")
	data, err := os.ReadFile(script)
	require.NoError(t, err)
	fn := regexp.MustCompile(`(?ms)^key_lines\(\) \{.*?^\}`).Find(data)
	require.NotNil(t, fn, "demo-produce.sh defines key_lines")
	in := filepath.Join(t.TempDir(), "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(
		`{"event_id":"e1","type":"login","customer_id":"c0000049","occurred_at":"2026-11-02T00:02:08Z"}`+"\n"+
			`{"receipt_id":"r1", "customer_id" : "c 7","status":"sent"}`+"\n"+
			`not json at all`+"\n"), 0o644))
	out, err := exec.Command(sh, "-c", string(fn)+"\nkey_lines \"$1\"", "sh", in).Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	require.Len(t, lines, 3)
	for i, wantKey := range []string{"c0000049", "c 7", ""} {
		key, value, ok := strings.Cut(lines[i], "\t")
		require.True(t, ok, "line %d has a key separator", i)
		require.Equal(t, wantKey, key, "line %d", i)
		require.NotContains(t, value, "\t"+wantKey+"\t")
	}
}

// scrapeTargets is the static targets of a job in deploy/compose/prometheus.yml.
func scrapeTargets(t *testing.T, job string) []string {
	t.Helper()
	pc := loadPrometheusConfig(t)
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName == job {
			var out []string
			for _, s := range sc.StaticConfigs {
				out = append(out, s.Targets...)
			}
			return out
		}
	}
	t.Fatalf("prometheus.yml has no job %s", job)
	return nil
}

type staticConfig struct {
	Targets []string `yaml:"targets"`
}

type prometheusConfig struct {
	Alerting struct {
		Alertmanagers []struct {
			StaticConfigs []staticConfig `yaml:"static_configs"`
		} `yaml:"alertmanagers"`
	} `yaml:"alerting"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string         `yaml:"job_name"`
		StaticConfigs []staticConfig `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func loadPrometheusConfig(t *testing.T) prometheusConfig {
	t.Helper()
	var pc prometheusConfig
	data, err := os.ReadFile(filepath.Join(composeDir, "prometheus.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &pc))
	return pc
}

func TestComposePrometheus(t *testing.T) {
	c := loadCompose(t)
	prom := c.Services["prometheus"]
	pc := loadPrometheusConfig(t)
	// CRMPulseDown in deploy/prometheus/rules matches up{job="crmpulse"}.
	require.Contains(t, scrapeTargets(t, "crmpulse"), "crmpulse:9464")
	require.Len(t, pc.Alerting.Alertmanagers, 1)
	require.Equal(t, []string{"alertmanager:9093"}, pc.Alerting.Alertmanagers[0].StaticConfigs[0].Targets)

	// prometheus.yml is mounted where the image reads it, and its rule files
	// (relative to it) are mounted beside it.
	const configInContainer = "/etc/prometheus/prometheus.yml"
	require.Equal(t, filepath.Join(composeDir, "prometheus.yml"), prom.hostPath(t, configInContainer))
	require.NotEmpty(t, pc.RuleFiles)
	tmp := t.TempDir()
	for _, rf := range pc.RuleFiles {
		require.False(t, path.IsAbs(rf), "rule file %s: relative, so promtool can check it here", rf)
		src := prom.hostPath(t, path.Join(path.Dir(configInContainer), rf))
		require.NotEmpty(t, src, "rule file %s is mounted", rf)
		data, err := os.ReadFile(src)
		require.NoError(t, err)
		dst := filepath.Join(tmp, filepath.FromSlash(rf))
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, data, 0o644))
	}
	data, err := os.ReadFile(filepath.Join(composeDir, "prometheus.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "prometheus.yml"), data, 0o644))

	// The real check, laid out as in the container (check config also loads
	// the rule files).
	promtool := lookTool(t, "promtool", "deploy/local/alertmanager.sh install brings it (Debian's prometheus package); it checks deploy/compose/prometheus.yml")
	cmd := exec.Command(promtool, "check", "config", "prometheus.yml")
	cmd.Dir = tmp
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check config:\n%s", out)
}

func TestComposeAlertmanager(t *testing.T) {
	am := loadCompose(t).Services["alertmanager"]
	var configFile string
	for _, a := range am.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = am.hostPath(t, v)
		}
	}
	require.NotEmpty(t, configFile, "--config.file is bind-mounted")
	abs, err := filepath.Abs(configFile)
	require.NoError(t, err)
	want, err := filepath.Abs(rootPath("deploy", "alertmanager", "alertmanager.yml"))
	require.NoError(t, err)
	require.Equal(t, want, abs, "the example configuration checked in deploy/alertmanager")
	// Its templates: path is relative to the config file, so the directory
	// must be mounted next to it.
	tmpl, err := filepath.Abs(am.hostPath(t, filepath.Join(filepath.Dir(strings.TrimPrefix(configFileArg(am.Command), "--config.file=")), "templates", "crmpulse-email.tmpl")))
	require.NoError(t, err)
	require.FileExists(t, tmpl, "deploy/alertmanager/templates is mounted next to alertmanager.yml")
	require.Contains(t, am.Command, "--cluster.listen-address=", "one instance: no gossip")
}

// configFileArg returns the --config.file=... argument of args, or "".
func configFileArg(args []string) string {
	for _, a := range args {
		if strings.HasPrefix(a, "--config.file=") {
			return a
		}
	}
	return ""
}

// grafanaDatasources is a Grafana data source provisioning file.
type grafanaDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name           string            `yaml:"name"`
		UID            string            `yaml:"uid"`
		Type           string            `yaml:"type"`
		Access         string            `yaml:"access"`
		URL            string            `yaml:"url"`
		IsDefault      bool              `yaml:"isDefault"`
		Editable       bool              `yaml:"editable"`
		JSONData       map[string]any    `yaml:"jsonData"`
		SecureJSONData map[string]string `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

func TestComposeGrafana(t *testing.T) {
	c := loadCompose(t)
	g := c.Services["grafana"]
	// "id version": an unpinned plugin would change under the dashboards.
	plugins := map[string]string{}
	for _, p := range strings.Split(g.Environment["GF_INSTALL_PLUGINS"], ",") {
		id, version, _ := strings.Cut(strings.TrimSpace(p), " ")
		plugins[id] = version
	}
	require.Regexp(t, `^\d+\.\d+\.\d+$`, plugins["grafana-clickhouse-datasource"], "the ClickHouse plugin is installed at a pinned version")
	provisioning := g.hostPath(t, "/etc/grafana/provisioning/datasources")
	require.NotEmpty(t, provisioning, "provisioning is mounted at /etc/grafana/provisioning")
	require.FileExists(t, filepath.Join(provisioning, "clickhouse.yaml"))

	files, err := filepath.Glob(filepath.Join(provisioning, "*.yaml"))
	require.NoError(t, err)
	uids := map[string]string{}
	var clickhouse int
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var ds grafanaDatasources
		decodeStrict(t, data, &ds, f)
		require.Equal(t, 1, ds.APIVersion, f)
		for _, d := range ds.Datasources {
			require.NotEmpty(t, d.Name, f)
			require.NotEmpty(t, d.Type, f)
			require.NotEmpty(t, d.UID, "%s: dashboards refer to data sources by uid", f)
			require.NotContains(t, uids, d.UID, "uid %s in %s and %s", d.UID, f, uids[d.UID])
			uids[d.UID] = f
			if d.URL != "" {
				u, err := url.Parse(d.URL)
				require.NoError(t, err)
				require.Contains(t, c.Services, u.Hostname(), "%s: %s is a compose service", f, d.URL)
			}
			if d.Type != "grafana-clickhouse-datasource" {
				continue
			}
			clickhouse++
			ch := c.Services["clickhouse"]
			j := d.JSONData
			require.Equal(t, "clickhouse", j["host"], "the compose service")
			require.Equal(t, 9000, j["port"], "the native port")
			require.Equal(t, "native", j["protocol"])
			require.Equal(t, ch.Environment["CLICKHOUSE_USER"], j["username"])
			require.Equal(t, "default", j["username"])
			require.Equal(t, ch.Environment["CLICKHOUSE_DB"], j["defaultDatabase"])
			require.Equal(t, "$CLICKHOUSE_PASSWORD", d.SecureJSONData["password"])
			require.Equal(t, interpolate(ch.Environment["CLICKHOUSE_PASSWORD"]), interpolate(g.Environment["CLICKHOUSE_PASSWORD"]),
				"Grafana gets the password ClickHouse was given")
		}
	}
	require.Equal(t, 1, clickhouse, "one ClickHouse data source")
	for _, d := range []string{"clickhouse", "prometheus"} {
		require.Contains(t, g.DependsOn, d)
	}
}

// TestComposeConfigTool runs `docker compose config` (or the standalone
// docker-compose) on the file when one is installed: the Compose
// specification's own validation and interpolation.
func TestComposeConfigTool(t *testing.T) {
	file := filepath.Join(composeDir, "docker-compose.yml")
	var cmd *exec.Cmd
	if err := exec.Command("docker", "compose", "version").Run(); err == nil {
		cmd = exec.Command("docker", "compose", "--profile", "demo", "-f", file, "config", "--quiet")
	} else if p, err := exec.LookPath("docker-compose"); err == nil {
		// docker-compose 1.x (Debian's) predates the top-level `name`; check
		// a copy without it, with relative paths still from deploy/compose.
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		data = regexp.MustCompile(`(?m)^name:.*\n`).ReplaceAll(data, nil)
		file = filepath.Join(t.TempDir(), "docker-compose.yml")
		require.NoError(t, os.WriteFile(file, data, 0o644))
		cmd = exec.Command(p, "--project-directory", composeDir, "--profile", "demo", "-f", file, "config", "--quiet")
	} else {
		t.Skip("optional, make test does not install it: neither the docker compose plugin nor docker-compose is installed; structure checked by the other tests")
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s:\n%s", strings.Join(cmd.Args, " "), out)
}
