package stream

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crmpulse/crmpulse/alerting/digests"
	"github.com/crmpulse/crmpulse/api"
	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/httpclient"
	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/internal/tlsclient"
	"github.com/crmpulse/crmpulse/privacy"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/redact"
)

// Config is what `crmpulse run` runs. It is read from YAML (unknown keys
// are refused), then environment variables CRMPULSE_<KEY> override it
// (kafka.brokers → CRMPULSE_KAFKA_BROKERS), then flags override both. Every
// key is listed in Keys with its default and meaning; DefaultConfig holds
// the defaults.
type Config struct {
	Kafka          KafkaConfig  `yaml:"kafka"`
	Topics         TopicsConfig `yaml:"topics"`
	Rules          string       `yaml:"rules"`
	IdleTimeout    Duration     `yaml:"idle_timeout"`
	FutureSkew     Duration     `yaml:"future_skew"`
	CommitInterval Duration     `yaml:"commit_interval"`
	HTTP           HTTPConfig   `yaml:"http"`
	Health         HealthConfig `yaml:"health"`
	// ShutdownTimeout bounds a stop: after it Run returns an error naming
	// the partitions that did not stop, even if a worker is stuck.
	ShutdownTimeout Duration      `yaml:"shutdown_timeout"`
	EmbeddedKafka   bool          `yaml:"embedded_kafka"`
	Alertmanager    AMConfig      `yaml:"alertmanager"`
	Webhooks        HooksConfig   `yaml:"webhooks"`
	ClickHouse      CHConfig      `yaml:"clickhouse"`
	Privacy         PrivacyConfig `yaml:"privacy"`
	API             APIConfig     `yaml:"api"`
	// SMTP and DigestEmail email digests; DigestDelivery tunes both
	// channels (docs/run.md, "Digests to people").
	SMTP           SMTPConfig           `yaml:"smtp"`
	DigestEmail    DigestEmailConfig    `yaml:"digest_email"`
	DigestDelivery DigestDeliveryConfig `yaml:"digest_delivery"`

	// Sinks receive every engine output batch besides the Kafka topics
	// (e.g. the ClickHouse sink); offsets are committed only after each
	// sink's Flush returned. Not part of the YAML.
	Sinks []OutputSink `yaml:"-"`
	// Components, when set, builds the extra engine components of each
	// partition's engine (aggregates, resend follow-up); they are
	// snapshotted with the engine. Not part of the YAML.
	Components func(partition int) []processor.Component `yaml:"-"`
	// Backtest runs POST /api/v1/backtest (backtest.Runner over the
	// ClickHouse raw events); nil answers 503. Segments gives
	// /api/v1/segments; nil is no segment sets. Not part of the YAML.
	Backtest api.Backtester    `yaml:"-"`
	Segments api.SegmentSource `yaml:"-"`
	// Now is the wall clock, for the idle watermark and emitted_at;
	// time.Now when nil. Not part of the YAML.
	Now func() time.Time `yaml:"-"`
	// EmbeddedBroker starts the broker of embedded_kafka; Run fails
	// with embedded_kafka set and this nil. The program provides it
	// (cmd/crmpulse: internal/embeddedkafka.Start) so that this package
	// does not link an in-memory broker into every binary. Not part of
	// the YAML.
	EmbeddedBroker EmbeddedBroker `yaml:"-"`
}

// EmbeddedBroker starts an in-process Kafka-protocol broker on addr
// (loopback host:port) with topics pre-created, partitions each, and
// returns the addresses it listens on and the function that stops it.
type EmbeddedBroker func(addr string, partitions int, topics ...string) (addrs []string, stop func(), err error)

// KafkaConfig is the broker connection and consumer group.
type KafkaConfig struct {
	Brokers            []string `yaml:"brokers"`
	GroupID            string   `yaml:"group_id"`
	StartOffset        string   `yaml:"start_offset"`
	SessionTimeout     Duration `yaml:"session_timeout"`
	ReplicationFactor  int      `yaml:"replication_factor"`
	MaxWait            Duration `yaml:"max_wait"`
	EmbeddedPartitions int      `yaml:"embedded_partitions"`
	// TLS and SASL apply to every broker connection (docs/run.md, "Kafka
	// and ClickHouse security").
	TLS  tlsclient.Config `yaml:"tls"`
	SASL SASLConfig       `yaml:"sasl"`
}

// SASLConfig is the SASL authentication of the broker connections.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	// PasswordFile holds the password (one trailing newline is dropped);
	// it keeps the secret out of the file, the environment and ps.
	PasswordFile string `yaml:"password_file"`
}

// security reads the password file and the certificates and builds what
// every broker connection is made with.
func (k KafkaConfig) security() (*ikafka.Security, error) {
	pw, err := httpclient.ReadSecret("kafka.sasl.password", k.SASL.Password, k.SASL.PasswordFile)
	if err != nil {
		return nil, err
	}
	if !k.TLS.On() && k.SASL.Mechanism == "" && k.SASL.Username == "" && pw == "" {
		return nil, nil
	}
	return ikafka.NewSecurity(ikafka.SecurityConfig{
		TLS:  k.TLS,
		SASL: ikafka.SASLConfig{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, Password: pw},
	})
}

// TopicsConfig names the topics the pipeline reads and writes.
type TopicsConfig struct {
	Interactions string `yaml:"interactions"`
	Receipts     string `yaml:"receipts"`
	Customers    string `yaml:"customers"` // profiles (SPEC §1.3); empty runs without them
	Alerts       string `yaml:"alerts"`
	Resends      string `yaml:"resends"`
	Segments     string `yaml:"segments"`
	Digests      string `yaml:"digests"`
	// DigestDeliveries is the compacted ledger of digest deliveries.
	DigestDeliveries string `yaml:"digest_deliveries"`
	Snapshots        string `yaml:"snapshots"`
	Repartition      string `yaml:"repartition"`
}

// AMConfig says where alerts are posted (Alertmanager v2 API).
type AMConfig struct {
	URLs         []string `yaml:"urls"`
	ResendDelay  Duration `yaml:"resend_delay"`
	ClientConfig `yaml:",inline"`
}

