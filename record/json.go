package record

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON and its helpers write SPEC §4 records byte for byte as
// encoding/json does with SetEscapeHTML(false) (a test holds them to it),
// without reflection: on busy rules a pipeline writes about one record per
// ten inputs, and reflection-based encoding was a tenth of its CPU.

// ErrUnencodable is returned for a record encoding/json would refuse too: a
// NaN or infinite value, or a time outside years 0–9999.
var ErrUnencodable = errors.New("record cannot be encoded as JSON")

// AppendJSON appends a's JSON object to b.
func (a *Alert) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"fingerprint":`...)
	b = appendString(b, a.Fingerprint)
	b = append(b, `,"rule":`...)
	b = appendString(b, a.Rule)
	b = append(b, `,"kind":`...)
	b = appendString(b, a.Kind)
	b = append(b, `,"state":`...)
	b = appendString(b, a.State)
	b = append(b, `,"severity":`...)
	b = appendString(b, a.Severity)
	b = append(b, `,"labels":`...)
	b = appendMap(b, a.Labels)
	b = append(b, `,"annotations":`...)
	b = appendMap(b, a.Annotations)
	b = append(b, `,"value":`...)
	if b, err = appendFloat(b, a.Value, "value"); err != nil {
		return b, err
	}
	b = append(b, `,"threshold":`...)
	if b, err = appendFloat(b, a.Threshold, "threshold"); err != nil {
		return b, err
	}
	for _, f := range []struct {
		key string
		t   *time.Time
	}{{`,"starts_at":`, &a.StartsAt}, {`,"ends_at":`, a.EndsAt}, {`,"window_start":`, a.WindowStart},
		{`,"window_end":`, a.WindowEnd}, {`,"emitted_at":`, &a.EmittedAt}} {
		b = append(b, f.key...)
		if b, err = appendTime(b, f.t); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// AppendJSON appends r's JSON object to b.
func (r *Resend) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"trigger_id":`...)
	b = appendString(b, r.TriggerID)
	b = append(b, `,"action":`...)
	b = appendString(b, r.Action)
	b = append(b, `,"policy":`...)
	b = appendString(b, r.Policy)
	b = append(b, `,"message_id":`...)
	b = appendString(b, r.MessageID)
	b = append(b, `,"customer_id":`...)
	b = appendString(b, r.CustomerID)
	b = append(b, `,"tenant":`...)
	b = appendString(b, r.Tenant)
	b = append(b, `,"channel":`...)
	b = appendString(b, r.Channel)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(r.Attempt), 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, r.Reason)
	b = append(b, `,"not_before":`...)
	if b, err = appendTime(b, &r.NotBefore); err != nil {
		return b, err
	}
	b = append(b, `,"created_at":`...)
	if b, err = appendTime(b, &r.CreatedAt); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendTime is time.Time's MarshalJSON (RFC 3339 with nanoseconds), null
// for a nil pointer.
func appendTime(b []byte, t *time.Time) ([]byte, error) {
	if t == nil {
		return append(b, "null"...), nil
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("%w: time %v is outside years 0-9999", ErrUnencodable, *t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendFloat formats f as encoding/json does: the shortest representation,
// in exponent form only below 1e-6 or from 1e21, with a short exponent.
func appendFloat(b []byte, f float64, field string) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("%w: %s is %v", ErrUnencodable, field, f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b) - start
		if n >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does without HTML escaping:
// control characters escaped, invalid UTF-8 replaced by U+FFFD, and U+2028
// and U+2029 escaped (JavaScript treats them as line ends).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
