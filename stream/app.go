package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/crmpulse/crmpulse/alerting/digests"
	"github.com/crmpulse/crmpulse/api"
	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/privacy"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// App is the streaming pipeline of one process: `crmpulse run`.
type App struct {
	cfg      Config
	log      *slog.Logger
	kafkaLog kafkago.Logger
	// digests delivers digests to people (nil: not configured), with
	// digestLedger, set by Run.
	digests      *digests.Dispatcher
	digestLedger *ledgerRef
	m            *metrics
	gatherer     prometheus.Gatherer
	now          func() time.Time
	ln           net.Listener
	httpSec      *httpSecurity // TLS and auth of ln (stream/httpauth.go)
	// deadScrub and repScrub hide contact attributes in dead letters and
	// forwarded records (privacy.*); nil when kept as they are.
	deadScrub, repScrub *privacy.Scrubber
	brokers             []string
	// sec is the TLS and SASL of every broker connection (kafka.tls,
	// kafka.sasl); nil is plaintext.
	sec *ikafka.Security

	// mu orders reloads against workers joining: a worker registers and
	// reads the rules under it, so it never misses a reload.
	mu      sync.Mutex
	rules   *rules.File
	workers map[*worker]struct{}

	wms      *watermarks
	out      *producer
	snaps    *snapshotStore
	outEnds  *outputEnds   // output end offsets for checkpoints (outputdedup.go)
	dm       *dedupMetrics // the output deduplication's
	health   *health
	restored atomic.Int64
	assigned atomic.Int64
	joined   atomic.Bool
	// embeddedAddr is where the embedded broker listens, once started.
	embeddedAddr atomic.Pointer[[]string]
	// firing and api are the query API (api/) and the alerts it lists.
	firing *firingTracker
	api    *api.API
}

// New checks cfg, loads the rules, registers metrics on reg (a
// *prometheus.Registry also serves them on /metrics) and binds the HTTP
// listener, so that Addr is known before Run.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	deadScrub, repScrub, err := cfg.Scrubbers()
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	rf, err := rules.Load(cfg.Rules)
	if err != nil {
		return nil, err
	}
	if _, err := processor.New(processor.Config{Rules: rf}); err != nil {
		return nil, err
	}
	a := &App{
		cfg: cfg, log: logger, rules: rf, workers: map[*worker]struct{}{},
		wms: newWatermarks(cfg.IdleTimeout.D()), now: cfg.Now, health: newHealth(),
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.sec, err = cfg.Kafka.security(); err != nil {
		return nil, err
	}
	if a.sec.Insecure() {
		logger.Warn("kafka.tls.insecure_skip_verify is set: the brokers' certificates are NOT verified, anyone on the path can read and change the traffic; for tests only")
	}
	a.deadScrub, a.repScrub = deadScrub, repScrub
	a.kafkaLog = kafkago.LoggerFunc(func(msg string, args ...any) {
		logger.Warn("kafka: " + fmt.Sprintf(msg, args...))
	})
	// The firing set sees every batch the partitions and the group stage
	// emit, and their restored sets, as the other sinks do; last, so a
	// batch a sink refused (and that is emitted again) is not counted
	// before it.
	a.firing = newFiringTracker()
	a.cfg.Sinks = append(slices.Clip(a.cfg.Sinks), a.firing)
	if a.api, err = api.New(api.Config{
		Alerts: a, Rules: api.RulesFunc(a.currentRules), RulesFile: cfg.Rules,
		Segments: cfg.Segments, Backtest: cfg.Backtest, MaxBodyBytes: int64(cfg.API.MaxBodyBytes),
		BacktestConcurrency: cfg.API.BacktestConcurrency,
	}); err != nil {
		return nil, err
	}
	a.digestLedger = &ledgerRef{}
	if a.digests, err = newDigestDispatcher(cfg, a.digestLedger, logger, reg); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	a.m = newMetrics(reg, cfg.Topics.inputs())
	a.dm = newDedupMetrics(reg)
	a.noteRules(rf)
	if g, ok := reg.(prometheus.Gatherer); ok {
		a.gatherer = g
	}
	if cfg.HTTP.Listen != "" {
		sec, err := loadHTTPSecurity(cfg.HTTP)
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return nil, fmt.Errorf("http.listen: %w", err)
		}
		a.ln, a.httpSec = sec.listener(ln), sec
	}
	return a, nil
}

