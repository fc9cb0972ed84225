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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	Certs   Certs
}

// Certs are PEM files in one folder: a CA and the server certificate it
// signs (for 127.0.0.1 and localhost), a client certificate it signs, and
// a second CA that signed nothing the broker uses (an "untrusted" CA).
type Certs struct {
	Dir                   string
	CAFile                string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	OtherCAFile           string
}

// Start starts the broker or, when Java or the Kafka install is missing,
// skips t (fails under make test, see testenv). It takes about half a
// minute: share one Broker between the subtests of a test.
func Start(t testing.TB) *Broker {
	t.Helper()
	testenv.Tool(t, "java", "the security tests start a private Apache Kafka broker")
	script := filepath.Join(repoRoot(t), "deploy", "local", "kafka.sh")
	dir := t.TempDir()
	certs := WriteCerts(t, filepath.Join(dir, "tls"))
	ports := freePorts(t, 4)
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

// WriteCerts generates the certificates into dir.
func WriteCerts(t testing.TB, dir string) Certs {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := Certs{
		Dir: dir, CAFile: filepath.Join(dir, "ca.crt"), OtherCAFile: filepath.Join(dir, "other-ca.crt"),
		ServerCert: filepath.Join(dir, "server.crt"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key"),
	}
	ca, caKey := newCA(t, "crmpulse test CA", c.CAFile)
	newCA(t, "some other CA", c.OtherCAFile)
	leaf(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, c.ServerCert, c.ServerKey)
	leaf(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "crmpulse-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, c.ClientCert, c.ClientKey)
	return c
}

var serial int64

func template(cn string) *x509.Certificate {
	serial++
	return &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano() + serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(48 * time.Hour),
	}
}

func newCA(t testing.TB, cn, certFile string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := template(cn)
	tpl.IsCA, tpl.BasicConstraintsValid = true, true
	tpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func leaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tpl *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	base := template(tpl.Subject.CommonName)
	tpl.SerialNumber, tpl.NotBefore, tpl.NotAfter = base.SerialNumber, base.NotBefore, base.NotAfter
	tpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	// PKCS#8: the form Kafka's PEM keystore reads.
	k8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", k8)
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var ports []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}
