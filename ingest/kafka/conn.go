package kafka

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/crmpulse/crmpulse/internal/tlsclient"
)

// SASL mechanisms the pipeline speaks (kafka-go's sasl packages).
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms lists the accepted kafka.sasl.mechanism values.
var Mechanisms = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512}

// SASLConfig is SASL authentication; an empty Mechanism means none.
type SASLConfig struct {
	Mechanism string
	Username  string
	Password  string
}

// SecurityConfig is how to reach the brokers: the listener's TLS and SASL
// (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL in Kafka's words).
type SecurityConfig struct {
	TLS  tlsclient.Config
	SASL SASLConfig
}

// Security is what every connection to the brokers is made with: the
// fetchers' connections, the consumer group, the producers, the admin
// requests, the snapshot and repartition readers. Build it once with
// NewSecurity and hand it (or a Cluster carrying it) to each of them, so
// that no connection is left plaintext. A nil *Security is plaintext
// without SASL.
type Security struct {
	tls       *tlsclient.Config
	tlsOn     bool
	mech      sasl.Mechanism
	dialer    kafkago.Dialer
	transport *kafkago.Transport
}

// dialTimeout bounds one connection: TCP, TLS handshake and SASL exchange.
const dialTimeout = 10 * time.Second

// NewSecurity reads the certificate files and prepares the SASL mechanism.
// Errors name the key at fault.
func NewSecurity(cfg SecurityConfig) (*Security, error) {
	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("kafka.tls: %w", err)
	}
	var mech sasl.Mechanism
	s := cfg.SASL
	switch strings.ToUpper(s.Mechanism) {
	case "":
		if s.Username != "" || s.Password != "" {
			return nil, errors.New("kafka.sasl.mechanism: required with a username or password (" + strings.Join(Mechanisms, ", ") + ")")
		}
	case MechanismPlain:
		mech = plain.Mechanism{Username: s.Username, Password: s.Password}
	case MechanismScramSHA256, MechanismScramSHA512:
		algo := scram.SHA256
		if strings.ToUpper(s.Mechanism) == MechanismScramSHA512 {
			algo = scram.SHA512
		}
		if mech, err = scram.Mechanism(algo, s.Username, s.Password); err != nil {
			return nil, fmt.Errorf("kafka.sasl: preparing %s for user %q: %w", s.Mechanism, s.Username, err)
		}
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: %q is not one of %s", s.Mechanism, strings.Join(Mechanisms, ", "))
	}
	if mech != nil && s.Username == "" {
		return nil, errors.New("kafka.sasl.username: required with kafka.sasl.mechanism")
	}
	t := cfg.TLS
	return &Security{
		tls: &t, tlsOn: tc != nil, mech: mech,
		dialer:    kafkago.Dialer{Timeout: dialTimeout, DualStack: true, TLS: tc, SASLMechanism: mech},
		transport: &kafkago.Transport{DialTimeout: dialTimeout, TLS: tc, SASL: mech},
	}, nil
}

// Dialer returns a new Dialer for kafka-go Conns, Readers and the consumer
// group; a copy, so a caller may change its ClientID or timeout.
func (s *Security) Dialer() *kafkago.Dialer {
	if s == nil {
		return &kafkago.Dialer{Timeout: dialTimeout, DualStack: true}
	}
	d := s.dialer
	return &d
}

// Transport is the RoundTripper of kafka-go Writers and Clients. It is
// shared (it pools connections): plaintext uses kafka-go's default one.
func (s *Security) Transport() kafkago.RoundTripper {
	if s == nil {
		return kafkago.DefaultTransport
	}
	return s.transport
}

// Insecure reports kafka.tls.insecure_skip_verify, for the warning at start.
func (s *Security) Insecure() bool { return s != nil && s.tls.InsecureSkipVerify }

// String describes the listener type expected, e.g. "SASL_SSL (SCRAM-SHA-512)".
func (s *Security) String() string {
	if s == nil || (!s.tlsOn && s.mech == nil) {
		return "PLAINTEXT"
	}
	switch {
	case s.tlsOn && s.mech != nil:
		return "SASL_SSL (" + s.mech.Name() + ")"
	case s.tlsOn:
		return "SSL"
	default:
		return "SASL_PLAINTEXT (" + s.mech.Name() + ")"
	}
}

// Cluster is the bootstrap brokers and how to connect to them.
type Cluster struct {
	Brokers  []string
	Security *Security
}

// Plain is a Cluster of brokers reached without TLS or SASL.
func Plain(brokers []string) Cluster { return Cluster{Brokers: brokers} }

func (c Cluster) client() *kafkago.Client {
	return &kafkago.Client{Addr: kafkago.TCP(c.Brokers...), Timeout: adminTimeout, Transport: c.Security.Transport()}
}

func (c Cluster) String() string { return strings.Join(c.Brokers, ",") }

// Explain adds to err, a failure to talk to broker (an address, or a
// comma-separated list), the broker and the likely cause in operator
// terms: an untrusted certificate, a wrong password, a plaintext client on
// a TLS port. err stays in the chain.
func (s *Security) Explain(broker string, err error) error {
	if err == nil {
		return nil
	}
	cause := s.cause(err)
	if cause == "" {
		return fmt.Errorf("broker %s: %w", broker, err)
	}
	return fmt.Errorf("broker %s: %s: %w", broker, cause, err)
}

func (s *Security) cause(err error) string {
	if c := tlsclient.Cause(err, "kafka.tls"); c != "" {
		return c
	}
	var mech string
	if s != nil && s.mech != nil {
		mech = s.mech.Name()
	}
	switch {
	case errors.Is(err, kafkago.SASLAuthenticationFailed):
		return "SASL authentication failed: wrong kafka.sasl.username or password, or no " + mech + " credentials for that user on the broker"
	case errors.Is(err, kafkago.UnsupportedSASLMechanism):
		return "the listener does not enable SASL mechanism " + mech + " (kafka.sasl.mechanism)"
	case errors.Is(err, kafkago.IllegalSASLState):
		return "the listener refused the SASL exchange: not a SASL listener? (unset kafka.sasl.mechanism or use its SASL port)"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		switch {
		case s == nil || !s.tlsOn:
			return "the broker closed the connection: it expects TLS on this port? (set kafka.tls.enabled, and kafka.sasl.* for SASL_SSL)"
		case s.mech == nil:
			// A plaintext broker closes on a TLS hello just as a SASL_SSL
			// one closes on a request without SASL.
			return "the broker closed the connection: it expects SASL on this port? (set kafka.sasl.mechanism, username, password) or the port is not a TLS port"
		default:
			return "the broker closed the connection during the handshake: the port is not a SASL_SSL port?"
		}
	}
	return ""
}