// Firing is the set of alerts firing in this instance (api.AlertSource):
// the union of its partitions' and group stage's firing sets (firing.go).
func (a *App) Firing() []processor.Alert { return a.firing.Firing() }

// components builds the extra engine components for partition p.
func (a *App) components(p int) []processor.Component {
	if a.cfg.Components == nil {
		return nil
	}
	return a.cfg.Components(p)
}

// Addr is the bound HTTP address, or "" without a listener.
func (a *App) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Brokers is where the app connects: the configured brokers, or the
// embedded broker's address once Run started it.
func (a *App) Brokers() []string {
	if p := a.embeddedAddr.Load(); p != nil {
		return *p
	}
	return a.cfg.Kafka.Brokers
}

// cluster is the brokers the app talks to and how (TLS, SASL): every
// connection goes through it.
func (a *App) cluster() ikafka.Cluster { return ikafka.Cluster{Brokers: a.brokers, Security: a.sec} }

// Ready reports whether the instance is in its group and every partition it
// owns has been restored.
func (a *App) Ready() bool {
	return a.joined.Load() && a.restored.Load() >= a.assigned.Load()
}

// Run runs the pipeline until ctx ends. Partitions are handed over with a
// final checkpoint each before it returns. A stop takes at most
// shutdown_timeout from the moment ctx ends (or the pipeline failed): then
// Run logs the partitions that did not stop and returns an error while
// they may still be running (a rule evaluation cannot be interrupted), so
// the process can exit.
func (a *App) Run(ctx context.Context) (err error) {
	defer func() {
		if a.ln != nil {
			a.ln.Close()
		}
	}()
	a.brokers = a.cfg.Kafka.Brokers
	if a.cfg.EmbeddedKafka {
		stop, err := a.startEmbedded()
		if err != nil {
			return err
		}
		defer stop()
	}
	n, err := a.prepareTopics(ctx)
	if err != nil {
		return err
	}
	a.out = newProducer(a.cluster(), a.cfg.Topics, a.kafkaLog)
	a.outEnds = newOutputEnds(a.cluster(), a.dedupTopics(), a.cfg.CommitInterval.D())
	a.snaps = newSnapshotStore(a.cluster(), a.cfg.Topics.Snapshots, a.cfg.Kafka.GroupID, n, a.kafkaLog)
	start := kafkago.FirstOffset
	if a.cfg.Kafka.StartOffset == "latest" {
		start = kafkago.LastOffset
	}
	session := a.cfg.Kafka.SessionTimeout.D()
	group, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                    a.cfg.Kafka.GroupID,
		Brokers:               a.brokers,
		Dialer:                a.sec.Dialer(),
		Topics:                a.cfg.Topics.inputs(),
		GroupBalancers:        []kafkago.GroupBalancer{ikafka.CopartitionBalancer{}},
		SessionTimeout:        session,
		HeartbeatInterval:     min(max(session/10, 100*time.Millisecond), 3*time.Second),
		RebalanceTimeout:      max(session, finalCheckpointTimeout+10*time.Second),
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		StartOffset:           start,
		ErrorLogger:           a.kafkaLog,
	})
	if err != nil {
		return fmt.Errorf("joining consumer group %s: %w", a.cfg.Kafka.GroupID, err)
	}
	a.warnGroupLevel(a.currentRules())
	a.log.Info("pipeline starting", "brokers", a.brokers, "security", a.sec.String(), "group", a.cfg.Kafka.GroupID, "partitions", n,
		"rules", a.cfg.Rules, "rules_hash", a.currentRules().Hash, "http", a.Addr())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.consume(gctx, group) })
	g.Go(func() error { return a.serveHTTP(gctx) })
	g.Go(func() error { a.watchRules(gctx); return nil })
	g.Go(func() error { a.reportWatermark(gctx); return nil })
	g.Go(func() error { a.watchHealth(gctx); return nil })
	if a.digests != nil {
		g.Go(func() error { return a.deliverDigests(gctx) })
	}
	stopped := make(chan error, 1)
	go func() {
		err := g.Wait()
		// Closing the group ends the generation: workers write their final
		// checkpoints (which need the writers) and the member leaves.
		stopped <- errors.Join(err, group.Close(), a.out.close(), a.snaps.close())
	}()
	select {
	case err = <-stopped:
	case <-gctx.Done():
		// gctx ends with ctx or with the first failure: the stop starts.
		a.log.Info("pipeline stopping", "shutdown_timeout", a.cfg.ShutdownTimeout)
		t := time.NewTimer(a.cfg.ShutdownTimeout.D())
		defer t.Stop()
		select {
		case err = <-stopped:
		case <-t.C:
			left := a.health.stillRunning()
			if len(left) == 0 {
				left = []string{"the consumer group and output writers"}
			}
			a.log.Error("shutdown timed out; partitions did not stop", "partitions", left,
				"shutdown_timeout", a.cfg.ShutdownTimeout)
			return fmt.Errorf("shutdown: %s did not stop within shutdown_timeout %s: %w",
				strings.Join(left, ", "), a.cfg.ShutdownTimeout, ErrShutdownTimeout)
		}
	}
	a.log.Info("pipeline stopped")
	return err
}

