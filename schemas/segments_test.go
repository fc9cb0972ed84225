package schemas_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
)

// segmentRules is the example rules plus segment sets, one keyed without
// tenant, so segments.jsonl has first classes, moves and both tenant
// sources to validate.
const segmentRules = `
segments:
  - name: lifecycle
    key: [tenant, customer_id]
    track: {type: [purchase, login, visit]}
    window: 30d
    classes:
      - {name: potential, max_total: 0}
      - {name: new, tenure_under: 3d}
      - {name: loyal, min_count: 3, recency_under: 5d}
      - {name: active, recency_under: 7d}
      - {name: churned}
  - name: spend
    key: [customer_id]
    purchase: {type: [purchase, refund]}
    window: 7d
    classes:
      - {name: big, min_amount: 200}
      - {name: small}
`

// TestSegmentOutputsMatchSchema replays generated data with segment sets
// and validates every segments.jsonl line against schemas/segment.json.
func TestSegmentOutputsMatchSchema(t *testing.T) {
	sch := compile(t)
	dir := t.TempDir()
	cfg := datagen.DefaultConfig()
	cfg.Seed, cfg.Customers, cfg.Days = 42, 300, 10
	ip := filepath.Join(dir, "i.jsonl")
	fi, err := os.Create(ip)
	require.NoError(t, err)
	fr, err := os.Create(filepath.Join(dir, "r.jsonl"))
	require.NoError(t, err)
	_, err = datagen.Generate(cfg, fi, fr)
	require.NoError(t, err)
	require.NoError(t, fi.Close())
	require.NoError(t, fr.Close())
	example, err := os.ReadFile("../examples/rules.yaml")
	require.NoError(t, err)
	rf, err := rules.Parse(append(example, segmentRules...))
	require.NoError(t, err)
	out := filepath.Join(dir, "out")
	_, err = replay.Run(context.Background(), replay.Config{Rules: rf, Interactions: ip, OutDir: out})
	require.NoError(t, err)
	ls := lines(t, filepath.Join(out, "segments.jsonl"))
	require.Greater(t, len(ls), 300, "every customer gets a first class at least")
	for _, line := range ls {
		require.NoError(t, valid(sch["segment"], line), "%s", line)
	}
}
