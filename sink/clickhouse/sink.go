// Package clickhouse stores what the engine computes in ClickHouse for
// analysts and dashboards: the per-window aggregates (processor/aggregate),
// resend outcomes (alerting/followup), the alert history, resend triggers
// and cancels, per-customer churn state, the current customer profiles
// (processor/profilerows), the alerts of each account manager, segment
// transitions and each key's current class, and, when the rawevents
// component runs, every accepted record for drill-down
// (processor/rawevents). It owns
// the schema (versioned migrations, Migrate), the batched sink (Sink) and
// retention (DropPartitionsOlderThan).
//
// Every table is a ReplacingMergeTree keyed by the record's deterministic
// identity, so a row written twice (an insert retried, a replay, a restart
// that re-reads uncommitted input) is stored once as far as FINAL and
// argMax queries are concerned; docs/clickhouse.md shows how to query them.
//
// Only ClickHouse's native protocol is used: clickhouse-go's HTTP protocol
// fails on 18.16, the server reachable in CI. The SQL runs on 18.16 and on
// 23.8+, with optional niceties gated on the server version (FeaturesOf).
package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/aggregate"
	"github.com/crmpulse/crmpulse/processor/followup"
	"github.com/crmpulse/crmpulse/processor/profilerows"
	"github.com/crmpulse/crmpulse/processor/rawevents"
	"github.com/crmpulse/crmpulse/redact"
)

// Defaults of Config.
const (
	DefaultBatchRows       = 50_000
	DefaultFlushInterval   = time.Second
	DefaultMaxBufferedRows = 4 * DefaultBatchRows
	DefaultMaxRetryBackoff = 10 * time.Second
	DefaultInsertTimeout   = time.Minute
	DefaultDrainTimeout    = 10 * time.Second

	// firstRetryBackoff is the pause after the first failed insert of a
	// batch; it doubles up to MaxRetryBackoff.
	firstRetryBackoff = 100 * time.Millisecond
)

// ErrClosed is returned by Write and Flush on a closed Sink.
var ErrClosed = errors.New("clickhouse sink closed")

