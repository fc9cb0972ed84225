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
	"unicode/utf8"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/privacy"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// DefaultMaxLineBytes is the longest input line replay decodes when
// Config.MaxLineBytes is 0. A longer line is refused as too_large.
const DefaultMaxLineBytes = 1 << 20

// TooLargeRawBytes is how much of a too_large line rejected.jsonl keeps in
// raw: enough to recognise the record, never the whole line.
const TooLargeRawBytes = 1024

// Config says what to replay and where the records go.
type Config struct {
	Rules        *rules.File
	Interactions string // path; empty to omit
	Receipts     string // path; empty to omit
	Customers    string // path of profile versions (SPEC §1.3); empty to omit
	OutDir       string
	// Until, when set, is where the watermark goes at end of input;
	// otherwise it goes to the highest occurred_at seen.
	Until time.Time
	// MaxLineBytes is the longest line accepted, not counting its line
	// terminator; DefaultMaxLineBytes when 0. A longer line is rejected as
	// too_large and skipped in bounded memory.
	MaxLineBytes int
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
	// Scrub, when set, hashes or drops the contact attributes in the raw
	// field of rejected.jsonl (privacy.dead_letters); a raw line that is
	// not a JSON object becomes privacy.Opaque's JSON text.
	Scrub *privacy.Scrubber
}

// inputs lists the configured inputs in the order SPEC §5 breaks ties in
// the merge: the profile, then the interaction, then the receipt. A new input kind is one more entry here and one kind value.
func (cfg *Config) inputs() []input {
	var in []input
	for _, x := range []input{{cfg.Customers, customerKind}, {cfg.Interactions, interactionKind}, {cfg.Receipts, receiptKind}} {
		if x.path != "" {
			in = append(in, x)
		}
	}
	return in
}

// input is one JSON Lines file of one record kind.
type input struct {
	path string
	kind *kind
}

// kind is what replay knows about one record kind: how to decode a line
// into a batch slot, the slot's event time for the merge, and how to hand
// the slot to the engine.
type kind struct {
	source ingest.Source
	decode func(line []byte, b *batch, k int) error
	at     func(b *batch, k int) time.Time
	feed   func(e *processor.Engine, b *batch, k int) error
}

var (
	interactionKind = &kind{
		source: ingest.SourceInteractions,
		decode: func(line []byte, b *batch, k int) error { return ingest.DecodeInteraction(line, &b.ev[k]) },
		at:     func(b *batch, k int) time.Time { return b.ev[k].OccurredAt },
		feed:   func(e *processor.Engine, b *batch, k int) error { return e.Interaction(&b.ev[k]) },
	}
	customerKind = &kind{
		source: ingest.SourceCustomers,
		decode: func(line []byte, b *batch, k int) error { return ingest.DecodeCustomer(line, &b.cu[k]) },
		at:     func(b *batch, k int) time.Time { return b.cu[k].UpdatedAt },
		feed:   func(e *processor.Engine, b *batch, k int) error { return e.Customer(&b.cu[k]) },
	}
	receiptKind = &kind{
		source: ingest.SourceReceipts,
		decode: func(line []byte, b *batch, k int) error { return ingest.DecodeReceipt(line, &b.rc[k]) },
		at:     func(b *batch, k int) time.Time { return b.rc[k].OccurredAt },
		feed:   func(e *processor.Engine, b *batch, k int) error { return e.Receipt(&b.rc[k]) },
	}
)

// outputNames are the files Run writes in Config.OutDir.
var outputNames = []string{"alerts.jsonl", "resends.jsonl", "rejected.jsonl", "segments.jsonl", "digests.jsonl"}

