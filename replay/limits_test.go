package replay

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

func testRulesFile(t *testing.T) *rules.File {
	t.Helper()
	f, err := rules.Parse([]byte(testRules))
	require.NoError(t, err)
	return f
}

// login is an interaction line padded to exactly n bytes (n ≥ 120) with a
// field the decoder ignores: an attribute could not be as long (its values
// have a length limit, docs/limits.md).
func login(t *testing.T, id string, n int) string {
	t.Helper()
	head := `{"event_id":"` + id + `","type":"login","customer_id":"c1","occurred_at":"2026-11-02T10:00:00Z","pad":"`
	tail := `"}`
	pad := n - len(head) - len(tail)
	require.GreaterOrEqual(t, pad, 0)
	return head + strings.Repeat("x", pad) + tail
}

type rejectedLine struct {
	Source, Reason, Raw string
	Line                int64
}

func readRejected(t *testing.T, out string) []rejectedLine {
	t.Helper()
	var got []rejectedLine
	for _, r := range readJSONL(t, filepath.Join(out, "rejected.jsonl")) {
		got = append(got, rejectedLine{r["source"].(string), r["reason"].(string), r["raw"].(string), int64(r["line"].(float64))})
	}
	return got
}

func TestReplayRejectsLinesLongerThanTheLimit(t *testing.T) {
	const limit = 4096
	big := login(t, "big", 5*limit)
	tests := []struct {
		name     string
		max      int // 0: the default
		content  string
		accepted int64
		rejected []rejectedLine // Raw is checked as a prefix of the line
	}{
		{
			name:     "a line five times the limit is too_large and the next line is still read",
			max:      limit,
			content:  big + "\n" + login(t, "e2", 200) + "\n",
			accepted: 1,
			rejected: []rejectedLine{{"interactions", "too_large", big, 1}},
		},
		{
			name:     "a line of exactly the limit is decoded",
			max:      limit,
			content:  login(t, "e1", limit) + "\n",
			accepted: 1,
		},
		{
			name:     "one byte over the limit is too_large",
			max:      limit,
			content:  login(t, "e1", limit+1) + "\n" + login(t, "e2", 200) + "\n",
			accepted: 1,
			rejected: []rejectedLine{{"interactions", "too_large", login(t, "e1", limit+1), 1}},
		},
		{
			name:     "a CRLF terminator does not count toward the limit",
			max:      limit,
			content:  login(t, "e1", limit) + "\r\n" + login(t, "e2", limit) + "\r\n",
			accepted: 2,
		},
		{
			name:     "a too-large last line without a newline is rejected",
			max:      limit,
			content:  login(t, "e2", 200) + "\n" + big,
			accepted: 1,
			rejected: []rejectedLine{{"interactions", "too_large", big, 2}},
		},
		{
			name:     "a line three times the default limit, longer than the read buffer, is too_large",
			content:  login(t, "huge", 3*DefaultMaxLineBytes) + "\n" + login(t, "e2", 200) + "\n",
			accepted: 1,
			rejected: []rejectedLine{{"interactions", "too_large", login(t, "huge", 3*DefaultMaxLineBytes), 1}},
		},
		{
			name:     "a line between the read buffer and a larger limit is decoded",
			max:      3 * readBufferBytes,
			content:  login(t, "e1", 2*readBufferBytes) + "\n" + login(t, "e2", 3*readBufferBytes) + "\n",
			accepted: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "i.jsonl")
			require.NoError(t, os.WriteFile(in, []byte(tc.content), 0o644))
			out := filepath.Join(dir, "out")
			sum, err := Run(context.Background(), Config{Rules: testRulesFile(t), Interactions: in, OutDir: out, MaxLineBytes: tc.max})
			require.NoError(t, err)
			// Both e1 and e2 are logins of c1 at the same instant; distinct ids.
			require.Equal(t, tc.accepted, sum.Interactions)
			got := readRejected(t, out)
			require.Len(t, got, len(tc.rejected))
			for i, want := range tc.rejected {
				require.Equal(t, want.Source, got[i].Source)
				require.Equal(t, want.Reason, got[i].Reason)
				require.Equal(t, want.Line, got[i].Line)
				require.LessOrEqual(t, len(got[i].Raw), TooLargeRawBytes)
				require.Greater(t, len(got[i].Raw), TooLargeRawBytes-utf8Max)
				require.True(t, strings.HasPrefix(want.Raw, got[i].Raw), "raw is not a prefix of the line")
			}
			require.EqualValues(t, len(tc.rejected), sum.Rejected[ingest.ReasonTooLarge])
		})
	}
}

