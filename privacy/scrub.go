package privacy

import (
	"bytes"
	"fmt"

	// goccy: about twice as fast as encoding/json here, which matters on
	// the repartition path (per record); the output is the same JSON.
	json "github.com/goccy/go-json"
)

// Mode is what a Scrubber does with contact attributes.
type Mode string

const (
	// Keep leaves records as they came (the default: dead letters can be
	// fixed and replayed as they were, the group stage sees every value).
	Keep Mode = "keep"
	// Hash replaces contact values by their HMAC, as the raw tables do.
	Hash Mode = "hash"
	// Drop removes contact attributes.
	Drop Mode = "drop"
)

// ParseMode reads a mode; "" is Keep.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", Keep:
		return Keep, nil
	case Hash, Drop:
		return Mode(s), nil
	}
	return "", fmt.Errorf("%q is not keep, hash or drop", s)
}

// Scrubber hides the contact attributes of JSON records: the keys of the
// top-level object and of its "attributes" object that the Matcher names.
// Safe for concurrent use.
type Scrubber struct {
	mode Mode
	m    *Matcher
	h    *Hasher
}

// NewScrubber returns a Scrubber; h is required with Hash and used for
// values that are not JSON with Hash and Drop (their length is kept then).
func NewScrubber(mode Mode, m *Matcher, h *Hasher) (*Scrubber, error) {
	if mode == Hash && h == nil {
		return nil, fmt.Errorf("privacy mode hash needs hash_key")
	}
	return &Scrubber{mode: mode, m: m, h: h}, nil
}

// Active reports whether Record can change anything.
func (s *Scrubber) Active() bool { return s != nil && s.mode != Keep }

// Opaque is what replaces a value that is not a JSON object once contact
// data is hashed or dropped: nothing of it can be told apart from contact
// data, so only its length (and with Hash its HMAC, to match copies) stays.
type Opaque struct {
	Redacted bool   `json:"crmpulse_redacted"`
	Bytes    int    `json:"bytes"`
	HMAC     string `json:"hmac_sha256,omitempty"`
}

// Record returns value with contact attributes hashed or dropped. A value
// that is not a JSON object becomes an Opaque. With Keep, or when nothing
// matches, value itself is returned (no copy).
func (s *Scrubber) Record(value []byte) []byte { return s.record(value, true) }

// Attributes is Record for an accepted record, whose top-level keys are
// the schema's (SPEC §1) and never contact data: only its "attributes"
// object is scrubbed, and a value that is not a JSON object is returned
// as is.
func (s *Scrubber) Attributes(value []byte) []byte { return s.record(value, false) }

func (s *Scrubber) record(value []byte, topLevel bool) []byte {
	if !s.Active() {
		return value
	}
	if !topLevel && !bytes.Contains(value, []byte(`"attributes"`)) && !bytes.Contains(value, []byte(`\u`)) {
		return value // most receipts and many interactions: no decoding at all (unless a key may be escaped)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(value, &top); err != nil || top == nil {
		if !topLevel {
			return value
		}
		return s.opaque(value)
	}
	changed := false
	for k, v := range top {
		if k == "attributes" {
			if nv, ok := s.attributes(v); ok {
				top[k], changed = nv, true
			}
			continue
		}
		if topLevel && s.m.Contact(k) {
			changed = true
			if s.mode == Drop {
				delete(top, k)
			} else {
				top[k] = s.hashRaw(v)
			}
		}
	}
	if !changed {
		return value
	}
	out, err := json.Marshal(top)
	if err != nil {
		return s.opaque(value)
	}
	return out
}

func (s *Scrubber) attributes(raw json.RawMessage) (json.RawMessage, bool) {
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &attrs); err != nil || attrs == nil {
		return nil, false // not an object: the record was refused for it, nothing named to hide
	}
	changed := false
	for k, v := range attrs {
		if !s.m.Contact(k) {
			continue
		}
		changed = true
		if s.mode == Drop {
			delete(attrs, k)
		} else {
			attrs[k] = s.hashRaw(v)
		}
	}
	if !changed {
		return nil, false
	}
	out, err := json.Marshal(attrs)
	return out, err == nil
}

// hashRaw hashes a JSON value: a string's content (so it matches the raw
// tables' hash of the same value), anything else by its JSON text.
func (s *Scrubber) hashRaw(v json.RawMessage) json.RawMessage {
	var str string
	text := string(bytes.TrimSpace(v))
	if err := json.Unmarshal(v, &str); err == nil {
		text = str
	}
	b, _ := json.Marshal(s.h.Hash(text))
	return b
}

func (s *Scrubber) opaque(value []byte) []byte {
	o := Opaque{Redacted: true, Bytes: len(value)}
	if s.h != nil && s.mode == Hash {
		o.HMAC = s.h.Hash(string(value))
	}
	b, _ := json.Marshal(o)
	return b
}

// Text is Record for a line that may not be JSON at all (replay's raw
// field): the same result as a string.
func (s *Scrubber) Text(raw string) string {
	if !s.Active() {
		return raw
	}
	return string(s.Record([]byte(raw)))
}