// Summary counts what a replay read and wrote.
type Summary struct {
	Interactions int64
	Receipts     int64
	Customers    int64 // profile versions read
	Rejected     map[ingest.Reason]int64
	Duplicates   int64
	Firing       int64
	Resolved     int64
	Resends      int64
	Cancels      int64
	// Transitions counts segment transitions (SPEC §3.3), segments.jsonl.
	Transitions int64
	Aggregates  int64
	Digests     int64 // digest records written (SPEC §3.4)
	Watermark   time.Time
	Elapsed     time.Duration
	// Interrupted is set when the context ended the replay before the end
	// of its input: the counts are what was done until then, and the
	// watermark was not advanced to the end.
	Interrupted bool
	// Saturated counts sums held at ±MaxFloat64 instead of overflowing
	// (processor.Stats.Saturated); the summary names it only when non-zero.
	Saturated int64
}

// RejectedTotal is the number of rejected records.
func (s Summary) RejectedTotal() int64 {
	var n int64
	for _, v := range s.Rejected {
		n += v
	}
	return n
}

// String is the one-line summary printed at the end of a replay. An
// interrupted replay's line starts "replay: interrupted;".
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
	prefix := "replay: "
	if s.Interrupted {
		prefix = "replay: interrupted; "
	}
	if s.Saturated > 0 {
		detail += fmt.Sprintf(", %d saturated sums", s.Saturated)
	}
	profiles := ""
	if s.Customers > 0 {
		profiles = fmt.Sprintf(", %d profiles", s.Customers)
	}
	digests := ""
	if s.Digests > 0 {
		digests = fmt.Sprintf(", %d digests", s.Digests)
	}
	total := s.Interactions + s.Receipts + s.Customers + s.RejectedTotal() + s.Duplicates
	rate := float64(total) / max(s.Elapsed.Seconds(), 1e-9)
	return fmt.Sprintf(prefix+"%d interactions, %d receipts"+profiles+", %d rejected%s, %d duplicates; "+
		"%d alerts (%d firing, %d resolved), %d resends, %d cancels, %d transitions"+digests+"; watermark %s; %s (%.0f records/s)",
		s.Interactions, s.Receipts, s.RejectedTotal(), detail, s.Duplicates,
		s.Firing+s.Resolved, s.Firing, s.Resolved, s.Resends, s.Cancels, s.Transitions,
		fmtTime(s.Watermark), s.Elapsed.Round(time.Millisecond), rate)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// ErrInput marks failures to read input or write output (exit code 2),
// including an output path that is also an input.
var ErrInput = errors.New("replay input")

// ErrInterrupted marks a replay that its context stopped before the end of
// its input. The Summary returned with it has Interrupted set, and the
// output files hold, as whole JSON lines, what was emitted until then.
var ErrInterrupted = errors.New("replay interrupted")

// rejection is a line of rejected.jsonl.
type rejection struct {
	Source string `json:"source"`
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
	Error  string `json:"error"`
	Raw    string `json:"raw"`
}

