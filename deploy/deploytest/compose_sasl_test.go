package deploytest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestComposeSASLSSL checks the SASL_SSL override (deploy/compose/sasl-ssl.yml)
// merged over docker-compose.yml as Compose merges them (environment by
// key, volumes by target, depends_on by service): crmpulse's configuration
// loads and validates, points only at the broker's advertised SASL_SSL
// listener with a mechanism the broker enables, and its CA and password
// files are on a volume the certificate job writes; the one-shot scripts
// are mounted and valid POSIX sh.
func TestComposeSASLSSL(t *testing.T) {
	base := loadCompose(t)
	var over composeFile
	data, err := os.ReadFile(filepath.Join(composeDir, "sasl-ssl.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &over), "sasl-ssl.yml")

	merged := map[string]composeService{}
	for name, s := range base.Services {
		merged[name] = s
	}
	for name, o := range over.Services {
		s, ok := merged[name]
		if !ok {
			merged[name] = o
			continue
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = v
		}
		for k, v := range o.Environment {
			env[k] = v
		}
		s.Environment = env
		s.Volumes = append(append([]string(nil), s.Volumes...), o.Volumes...)
		deps := map[string]struct {
			Condition string `yaml:"condition"`
		}{}
		for k, v := range s.DependsOn {
			deps[k] = v
		}
		for k, v := range o.DependsOn {
			deps[k] = v
		}
		s.DependsOn = deps
		merged[name] = s
	}
	for name, s := range merged {
		for dep, d := range s.DependsOn {
			require.Contains(t, merged, dep, "%s depends on %s", name, dep)
			require.Contains(t, []string{"service_started", "service_completed_successfully"}, d.Condition)
		}
		for _, m := range s.mounts(t) {
			if !m.bind {
				_, declared := base.Volumes[m.source]
				_, declaredHere := over.Volumes[m.source]
				require.True(t, declared || declaredHere, "%s: named volume %s is declared", name, m.source)
			}
		}
	}

	kafka := merged["kafka"].Environment
	advertised := kafka["KAFKA_ADVERTISED_LISTENERS"]
	require.Contains(t, kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], "SASL_SSL:SASL_SSL")
	require.Contains(t, kafka["KAFKA_OPTS"], "java.security.auth.login.config=/etc/kafka/secrets/")
	for _, k := range []string{"KAFKA_SSL_KEYSTORE_FILENAME", "KAFKA_SSL_KEYSTORE_CREDENTIALS", "KAFKA_SSL_KEY_CREDENTIALS"} {
		require.NotEmpty(t, kafka[k], k)
	}
	require.Equal(t, "service_completed_successfully", merged["kafka"].DependsOn["kafka-certs"].Condition)

	cp := merged["crmpulse"]
	s := cp
	i := -1
	for j, a := range s.Command {
		if a == "--config" {
			i = j
		}
	}
	require.GreaterOrEqual(t, i, 0)
	configData, err := os.ReadFile(s.hostPath(t, s.Command[i+1]))
	require.NoError(t, err)
	env := map[string]string{}
	for k, v := range cp.Environment {
		env[k] = interpolate(v)
	}
	cfg := loadRunConfig(t, configData, env)
	require.NotEmpty(t, cfg.Kafka.Brokers)
	for _, b := range cfg.Kafka.Brokers {
		require.Contains(t, advertised, "SASL_SSL://"+b, "broker %s is the SASL_SSL listener", b)
	}
	require.Contains(t, strings.Split(kafka["KAFKA_SASL_ENABLED_MECHANISMS"], ","), cfg.Kafka.SASL.Mechanism)
	require.NotEmpty(t, cfg.Kafka.SASL.Username)
	require.Empty(t, cfg.Kafka.SASL.Password, "the password comes from a file")
	require.Equal(t, "service_completed_successfully", cp.DependsOn["kafka-scram-user"].Condition)

	// The CA and the password are on a named volume crmpulse mounts and
	// kafka-certs writes, at the same path.
	certs := merged["kafka-certs"]
	for _, f := range []string{cfg.Kafka.TLS.CAFile, cfg.Kafka.SASL.PasswordFile} {
		vol := ""
		for _, m := range cp.mounts(t) {
			if !m.bind && strings.HasPrefix(f, m.target+"/") {
				vol = m.source
			}
		}
		require.NotEmpty(t, vol, "%s is on a named volume of crmpulse", f)
		found := false
		for _, m := range certs.mounts(t) {
			if m.source == vol && strings.HasPrefix(f, m.target+"/") {
				found = true
			}
		}
		require.True(t, found, "kafka-certs writes %s (volume %s)", f, vol)
	}
	require.Equal(t, certs.Environment["CRMPULSE_SECRETS"]+"/kafka-password", cfg.Kafka.SASL.PasswordFile)
	require.Equal(t, certs.Environment["CRMPULSE_SECRETS"]+"/kafka-ca.crt", cfg.Kafka.TLS.CAFile)
	require.Equal(t, cfg.Kafka.SASL.PasswordFile, merged["kafka-scram-user"].Environment["KAFKA_SCRAM_PASSWORD_FILE"])
	require.Equal(t, cfg.Kafka.SASL.Username, merged["kafka-scram-user"].Environment["KAFKA_SCRAM_USER"])
	require.Contains(t, advertised, "://"+merged["kafka-scram-user"].Environment["KAFKA_BOOTSTRAP"])

	for _, name := range []string{"kafka-certs", "kafka-scram-user"} {
		svc := merged[name]
		require.Len(t, svc.Entrypoint, 2, name)
		require.Equal(t, "/bin/sh", svc.Entrypoint[0], name)
		p := svc.hostPath(t, svc.Entrypoint[1])
		require.FileExists(t, p)
		out, err := exec.Command("sh", "-n", p).CombinedOutput()
		require.NoError(t, err, "sh -n %s:\n%s", p, out)
		require.Equal(t, base.Services["kafka"].Image, svc.Image, "%s uses the broker's own tools", name)
	}
}