// ErrShutdownTimeout is returned by Run when partitions did not stop
// within shutdown_timeout; they may still be running.
var ErrShutdownTimeout = errors.New("shutdown timed out")

// prepareTopics checks that the inputs exist and are co-partitioned and
// creates the topics the pipeline writes. It returns the partition count.
func (a *App) prepareTopics(ctx context.Context) (int, error) {
	t := a.cfg.Topics
	n, err := a.inputPartitions(ctx)
	if err != nil {
		return 0, err
	}
	rf := a.cfg.Kafka.ReplicationFactor
	err = ikafka.EnsureTopics(ctx, a.cluster(),
		ikafka.TopicSpec{Name: t.Alerts, Partitions: n, ReplicationFactor: rf},
		ikafka.TopicSpec{Name: t.Resends, Partitions: n, ReplicationFactor: rf},
		ikafka.TopicSpec{Name: t.Segments, Partitions: n, ReplicationFactor: rf},
		ikafka.TopicSpec{Name: t.Digests, Partitions: n, ReplicationFactor: rf, Configs: digestTopicConfigs},
		ikafka.TopicSpec{Name: t.Interactions + DLQSuffix, Partitions: n, ReplicationFactor: rf},
		ikafka.TopicSpec{Name: t.Receipts + DLQSuffix, Partitions: n, ReplicationFactor: rf},
		ikafka.TopicSpec{Name: t.Snapshots, Partitions: n, ReplicationFactor: rf, Configs: snapshotTopicConfigs},
		// One partition: each group has one owner, the group stage.
		ikafka.TopicSpec{Name: t.Repartition, Partitions: 1, ReplicationFactor: rf},
	)
	if err == nil && a.digests != nil {
		// One partition: the ledger is read whole at every check.
		err = ikafka.EnsureTopics(ctx, a.cluster(), ikafka.TopicSpec{Name: t.DigestDeliveries, Partitions: 1, ReplicationFactor: rf, Configs: ledgerTopicConfigs})
	}
	if err == nil && t.Customers != "" {
		err = ikafka.EnsureTopics(ctx, a.cluster(), ikafka.TopicSpec{Name: t.Customers + DLQSuffix, Partitions: n, ReplicationFactor: rf})
	}
	if err == nil {
		err = a.checkRepartition(ctx)
	}
	return n, err
}