// Config configures a Sink. Zero values take the defaults.
type Config struct {
	// DSN is a clickhouse-go DSN using the native protocol,
	// e.g. clickhouse://127.0.0.1:9000/crmpulse. Its database holds the
	// tables.
	DSN string
	// Username and Password, when set, override the DSN's (a password in
	// the DSN shows wherever the DSN is logged or listed in ps).
	Username string
	Password string
	// TLS, when set, makes every connection a TLS one with this
	// configuration (the DSN's secure=true takes a default one).
	TLS *tls.Config
	// BatchRows is the size of the blocks an insert sends, and the queue
	// length at which a table is inserted without waiting for
	// FlushInterval. An insert takes everything queued for its table, and
	// what is queued while it is being sent, as one INSERT of blocks of
	// BatchRows rows: clickhouse-go holds one block at a time, and the
	// server squashes the blocks into as few parts as one big block would
	// make (up to its min_insert_block_size_rows), so a burst, or a backlog
	// after an outage, goes in few, large inserts. Default 50000.
	BatchRows int
	// FlushInterval is how long rows may wait for a batch to fill: a
	// table's queue is inserted when BatchRows rows are waiting, or when
	// its oldest row has waited FlushInterval. ClickHouse wants few large
	// inserts; this gives a table at most one partial-batch insert per
	// interval (full batches go at once). Default 1s.
	FlushInterval time.Duration
	// MaxBufferedRows bounds the rows held in memory, stored or not yet;
	// Write blocks while it is reached (backpressure). An Output larger
	// than the bound is let in when the buffer is empty. Default 200000.
	MaxBufferedRows int
	// MaxRetryBackoff caps the exponential pause between retries of a
	// failed insert (100ms, 200ms, ...). Default 10s.
	MaxRetryBackoff time.Duration
	// InsertTimeout bounds one insert. Default 1m.
	InsertTimeout time.Duration
	// DrainTimeout bounds the last inserts Run makes when its context
	// ends. Default 10s.
	DrainTimeout time.Duration
	// Now is the clock for versions and for emitted_at/created_at of
	// records that were not stamped; time.Now when nil.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.BatchRows <= 0 {
		c.BatchRows = DefaultBatchRows
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.MaxBufferedRows <= 0 {
		c.MaxBufferedRows = max(DefaultMaxBufferedRows, c.BatchRows)
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	if c.InsertTimeout <= 0 {
		c.InsertTimeout = DefaultInsertTimeout
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Sink writes engine output to ClickHouse in batches. Write, Flush and
// Close may be called from any goroutine; Run must run for rows to be
// stored.
//
// Rows are queued per table, in order. Run inserts a table's queue when
// BatchRows rows are waiting or its oldest row has waited FlushInterval; a
// failed insert is retried with backoff, never dropped, and while
// it fails rows accumulate until MaxBufferedRows, where Write blocks: the
// pipeline stops consuming and commits nothing past what is stored.
type Sink struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	conn driver.Conn
	now  func() time.Time
	// addrs, user and tls describe the connection in errors (explain).
	addrs []string
	user  string
	tls   bool

	mu       sync.Mutex
	bufs     *buffers
	tables   []*table
	byName   map[string]*table
	buffered int           // rows held, in-flight ones included
	lens     []int         // scratch for Write
	changed  chan struct{} // closed and replaced when rows are stored (space frees)
	warned   map[string]bool

	running   atomic.Bool
	closed    chan struct{}
	closeOnce sync.Once
}

// table is one destination table's queue and progress.
type table struct {
	name      string
	columns   []string
	insertSQL string
	buf       rowBuffer
	appended  uint64        // rows ever queued
	stored    uint64        // rows ever stored; stored ≤ appended
	wake      chan struct{} // cap 1: rows arrived to an empty queue, or a full batch is ready
	oldest    time.Time     // when the oldest queued row arrived (or the last insert began)
}

var _ interface {
	Write(context.Context, *processor.Output) error
	Flush(context.Context) error
} = (*Sink)(nil)

// New returns a Sink for cfg. It does not connect yet: clickhouse-go dials
// on first use, so a sink can be built while ClickHouse is down.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Sink, error) {
	cfg = cfg.withDefaults()
	if cfg.DSN == "" {
		return nil, errors.New("clickhouse sink: dsn: required")
	}
	opts, err := ch.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("clickhouse sink: dsn: %w", err), cfg.DSN)
	}
	if opts.Protocol != ch.Native {
		return nil, fmt.Errorf("clickhouse sink: dsn: only the native protocol is supported (clickhouse://host:9000/db), got %s", opts.Protocol)
	}
	if cfg.Username != "" {
		opts.Auth.Username = cfg.Username
	}
	if cfg.Password != "" {
		opts.Auth.Password = cfg.Password
	}
	if cfg.TLS != nil {
		opts.TLS = cfg.TLS
	}
	if opts.Auth.Username == "" {
		opts.Auth.Username = "default" // what clickhouse-go sends
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse sink: opening %s: %w", opts.Addr, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse sink: registering metrics: %w", err)
	}
	s := &Sink{
		cfg: cfg, log: logger.With("component", "clickhouse"), m: m, conn: conn, now: cfg.Now,
		addrs: opts.Addr, user: opts.Auth.Username, tls: opts.TLS != nil,
		bufs: newBuffers(cfg.BatchRows), byName: map[string]*table{}, changed: make(chan struct{}),
		warned: map[string]bool{}, closed: make(chan struct{}),
	}
	byTable := s.bufs.byTable()
	for _, name := range Tables {
		buf := byTable[name]
		cols := buf.columns()
		t := &table{name: name, columns: cols, insertSQL: insertSQL(name, cols), buf: buf, wake: make(chan struct{}, 1)}
		s.tables = append(s.tables, t)
		s.byName[name] = t
	}
	return s, nil
}

// Conn is the sink's connection, for Migrate and queries.
func (s *Sink) Conn() driver.Conn { return s.conn }