// Run replays the inputs through a new engine and writes the SPEC §5 files.
// When ctx ends first, Run stops between two records, closes the output
// files and returns an error wrapping ErrInterrupted with the summary so far.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	start := time.Now()
	sum := Summary{Rejected: map[ingest.Reason]int64{}}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxLineBytes == 0 {
		cfg.MaxLineBytes = DefaultMaxLineBytes
	}
	if cfg.MaxLineBytes < 0 {
		return sum, fmt.Errorf("%w: maximum line length %d is negative", ErrInput, cfg.MaxLineBytes)
	}
	inputs := cfg.inputs()
	// Before anything is created or truncated: creating an output that is
	// also an input would destroy the input.
	if err := checkOutputsAreNotInputs(cfg.OutDir, inputs); err != nil {
		return sum, err
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

	heads := make([]*source, 0, len(inputs))
	for _, in := range inputs {
		src, err := openSource(ctx, in, cfg.MaxLineBytes)
		if err != nil {
			return sum, err
		}
		defer src.close()
		heads = append(heads, src)
	}
	done := ctx.Done()
	interrupted := func() (Summary, error) {
		st := eng.Stats()
		sum.Interactions, sum.Receipts, sum.Duplicates = st.Interactions, st.Receipts, st.Duplicates
		sum.Watermark, sum.Interrupted = eng.Watermark(), true
		err := fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
		if cerr := w.close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		sum.Elapsed = time.Since(start)
		return sum, err
	}
	reject := func(src *source, line int64, raw []byte, rerr error) error {
		var re *ingest.RejectError
		reason := ingest.ReasonNotJSON
		if errors.As(rerr, &re) {
			reason = re.Reason
		}
		sum.Rejected[reason]++
		return w.rejected.encode(rejection{Source: string(src.kind.source), Line: line, Reason: string(reason), Error: rerr.Error(), Raw: cfg.Scrub.Text(string(raw))})
	}
	// advance reads each source's next valid record into its head,
	// rejecting malformed lines on the way.
	advance := func(src *source) error {
		for {
			ok, err := src.next(ctx)
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
		if err := advance(h); err != nil {
			if ctx.Err() != nil {
				return interrupted()
			}
			return sum, err
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
		select {
		case <-done:
			return interrupted()
		default:
		}
		h := pick(heads)
		if h == nil {
			break
		}
		err := h.feed(eng)
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
			if ctx.Err() != nil {
				return interrupted()
			}
			return sum, err
		}
		if err := advance(h); err != nil {
			if ctx.Err() != nil {
				return interrupted()
			}
			return sum, err
		}
		if n++; n&0xffff == 0 {
			prog.maybe(n, eng.Watermark())
		}
	}
	end := eng.MaxEventTime()
	if !cfg.Until.IsZero() {
		end = cfg.Until
	}
	eng.Advance(end)
	if err := drain(); err != nil {
		if ctx.Err() != nil {
			return interrupted()
		}
		return sum, err
	}
	st := eng.Stats()
	sum.Interactions, sum.Receipts, sum.Duplicates = st.Interactions, st.Receipts, st.Duplicates
	sum.Saturated = st.Saturated
	sum.Customers = st.Customers
	sum.Watermark = eng.Watermark()
	if err := w.close(); err != nil {
		return sum, err
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// checkOutputsAreNotInputs refuses an output file that is an input under
// another name (./ paths, symbolic or hard links): os.Create would
// truncate it before a line of it is read.
func checkOutputsAreNotInputs(dir string, inputs []input) error {
	for _, in := range inputs {
		ifi, err := os.Stat(in.path)
		if err != nil {
			continue // opening it says why
		}
		for _, name := range outputNames {
			out := filepath.Join(dir, name)
			ofi, err := os.Stat(out)
			if err == nil && os.SameFile(ifi, ofi) {
				return fmt.Errorf("%w: output %s is the %s input %s; choose another --out so it is not overwritten",
					ErrInput, out, in.kind.source, in.path)
			}
		}
	}
	return nil
}

// pick is SPEC §5's merge: the earliest head, the first in input order on
// a tie.
func pick(heads []*source) *source {
	var best *source
	var bestAt time.Time
	for _, h := range heads {
		if !h.ok {
			continue
		}
		if at := h.at(); best == nil || at.Before(bestAt) {
			best, bestAt = h, at
		}
	}
	return best
}

// source is one JSON Lines input with its decoded head record. A goroutine
// per source reads and decodes ahead in batches, so decoding (the largest
// per-record cost) runs on one core while the engine runs on another; the
// merge itself stays sequential and deterministic.
type source struct {
	kind    *kind
	f       *os.File
	maxLine int
	batches chan *batch
	free    chan *batch
	cancel  context.CancelFunc
	done    chan struct{} // closed when the reading goroutine has returned
	cur     *batch
	i       int
	// The head record, valid until the next call to next.
	line int64
	raw  []byte
	ok   bool  // a head record is present
	err  error // the head line's rejection, if any
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
	cu      []ingest.Customer // only in a customers source's batches
	raw     []byte
	readErr error
}

func openSource(ctx context.Context, in input, maxLine int) (*source, error) {
	f, err := os.Open(in.path)
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s input: %w", ErrInput, in.kind.source, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &source{kind: in.kind, f: f, maxLine: maxLine, batches: make(chan *batch, 4), free: make(chan *batch, 6),
		cancel: cancel, done: make(chan struct{})}
	// Closing the file is what interrupts a read blocked on a pipe or FIFO;
	// the reading goroutine then sees an error and returns.
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer close(s.done)
		defer stop()
		s.read(ctx)
	}()
	return s, nil
}

func (s *source) close() {
	s.cancel()
	for range s.batches {
		// Drain so the reader goroutine can finish.
	}
	<-s.done
	s.f.Close()
}

func (s *source) at() time.Time { return s.kind.at(s.cur, s.i) }

func (s *source) feed(e *processor.Engine) error { return s.kind.feed(e, s.cur, s.i) }

// utf8BOM is the byte order mark some editors put at the start of a UTF-8
// file; it is not part of the first record.
var utf8BOM = []byte("\xef\xbb\xbf")

// read is the decoding goroutine: it fills batches until end of input. A
// batch is handed over when full, or early when the next read might block
// (nothing is buffered), so records from a pipe are not held back.
func (s *source) read(ctx context.Context) {
	defer close(s.batches)
	lr := newLineReader(s.f, s.maxLine)
	for eof := false; !eof; {
		var b *batch
		select {
		case b = <-s.free:
		default:
			b = &batch{}
			if s.kind == customerKind {
				b.cu = make([]ingest.Customer, batchSize)
			}
		}
		b.n, b.raw, b.readErr = 0, b.raw[:0], nil
		for b.n < batchSize && !eof {
			if b.n > 0 && lr.r.Buffered() == 0 {
				break
			}
			ok, err := lr.next(ctx)
			if err != nil && !errors.Is(err, io.EOF) {
				b.readErr = fmt.Errorf("%w: reading %s input at line %d: %w", ErrInput, s.kind.source, lr.lines+1, err)
				eof = true
				break
			}
			eof = err != nil
			if !ok {
				break
			}
			line := lr.line
			if lr.lines == 1 {
				line = bytes.TrimPrefix(line, utf8BOM)
			}
			if !lr.tooLarge && len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			k := b.n
			b.n++
			b.line[k] = lr.lines
			if lr.tooLarge {
				b.err[k] = &ingest.RejectError{Reason: ingest.ReasonTooLarge,
					Detail: fmt.Sprintf("line of %d bytes is longer than the limit of %d bytes", lr.size, s.maxLine)}
				line = rawPrefix(line, TooLargeRawBytes)
			} else {
				b.err[k] = s.kind.decode(line, b, k)
			}
			b.raw = append(b.raw, line...)
			b.end[k] = len(b.raw)
		}
		select {
		case s.batches <- b:
		case <-ctx.Done():
			return
		}
	}
}

// rawPrefix is the first n bytes of line at most, cut back to a UTF-8
// boundary so the kept prefix does not end in half a character.
func rawPrefix(line []byte, n int) []byte {
	if len(line) <= n {
		return line
	}
	line = line[:n]
	for i := 0; i < utf8.UTFMax && len(line) > 0; i++ {
		r, size := utf8.DecodeLastRune(line)
		if r != utf8.RuneError || size != 1 {
			break
		}
		line = line[:len(line)-1]
	}
	return line
}

// readBufferBytes is the size of each input's read buffer: a line that fits
// is decoded where it lies in the buffer, without a copy.
const readBufferBytes = 1 << 20

// lineReader splits an input into lines without ever holding more than
// about max bytes of one line: the rest of a longer line is read and
// dropped, and the line is reported as too large.
type lineReader struct {
	r   *bufio.Reader
	max int
	// long holds a line that does not fit in r's buffer, up to max+2 bytes
	// of it (room for a "\r\n" after max bytes).
	long []byte
	// The line read by the last call to next:
	line     []byte // without its "\n" or "\r\n"; the first bytes when tooLarge
	size     int64  // its length in bytes, without the line terminator
	tooLarge bool   // size > max
	lines    int64  // number of lines read so far
}

func newLineReader(r io.Reader, max int) *lineReader {
	return newLineReaderSize(r, max, readBufferBytes)
}

// newLineReaderSize is newLineReader with a read buffer of size bytes (at
// least 16), so tests can reach the long-line path with short lines.
func newLineReaderSize(r io.Reader, max, size int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, size), max: max}
}