const utf8Max = 4

// zeros is an endless stream of NUL bytes, like /dev/zero.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestLineReaderSkipsALongLineInBoundedMemory reads a 50 MB line without
// a newline through the line reader: it keeps at most limit+2 bytes of it
// besides the read buffer, reports its true size, and reads the next line.
func TestLineReaderSkipsALongLineInBoundedMemory(t *testing.T) {
	const size = 50 << 20
	const limit = 64 << 10
	r := io.MultiReader(io.LimitReader(zeros{}, size), strings.NewReader("\nnext\n"))
	lr := newLineReader(r, limit)
	ok, err := lr.next(context.Background())
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, lr.tooLarge)
	require.EqualValues(t, size, lr.size)
	require.LessOrEqual(t, cap(lr.long), limit+2, "the line reader buffered more than the limit")
	require.Equal(t, readBufferBytes, lr.r.Size())
	ok, err = lr.next(context.Background())
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, lr.tooLarge)
	require.Equal(t, "next", string(lr.line))
	require.EqualValues(t, 2, lr.lines)
}

// TestReplayFileWithoutNewlineInBoundedMemory replays a 50 MB file of NUL
// bytes with no newline at all: one too_large rejection, and the bytes
// allocated during the whole replay stay far below the file's size (the
// reader used to buffer the line whole).
func TestReplayFileWithoutNewlineInBoundedMemory(t *testing.T) {
	const size = 50 << 20
	dir := t.TempDir()
	in := filepath.Join(dir, "zeros.jsonl")
	f, err := os.Create(in)
	require.NoError(t, err)
	_, err = io.Copy(f, io.LimitReader(zeros{}, size))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	rf := testRulesFile(t)
	out := filepath.Join(dir, "out")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sum, err := Run(context.Background(), Config{Rules: rf, Receipts: in, OutDir: out})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)

	require.EqualValues(t, 1, sum.Rejected[ingest.ReasonTooLarge])
	got := readRejected(t, out)
	require.Equal(t, []rejectedLine{{"receipts", "too_large", strings.Repeat("\x00", TooLargeRawBytes), 1}}, got)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes replaying a %d-byte line", allocated, size)
	require.Less(t, allocated, uint64(size/4), "replay allocated %d bytes for one %d-byte line", allocated, size)
}

func TestReplayAcceptsAByteOrderMarkAtTheStartOfEachInput(t *testing.T) {
	const bom = "\xef\xbb\xbf"
	dir := t.TempDir()
	inter := write(t, dir, "i.jsonl",
		bom+`{"event_id":"e1","type":"login","customer_id":"c1","occurred_at":"2026-11-02T10:00:00Z"}`,
		bom+`{"event_id":"e2","type":"login","customer_id":"c2","occurred_at":"2026-11-02T10:00:00Z"}`,
	)
	rec := write(t, dir, "r.jsonl",
		bom+`{"receipt_id":"r1","message_id":"m1","customer_id":"c1","channel":"sms","status":"soft_bounce","occurred_at":"2026-11-02T10:05:00Z"}`,
		`{"receipt_id":"r2","message_id":"m2","customer_id":"c1","channel":"sms","status":"soft_bounce","occurred_at":"2026-11-02T10:06:00Z"}`,
	)
	out := filepath.Join(dir, "out")
	sum, err := Run(context.Background(), Config{Rules: testRulesFile(t), Interactions: inter, Receipts: rec, OutDir: out})
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Interactions, "the first line of the interactions was refused")
	require.EqualValues(t, 2, sum.Receipts, "the first line of the receipts was refused")
	// A BOM anywhere but at the start of the file is a byte of the line.
	got := readRejected(t, out)
	require.Len(t, got, 1)
	require.Equal(t, rejectedLine{"interactions", "not_json", got[0].Raw, 2}, got[0])
	require.True(t, strings.HasPrefix(got[0].Raw, bom))
}

