// Package replay runs the engine over JSON Lines files (SPEC §5): the
// offline backtest, and the oracle that streaming output is checked against.
package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Config says what to replay and where the records go.
type Config struct {
	Rules        *rules.File
	Interactions string // path; empty to omit
	Receipts     string // path; empty to omit
	OutDir       string
	// Until, when set, is where the watermark goes at end of input;
	// otherwise it goes to the highest occurred_at seen.
	Until time.Time
	// FutureSkew is the engine's future-skew guard
	// (processor.Config.FutureSkew); 0 disables it.
	FutureSkew time.Duration
	// Extra components (e.g. aggregates) and a hook that sees every
	// batch of output (e.g. the ClickHouse sink) before it is written.
	Extra    []processor.Component
	OnOutput func(ctx context.Context, out *processor.Output) error
	// Progress, when set, receives a progress line about once a second.
	Progress io.Writer
	// Now stamps emitted_at and created_at; time.Now when nil.
	Now func() time.Time
}

// Summary counts what a replay read and wrote.
type Summary struct {
	Interactions int64
	Receipts     int64
	Rejected     map[ingest.Reason]int64
	Duplicates   int64
	Firing       int64
	Resolved     int64
	Resends      int64
	Cancels      int64
	Aggregates   int64
	Watermark    time.Time
	Elapsed      time.Duration
}

// RejectedTotal is the number of rejected records.
func (s Summary) RejectedTotal() int64 {
	var n int64
	for _, v := range s.Rejected {
		n += v
	}
	return n
}