// next reads the next line. It returns false when there is none; err is
// io.EOF at the end of input (possibly after a last line without "\n").
func (lr *lineReader) next(ctx context.Context) (bool, error) {
	chunk, err := lr.r.ReadSlice('\n')
	line := chunk
	var total int64
	if errors.Is(err, bufio.ErrBufferFull) {
		keep := lr.max + 2
		lr.long = appendBounded(lr.long[:0], chunk, keep)
		total = int64(len(chunk))
		for errors.Is(err, bufio.ErrBufferFull) {
			if cerr := ctx.Err(); cerr != nil {
				return false, cerr
			}
			chunk, err = lr.r.ReadSlice('\n')
			total += int64(len(chunk))
			lr.long = appendBounded(lr.long, chunk, keep)
		}
		line = lr.long
		if total > int64(keep) {
			// Only the first bytes are kept; the line is certainly too
			// large, whatever its terminator.
			lr.lines++
			lr.line, lr.tooLarge = line, true
			lr.size = total
			if bytes.HasSuffix(chunk, []byte("\n")) {
				lr.size--
			}
			return true, err
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	if len(line) == 0 {
		return false, err // end of input
	}
	lr.lines++
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	lr.line, lr.size = line, int64(len(line))
	lr.tooLarge = lr.size > int64(lr.max)
	return true, err
}

// appendBounded appends to b as much of p as fits within limit bytes, and
// never lets b's capacity grow beyond limit.
func appendBounded(b, p []byte, limit int) []byte {
	p = p[:min(len(p), max(limit-len(b), 0))]
	if len(p) == 0 {
		return b
	}
	if need := len(b) + len(p); need > cap(b) {
		nb := make([]byte, len(b), min(max(2*cap(b), need), limit))
		copy(nb, b)
		b = nb
	}
	return append(b, p...)
}

// next moves to the next record. It returns false at end of input; s.err
// holds the line's rejection when it did not decode. It returns ctx's error
// when ctx ends while it waits for input.
func (s *source) next(ctx context.Context) (bool, error) {
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
		var b *batch
		var more bool
		select {
		case b, more = <-s.batches:
		case <-ctx.Done():
			s.cur, s.ok = nil, false
			return false, ctx.Err()
		}
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

// writers are the output files.
type writers struct {
	alerts, resends, rejected, segments *jsonl
	digests                             *jsonl
}

func newWriters(dir string) (*writers, error) {
	w := &writers{}
	var err error
	for _, x := range []struct {
		dst  **jsonl
		name string
	}{{&w.alerts, outputNames[0]}, {&w.resends, outputNames[1]}, {&w.rejected, outputNames[2]}, {&w.segments, outputNames[3]}, {&w.digests, outputNames[4]}} {
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
	for i := range out.Transitions {
		tr := &out.Transitions[i]
		tr.EmittedAt = now.UTC()
		sum.Transitions++
		if err := w.segments.record(tr.AppendJSON); err != nil {
			return err
		}
	}
	for i := range out.Digests {
		d := &out.Digests[i]
		d.EmittedAt = now.UTC()
		sum.Digests++
		if err := w.digests.record(d.AppendJSON); err != nil {
			return err
		}
	}
	sum.Aggregates += int64(len(out.Aggregates))
	return nil
}

func (w *writers) close() error {
	var errs []error
	for _, j := range []*jsonl{w.alerts, w.resends, w.rejected, w.segments, w.digests} {
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
