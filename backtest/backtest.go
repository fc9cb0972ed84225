// Package backtest runs a rules file over stored input records, as replay
// runs it over files: one engine, every record in occurred_at order
// (interactions before receipts on a tie, as SPEC §5 merges), the watermark
// advanced from the events and, at the end, to the end of the range. It
// answers "what would this rule have fired last month" without touching the
// running pipeline.
//
// The records come from a Source; ClickHouse is the one the API uses
// (clickhouse.go: the raw-event tables of processor/rawevents). A backtest
// is bounded: it reads at most Limits.MaxRows rows, returns at most
// Limits.MaxRecords alerts and resends (Result.Truncated says when more
// would have been returned), stops after Limits.Timeout, and stops when its
// context ends.
package backtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Defaults of Limits.
const (
	DefaultMaxRows    = 10_000_000
	DefaultMaxRecords = 10_000
	DefaultTimeout    = 2 * time.Minute
)

// Limits bound one backtest.
type Limits struct {
	// MaxRows is how many stored rows (interactions and receipts) a
	// backtest reads at most; it stops there, with Truncated set.
	// DefaultMaxRows when 0.
	MaxRows int64
	// MaxRecords is how many alert and resend records a backtest returns at
	// most; the engine keeps running to the end of the range (so the counts
	// in Stats stay whole) but further records are dropped, with Truncated
	// set. DefaultMaxRecords when 0.
	MaxRecords int
	// Timeout bounds a backtest's wall time. DefaultTimeout when 0.
	Timeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxRows <= 0 {
		l.MaxRows = DefaultMaxRows
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return l
}

// Query is one backtest: these rules over the records with occurred_at in
// [From, To).
type Query struct {
	Rules    *rules.File
	From, To time.Time
}

// Validate checks the range.
func (q Query) Validate() error {
	switch {
	case q.Rules == nil:
		return errors.New("backtest: no rules")
	case q.From.IsZero() || q.To.IsZero():
		return errors.New("backtest: from and to are required")
	case !q.From.Before(q.To):
		return fmt.Errorf("backtest: from (%s) must be before to (%s)", q.From.UTC().Format(time.RFC3339), q.To.UTC().Format(time.RFC3339))
	}
	return nil
}

// Truncation reasons of Result.TruncatedBy.
const (
	TruncatedByRecords = "max_records"
	TruncatedByRows    = "max_rows"
)

// Result is what a backtest would have fired.
type Result struct {
	// Alerts and Resends are the records, in emission order, stamped as
	// replay stamps them (emitted_at, created_at: the backtest's clock).
	Alerts  []processor.Alert
	Resends []processor.Resend
	// Truncated is set when the result is not whole: more records than
	// MaxRecords (TruncatedBy "max_records": the counts are still whole),
	// or more rows than MaxRows (TruncatedBy "max_rows": the engine stopped
	// at Stats.Watermark, the rest of the range was not read).
	Truncated   bool
	TruncatedBy string
	Stats       Stats
}

// Stats count what a backtest read and what the engine emitted (all of it,
// returned or not).
type Stats struct {
	RowsRead     int64
	Interactions int64
	Receipts     int64
	Duplicates   int64
	Rejected     int64
	Firing       int64
	Resolved     int64
	Resends      int64
	Cancels      int64
	// Watermark is where the engine ended: To, or the last event time read
	// when MaxRows stopped it.
	Watermark time.Time
}

// Source opens the stored records of a range.
type Source interface {
	// Open returns cursors over the records with occurred_at in [from, to),
	// each in occurred_at order; on equal times the first cursor's record
	// goes first (interactions, then receipts).
	Open(ctx context.Context, from, to time.Time) ([]Cursor, error)
}

// Cursor is one ordered stream of records of one kind.
type Cursor interface {
	// Next moves to the next record; false at the end (then Err says
	// whether it ended early).
	Next() bool
	// At is the current record's occurred_at.
	At() time.Time
	// Feed hands the current record to the engine.
	Feed(e *processor.Engine) error
	Err() error
	Close() error
}

// ErrTimeout is returned when a backtest ran longer than Limits.Timeout.
var ErrTimeout = errors.New("backtest timed out")

// ErrSource marks a failure of the Source (ClickHouse down, a table
// missing), as opposed to a bad query.
var ErrSource = errors.New("backtest source")

// Config configures a Runner.
type Config struct {
	Source Source
	Limits Limits
	// Now stamps emitted_at and created_at; time.Now when nil.
	Now func() time.Time
}

// Runner runs backtests; it is safe for concurrent use (each backtest has
// its own engine).
type Runner struct {
	src Source
	lim Limits
	now func() time.Time
}

// New returns a Runner for cfg.
func New(cfg Config) (*Runner, error) {
	if cfg.Source == nil {
		return nil, errors.New("backtest config: source: required")
	}
	if cfg.Limits.MaxRows < 0 || cfg.Limits.MaxRecords < 0 || cfg.Limits.Timeout < 0 {
		return nil, fmt.Errorf("backtest config: limits must not be negative, got %+v", cfg.Limits)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Runner{src: cfg.Source, lim: cfg.Limits.withDefaults(), now: cfg.Now}, nil
}

// Limits are the runner's limits, defaults filled in.
func (r *Runner) Limits() Limits { return r.lim }

// Run runs q. It returns an error wrapping ErrTimeout when the timeout
// ended it, the context's error when ctx ended it, and one wrapping
// ErrSource when the records could not be read.
func (r *Runner) Run(ctx context.Context, q Query) (*Result, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	eng, err := processor.New(processor.Config{Rules: q.Rules})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, r.lim.Timeout, ErrTimeout)
	defer cancel()
	stopped := func(err error) error {
		if cause := context.Cause(ctx); cause != nil {
			if errors.Is(cause, ErrTimeout) {
				return fmt.Errorf("%w after %s", ErrTimeout, r.lim.Timeout)
			}
			return cause
		}
		return err
	}
	curs, err := r.src.Open(ctx, q.From, q.To)
	if err != nil {
		return nil, stopped(fmt.Errorf("%w: %w", ErrSource, err))
	}
	defer func() {
		for _, c := range curs {
			c.Close()
		}
	}()
	res := &Result{}
	heads := make([]bool, len(curs))
	next := func(i int) error {
		heads[i] = curs[i].Next()
		if !heads[i] {
			if err := curs[i].Err(); err != nil {
				return fmt.Errorf("%w: %w", ErrSource, err)
			}
		}
		return nil
	}
	for i := range curs {
		if err := next(i); err != nil {
			return nil, stopped(err)
		}
	}
	drain := func() {
		out := eng.Output()
		r.collect(res, out)
		out.Reset()
	}
	done := ctx.Done()
	end := q.To
	for {
		select {
		case <-done:
			return nil, stopped(ctx.Err())
		default:
		}
		best := -1
		for i, ok := range heads {
			if ok && (best < 0 || curs[i].At().Before(curs[best].At())) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		if res.Stats.RowsRead >= r.lim.MaxRows {
			res.Truncated, res.TruncatedBy = true, TruncatedByRows
			end = eng.MaxEventTime()
			break
		}
		res.Stats.RowsRead++
		switch err := curs[best].Feed(eng); {
		case err == nil:
		case errors.Is(err, processor.ErrDuplicate):
		default:
			// A stored row the engine refuses (a late record cannot
			// happen in occurred_at order; a rule-level refusal can).
			res.Stats.Rejected++
		}
		eng.AdvanceFromEvents()
		drain()
		if err := next(best); err != nil {
			return nil, stopped(err)
		}
	}
	eng.Advance(end)
	drain()
	st := eng.Stats()
	res.Stats.Interactions, res.Stats.Receipts, res.Stats.Duplicates = st.Interactions, st.Receipts, st.Duplicates
	res.Stats.Watermark = eng.Watermark()
	return res, nil
}

// collect counts out and keeps its records up to the limit.
func (r *Runner) collect(res *Result, out *processor.Output) {
	now := r.now().UTC()
	for i := range out.Alerts {
		a := out.Alerts[i]
		if a.State == processor.StateFiring {
			res.Stats.Firing++
		} else {
			res.Stats.Resolved++
		}
		if len(res.Alerts)+len(res.Resends) >= r.lim.MaxRecords {
			res.Truncated, res.TruncatedBy = true, TruncatedByRecords
			continue
		}
		a.EmittedAt = now
		res.Alerts = append(res.Alerts, a)
	}
	for i := range out.Resends {
		x := out.Resends[i]
		if x.Action == processor.ActionCancel {
			res.Stats.Cancels++
		} else {
			res.Stats.Resends++
		}
		if len(res.Alerts)+len(res.Resends) >= r.lim.MaxRecords {
			res.Truncated, res.TruncatedBy = true, TruncatedByRecords
			continue
		}
		x.CreatedAt = now
		res.Resends = append(res.Resends, x)
	}
}