// String is the one-line summary printed at the end of a replay.
func (s Summary) String() string {
	reasons := make([]string, 0, len(s.Rejected))
	for r := range s.Rejected {
		reasons = append(reasons, string(r))
	}
	sort.Strings(reasons)
	var rej []string
	for _, r := range reasons {
		rej = append(rej, fmt.Sprintf("%s %d", r, s.Rejected[ingest.Reason(r)]))
	}
	detail := ""
	if len(rej) > 0 {
		detail = " (" + strings.Join(rej, ", ") + ")"
	}
	total := s.Interactions + s.Receipts + s.RejectedTotal() + s.Duplicates
	rate := float64(total) / max(s.Elapsed.Seconds(), 1e-9)
	return fmt.Sprintf("replay: %d interactions, %d receipts, %d rejected%s, %d duplicates; "+
		"%d alerts (%d firing, %d resolved), %d resends, %d cancels; watermark %s; %s (%.0f records/s)",
		s.Interactions, s.Receipts, s.RejectedTotal(), detail, s.Duplicates,
		s.Firing+s.Resolved, s.Firing, s.Resolved, s.Resends, s.Cancels,
		fmtTime(s.Watermark), s.Elapsed.Round(time.Millisecond), rate)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// ErrInput marks failures to read input or write output (exit code 2).
var ErrInput = errors.New("replay input")

// rejection is a line of rejected.jsonl.
type rejection struct {
	Source string `json:"source"`
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
	Error  string `json:"error"`
	Raw    string `json:"raw"`
}

// Run replays the inputs through a new engine and writes the SPEC §5 files.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	start := time.Now()
	sum := Summary{Rejected: map[ingest.Reason]int64{}}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	eng, err := processor.New(processor.Config{Rules: cfg.Rules, Extra: cfg.Extra, FutureSkew: cfg.FutureSkew})
	if err != nil {
		return sum, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return sum, fmt.Errorf("%w: creating output directory: %w", ErrInput, err)
	}
	w, err := newWriters(cfg.OutDir)
	if err != nil {
		return sum, err
	}
	defer w.close()

	var heads [2]*source
	for i, p := range []string{cfg.Interactions, cfg.Receipts} {
		if p == "" {
			continue
		}
		src, err := openSource(ctx, p, ingest.Source([]string{"interactions", "receipts"}[i]))
		if err != nil {
			return sum, err
		}
		defer src.close()
		heads[i] = src
	}
	reject := func(src *source, line int64, raw []byte, rerr error) error {
		var re *ingest.RejectError
		reason := ingest.ReasonNotJSON
		if errors.As(rerr, &re) {
			reason = re.Reason
		}
		sum.Rejected[reason]++
		return w.rejected.encode(rejection{Source: string(src.name), Line: line, Reason: string(reason), Error: rerr.Error(), Raw: string(raw)})
	}
	// advance reads each source's next valid record into its head,
	// rejecting malformed lines on the way.
	advance := func(src *source) error {
		for {
			ok, err := src.next()
			if err != nil || !ok {
				return err
			}
			if src.err == nil {
				return nil
			}
			if err := reject(src, src.line, src.raw, src.err); err != nil {
				return err
			}
		}
	}
	for _, h := range heads {
		if h != nil {
			if err := advance(h); err != nil {
				return sum, err
			}
		}
	}
	prog := progress{w: cfg.Progress, start: start}
	var n int64
	drain := func() error {
		out := eng.Output()
		if out.Len() == 0 {
			return nil
		}
		if cfg.OnOutput != nil {
			if err := cfg.OnOutput(ctx, out); err != nil {
				return err
			}
		}
		if err := w.write(out, cfg.Now(), &sum); err != nil {
			return err
		}
		out.Reset()
		return nil
	}
	for {
		i, h := pick(heads)
		if h == nil {
			break
		}
		var err error
		if i == 0 {
			err = eng.Interaction(h.ev)
		} else {
			err = eng.Receipt(h.rc)
		}
		switch {
		case err == nil:
		case errors.Is(err, processor.ErrDuplicate):
		default:
			if err := reject(h, h.line, h.raw, err); err != nil {
				return sum, err
			}
		}
		eng.AdvanceFromEvents()
		if err := drain(); err != nil {
			return sum, err
		}
		if err := advance(h); err != nil {
			return sum, err
		}
		if n++; n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
			prog.maybe(n, eng.Watermark())
		}
	}
	end := eng.MaxEventTime()
	if !cfg.Until.IsZero() {
		end = cfg.Until
	}
	eng.Advance(end)
	if err := drain(); err != nil {
		return sum, err
	}
	st := eng.Stats()
	sum.Interactions, sum.Receipts, sum.Duplicates = st.Interactions, st.Receipts, st.Duplicates
	sum.Watermark = eng.Watermark()
	if err := w.close(); err != nil {
		return sum, err
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// pick is SPEC §5's merge: the earlier of the two heads, the interaction on
// a tie.
func pick(heads [2]*source) (int, *source) {
	a, b := heads[0], heads[1]
	switch {
	case a != nil && a.ok && b != nil && b.ok:
		if b.at().Before(a.at()) {
			return 1, b
		}
		return 0, a
	case a != nil && a.ok:
		return 0, a
	case b != nil && b.ok:
		return 1, b
	}
	return -1, nil
}

// source is one JSON Lines input with its decoded head record. A goroutine
// per source reads and decodes ahead in batches, so decoding (the largest
// per-record cost) runs on one core while the engine runs on another; the
// merge itself stays sequential and deterministic.
type source struct {
	name    ingest.Source
	f       *os.File
	batches chan *batch
	free    chan *batch
	cancel  context.CancelFunc
	cur     *batch
	i       int
	// The head record, valid until the next call to next.
	line int64
	raw  []byte
	ok   bool  // a head record is present
	err  error // the head line's rejection, if any
	ev   *ingest.Interaction
	rc   *ingest.Receipt
}

// batchSize is large enough to amortise channel hand-offs, small enough to
// keep the decoded look-ahead in cache.
const batchSize = 512

type batch struct {
	n       int
	line    [batchSize]int64
	end     [batchSize]int // raw[end[i-1]:end[i]] is line i
	err     [batchSize]error
	ev      [batchSize]ingest.Interaction
	rc      [batchSize]ingest.Receipt
	raw     []byte
	readErr error
}

func openSource(ctx context.Context, path string, name ingest.Source) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s input: %w", ErrInput, name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &source{name: name, f: f, batches: make(chan *batch, 4), free: make(chan *batch, 6), cancel: cancel}
	go s.read(ctx)
	return s, nil
}

func (s *source) close() {
	s.cancel()
	for range s.batches {
		// Drain so the reader goroutine can finish.
	}
	s.f.Close()
}

func (s *source) at() time.Time {
	if s.name == ingest.SourceInteractions {
		return s.ev.OccurredAt
	}
	return s.rc.OccurredAt
}

// read is the decoding goroutine: it fills batches until end of input.
func (s *source) read(ctx context.Context) {
	defer close(s.batches)
	r := bufio.NewReaderSize(s.f, 1<<20)
	var long []byte
	var lineNo int64
	for eof := false; !eof; {
		var b *batch
		select {
		case b = <-s.free:
		default:
			b = &batch{}
		}
		b.n, b.raw, b.readErr = 0, b.raw[:0], nil
		for b.n < batchSize && !eof {
			line, err := r.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				long = append(long[:0], line...)
				for errors.Is(err, bufio.ErrBufferFull) {
					line, err = r.ReadSlice('\n')
					long = append(long, line...)
				}
				line = long
			}
			if err != nil && !errors.Is(err, io.EOF) {
				b.readErr = fmt.Errorf("%w: reading %s input at line %d: %w", ErrInput, s.name, lineNo+1, err)
				eof = true
				break
			}
			eof = err != nil
			if len(line) == 0 {
				break
			}
			lineNo++
			line = bytes.TrimRight(line, "\r\n")
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			k := b.n
			b.n++
			b.line[k] = lineNo
			b.raw = append(b.raw, line...)
			b.end[k] = len(b.raw)
			if s.name == ingest.SourceInteractions {
				b.err[k] = ingest.DecodeInteraction(line, &b.ev[k])
			} else {
				b.err[k] = ingest.DecodeReceipt(line, &b.rc[k])
			}
		}
		select {
		case s.batches <- b:
		case <-ctx.Done():
			return
		}
	}
}