// Migrate applies the schema migrations to the sink's database (Migrate).
func (s *Sink) Migrate(ctx context.Context) error { return Migrate(ctx, s.conn) }

// DropPartitionsOlderThan drops table's monthly partitions that end at or
// before before (DropPartitionsOlderThan).
func (s *Sink) DropPartitionsOlderThan(ctx context.Context, table string, before time.Time) ([]string, error) {
	return DropPartitionsOlderThan(ctx, s.conn, table, before)
}

// rowCount is how many rows out adds to the queues.
func (s *Sink) rowCount(out *processor.Output) int {
	n := len(out.Alerts) + len(out.Resends) + 2*len(out.Transitions) + // segment_transitions and segment_current
		len(out.Digests)
	for i := range out.Alerts {
		if _, ok := customerStateOf(&out.Alerts[i]); ok {
			n++
		}
		if out.Alerts[i].Labels[AccountManagerLabel] != "" {
			n++
		}
	}
	for _, a := range out.Aggregates {
		switch a.(type) {
		case aggregate.Revenue, aggregate.Activity, aggregate.Complaints, aggregate.Delivery, followup.Event,
			rawevents.Interaction, rawevents.Receipt, profilerows.Profile:
			n++
		}
	}
	return n
}

// Write queues a copy of out's records (it keeps nothing of out). It
// blocks while the buffer is full, until ClickHouse has taken enough rows,
// ctx ends (ctx.Err()) or the sink is closed (ErrClosed); then nothing of
// out was queued. Aggregate rows of a type the sink has no table for are
// counted in crmpulse_clickhouse_unsupported_rows_total and skipped.
func (s *Sink) Write(ctx context.Context, out *processor.Output) error {
	n := s.rowCount(out)
	// Digests are encoded before anything is queued, so that one that
	// cannot be leaves out unwritten as a whole.
	var digests []digestRow
	if len(out.Digests) > 0 {
		now := s.now().UTC()
		digests = make([]digestRow, len(out.Digests))
		for i := range out.Digests {
			r, err := newDigestRow(&out.Digests[i], now)
			if err != nil {
				return err
			}
			digests[i] = r
		}
	}
	s.mu.Lock()
	for s.buffered > 0 && s.buffered+n > s.cfg.MaxBufferedRows {
		wait := s.changed
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("clickhouse sink: waiting for buffer space: %w", ctx.Err())
		case <-s.closed:
			return ErrClosed
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	now := s.now().UTC()
	ver := uint64(max(now.UnixNano(), 0))
	b := s.bufs
	before := s.lens[:0]
	for _, t := range s.tables {
		before = append(before, t.buf.len())
	}
	for i := range out.Alerts {
		a := &out.Alerts[i]
		r := newAlertRow(a, now)
		b.alerts.next(ver).add(&r)
		if c, ok := customerStateOf(a); ok {
			b.customers.next(c.ver).add(&c)
		}
		if a.Labels[AccountManagerLabel] != "" {
			b.amAlerts.next(ver).add(&r)
		}
	}
	for i := range out.Resends {
		r := resendRow{r: &out.Resends[i], createdAt: out.Resends[i].CreatedAt}
		if r.createdAt.IsZero() {
			r.createdAt = now
		}
		b.resends.next(ver).add(&r)
	}
	for i := range out.Transitions {
		r := newTransitionRow(&out.Transitions[i], now)
		b.transitions.next(ver).add(&r)
		b.segments.next(r.currentVersion()).add(&r)
	}
	for i := range digests {
		b.digests.next(ver).add(&digests[i])
	}
	for _, a := range out.Aggregates {
		switch a := a.(type) {
		case aggregate.Revenue:
			b.revenue.next(ver).add(&a)
		case aggregate.Activity:
			b.activity.next(ver).add(&a)
		case aggregate.Complaints:
			b.complaints.next(ver).add(&a)
		case aggregate.Delivery:
			b.delivery.next(ver).add(&a)
		case followup.Event:
			b.outcomes.next(ver).add(&a)
		case rawevents.Interaction:
			b.interactions.next(ver).add(&a)
		case rawevents.Receipt:
			b.receipts.next(ver).add(&a)
		case profilerows.Profile:
			// Event time, not write time: the newest profile wins.
			b.profiles.next(a.Version()).add(&a)
		default:
			s.unsupported(a)
		}
	}
	for i, t := range s.tables {
		if k := t.buf.len() - before[i]; k > 0 {
			s.queued(t, k)
		}
	}
	s.lens = before
	s.buffered += n
	s.m.buffered.Add(float64(n))
	return nil
}

// queued accounts for k rows appended to a table's queue; s.mu is held.
func (s *Sink) queued(t *table, k int) {
	before := t.buf.len() - k
	t.appended += uint64(k)
	if before == 0 {
		t.oldest = s.now()
	}
	if before == 0 || t.buf.len() >= s.cfg.BatchRows && before < s.cfg.BatchRows {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Sink) unsupported(a processor.Aggregate) {
	s.m.unsupported.WithLabelValues(a.Table()).Inc()
	if !s.warned[a.Table()] {
		s.warned[a.Table()] = true
		s.log.Warn("skipping aggregate rows: no ClickHouse table for this row type",
			"table", a.Table(), "type", fmt.Sprintf("%T", a))
	}
}

// Flush returns when every row written before the call is stored in
// ClickHouse, or with ctx's error when ctx ends first, or ErrClosed. It
// does not hurry the inserts: they happen at Run's pace (at most about
// FlushInterval after the rows were written, plus the insert). The
// streaming driver commits Kafka offsets only after Flush returned nil.
func (s *Sink) Flush(ctx context.Context) error {
	s.mu.Lock()
	marks := make([]uint64, len(s.tables))
	for i, t := range s.tables {
		marks[i] = t.appended
	}
	for {
		done := true
		for i, t := range s.tables {
			if t.stored < marks[i] {
				done = false
				break
			}
		}
		if done {
			s.mu.Unlock()
			return nil
		}
		wait := s.changed
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("clickhouse sink: flushing: %w", ctx.Err())
		case <-s.closed:
			return ErrClosed
		}
		s.mu.Lock()
	}
}

// Buffered is the number of rows held: written and not yet stored.
func (s *Sink) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buffered
}

