package replay

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/privacy"
)

// TestRejectedLinesAreScrubbed: with a Scrub (privacy.dead_letters hash),
// rejected.jsonl keeps the refused record's shape but no contact value in
// clear, and a line that is not JSON becomes its HMAC and length.
func TestRejectedLinesAreScrubbed(t *testing.T) {
	dir := t.TempDir()
	inter := filepath.Join(dir, "interactions.jsonl")
	refused := `{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"never","tenant":"acme","attributes":{"email_address":"alice@example.com","plan":"gold"}}`
	notJSON := `garbage bob@example.com`
	require.NoError(t, os.WriteFile(inter, []byte(refused+"\n"+notJSON+"\n"), 0o644))
	h, err := privacy.NewHasher("replay-privacy-test-key-32-bytes-long")
	require.NoError(t, err)
	m, err := privacy.NewMatcher(nil, nil)
	require.NoError(t, err)
	scrub, err := privacy.NewScrubber(privacy.Hash, m, h)
	require.NoError(t, err)
	out := t.TempDir()
	sum, err := Run(context.Background(), Config{Rules: testRulesFile(t), Interactions: inter, OutDir: out, Scrub: scrub})
	require.NoError(t, err)
	require.Equal(t, int64(2), sum.RejectedTotal())

	data, err := os.ReadFile(filepath.Join(out, "rejected.jsonl"))
	require.NoError(t, err)
	require.NotContains(t, string(data), "alice@")
	require.NotContains(t, string(data), "bob@")
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 2)
	var rej struct{ Raw string }
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rej))
	var rec struct{ Attributes map[string]string }
	require.NoError(t, json.Unmarshal([]byte(rej.Raw), &rec))
	require.Equal(t, map[string]string{"email_address": h.Hash("alice@example.com"), "plan": "gold"}, rec.Attributes)
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &rej))
	var o privacy.Opaque
	require.NoError(t, json.Unmarshal([]byte(rej.Raw), &o))
	require.Equal(t, privacy.Opaque{Redacted: true, Bytes: len(notJSON), HMAC: h.Hash(notJSON)}, o)
}