// next moves to the next record. It returns false at end of input; s.err
// holds the line's rejection when it did not decode.
func (s *source) next() (bool, error) {
	if s.cur != nil {
		s.i++
	}
	for s.cur == nil || s.i >= s.cur.n {
		if s.cur != nil {
			if err := s.cur.readErr; err != nil {
				s.ok = false
				return false, err
			}
			select {
			case s.free <- s.cur:
			default:
			}
		}
		b, more := <-s.batches
		if !more {
			s.cur, s.ok = nil, false
			return false, nil
		}
		s.cur, s.i = b, 0
		if b.n == 0 && b.readErr != nil {
			s.ok = false
			return false, b.readErr
		}
	}
	b, k := s.cur, s.i
	from := 0
	if k > 0 {
		from = b.end[k-1]
	}
	s.line, s.raw, s.err, s.ok = b.line[k], b.raw[from:b.end[k]], b.err[k], true
	s.ev, s.rc = &b.ev[k], &b.rc[k]
	return true, nil
}

type progress struct {
	w     io.Writer
	start time.Time
	last  time.Time
}

func (p *progress) maybe(n int64, wm time.Time) {
	if p.w == nil || time.Since(p.last) < time.Second {
		return
	}
	if p.last.IsZero() {
		p.last = time.Now()
		return
	}
	p.last = time.Now()
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "replay: %d records, %.0f records/s, watermark %s\n", n, float64(n)/el, fmtTime(wm))
}

// writers are the three output files.
type writers struct {
	alerts, resends, rejected *jsonl
}

func newWriters(dir string) (*writers, error) {
	w := &writers{}
	var err error
	for _, x := range []struct {
		dst  **jsonl
		name string
	}{{&w.alerts, "alerts.jsonl"}, {&w.resends, "resends.jsonl"}, {&w.rejected, "rejected.jsonl"}} {
		if *x.dst, err = createJSONL(filepath.Join(dir, x.name)); err != nil {
			w.close()
			return nil, err
		}
	}
	return w, nil
}

func (w *writers) write(out *processor.Output, now time.Time, sum *Summary) error {
	for i := range out.Alerts {
		a := &out.Alerts[i]
		a.EmittedAt = now.UTC()
		if a.State == processor.StateFiring {
			sum.Firing++
		} else {
			sum.Resolved++
		}
		if err := w.alerts.record(a.AppendJSON); err != nil {
			return err
		}
	}
	for i := range out.Resends {
		r := &out.Resends[i]
		r.CreatedAt = now.UTC()
		if r.Action == processor.ActionCancel {
			sum.Cancels++
		} else {
			sum.Resends++
		}
		if err := w.resends.record(r.AppendJSON); err != nil {
			return err
		}
	}
	sum.Aggregates += int64(len(out.Aggregates))
	return nil
}

func (w *writers) close() error {
	var errs []error
	for _, j := range []*jsonl{w.alerts, w.resends, w.rejected} {
		if j != nil {
			errs = append(errs, j.close())
		}
	}
	return errors.Join(errs...)
}

type jsonl struct {
	f   *os.File
	bw  *bufio.Writer
	enc *json.Encoder
	buf []byte // scratch for record
	err error
}

func createJSONL(path string) (*jsonl, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%w: creating %s: %w", ErrInput, path, err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &jsonl{f: f, bw: bw, enc: enc}, nil
}

func (j *jsonl) encode(v any) error {
	if err := j.enc.Encode(v); err != nil {
		return fmt.Errorf("%w: writing %s: %w", ErrInput, j.f.Name(), err)
	}
	return nil
}

// record writes the line that appendJSON makes.
func (j *jsonl) record(appendJSON func([]byte) ([]byte, error)) error {
	b, err := appendJSON(j.buf[:0])
	if err == nil {
		j.buf = append(b, '\n')
		_, err = j.bw.Write(j.buf)
	}
	if err != nil {
		return fmt.Errorf("%w: writing %s: %w", ErrInput, j.f.Name(), err)
	}
	return nil
}

func (j *jsonl) close() error {
	if j.f == nil {
		return j.err
	}
	err := j.bw.Flush()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	if err != nil {
		j.err = fmt.Errorf("%w: closing output: %w", ErrInput, err)
	}
	return j.err
}
