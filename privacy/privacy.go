// Package privacy decides which attributes of a CRM record are contact data
// and hides them: the HMAC that replaces them in the raw analytics tables
// (processor/rawevents), and the scrubbing of the record copies the pipeline
// keeps elsewhere (dead letters, replay's rejected.jsonl, the repartition
// topic). docs/security.md says what is stored where.
package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"path"
	"strings"
	"sync"
)

// MinHashKeyBytes is the shortest HMAC key accepted: a short key can be
// guessed, and with it every hash reversed by hashing a list of known
// addresses. 32 bytes is SHA-256's block-size guidance (RFC 2104 §3: at
// least the output length).
const MinHashKeyBytes = 32

// DefaultContactAttributes are the exact attribute keys (case-insensitive)
// that are contact data when none are configured: the usual ways to reach
// or identify a person in CRM exports.
var DefaultContactAttributes = []string{
	"email", "phone", "mobile", "address", "name", "first_name", "last_name", "ip",
	"full_name", "surname", "birthday", "birthdate", "date_of_birth", "dob", "ssn", "iban", "zip", "postcode",
}

// DefaultContactPatterns are the key patterns (case-insensitive globs, as
// path.Match: * any run, ? one character) that are contact data when none
// are configured, so email_address, phone_number or billing_address are
// hashed without being listed.
var DefaultContactPatterns = []string{
	"*email*", "*e_mail*", "*phone*", "*mobile*", "*address*", "*_name", "*name_*", "*birth*",
	"*ip_addr*", "*street*", "*postal*", "*passport*", "*msisdn*",
}

// CheckHashKey refuses a key shorter than MinHashKeyBytes.
func CheckHashKey(key string) error {
	if len(key) < MinHashKeyBytes {
		return fmt.Errorf("hash_key: must be at least %d bytes, got %d (generate one with `openssl rand -hex 32`)", MinHashKeyBytes, len(key))
	}
	return nil
}

// Matcher tells contact attribute keys from the others. Its zero value
// matches nothing; it is safe for concurrent use.
type Matcher struct {
	exact    map[string]bool // lower-cased
	patterns []string        // lower-cased globs
}

// NewMatcher returns a Matcher for the exact keys and glob patterns; nil
// (not empty) lists take the defaults. A list holding only "-" is empty, so
// the defaults can be turned off.
func NewMatcher(exact, patterns []string) (*Matcher, error) {
	if len(exact) == 0 {
		exact = DefaultContactAttributes
	}
	if len(patterns) == 0 {
		patterns = DefaultContactPatterns
	}
	m := &Matcher{exact: map[string]bool{}}
	for i, k := range exact {
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "":
			return nil, fmt.Errorf("contact_attributes[%d]: empty key", i)
		case "-":
			continue
		}
		m.exact[k] = true
	}
	for i, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		switch p {
		case "":
			return nil, fmt.Errorf("contact_patterns[%d]: empty pattern", i)
		case "-":
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("contact_patterns[%d]: %q: %w", i, p, err)
		}
		m.patterns = append(m.patterns, p)
	}
	return m, nil
}

// Contact reports whether attribute key k is contact data.
func (m *Matcher) Contact(k string) bool {
	if m == nil {
		return false
	}
	if m.exact[k] {
		return true
	}
	lower := k
	for i := 0; i < len(k); i++ {
		if ch := k[i]; ch >= 'A' && ch <= 'Z' || ch >= 0x80 {
			lower = strings.ToLower(k)
			if m.exact[lower] {
				return true
			}
			break
		}
	}
	for _, p := range m.patterns {
		if ok, _ := path.Match(p, lower); ok {
			return true
		}
	}
	return false
}

// Hasher is the keyed hash of contact values: hex HMAC-SHA256, the same
// as the raw tables store. Safe for concurrent use: HMAC states are pooled.
type Hasher struct {
	pool sync.Pool // of *macState
}

type macState struct {
	mac hash.Hash
	sum []byte
}

// NewHasher returns a Hasher keyed with key, which CheckHashKey must accept.
func NewHasher(key string) (*Hasher, error) {
	if err := CheckHashKey(key); err != nil {
		return nil, err
	}
	k := []byte(key)
	h := &Hasher{}
	h.pool.New = func() any { return &macState{mac: hmac.New(sha256.New, k)} }
	return h, nil
}

// Hash is the hex HMAC-SHA256 of v.
func (h *Hasher) Hash(v string) string {
	st := h.pool.Get().(*macState)
	st.mac.Reset()
	st.mac.Write([]byte(v))
	st.sum = st.mac.Sum(st.sum[:0])
	out := hex.EncodeToString(st.sum)
	h.pool.Put(st)
	return out
}