// inputPartitions is the common partition count of the input topics (the
// two event topics and, when configured, the customers topic); anything
// else is refused, naming each topic and its count.
func (a *App) inputPartitions(ctx context.Context) (int, error) {
	t := a.cfg.Topics
	names := t.inputs()
	counts, err := ikafka.PartitionCounts(ctx, a.cluster(), names...)
	if err != nil {
		return 0, err
	}
	keys := map[string]string{t.Interactions: "topics.interactions", t.Receipts: "topics.receipts", t.Customers: "topics.customers"}
	for _, name := range names {
		if counts[name] == 0 {
			return 0, fmt.Errorf("input topic %s (%s) does not exist", name, keys[name])
		}
	}
	n := counts[names[0]]
	for _, name := range names[1:] {
		if counts[name] != n {
			parts := make([]string, len(names))
			for i, name := range names {
				parts[i] = fmt.Sprintf("%s (%s) has %d", name, keys[name], counts[name])
			}
			return 0, fmt.Errorf("input topics are not co-partitioned: %s partitions; "+
				"all are keyed by customer_id and must have the same partition count so one engine sees a customer's records and profile",
				strings.Join(parts, ", "))
		}
	}
	return n, nil
}

// inputs are the input topics: interactions, receipts and, when
// configured, customers.
func (t TopicsConfig) inputs() []string {
	in := []string{t.Interactions, t.Receipts}
	if t.Customers != "" {
		in = append(in, t.Customers)
	}
	return in
}

// consume follows the consumer group's generations, running one worker per
// assigned partition number in each.
func (a *App) consume(ctx context.Context, group *kafkago.ConsumerGroup) error {
	var backoff time.Duration
	var failed atomic.Bool
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafkago.ErrGroupClosed) {
				return nil
			}
			a.log.Warn("consumer group", "err", err)
			continue
		}
		a.m.rebalances.Inc()
		upstreams, err := a.inputPartitions(ctx)
		if err != nil {
			return err
		}
		parts, committed := a.assignment(gen)
		a.assigned.Store(int64(len(parts)))
		a.joined.Store(true)
		a.m.assigned.Set(float64(len(parts)))
		a.log.Info("partitions assigned", "generation", gen.ID, "member", gen.MemberID, "partitions", parts)
		if failed.Swap(false) {
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
			a.log.Warn("a partition failed in the last generation; waiting before restarting", "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
		} else {
			backoff = 0
		}
		var mu sync.Mutex
		commit := func(offsets map[string]map[int]int64) error {
			mu.Lock()
			defer mu.Unlock()
			return gen.CommitOffsets(offsets)
		}
		if slices.Contains(parts, 0) {
			// The owner of partition 0 runs the group stage.
			gen.Start(func(gctx context.Context) {
				a.health.started("group stage")
				defer a.health.stopped("group stage")
				if err := a.runGroupStage(gctx, upstreams); err != nil {
					failed.Store(true)
					a.log.Error("group stage stopped", "err", err)
				}
			})
		}
		for _, p := range parts {
			gen.Start(func(gctx context.Context) {
				name := "partition " + strconv.Itoa(p)
				a.health.started(name)
				defer a.health.stopped(name)
				if err := a.runPartition(gctx, p, committed[p], commit); err != nil {
					failed.Store(true)
					a.log.Error("partition stopped", "partition", p, "err", err)
				}
			})
		}
	}
}

// assignment lists the partition numbers of a generation and the group's
// committed offset of each input topic-partition.
func (a *App) assignment(gen *kafkago.Generation) ([]int, map[int]map[string]int64) {
	committed := map[int]map[string]int64{}
	for _, topic := range a.cfg.Topics.inputs() {
		for _, pa := range gen.Assignments[topic] {
			if committed[pa.ID] == nil {
				committed[pa.ID] = map[string]int64{}
			}
			committed[pa.ID][topic] = pa.Offset
		}
	}
	parts := make([]int, 0, len(committed))
	for p, offs := range committed {
		for _, topic := range a.cfg.Topics.inputs() {
			if _, ok := offs[topic]; !ok {
				// The balancer gives both topics' partition p to one member;
				// another balancer in the group could split them.
				a.log.Warn("partition assigned for one input topic only", "partition", p, "missing", topic)
				offs[topic] = kafkago.FirstOffset
			}
		}
		parts = append(parts, p)
	}
	slices.Sort(parts)
	return parts, committed
}