// Run inserts the queued rows until ctx ends, then makes a last attempt
// (bounded by DrainTimeout) to store what is still queued, and returns nil.
// Rows it could not store are lost from memory but were never flushed, so
// the streaming driver has not committed their input and reads it again.
func (s *Sink) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("clickhouse sink: Run called twice")
	}
	defer s.running.Store(false)
	var g errgroup.Group
	for _, t := range s.tables {
		g.Go(func() error { s.loop(ctx, t); return nil })
	}
	_ = g.Wait()
	select {
	case <-s.closed:
		return nil
	default:
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DrainTimeout)
	defer cancel()
	for _, t := range s.tables {
		g.Go(func() error {
			for s.queueLen(t) > 0 && s.insertRetrying(dctx, t) {
			}
			return nil
		})
	}
	_ = g.Wait()
	if n := s.Buffered(); n > 0 {
		s.log.Warn("stopping with rows not stored in ClickHouse; their input was not committed and will be read again",
			"rows", n)
	}
	return nil
}

func (s *Sink) queueLen(t *table) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.buf.len()
}

// loop inserts one table's queue at the pace of Config: a full batch at
// once, a partial one when its oldest row has waited FlushInterval.
func (s *Sink) loop(ctx context.Context, t *table) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		n, oldest := t.buf.len(), t.oldest
		s.mu.Unlock()
		if n == 0 {
			select {
			case <-t.wake:
				continue
			case <-ctx.Done():
				return
			case <-s.closed:
				return
			}
		}
		if n < s.cfg.BatchRows {
			if wait := oldest.Add(s.cfg.FlushInterval).Sub(s.now()); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-timer.C:
				case <-t.wake:
					timer.Stop()
					continue // maybe a full batch now
				case <-ctx.Done():
					return
				case <-s.closed:
					return
				}
			}
		}
		if !s.insertRetrying(ctx, t) {
			return
		}
	}
}

