package privacy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testKey = "0123456789abcdef0123456789abcdef"

func TestCheckHashKey(t *testing.T) {
	require.NoError(t, CheckHashKey(testKey))
	require.ErrorContains(t, CheckHashKey(testKey[:31]), "hash_key: must be at least 32 bytes, got 31")
	require.ErrorContains(t, CheckHashKey(""), "got 0")
	_, err := NewHasher("short")
	require.Error(t, err)
}

func TestMatcher(t *testing.T) {
	def, err := NewMatcher(nil, nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		m       *Matcher
		key     string
		contact bool
	}{
		{"an exact default key", def, "email", true},
		{"an exact default key in another case", def, "First_Name", true},
		{"email_address by pattern", def, "email_address", true},
		{"phone_number by pattern", def, "phone_number", true},
		{"a pattern in another case", def, "Work_Phone", true},
		{"billing address by pattern", def, "billing_address", true},
		{"a *_name key", def, "contact_name", true},
		{"a birthday", def, "birthday", true},
		{"a date of birth by pattern", def, "date_of_birth", true},
		{"a non-contact key", def, "plan", false},
		{"customer_id is not contact data", def, "customer_id", false},
		{"an empty key", def, "", false},
		{"the nil matcher matches nothing", nil, "email", false},
		{"configured names replace the defaults", must(NewMatcher([]string{"Loyalty_Card"}, []string{"-"})), "email", false},
		{"configured names match case-insensitively", must(NewMatcher([]string{"Loyalty_Card"}, []string{"-"})), "LOYALTY_card", true},
		{"configured patterns replace the defaults", must(NewMatcher([]string{"-"}, []string{"x_*"})), "email_address", false},
		{"configured patterns match", must(NewMatcher([]string{"-"}, []string{"X_*"})), "x_ref", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.contact, tc.m.Contact(tc.key))
		})
	}
	_, err = NewMatcher(nil, []string{"[bad"})
	require.ErrorContains(t, err, "contact_patterns[0]")
	_, err = NewMatcher([]string{"ok", " "}, nil)
	require.ErrorContains(t, err, "contact_attributes[1]: empty key")
}

func must(m *Matcher, err error) *Matcher {
	if err != nil {
		panic(err)
	}
	return m
}

func TestScrubber(t *testing.T) {
	h, err := NewHasher(testKey)
	require.NoError(t, err)
	m := must(NewMatcher(nil, nil))
	rec := `{"event_id":"e1","customer_id":"c1","email":"top@example.com","attributes":{"email_address":"a@example.com","plan":"gold","phone":5551234}}`
	notJSON := "{oops alice@example.com"

	keep, err := NewScrubber(Keep, m, h)
	require.NoError(t, err)
	require.False(t, keep.Active())
	require.Equal(t, rec, string(keep.Record([]byte(rec))), "keep changes nothing")

	hash, err := NewScrubber(Hash, m, h)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(hash.Record([]byte(rec)), &got))
	require.Equal(t, "e1", got["event_id"])
	require.Equal(t, "c1", got["customer_id"])
	require.Equal(t, h.Hash("top@example.com"), got["email"], "unknown top-level contact keys are hashed too")
	attrs := got["attributes"].(map[string]any)
	require.Equal(t, h.Hash("a@example.com"), attrs["email_address"], "the same hash as the raw tables store")
	require.Equal(t, h.Hash("5551234"), attrs["phone"], "a non-string value is hashed by its JSON text")
	require.Equal(t, "gold", attrs["plan"])

	drop, err := NewScrubber(Drop, m, h)
	require.NoError(t, err)
	got = nil
	require.NoError(t, json.Unmarshal(drop.Record([]byte(rec)), &got))
	require.NotContains(t, got, "email")
	require.Equal(t, map[string]any{"plan": "gold"}, got["attributes"])

	// A value that is not JSON: nothing in it can be told apart from
	// contact data, so only its length and (with hash) its HMAC are kept.
	var o Opaque
	require.NoError(t, json.Unmarshal(hash.Record([]byte(notJSON)), &o))
	require.Equal(t, Opaque{Redacted: true, Bytes: len(notJSON), HMAC: h.Hash(notJSON)}, o)
	o = Opaque{}
	require.NoError(t, json.Unmarshal(drop.Record([]byte(notJSON)), &o))
	require.Equal(t, Opaque{Redacted: true, Bytes: len(notJSON)}, o)
	require.NotContains(t, drop.Text(notJSON), "alice")

	clean := `{"event_id":"e2","attributes":{"plan":"gold"}}`
	require.Equal(t, clean, string(hash.Record([]byte(clean))), "a record without contact data is returned as is")
	require.Equal(t, `{"attributes":"not an object"}`, string(hash.Record([]byte(`{"attributes":"not an object"}`))))

	_, err = NewScrubber(Hash, m, nil)
	require.ErrorContains(t, err, "needs hash_key")
	_, err = ParseMode("maybe")
	require.ErrorContains(t, err, `"maybe" is not keep, hash or drop`)
}

func FuzzScrubber(f *testing.F) {
	f.Add(`{"attributes":{"email":"a@b.c"}}`)
	f.Add(`not json`)
	h, _ := NewHasher(testKey)
	s, _ := NewScrubber(Drop, must(NewMatcher(nil, nil)), h)
	f.Fuzz(func(t *testing.T, in string) {
		out := s.Record([]byte(in))
		if !json.Valid(out) {
			require.Equal(t, in, string(out), "only an input returned untouched may be invalid JSON")
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(out, &top) == nil {
			for k := range top {
				require.False(t, k != "attributes" && s.m.Contact(k) && !strings.Contains(k, "crmpulse"), "contact key %q survived drop", k)
			}
		}
	})
}

// BenchmarkScrubAttributes is the per-record cost privacy.repartition adds
// to forwarding (keep costs a nil check and is not measured): compare with
// ingest's BenchmarkDecodeInteraction, which every record pays anyway.
func BenchmarkScrubAttributes(b *testing.B) {
	h, _ := NewHasher(testKey)
	m := must(NewMatcher(nil, nil))
	for _, tc := range []struct {
		name string
		rec  string
	}{
		{"without attributes", `{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2026-11-02T09:00:00Z","tenant":"acme","amount":3}`},
		{"with contact attributes", `{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2026-11-02T09:00:00Z","tenant":"acme","amount":3,"attributes":{"email":"a@example.com","plan":"gold","phone_number":"+1 555"}}`},
	} {
		for _, mode := range []Mode{Hash, Drop} {
			s, _ := NewScrubber(mode, m, h)
			b.Run(tc.name+"/"+string(mode), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					s.Attributes([]byte(tc.rec))
				}
			})
		}
	}
}