// HooksConfig are the webhooks for alerts, resend triggers and digests.
type HooksConfig struct {
	Alerts         string `yaml:"alerts"`
	Resends        string `yaml:"resends"`
	Digests        string `yaml:"digests"`
	Secret         string `yaml:"secret"`
	SecretFile     string `yaml:"secret_file"`
	DeadLetterFile string `yaml:"dead_letter_file"`
	ClientConfig   `yaml:",inline"`
}

// SMTPConfig is the mail server that digests are emailed through; an
// empty host emails none.
type SMTPConfig struct {
	Host         string           `yaml:"host"`
	Port         int              `yaml:"port"`
	Username     string           `yaml:"username"`
	Password     string           `yaml:"password"`
	PasswordFile string           `yaml:"password_file"`
	Mode         string           `yaml:"tls_mode"`
	TLS          tlsclient.Config `yaml:"tls"`
	From         string           `yaml:"from"`
	Timeout      Duration         `yaml:"timeout"`
}

// DigestEmailConfig says who gets each digest and how it reads.
type DigestEmailConfig struct {
	To string `yaml:"to"`
	// ToByDigest overrides To for the digests it names (YAML only).
	ToByDigest   map[string]string `yaml:"to_by_digest"`
	Subject      string            `yaml:"subject"`
	HTMLTemplate string            `yaml:"html_template"`
	TextTemplate string            `yaml:"text_template"`
}

// DigestDeliveryConfig tunes the delivery of digests.
type DigestDeliveryConfig struct {
	MaxBackoff Duration `yaml:"max_backoff"`
	MaxAge     Duration `yaml:"max_age"`
}

// ClientConfig is how an HTTP client (to Alertmanager, to the webhooks)
// authenticates and checks the server: the keys of Prometheus' http_config.
type ClientConfig struct {
	Username        string          `yaml:"username"`
	Password        string          `yaml:"password"`
	PasswordFile    string          `yaml:"password_file"`
	BearerToken     string          `yaml:"bearer_token"`
	BearerTokenFile string          `yaml:"bearer_token_file"`
	TLS             ClientTLSConfig `yaml:"tls"`
}

// ClientTLSConfig is the TLS side of ClientConfig.
type ClientTLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// HTTP is c as an httpclient.Config (secret files already read by
// ReadSecretFiles, or read by httpclient.New).
func (c ClientConfig) HTTP() httpclient.Config {
	return httpclient.Config{
		Username: c.Username, Password: c.Password, PasswordFile: c.PasswordFile,
		BearerToken: c.BearerToken, BearerTokenFile: c.BearerTokenFile,
		TLS: httpclient.TLSConfig{CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile,
			ServerName: c.TLS.ServerName, InsecureSkipVerify: c.TLS.InsecureSkipVerify},
	}
}

// PrivacyConfig says what happens to contact attributes (the keys
// clickhouse.contact_attributes and contact_patterns match) in the copies
// of input records the pipeline writes besides the raw tables.
type PrivacyConfig struct {
	// DeadLetters applies to the .dlq topics (and to replay's
	// rejected.jsonl): keep, hash or drop.
	DeadLetters string `yaml:"dead_letters"`
	// Repartition applies to the records forwarded to the group stage.
	Repartition string `yaml:"repartition"`
}

// CHConfig is the analytics sink (sink/clickhouse) and the aggregates it
// stores (processor/aggregate).
type CHConfig struct {
	DSN             string   `yaml:"dsn"`
	DSNFile         string   `yaml:"dsn_file"`
	Migrate         bool     `yaml:"migrate"`
	BatchRows       int      `yaml:"batch_rows"`
	FlushInterval   Duration `yaml:"flush_interval"`
	MaxBufferedRows int      `yaml:"max_buffered_rows"`
	Window          Duration `yaml:"window"`
	ActivityWindow  Duration `yaml:"activity_window"`
	RawEvents       bool     `yaml:"raw_events"`
	HashKey         string   `yaml:"hash_key"`
	HashKeyFile     string   `yaml:"hash_key_file"`
	ContactAttrs    []string `yaml:"contact_attributes"`
	ContactPatterns []string `yaml:"contact_patterns"`
	// Username and Password override the DSN's; TLS is given to the
	// driver as a tls.Config (docs/run.md, "Kafka and ClickHouse security").
	Username     string           `yaml:"username"`
	Password     string           `yaml:"password"`
	PasswordFile string           `yaml:"password_file"`
	TLS          tlsclient.Config `yaml:"tls"`
}

// CHPassword is clickhouse.password or the content of
// clickhouse.password_file (when ReadSecretFiles has not read it yet).
func (c CHConfig) CHPassword() (string, error) {
	return httpclient.ReadSecret("clickhouse.password", c.Password, c.PasswordFile)
}

// APIConfig bounds the query API (api/, docs/api.md).
type APIConfig struct {
	BacktestTimeout     Duration `yaml:"backtest_timeout"`
	BacktestMaxRows     int      `yaml:"backtest_max_rows"`
	BacktestMaxRecords  int      `yaml:"backtest_max_records"`
	MaxBodyBytes        int      `yaml:"max_body_bytes"`
	BacktestConcurrency int      `yaml:"backtest_concurrency"`
}

// BacktestLimits are the limits of a backtest.Runner.
func (c APIConfig) BacktestLimits() backtest.Limits {
	return backtest.Limits{MaxRows: int64(c.BacktestMaxRows), MaxRecords: c.BacktestMaxRecords, Timeout: c.BacktestTimeout.D()}
}

// HTTPConfig is the metrics and health endpoint.
type HTTPConfig struct {
	Listen string `yaml:"listen"`
	// WebConfigFile is a Prometheus exporter-toolkit web config: TLS and
	// basic auth users (stream/httpauth.go).
	WebConfigFile   string `yaml:"web_config_file"`
	BearerToken     string `yaml:"bearer_token"`
	BearerTokenFile string `yaml:"bearer_token_file"`
}

