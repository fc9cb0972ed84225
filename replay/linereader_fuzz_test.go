package replay

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzLineReader checks the line reader against a plain split on "\n":
// the same lines in the same order, CR-LF endings trimmed, a line refused
// as too large exactly when it is longer than the limit (its true size and
// first bytes reported), and never more than limit+2 bytes of a line held.
// A read buffer of 16 to 271 bytes and reads of 1 to 256 bytes exercise the
// path of lines longer than the buffer.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc"), uint16(2), uint8(1), uint8(0))
	f.Add([]byte("\n\n\r\n"), uint16(0), uint8(3), uint8(0))
	f.Add(bytes.Repeat([]byte("x"), 5000), uint16(100), uint8(7), uint8(20))
	f.Add([]byte("abc\r"), uint16(3), uint8(2), uint8(0))
	f.Add(append(bytes.Repeat([]byte("y"), 40), "\r\nz"...), uint16(40), uint8(255), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, chunk, buf uint8) {
		max := int(limit)
		want := bytes.Split(data, []byte("\n"))
		if len(want) > 0 && len(want[len(want)-1]) == 0 {
			want = want[:len(want)-1] // the last "\n" ends a line, it does not start one
		}
		r := &chunkReader{data: data, n: int(chunk) + 1}
		lr := newLineReaderSize(r, max, 16+int(buf))
		var i int
		for {
			ok, err := lr.next(context.Background())
			if err != nil {
				require.ErrorIs(t, err, io.EOF)
			}
			if !ok {
				require.ErrorIs(t, err, io.EOF)
				break
			}
			require.Less(t, i, len(want), "more lines than the input has")
			w := bytes.TrimSuffix(want[i], []byte("\r"))
			require.EqualValues(t, i+1, lr.lines)
			require.LessOrEqual(t, cap(lr.long), max+2)
			if len(w) > max {
				require.True(t, lr.tooLarge, "line %d of %d bytes, limit %d", i, len(w), max)
				require.True(t, bytes.HasPrefix(w, lr.line[:min(len(lr.line), max)]))
				// The size is exact up to a trailing "\r" on a line whose
				// end was not kept.
				require.True(t, lr.size == int64(len(w)) || lr.size == int64(len(w))+1, "size %d of %d", lr.size, len(w))
			} else {
				require.False(t, lr.tooLarge)
				require.Equal(t, string(w), string(lr.line))
				require.EqualValues(t, len(w), lr.size)
			}
			i++
			if err != nil {
				break
			}
		}
		require.Equal(t, len(want), i, "lines read")
	})
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[k:]
	return k, nil
}