// insertRetrying inserts t's queue, retrying with exponential backoff until
// it is stored (true) or ctx ends or the sink closes (false). A retry takes
// the queue again from its oldest row, and may take more rows. Rows of a failed insert may have
// reached ClickHouse all the same (a block sent before the failure, an
// answer lost); the tables collapse such repeats.
func (s *Sink) insertRetrying(ctx context.Context, t *table) bool {
	backoff := firstRetryBackoff
	for attempt := 1; ; attempt++ {
		err := s.insert(ctx, t)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.Warn("inserting into ClickHouse failed; retrying", "table", t.name, "attempt", attempt,
			"retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		case <-s.closed:
			return false
		}
		backoff = min(2*backoff, s.cfg.MaxRetryBackoff)
	}
}

// insert sends t's queue in one INSERT, one block of the queue per block
// of the INSERT, and drops the rows from the queue once stored.
//
// It takes every block queued when it starts and, as it goes, the blocks
// that came meanwhile, until it has appended the newest block (the one
// still filling, as far as it is filled). A burst written faster than
// ClickHouse takes it so goes in one INSERT, whose tail does not wait
// FlushInterval for a next one. The INSERT cannot grow without bound: its
// rows count as buffered until it ends, so Write blocks at
// MaxBufferedRows and the insert catches up.
func (s *Sink) insert(ctx context.Context, t *table) error {
	if s.queueLen(t) == 0 {
		return nil
	}
	start := s.now()
	n, err := s.send(ctx, t)
	s.m.flushTime.Observe(s.now().Sub(start).Seconds())
	if err != nil {
		s.m.inserts.WithLabelValues(t.name, outcomeFailure).Inc()
		return fmt.Errorf("inserting %d rows into %s: %w", n, t.name, err)
	}
	s.m.inserts.WithLabelValues(t.name, outcomeSuccess).Inc()
	s.m.rowsWritten.WithLabelValues(t.name).Add(float64(n))
	s.mu.Lock()
	t.buf.drop(n)
	// Rows that came during the insert count as waiting since its start:
	// partial-batch inserts start at least FlushInterval apart.
	t.oldest = start
	t.stored += uint64(n)
	s.buffered -= n
	s.m.buffered.Sub(float64(n))
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// send makes the INSERT of insert and returns how many rows it holds.
func (s *Sink) send(ctx context.Context, t *table) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
	defer cancel()
	b, err := s.conn.PrepareBatch(ctx, t.insertSQL)
	if err != nil {
		return 0, fmt.Errorf("preparing the batch: %w", err)
	}
	defer func() { _ = b.Close() }()
	n := 0
	for {
		if n > 0 {
			// Send the previous block and start the next in the same
			// INSERT: the driver holds one block at a time, and the server
			// squashes the blocks into as few parts as one big block.
			// Sending first lets the next block fill meanwhile.
			if err := b.Flush(); err != nil {
				return n, fmt.Errorf("sending a block: %w", err)
			}
		}
		s.mu.Lock()
		vals, rows, last := t.buf.part(n)
		s.mu.Unlock()
		if rows == 0 {
			break
		}
		for i, v := range vals {
			if l, ok := v.(lazyPart); ok {
				v = l.driverValue()
			}
			if err := b.Column(i).Append(v); err != nil {
				return n, fmt.Errorf("appending column %s: %w", t.columns[i], err)
			}
		}
		n += rows
		if last {
			break
		}
	}
	if err := b.Send(); err != nil {
		return n, fmt.Errorf("sending the batch: %w", err)
	}
	return n, nil
}

// Close stops the sink: blocked and later Write and Flush calls return
// ErrClosed, Run returns, and the connection is closed. Rows not stored yet
// are dropped from memory (their input was not committed). Calling Close
// again does nothing.
func (s *Sink) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.conn.Close()
	})
	return err
}