// HealthConfig is when /healthz fails and a slow step is logged.
type HealthConfig struct {
	// StallTimeout: a partition worker that made no progress for this long
	// while it had work to do fails /healthz.
	StallTimeout Duration `yaml:"stall_timeout"`
	// SlowStep: a worker busy on one step this long is logged at WARN once,
	// with the rule it is in.
	SlowStep Duration `yaml:"slow_step"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 1m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// DefaultConfig is the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Kafka: KafkaConfig{
			GroupID:            "crmpulse",
			StartOffset:        "earliest",
			SessionTimeout:     Duration(10 * time.Second),
			ReplicationFactor:  -1,
			MaxWait:            Duration(250 * time.Millisecond),
			EmbeddedPartitions: 4,
		},
		Topics: TopicsConfig{
			Interactions:     "crm.interactions",
			Receipts:         "crm.delivery-receipts",
			Customers:        "crm.customers",
			Alerts:           "crm.alerts",
			Resends:          "crm.resend-triggers",
			Segments:         "crm.segments",
			Digests:          "crm.digests",
			DigestDeliveries: "crm.digest-deliveries",
			Snapshots:        "crmpulse.snapshots",
			Repartition:      "crmpulse.repartition",
		},
		IdleTimeout:     Duration(30 * time.Second),
		FutureSkew:      Duration(processor.DefaultFutureSkew),
		CommitInterval:  Duration(time.Second),
		HTTP:            HTTPConfig{Listen: "127.0.0.1:9464"},
		Health:          HealthConfig{StallTimeout: Duration(2 * time.Minute), SlowStep: Duration(10 * time.Second)},
		ShutdownTimeout: Duration(30 * time.Second),
		Alertmanager:    AMConfig{ResendDelay: Duration(time.Minute)},
		Privacy:         PrivacyConfig{DeadLetters: "keep", Repartition: "keep"},
		ClickHouse: CHConfig{
			Migrate: true, BatchRows: 50_000, FlushInterval: Duration(time.Second), MaxBufferedRows: 200_000,
			Window: Duration(time.Hour), ActivityWindow: Duration(24 * time.Hour),
		},
		API: APIConfig{
			BacktestTimeout: Duration(backtest.DefaultTimeout), BacktestMaxRows: backtest.DefaultMaxRows,
			BacktestMaxRecords: backtest.DefaultMaxRecords, MaxBodyBytes: api.DefaultMaxBodyBytes,
			BacktestConcurrency: api.DefaultBacktestConcurrency,
		},
		SMTP:           SMTPConfig{Mode: digests.TLSStartTLS, Timeout: Duration(digests.DefaultSMTPTimeout)},
		DigestDelivery: DigestDeliveryConfig{MaxBackoff: Duration(digests.DefaultMaxBackoff)},
	}
}

// DefaultEmbeddedBroker is where --embedded-kafka listens when
// kafka.brokers is not set.
const DefaultEmbeddedBroker = "127.0.0.1:9092"

// Key is one configuration key: its YAML path, meaning, and how to set it
// from a string (environment variable or flag).
type Key struct {
	Name string // YAML path, e.g. kafka.brokers
	Help string
	// Secret keys (passwords, tokens, keys, DSNs) each have a <name>_file
	// twin; their values are never printed, and giving one as a flag is
	// warned about (flags show in ps).
	Secret bool
	set    func(c *Config, v string) error
	get    func(c *Config) string
}

// Env is the environment variable that overrides the key.
func (k Key) Env() string {
	return "CRMPULSE_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(k.Name))
}

// Flag is the command-line flag that overrides the key.
func (k Key) Flag() string { return strings.ReplaceAll(k.Name, "_", "-") }

// Default is the key's default value as text.
func (k Key) Default() string {
	if k.Secret {
		return "" // secrets have no default, and a default would be printed
	}
	c := DefaultConfig()
	return k.get(&c)
}

// access reads and writes one key of a Config as text.
type access struct {
	set func(c *Config, v string) error
	get func(c *Config) string
}

func str(p func(*Config) *string) access {
	return access{func(c *Config, v string) error { *p(c) = v; return nil }, func(c *Config) string { return *p(c) }}
}

func dur(p func(*Config) *Duration) access {
	return access{func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s or 1m", v)
		}
		*p(c) = Duration(d)
		return nil
	}, func(c *Config) string {
		return p(c).String()
	}}
}

func integer(p func(*Config) *int) access {
	return access{func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p(c) = n
		return nil
	}, func(c *Config) string {
		return strconv.Itoa(*p(c))
	}}
}

func boolean(p func(*Config) *bool) access {
	return access{func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p(c) = b
		return nil
	}, func(c *Config) string {
		return strconv.FormatBool(*p(c))
	}}
}

func key(name, help string, acc access) Key {
	return Key{Name: name, Help: help, set: acc.set, get: acc.get}
}

// secret is a secret key and its <name>_file twin.
func secret(name, help string, p, file func(*Config) *string) []Key {
	k := key(name, help+"; secret: prefer "+name+"_file or the environment", str(p))
	k.Secret = true
	return []Key{k, key(name+"_file", "file holding "+name+" (trailing newline trimmed), e.g. a mounted Kubernetes secret", str(file))}
}

// clientKeys are the keys of a ClientConfig under prefix.
func clientKeys(prefix, what string, p func(*Config) *ClientConfig) []Key {
	ks := []Key{key(prefix+".username", "basic auth user for "+what+"; with password", str(func(c *Config) *string { return &p(c).Username }))}
	ks = append(ks, secret(prefix+".password", "basic auth password for "+what,
		func(c *Config) *string { return &p(c).Password }, func(c *Config) *string { return &p(c).PasswordFile })...)
	ks = append(ks, secret(prefix+".bearer_token", "sent as Authorization: Bearer to "+what+"; instead of basic auth",
		func(c *Config) *string { return &p(c).BearerToken }, func(c *Config) *string { return &p(c).BearerTokenFile })...)
	return append(ks,
		key(prefix+".tls.ca_file", "PEM CA bundle that signs the certificate of "+what+"; empty: the system roots", str(func(c *Config) *string { return &p(c).TLS.CAFile })),
		key(prefix+".tls.cert_file", "client certificate (PEM) presented to "+what+" for mutual TLS; with key_file", str(func(c *Config) *string { return &p(c).TLS.CertFile })),
		key(prefix+".tls.key_file", "key (PEM) of tls.cert_file", str(func(c *Config) *string { return &p(c).TLS.KeyFile })),
		key(prefix+".tls.server_name", "name the certificate of "+what+" must carry when it is not the URL's host", str(func(c *Config) *string { return &p(c).TLS.ServerName })),
		key(prefix+".tls.insecure_skip_verify", "accept any certificate from "+what+" (tests only: logged as a warning)", boolean(func(c *Config) *bool { return &p(c).TLS.InsecureSkipVerify })),
	)
}

// Keys lists every configuration key; --help and docs/run.md are written
// from it (a test checks the doc).
var Keys = func() []Key {
	brokersSet := func(c *Config, v string) error {
		c.Kafka.Brokers = nil
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				c.Kafka.Brokers = append(c.Kafka.Brokers, b)
			}
		}
		return nil
	}
	brokersGet := func(c *Config) string { return strings.Join(c.Kafka.Brokers, ",") }
	list := func(p func(*Config) *[]string) access {
		return access{func(c *Config, v string) error {
			*p(c) = nil
			for _, x := range strings.Split(v, ",") {
				if x = strings.TrimSpace(x); x != "" {
					*p(c) = append(*p(c), x)
				}
			}
			return nil
		}, func(c *Config) string { return strings.Join(*p(c), ",") }}
	}
	ks := []Key{
		key("kafka.brokers", "Kafka bootstrap brokers, host:port, comma-separated in env and flags (with embedded_kafka: where the embedded broker listens, default "+DefaultEmbeddedBroker+")", access{brokersSet, brokersGet}),
		key("kafka.group_id", "consumer group; also prefixes snapshot keys, so instances of one deployment share it", str(func(c *Config) *string { return &c.Kafka.GroupID })),
		key("kafka.start_offset", "where a partition without a snapshot starts when the group has no committed offset: earliest or latest", str(func(c *Config) *string { return &c.Kafka.StartOffset })),
		key("kafka.session_timeout", "consumer group session timeout: how long a silent (killed) instance keeps its partitions", dur(func(c *Config) *Duration { return &c.Kafka.SessionTimeout })),
		key("kafka.replication_factor", "replication factor of topics the pipeline creates (outputs, dead letters, snapshots); -1 is the broker's default", integer(func(c *Config) *int { return &c.Kafka.ReplicationFactor })),
		key("kafka.max_wait", "longest a fetch long-polls an empty partition; a fetch returns as soon as any record is there, so this does not add latency", dur(func(c *Config) *Duration { return &c.Kafka.MaxWait })),
		key("kafka.embedded_partitions", "partitions of each topic the embedded broker pre-creates", integer(func(c *Config) *int { return &c.Kafka.EmbeddedPartitions })),
		key("kafka.tls.enabled", "connect to the brokers over TLS (SSL or SASL_SSL listeners); implied by any other kafka.tls key; applies to every connection: fetchers, consumer group, producers, admin, snapshots, repartition", boolean(func(c *Config) *bool { return &c.Kafka.TLS.Enabled })),
		key("kafka.tls.ca_file", "PEM file of the CAs that sign the brokers' certificates; empty: the system roots (enough for MSK and Confluent Cloud)", str(func(c *Config) *string { return &c.Kafka.TLS.CAFile })),
		key("kafka.tls.cert_file", "PEM client certificate for mutual TLS (with kafka.tls.key_file)", str(func(c *Config) *string { return &c.Kafka.TLS.CertFile })),
		key("kafka.tls.key_file", "PEM private key of kafka.tls.cert_file", str(func(c *Config) *string { return &c.Kafka.TLS.KeyFile })),
		key("kafka.tls.server_name", "name the brokers' certificates must carry; empty: the host of each broker address", str(func(c *Config) *string { return &c.Kafka.TLS.ServerName })),
		key("kafka.tls.insecure_skip_verify", "accept any broker certificate: for tests only, logged at WARN at start", boolean(func(c *Config) *bool { return &c.Kafka.TLS.InsecureSkipVerify })),
		key("kafka.sasl.mechanism", "SASL mechanism of every broker connection: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL", str(func(c *Config) *string { return &c.Kafka.SASL.Mechanism })),
		key("kafka.sasl.username", "SASL user name (Confluent Cloud: the API key)", str(func(c *Config) *string { return &c.Kafka.SASL.Username })),
		key("topics.interactions", "input topic of interactions (SPEC §1.1), keyed by customer_id", str(func(c *Config) *string { return &c.Topics.Interactions })),
		key("topics.receipts", "input topic of delivery receipts (SPEC §1.2), keyed by customer_id; same partition count as interactions", str(func(c *Config) *string { return &c.Topics.Receipts })),
		key("topics.customers", "input topic of customer profiles (SPEC §1.3), compacted, keyed by customer_id; same partition count as interactions; empty runs without profiles", str(func(c *Config) *string { return &c.Topics.Customers })),
		key("topics.alerts", "output topic of alert records (SPEC §4), keyed by fingerprint, header crmpulse-id", str(func(c *Config) *string { return &c.Topics.Alerts })),
		key("topics.resends", "output topic of resend triggers and cancels (SPEC §4), keyed by customer_id, header crmpulse-id", str(func(c *Config) *string { return &c.Topics.Resends })),
		key("topics.segments", "output topic of segment transition records (SPEC §3.3, §4), keyed by customer_id, header crmpulse-id", str(func(c *Config) *string { return &c.Topics.Segments })),
		key("topics.digests", "output topic of digest records (SPEC §3.4, §4), written by the group stage, keyed by digest and group, header crmpulse-id", str(func(c *Config) *string { return &c.Topics.Digests })),
		key("topics.digest_deliveries", "compacted single-partition topic recording each digest delivery (sending, sent, refused) by channel and digest_id, so that no digest is emailed or posted twice across restarts; used when smtp.host or webhooks.digests is set", str(func(c *Config) *string { return &c.Topics.DigestDeliveries })),
		key("topics.snapshots", "compacted topic of per-partition engine snapshots and the offsets they cover", str(func(c *Config) *string { return &c.Topics.Snapshots })),
		key("topics.repartition", "internal single-partition topic carrying accepted records and watermark markers to the group stage, which runs the rules grouping across customers", str(func(c *Config) *string { return &c.Topics.Repartition })),
		key("rules", "rules file (YAML, SPEC §3); reloaded on SIGHUP and when it changes", str(func(c *Config) *string { return &c.Rules })),
		key("idle_timeout", "a partition without records for this long stops holding the watermark back", dur(func(c *Config) *Duration { return &c.IdleTimeout })),
		key("future_skew", "a record more than this far ahead of its partition's watermark is dead-lettered with reason future, so one wrong clock cannot make the partition's later records late; 0 disables (docs/limits.md)", dur(func(c *Config) *Duration { return &c.FutureSkew })),
		key("commit_interval", "how often each partition's outputs are flushed, its state snapshotted and its offsets committed", dur(func(c *Config) *Duration { return &c.CommitInterval })),
		key("http.listen", "address of /metrics, /healthz and /readyz; empty disables the listener; in a container 0.0.0.0:9464, and set http.web_config_file", str(func(c *Config) *string { return &c.HTTP.Listen })),
		key("health.stall_timeout", "/healthz fails (503, naming the partition) while a partition worker has made no progress for this long with work to do: input waiting, or a step (a rule, an output flush) that does not end; a caught-up idle partition is healthy", dur(func(c *Config) *Duration { return &c.Health.StallTimeout })),
		key("health.slow_step", "a partition worker busy on one step this long is logged at WARN once, naming the rule it is in (crmpulse_stream_partition_busy_seconds shows it meanwhile)", dur(func(c *Config) *Duration { return &c.Health.SlowStep })),
		key("shutdown_timeout", "longest a stop (SIGTERM, SIGINT) may take, final checkpoints included; after it the partitions that did not stop are logged and the process exits 1", dur(func(c *Config) *Duration { return &c.ShutdownTimeout })),
		key("embedded_kafka", "start an in-process Kafka-protocol broker (franz-go kfake) with the input topics pre-created and use it", boolean(func(c *Config) *bool { return &c.EmbeddedKafka })),
		key("alertmanager.urls", "Alertmanager base URLs (v2 API) that receive every firing and resolved alert; several for HA; empty: none", list(func(c *Config) *[]string { return &c.Alertmanager.URLs })),
		key("alertmanager.resend_delay", "how often alerts that keep firing are re-posted to Alertmanager", dur(func(c *Config) *Duration { return &c.Alertmanager.ResendDelay })),
		key("webhooks.alerts", "URL that receives one POST per alert record (SPEC §4) with an Idempotency-Key header; empty: none", str(func(c *Config) *string { return &c.Webhooks.Alerts })),
		key("webhooks.resends", "URL that receives one POST per resend trigger or cancel, Idempotency-Key trigger_id:action; empty: none", str(func(c *Config) *string { return &c.Webhooks.Resends })),
		key("webhooks.digests", "URL that receives one POST per digest record (SPEC §4), Idempotency-Key digest_id, retried until it answers 2xx and never posted again after; empty: none", str(func(c *Config) *string { return &c.Webhooks.Digests })),
		key("webhooks.dead_letter_file", "JSON Lines file receiving every webhook record given up after the last retry", str(func(c *Config) *string { return &c.Webhooks.DeadLetterFile })),
		key("clickhouse.migrate", "apply the schema migrations at start (as `crmpulse migrate` does); a schema newer than the binary is refused either way", boolean(func(c *Config) *bool { return &c.ClickHouse.Migrate })),
		key("clickhouse.batch_rows", "rows per insert block; a table's queue is inserted at once when this many rows wait", integer(func(c *Config) *int { return &c.ClickHouse.BatchRows })),
		key("clickhouse.flush_interval", "longest rows wait for a batch to fill: at most one partial insert per table per interval", dur(func(c *Config) *Duration { return &c.ClickHouse.FlushInterval })),
		key("clickhouse.max_buffered_rows", "rows held in memory while ClickHouse is slow or down; at the bound consumption stops (backpressure)", integer(func(c *Config) *int { return &c.ClickHouse.MaxBufferedRows })),
		key("clickhouse.window", "tumbling window of the revenue, complaint and delivery aggregates", dur(func(c *Config) *Duration { return &c.ClickHouse.Window })),
		key("clickhouse.activity_window", "tumbling window of per-customer activity", dur(func(c *Config) *Duration { return &c.ClickHouse.ActivityWindow })),
		key("clickhouse.raw_events", "also store every accepted interaction and receipt in interactions_raw / receipts_raw, contact attributes hashed (docs/clickhouse.md)", boolean(func(c *Config) *bool { return &c.ClickHouse.RawEvents })),
		key("clickhouse.contact_attributes", "exact attribute keys (case-insensitive) holding contact data: hashed in the raw tables, and per privacy.* elsewhere; empty: the defaults of docs/security.md (email, phone, mobile, address, name, first_name, last_name, ip, ...)", list(func(c *Config) *[]string { return &c.ClickHouse.ContactAttrs })),
		key("api.backtest_timeout", "longest a POST /api/v1/backtest runs before it is stopped (503 timeout)", dur(func(c *Config) *Duration { return &c.API.BacktestTimeout })),
		key("api.backtest_max_rows", "raw-event rows a backtest reads at most; it stops there and says truncated_by max_rows", integer(func(c *Config) *int { return &c.API.BacktestMaxRows })),
		key("api.backtest_max_records", "alert and resend records a backtest returns at most (the counts stay whole); truncated_by max_records", integer(func(c *Config) *int { return &c.API.BacktestMaxRecords })),
		key("api.backtest_concurrency", "backtests that may run at once, each with an engine of its own; another is refused (503 unavailable)", integer(func(c *Config) *int { return &c.API.BacktestConcurrency })),
		key("api.max_body_bytes", "largest backtest request body (413 above)", integer(func(c *Config) *int { return &c.API.MaxBodyBytes })),
		key("clickhouse.username", "ClickHouse user; overrides the DSN's", str(func(c *Config) *string { return &c.ClickHouse.Username })),
		key("clickhouse.tls.enabled", "connect over TLS (the server's tcp_port_secure, 9440 by default); implied by any other clickhouse.tls key", boolean(func(c *Config) *bool { return &c.ClickHouse.TLS.Enabled })),
		key("clickhouse.tls.ca_file", "PEM file of the CAs that sign the server's certificate; empty: the system roots", str(func(c *Config) *string { return &c.ClickHouse.TLS.CAFile })),
		key("clickhouse.tls.cert_file", "PEM client certificate for mutual TLS (with clickhouse.tls.key_file)", str(func(c *Config) *string { return &c.ClickHouse.TLS.CertFile })),
		key("clickhouse.tls.key_file", "PEM private key of clickhouse.tls.cert_file", str(func(c *Config) *string { return &c.ClickHouse.TLS.KeyFile })),
		key("clickhouse.tls.server_name", "name the server's certificate must carry; empty: the DSN's host", str(func(c *Config) *string { return &c.ClickHouse.TLS.ServerName })),
		key("clickhouse.tls.insecure_skip_verify", "accept any server certificate: for tests only, logged at WARN at start", boolean(func(c *Config) *bool { return &c.ClickHouse.TLS.InsecureSkipVerify })),
	}
	ks = append(ks, secret("kafka.sasl.password", "SASL password of every broker connection (Confluent Cloud: the API secret)",
		func(c *Config) *string { return &c.Kafka.SASL.Password }, func(c *Config) *string { return &c.Kafka.SASL.PasswordFile })...)
	ks = append(ks, secret("clickhouse.password", "ClickHouse password; overrides the DSN's",
		func(c *Config) *string { return &c.ClickHouse.Password }, func(c *Config) *string { return &c.ClickHouse.PasswordFile })...)
	ks = append(ks, key("clickhouse.contact_patterns", "attribute key patterns (case-insensitive globs: * any run, ? one character) also holding contact data; empty: *email*, *phone*, *mobile*, *address*, *_name, *name_*, *birth*, *ip_addr*, ...; - alone: none",
		list(func(c *Config) *[]string { return &c.ClickHouse.ContactPatterns })))
	ks = append(ks, secret("clickhouse.dsn", "ClickHouse native-protocol DSN (clickhouse://user:password@host:9000/db) receiving aggregates, alert history, resends and outcomes; offsets commit only after rows are stored; empty: none",
		func(c *Config) *string { return &c.ClickHouse.DSN }, func(c *Config) *string { return &c.ClickHouse.DSNFile })...)
	ks = append(ks, secret("clickhouse.hash_key", fmt.Sprintf("secret key (at least %d bytes) of the HMAC-SHA256 that replaces contact attribute values in the raw tables and, per privacy.*, in dead letters and the repartition topic; keep it stable", privacy.MinHashKeyBytes),
		func(c *Config) *string { return &c.ClickHouse.HashKey }, func(c *Config) *string { return &c.ClickHouse.HashKeyFile })...)
	ks = append(ks, secret("webhooks.secret", "if set, webhook bodies are signed: X-CRMPulse-Signature: sha256=<HMAC-SHA256>",
		func(c *Config) *string { return &c.Webhooks.Secret }, func(c *Config) *string { return &c.Webhooks.SecretFile })...)
	ks = append(ks, clientKeys("alertmanager", "Alertmanager", func(c *Config) *ClientConfig { return &c.Alertmanager.ClientConfig })...)
	ks = append(ks, clientKeys("webhooks", "the webhooks", func(c *Config) *ClientConfig { return &c.Webhooks.ClientConfig })...)
	ks = append(ks, key("http.web_config_file", "Prometheus exporter-toolkit web config (tls_server_config, basic_auth_users with bcrypt hashes) securing /metrics and /readyz; /healthz stays open (docs/security.md)",
		str(func(c *Config) *string { return &c.HTTP.WebConfigFile })))
	ks = append(ks, secret("http.bearer_token", "token that also grants access to /metrics and /readyz, as Authorization: Bearer",
		func(c *Config) *string { return &c.HTTP.BearerToken }, func(c *Config) *string { return &c.HTTP.BearerTokenFile })...)
	ks = append(ks,
		key("smtp.host", "SMTP server that digests are emailed through (docs/run.md, \"Digests to people\"); empty: digests are not emailed", str(func(c *Config) *string { return &c.SMTP.Host })),
		key("smtp.port", "SMTP port; 0: 587 with tls_mode starttls, 465 with tls, 25 with none", integer(func(c *Config) *int { return &c.SMTP.Port })),
		key("smtp.tls_mode", "starttls (required STARTTLS), tls (TLS from the first byte) or none (a local relay; tests)", str(func(c *Config) *string { return &c.SMTP.Mode })),
		key("smtp.from", "sender of digest emails, e.g. CRM Pulse <pulse@example.com>", str(func(c *Config) *string { return &c.SMTP.From })),
		key("smtp.username", "SMTP user (AUTH as the server offers it); empty: no AUTH", str(func(c *Config) *string { return &c.SMTP.Username })),
		key("smtp.timeout", "longest one SMTP conversation may take", dur(func(c *Config) *Duration { return &c.SMTP.Timeout })),
		key("smtp.tls.ca_file", "PEM file of the CAs that sign the SMTP server's certificate; empty: the system roots", str(func(c *Config) *string { return &c.SMTP.TLS.CAFile })),
		key("smtp.tls.server_name", "name the SMTP server's certificate must carry; empty: smtp.host", str(func(c *Config) *string { return &c.SMTP.TLS.ServerName })),
		key("smtp.tls.insecure_skip_verify", "accept any SMTP server certificate: for tests only, logged at WARN at start", boolean(func(c *Config) *bool { return &c.SMTP.TLS.InsecureSkipVerify })),
		key("digest_email.to", "recipients of each digest email, comma-separated: a Go template over the digest record, e.g. {{.Group.account_manager}} (the default) or a fixed address; digest_email.to_by_digest (YAML only) sets it per digest", str(func(c *Config) *string { return &c.DigestEmail.To })),
		key("digest_email.subject", "subject template; empty: digest name, group and period end", str(func(c *Config) *string { return &c.DigestEmail.Subject })),
		key("digest_email.html_template", "file holding the html/template of the HTML part; empty: the built-in one (alerting/digests/templates)", str(func(c *Config) *string { return &c.DigestEmail.HTMLTemplate })),
		key("digest_email.text_template", "file holding the text/template of the plain-text part; empty: the built-in one", str(func(c *Config) *string { return &c.DigestEmail.TextTemplate })),
		key("digest_delivery.max_age", "skip a digest whose period ended longer ago than this when delivery reads it (counted as outcome stale), so that turning delivery on does not mail the digests still in the topic; 0 delivers every digest however late (an outage longer than max_age would otherwise skip digests)", dur(func(c *Config) *Duration { return &c.DigestDelivery.MaxAge })),
		key("digest_delivery.max_backoff", "longest wait between two attempts to deliver a digest while its server is down; attempts go on until it is delivered", dur(func(c *Config) *Duration { return &c.DigestDelivery.MaxBackoff })),
	)
	ks = append(ks, secret("smtp.password", "SMTP password",
		func(c *Config) *string { return &c.SMTP.Password }, func(c *Config) *string { return &c.SMTP.PasswordFile })...)
	ks = append(ks,
		key("privacy.dead_letters", "contact attributes in the .dlq topics and replay's rejected.jsonl: keep, hash (HMAC with clickhouse.hash_key) or drop; a value that is not JSON is replaced by its hash and length (hash) or its length (drop)", str(func(c *Config) *string { return &c.Privacy.DeadLetters })),
		key("privacy.repartition", "contact attributes on the repartition topic: keep, hash or drop; with hash or drop, group rules see hashed or no contact attributes", str(func(c *Config) *string { return &c.Privacy.Repartition })),
	)
	return ks
}()

// LoadConfig builds the configuration: defaults, then the YAML file at path
// (if path is not empty), then environment overrides from getenv.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("reading config: %w", err)
		}
		if err := parseYAML(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, k := range Keys {
		v := getenv(k.Env())
		if v == "" {
			continue
		}
		if err := k.set(&cfg, v); err != nil {
			return cfg, fmt.Errorf("environment %s: %w", k.Env(), err)
		}
	}
	return cfg, nil
}

func parseYAML(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// BindFlags defines one flag per key on fs (kafka.group_id is
// --kafka.group-id) plus --embedded-kafka. After fs.Parse, Apply copies the
// flags that were set into a Config.
func BindFlags(fs *flag.FlagSet) *FlagValues {
	fv := &FlagValues{fs: fs, vals: map[string]*string{}}
	for _, k := range Keys {
		v := new(string)
		fv.vals[k.Name] = v
		usage := fmt.Sprintf("overrides config key %s (env %s); see the key table", k.Name, k.Env())
		if k.Name == "embedded_kafka" {
			fs.BoolFunc("embedded-kafka", usage, func(s string) error { *v = s; return nil })
			continue
		}
		fs.Func(k.Flag(), usage, func(s string) error { *v = s; return nil })
	}
	return fv
}

// FlagValues holds the flags bound by BindFlags.
type FlagValues struct {
	fs   *flag.FlagSet
	vals map[string]*string
}

// Apply overrides cfg with every flag that was given.
func (fv *FlagValues) Apply(cfg *Config) error {
	for _, k := range Keys {
		v := *fv.vals[k.Name]
		if v == "" {
			continue
		}
		if err := k.set(cfg, v); err != nil {
			return fmt.Errorf("flag --%s: %w", k.Flag(), err)
		}
	}
	return nil
}

// SecretFlags are the secret keys given as flags: visible to anyone who can
// list processes, so the caller warns about them.
func (fv *FlagValues) SecretFlags() []string {
	var out []string
	for _, k := range Keys {
		v := *fv.vals[k.Name]
		switch {
		case v == "":
		case k.Name == "clickhouse.dsn" || urlKeys[k.Name]:
			// A DSN or URL is secret only when it carries a password or token.
			if len(redact.Secrets(v)) > 0 {
				out = append(out, "--"+k.Flag())
			}
		case k.Secret:
			out = append(out, "--"+k.Flag())
		}
	}
	return out
}

// urlKeys are the keys holding URLs, which may carry credentials.
var urlKeys = map[string]bool{"alertmanager.urls": true, "webhooks.alerts": true, "webhooks.resends": true, "webhooks.digests": true}

// ReadSecretFiles replaces every secret that has its <name>_file key set by
// the file's content (trailing newline trimmed) and clears the _file key.
// A secret given both ways is refused: which one wins would be a guess.
func (c *Config) ReadSecretFiles() error {
	var errs []error
	for i, k := range Keys {
		if !k.Secret || i+1 >= len(Keys) || Keys[i+1].Name != k.Name+"_file" {
			continue
		}
		fk := Keys[i+1]
		file := fk.get(c)
		if file == "" {
			continue
		}
		v, err := httpclient.ReadSecret(k.Name, k.get(c), file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_ = k.set(c, v)
		_ = fk.set(c, "")
	}
	return errors.Join(errs...)
}

// Validate checks cfg and names the key of each problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if len(c.Kafka.Brokers) == 0 && !c.EmbeddedKafka {
		bad("kafka.brokers", "required (or set embedded_kafka)")
	}
	for _, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad("kafka.brokers", "%q is not host:port", b)
		}
	}
	if c.Kafka.GroupID == "" {
		bad("kafka.group_id", "required")
	}
	if c.Kafka.StartOffset != "earliest" && c.Kafka.StartOffset != "latest" {
		bad("kafka.start_offset", "must be earliest or latest, got %q", c.Kafka.StartOffset)
	}
	if c.Kafka.SessionTimeout.D() < time.Second {
		bad("kafka.session_timeout", "must be at least 1s")
	}
	if c.Kafka.ReplicationFactor == 0 || c.Kafka.ReplicationFactor < -1 {
		bad("kafka.replication_factor", "must be -1 or positive")
	}
	if c.Kafka.MaxWait.D() <= 0 {
		bad("kafka.max_wait", "must be positive")
	}
	if err := c.Kafka.TLS.Check("kafka.tls"); err != nil {
		errs = append(errs, err)
	}
	if m := c.Kafka.SASL.Mechanism; m != "" && !slices.Contains(ikafka.Mechanisms, strings.ToUpper(m)) {
		bad("kafka.sasl.mechanism", "%q is not one of %s", m, strings.Join(ikafka.Mechanisms, ", "))
	}
	if c.Kafka.SASL.Mechanism != "" && c.Kafka.SASL.Username == "" {
		bad("kafka.sasl.username", "required with kafka.sasl.mechanism")
	}
	if c.Kafka.SASL.Password != "" && c.Kafka.SASL.PasswordFile != "" {
		bad("kafka.sasl.password", "set kafka.sasl.password or kafka.sasl.password_file, not both")
	}
	if c.EmbeddedKafka && (c.Kafka.TLS.On() || c.Kafka.SASL.Mechanism != "") {
		bad("embedded_kafka", "the embedded broker is plaintext: unset kafka.tls and kafka.sasl")
	}
	if err := c.ClickHouse.TLS.Check("clickhouse.tls"); err != nil {
		errs = append(errs, err)
	}
	if c.ClickHouse.Password != "" && c.ClickHouse.PasswordFile != "" {
		bad("clickhouse.password", "set clickhouse.password or clickhouse.password_file, not both")
	}
	if c.EmbeddedKafka && c.Kafka.EmbeddedPartitions < 1 {
		bad("kafka.embedded_partitions", "must be at least 1")
	}
	topics := map[string]string{}
	for _, t := range []struct{ key, name string }{
		{"topics.interactions", c.Topics.Interactions}, {"topics.receipts", c.Topics.Receipts},
		{"topics.alerts", c.Topics.Alerts}, {"topics.resends", c.Topics.Resends}, {"topics.segments", c.Topics.Segments}, {"topics.digests", c.Topics.Digests}, {"topics.snapshots", c.Topics.Snapshots}, {"topics.repartition", c.Topics.Repartition},
	} {
		if t.name == "" {
			bad(t.key, "required")
			continue
		}
		if other, ok := topics[t.name]; ok {
			bad(t.key, "topic %q is also %s", t.name, other)
		}
		topics[t.name] = t.key
	}
	if n := c.Topics.Customers; n != "" {
		if other, ok := topics[n]; ok {
			bad("topics.customers", "topic %q is also %s", n, other)
		}
	}
	if c.deliversDigests() {
		if n := c.Topics.DigestDeliveries; n == "" {
			bad("topics.digest_deliveries", "required with smtp.host or webhooks.digests")
		} else if other, ok := topics[n]; ok {
			bad("topics.digest_deliveries", "topic %q is also %s", n, other)
		}
	}
	if c.SMTP.Host != "" {
		if err := c.SMTP.TLS.Check("smtp.tls"); err != nil {
			errs = append(errs, err)
		}
		if c.SMTP.Password != "" && c.SMTP.PasswordFile != "" {
			bad("smtp.password", "set smtp.password or smtp.password_file, not both")
		}
		if c.SMTP.Password != "" && c.SMTP.Username == "" {
			bad("smtp.password", "set without smtp.username")
		}
	}
	if c.DigestDelivery.MaxBackoff.D() < 0 {
		bad("digest_delivery.max_backoff", "must not be negative")
	}
	if c.DigestDelivery.MaxAge.D() < 0 {
		bad("digest_delivery.max_age", "must not be negative (0 delivers every digest)")
	}
	if c.Rules == "" {
		bad("rules", "required")
	}
	if c.IdleTimeout.D() <= 0 {
		bad("idle_timeout", "must be positive")
	}
	if c.FutureSkew.D() < 0 {
		bad("future_skew", "must not be negative (0 disables the guard)")
	}
	if c.CommitInterval.D() <= 0 {
		bad("commit_interval", "must be positive")
	}
	if c.Health.StallTimeout.D() <= 0 {
		bad("health.stall_timeout", "must be positive")
	}
	if c.Health.SlowStep.D() <= 0 {
		bad("health.slow_step", "must be positive")
	}
	if c.ShutdownTimeout.D() <= 0 {
		bad("shutdown_timeout", "must be positive")
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			bad("http.listen", "%q is not host:port", c.HTTP.Listen)
		}
	}
	if c.ClickHouse.HashKey != "" {
		if err := privacy.CheckHashKey(c.ClickHouse.HashKey); err != nil {
			bad("clickhouse.hash_key", "%s", strings.TrimPrefix(err.Error(), "hash_key: "))
		}
	}
	if _, err := privacy.NewMatcher(c.ClickHouse.ContactAttrs, c.ClickHouse.ContactPatterns); err != nil {
		bad("clickhouse", "%v", err)
	}
	for _, p := range []struct{ key, v string }{{"privacy.dead_letters", c.Privacy.DeadLetters}, {"privacy.repartition", c.Privacy.Repartition}} {
		m, err := privacy.ParseMode(p.v)
		switch {
		case err != nil:
			bad(p.key, "%v", err)
		case m == privacy.Hash && c.ClickHouse.HashKey == "":
			bad(p.key, "hash needs clickhouse.hash_key (the HMAC key)")
		}
	}
	if c.API.BacktestTimeout.D() <= 0 {
		bad("api.backtest_timeout", "must be positive")
	}
	if c.API.BacktestMaxRows < 1 {
		bad("api.backtest_max_rows", "must be at least 1")
	}
	if c.API.BacktestMaxRecords < 1 {
		bad("api.backtest_max_records", "must be at least 1")
	}
	if c.API.BacktestConcurrency < 1 {
		bad("api.backtest_concurrency", "must be at least 1")
	}
	if c.API.MaxBodyBytes < 1 {
		bad("api.max_body_bytes", "must be at least 1")
	}
	return errors.Join(errs...)
}

// Usage writes the key table for --help. Secret keys show no default and
// no value: --help never prints a secret, whatever the environment holds.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Configuration keys (YAML key / environment variable / flag, default):")
	for _, k := range Keys {
		fmt.Fprintf(w, "  %-26s %-34s --%s\n", k.Name, k.Env(), k.Flag())
		fmt.Fprintf(w, "      %s (default %q)\n", k.Help, k.Default())
	}
}
