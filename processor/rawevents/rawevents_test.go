package rawevents

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

const key = "test-key-of-at-least-thirty-two-bytes"

// mac is the expected hash, computed independently of Component.Hash.
func mac(v string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

var at = time.Date(2026, 11, 2, 9, 30, 15, 123_000_000, time.FixedZone("CET", 3600))

func interaction(attrs map[string]string) *ingest.Interaction {
	return &ingest.Interaction{EventID: "e1", Type: "purchase", CustomerID: "c1", OccurredAt: at, Tenant: "acme",
		Segment: "smb", Region: "emea", Channel: "web", Amount: 12.5, Currency: "EUR", Attributes: attrs}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "ok", cfg: Config{HashKey: key}},
		{name: "ok with list and shard", cfg: Config{HashKey: key, ContactAttributes: []string{"Email"}, Shard: 65535}},
		{name: "no key", cfg: Config{}, wantErr: "hash_key: required"},
		{name: "a key shorter than 32 bytes is refused", cfg: Config{HashKey: "0123456789abcdef0123456789abcde"},
			wantErr: "hash_key: must be at least 32 bytes, got 31"},
		{name: "a bad pattern is refused", cfg: Config{HashKey: key, ContactPatterns: []string{"[email"}},
			wantErr: "contact_patterns[0]"},
		{name: "negative shard", cfg: Config{HashKey: key, Shard: -1}, wantErr: "shard: must be in [0, 65535], got -1"},
		{name: "shard too large", cfg: Config{HashKey: key, Shard: 65536}, wantErr: "shard"},
		{name: "empty contact key", cfg: Config{HashKey: key, ContactAttributes: []string{"email", " "}},
			wantErr: "contact_attributes[1]: empty key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, c)
		})
	}
}

// TestInteractionAttributes: contact values (keys matched whatever their
// case) become the hex HMAC of the value, everything else is kept, and
// attributes come out sorted by key.
func TestInteractionAttributes(t *testing.T) {
	tests := []struct {
		name       string
		contact    []string
		patterns   []string
		attrs      map[string]string
		wantKeys   []string
		wantValues []string
	}{
		{name: "no attributes", attrs: nil, wantKeys: []string{}, wantValues: []string{}},
		{
			name:       "default list",
			attrs:      map[string]string{"email": "alice@example.com", "plan": "gold", "phone": "+33 6 12 34 56 78", "ip": "192.0.2.1"},
			wantKeys:   []string{"email", "ip", "phone", "plan"},
			wantValues: []string{mac("alice@example.com"), mac("192.0.2.1"), mac("+33 6 12 34 56 78"), "gold"},
		},
		{
			name:       "keys match whatever their case",
			attrs:      map[string]string{"EMAIL": "alice@example.com", "First_Name": "Alice", "Plan": "gold"},
			wantKeys:   []string{"EMAIL", "First_Name", "Plan"},
			wantValues: []string{mac("alice@example.com"), mac("Alice"), "gold"},
		},
		{
			name:       "configured lists replace the defaults",
			contact:    []string{"Loyalty_Card"},
			patterns:   []string{"-"},
			attrs:      map[string]string{"loyalty_card": "4242", "email": "alice@example.com"},
			wantKeys:   []string{"email", "loyalty_card"},
			wantValues: []string{"alice@example.com", mac("4242")},
		},
		{
			name:       "empty values are hashed too",
			attrs:      map[string]string{"email": ""},
			wantKeys:   []string{"email"},
			wantValues: []string{mac("")},
		},
		{
			name:       "the default patterns catch contact keys that are not listed",
			attrs:      map[string]string{"email_address": "a@example.com", "Phone_Number": "+1 555", "billing_address": "1 Main St", "plan": "gold"},
			wantKeys:   []string{"Phone_Number", "billing_address", "email_address", "plan"},
			wantValues: []string{mac("+1 555"), mac("1 Main St"), mac("a@example.com"), "gold"},
		},
		{
			name:       "configured patterns replace the default patterns",
			patterns:   []string{"loyalty_*"},
			attrs:      map[string]string{"email_opt_in": "yes", "loyalty_id": "42", "email": "a@example.com"},
			wantKeys:   []string{"email", "email_opt_in", "loyalty_id"},
			wantValues: []string{mac("a@example.com"), "yes", mac("42")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{HashKey: key, ContactAttributes: tc.contact, ContactPatterns: tc.patterns})
			require.NoError(t, err)
			var out processor.Output
			c.Interaction(interaction(tc.attrs), &out)
			require.Len(t, out.Aggregates, 1)
			r := out.Aggregates[0].(Interaction)
			require.Equal(t, tc.wantKeys, r.AttributeKeys)
			require.Equal(t, tc.wantValues, r.AttributeValues)
		})
	}
}