func (a *App) currentRules() *rules.File {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rules
}

// register adds a worker to the reload set and returns the rules it runs.
func (a *App) register(w *worker) *rules.File {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.workers[w] = struct{}{}
	return a.rules
}

func (a *App) unregister(w *worker) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.workers, w)
}

// reportWatermark keeps the pipeline watermark gauge current.
func (a *App) reportWatermark(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lateness := a.currentRules().Defaults.AllowedLateness.D()
		if wm, ok := a.wms.pipeline(a.now(), lateness); ok {
			a.m.watermark.Set(float64(wm.UnixNano()) / 1e9)
		}
	}
}

// startEmbedded starts the in-process broker (Config.EmbeddedBroker) on the
// configured (or default) loopback address with the input topics
// pre-created, and returns the function that stops it.
func (a *App) startEmbedded() (func(), error) {
	if a.cfg.EmbeddedBroker == nil {
		return nil, errors.New("embedded_kafka: this program provides no embedded broker (Config.EmbeddedBroker is nil)")
	}
	addr := DefaultEmbeddedBroker
	if len(a.cfg.Kafka.Brokers) > 0 {
		addr = a.cfg.Kafka.Brokers[0]
	}
	t := a.cfg.Topics
	addrs, stop, err := a.cfg.EmbeddedBroker(addr, a.cfg.Kafka.EmbeddedPartitions, t.inputs()...)
	if err != nil {
		return nil, err
	}
	a.brokers = addrs
	a.embeddedAddr.Store(&addrs)
	a.log.Info("embedded kafka started", "addr", addrs, "partitions", a.cfg.Kafka.EmbeddedPartitions)
	return stop, nil
}

// serveHTTP serves /metrics, /healthz and /readyz until ctx ends.
func (a *App) serveHTTP(ctx context.Context) error {
	if a.ln == nil {
		return nil
	}
	srv := &http.Server{Handler: a.httpSec.handler(a.handler()), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(a.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// warnGroupLevel names the rules that run in the group stage.
func (a *App) warnGroupLevel(rf *rules.File) {
	_, g := splitRules(rf)
	if g == nil {
		return
	}
	names := make([]string, len(g.Rules))
	for i, r := range g.Rules {
		names[i] = r.Name
	}
	a.log.Info("rules grouping across customers run in the group stage (owner of partition 0), fed through "+
		a.cfg.Topics.Repartition, "rules", names)
}

// checkRepartition refuses a repartition topic with more than one
// partition: the group stage reads partition 0 only.
func (a *App) checkRepartition(ctx context.Context) error {
	counts, err := ikafka.PartitionCounts(ctx, a.cluster(), a.cfg.Topics.Repartition)
	if err != nil {
		return err
	}
	if n := counts[a.cfg.Topics.Repartition]; n != 1 {
		return fmt.Errorf("topic %s (topics.repartition) has %d partitions; it must have exactly 1", a.cfg.Topics.Repartition, n)
	}
	return nil
}

// minReaderWait is the least MaxWait given to a kafka-go Reader (the group
// stage's). A Reader asks the broker to long-poll for 3/4 of MaxWait and
// drops the connection when the answer is not back by MaxWait: at 250ms
// that leaves 60ms, which a loaded broker or host overruns, and every idle
// poll then logs an i/o timeout and reconnects. With MinBytes 1 a record
// is returned when it arrives, so a longer poll adds no latency.
const minReaderWait = 2 * time.Second

func readerMaxWait(configured time.Duration) time.Duration { return max(configured, minReaderWait) }
