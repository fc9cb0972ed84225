package schemas_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
)

// spendSet is a segment set keyed without tenant, added to the example's
// lifecycle set, so segments.jsonl has first classes, moves and both
// tenant sources to validate.
const spendSet = `
  - name: spend
    key: [customer_id]
    purchase: {type: [purchase, refund]}
    window: 7d
    classes:
      - {name: big, min_amount: 200}
      - {name: small}`

// TestSegmentOutputsMatchSchema replays generated data with segment sets
// and validates every segments.jsonl line against schemas/segment.json.
func TestSegmentOutputsMatchSchema(t *testing.T) {
	sch := compile(t)
	dir := t.TempDir()
	cfg := datagen.DefaultConfig()
	cfg.Seed, cfg.Customers, cfg.Days = 42, 300, 10
	files, _, err := datagen.WriteFiles(cfg, dir)
	require.NoError(t, err)
	ip := files.Interactions
	example, err := os.ReadFile("../examples/rules.yaml")
	require.NoError(t, err)
	withSpend := strings.Replace(string(example), "\nsegments:", "\nsegments:"+spendSet, 1)
	require.NotEqual(t, string(example), withSpend, "the example has a segments section")
	rf, err := rules.Parse([]byte(withSpend))
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