func TestDefaultContactAttributes(t *testing.T) {
	c, err := New(Config{HashKey: key})
	require.NoError(t, err)
	for _, k := range []string{"email", "phone", "mobile", "address", "name", "first_name", "last_name", "ip"} {
		require.True(t, c.isContact(k), k)
		require.True(t, c.isContact(string(k[0]-'a'+'A')+k[1:]), k)
	}
	for _, k := range []string{"plan", "customer_id", "tier", "", "mail"} {
		require.False(t, c.isContact(k), k)
	}
}

// TestHashIsKeyed: the stored value is not the plain SHA-256 of the
// contact value, and depends on the key.
func TestHashIsKeyed(t *testing.T) {
	a, err := New(Config{HashKey: key + "-one"})
	require.NoError(t, err)
	b, err := New(Config{HashKey: key + "-two"})
	require.NoError(t, err)
	plain := sha256.Sum256([]byte("alice@example.com"))
	require.NotEqual(t, hex.EncodeToString(plain[:]), a.Hash("alice@example.com"))
	require.NotEqual(t, a.Hash("alice@example.com"), b.Hash("alice@example.com"))
	require.Equal(t, a.Hash("alice@example.com"), a.Hash("alice@example.com"), "deterministic")
	require.Len(t, a.Hash("x"), 64)
}

// TestRows: one row per record, every field copied, the ids and tables of
// processor.Aggregate, the input record left untouched.
func TestRows(t *testing.T) {
	c, err := New(Config{HashKey: key, Shard: 7})
	require.NoError(t, err)
	var out processor.Output
	ev := interaction(map[string]string{"email": "alice@example.com"})
	c.Interaction(ev, &out)
	require.Equal(t, "alice@example.com", ev.Attributes["email"], "the engine's record is not modified")
	rc := &ingest.Receipt{ReceiptID: "r1", MessageID: "m1", CustomerID: "c1", Channel: "sms", Status: "bounced",
		OccurredAt: at, Attempt: 2, Tenant: "acme", CampaignID: "spring", TemplateID: "t1", Provider: "twilio",
		ErrorCode: "550", RecipientTZ: "Europe/Paris"}
	c.Receipt(rc, &out)
	c.Advance(at.Add(time.Hour), &out)
	require.Len(t, out.Aggregates, 2, "Advance emits nothing")

	require.Equal(t, Interaction{EventID: "e1", Type: "purchase", CustomerID: "c1", OccurredAt: at.UTC(), Tenant: "acme",
		Segment: "smb", Region: "emea", Channel: "web", Amount: 12.5, Currency: "EUR", Shard: 7,
		AttributeKeys: []string{"email"}, AttributeValues: []string{mac("alice@example.com")}}, out.Aggregates[0])
	require.Equal(t, Receipt{ReceiptID: "r1", MessageID: "m1", CustomerID: "c1", Channel: "sms", Status: "bounced",
		OccurredAt: at.UTC(), Attempt: 2, Tenant: "acme", CampaignID: "spring", TemplateID: "t1", Provider: "twilio",
		ErrorCode: "550", RecipientTZ: "Europe/Paris", Shard: 7}, out.Aggregates[1])

	ids := []struct{ table, id string }{{TableInteractions, "e1"}, {TableReceipts, "r1"}}
	for i, want := range ids {
		require.Equal(t, want.table, out.Aggregates[i].Table())
		require.Equal(t, want.id, out.Aggregates[i].ID())
	}
}

func TestState(t *testing.T) {
	c, err := New(Config{HashKey: key})
	require.NoError(t, err)
	require.Equal(t, Name, c.Name())
	st, err := c.MarshalState()
	require.NoError(t, err)
	require.Empty(t, st)
	require.NoError(t, c.UnmarshalState(st))
	require.NoError(t, c.UnmarshalState([]byte{}))
	require.ErrorContains(t, c.UnmarshalState([]byte("gob")), "expected none, got 3 bytes")
}
