// Package kafkatest starts a private, real Apache Kafka broker for the
// security tests: a PLAINTEXT listener (for the test's own producing and
// checking), a SASL_SSL listener with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
// users, and an SSL listener that demands a client certificate. Its
// certificates are generated here with crypto/x509 and its SCRAM users are
// created with the broker's own ConfigCommand, both through
// deploy/local/kafka.sh. The shared broker of `make test` is left alone: the
// private one has its own state folder and ports and is stopped (by the PID
// kafka.sh recorded) when the test ends.
package kafkatest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crmpulse/crmpulse/internal/testcerts"
	"github.com/crmpulse/crmpulse/internal/testenv"
)

// User and Password are the credentials of every mechanism on the
// SASL_SSL listener.
const (
	User     = "crmpulse"
	Password = "s3cret-Pa55word"
)

// Broker is a running private broker.
type Broker struct {
	Plain   string // PLAINTEXT listener, host:port
	SASLSSL string // SASL_SSL listener
	SSL     string // SSL listener requiring a client certificate
	Certs   testcerts.Certs
}

// Start starts the broker or, when Java or the Kafka install is missing,
// skips t (fails under make test, see testenv). It takes about half a
// minute: share one Broker between the subtests of a test.
func Start(t testing.TB) *Broker {
	t.Helper()
	testenv.Tool(t, "java", "the security tests start a private Apache Kafka broker")
	script := testenv.RepoPath(t, "deploy/local/kafka.sh")
	dir := t.TempDir()
	certs := testcerts.Write(t, filepath.Join(dir, "tls"))
	ports := testenv.FreePorts(t, 4)
	env := append(os.Environ(),
		"CRMPULSE_LOCAL="+filepath.Join(dir, "state"),
		"KAFKA_PORT="+ports[0], "KAFKA_CONTROLLER_PORT="+ports[1],
		"KAFKA_SASL_SSL_PORT="+ports[2], "KAFKA_SSL_PORT="+ports[3],
		"KAFKA_TLS_DIR="+certs.Dir,
		"KAFKA_SASL_PLAIN_USERS="+User+":"+Password,
		"KAFKA_HEAP_OPTS=-Xmx256m -Xms256m",
		"KAFKA_START_TIMEOUT=180",
	)
	run := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command(script, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}
	run("", "start")
	t.Cleanup(func() { run("", "stop") })
	run(Password+"\n", "scram-user", "SCRAM-SHA-256,SCRAM-SHA-512", User)
	return &Broker{
		Plain: "127.0.0.1:" + ports[0], SASLSSL: "127.0.0.1:" + ports[2], SSL: "127.0.0.1:" + ports[3],
		Certs: certs,
	}
}