func TestReplayAcceptsAByteOrderMarkAloneOnTheFirstLine(t *testing.T) {
	dir := t.TempDir()
	inter := write(t, dir, "i.jsonl", "\xef\xbb\xbf",
		`{"event_id":"e1","type":"login","customer_id":"c1","occurred_at":"2026-11-02T10:00:00Z"}`)
	out := filepath.Join(dir, "out")
	sum, err := Run(context.Background(), Config{Rules: testRulesFile(t), Interactions: inter, OutDir: out})
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Interactions)
	require.Zero(t, sum.RejectedTotal())
}

func TestReplayRefusesAnOutputThatIsAnInput(t *testing.T) {
	const content = `{"source":"receipts","line":1,"reason":"not_json","error":"x","raw":"x"}` + "\n"
	tests := []struct {
		name string
		// setup makes the output directory and returns the receipts path
		// and the output file that must survive.
		setup func(t *testing.T, dir, out string) (input, victim string)
	}{
		{"the same path", func(t *testing.T, dir, out string) (string, string) {
			p := filepath.Join(out, "rejected.jsonl")
			return p, p
		}},
		{"a ./ path through the output directory", func(t *testing.T, dir, out string) (string, string) {
			p := filepath.Join(out, "alerts.jsonl")
			t.Chdir(dir)
			return "./out/../out/./alerts.jsonl", p
		}},
		{"a symbolic link to an output", func(t *testing.T, dir, out string) (string, string) {
			p := filepath.Join(out, "resends.jsonl")
			link := filepath.Join(dir, "link.jsonl")
			require.NoError(t, os.Symlink(p, link))
			return link, p
		}},
		{"a hard link to an output", func(t *testing.T, dir, out string) (string, string) {
			p := filepath.Join(out, "rejected.jsonl")
			link := filepath.Join(dir, "hard.jsonl")
			require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
			require.NoError(t, os.Link(p, link))
			return link, p
		}},
		{"an output that is a symbolic link to the input", func(t *testing.T, dir, out string) (string, string) {
			in := filepath.Join(dir, "r.jsonl")
			require.NoError(t, os.WriteFile(in, []byte(content), 0o644))
			require.NoError(t, os.Symlink(in, filepath.Join(out, "alerts.jsonl")))
			return in, in
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			require.NoError(t, os.MkdirAll(out, 0o755))
			input, victim := tc.setup(t, dir, out)
			if _, err := os.Stat(victim); err != nil {
				require.NoError(t, os.WriteFile(victim, []byte(content), 0o644))
			}
			_, err := Run(context.Background(), Config{Rules: testRulesFile(t), Receipts: input, OutDir: out})
			require.ErrorIs(t, err, ErrInput)
			require.ErrorContains(t, err, "is the receipts input")
			b, rerr := os.ReadFile(victim)
			require.NoError(t, rerr)
			require.Equal(t, content, string(b), "the input was overwritten")
		})
	}
}

// TestReplayStopsWhenTheContextEnds feeds replay from a FIFO that stays
// open, so replay waits in a read, and cancels: Run returns at once with
// ErrInterrupted and a summary marked interrupted, and the records read
// before are in the output files as whole JSON lines.
func TestReplayStopsWhenTheContextEnds(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "i.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	out := filepath.Join(dir, "out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := Run(ctx, Config{Rules: testRulesFile(t), Interactions: fifo, OutDir: out})
		done <- result{sum, err}
	}()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // returns once replay has opened it
	require.NoError(t, err)
	defer w.Close()
	_, err = io.WriteString(w, "not json\n")
	require.NoError(t, err)
	cancel()
	var res result
	select {
	case res = <-done:
	case <-time.After(time.Minute): // a hang guard, not a timing assertion
		t.Fatal("replay did not return after its context ended")
	}
	require.ErrorIs(t, res.err, ErrInterrupted)
	require.ErrorIs(t, res.err, context.Canceled)
	require.True(t, res.sum.Interrupted)
	require.True(t, strings.HasPrefix(res.sum.String(), "replay: interrupted; "), res.sum.String())
	for _, name := range outputNames {
		b, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		require.True(t, len(b) == 0 || bytes.HasSuffix(b, []byte("\n")), "%s ends in a partial line", name)
		readJSONL(t, filepath.Join(out, name)) // every line is JSON
	}
}
