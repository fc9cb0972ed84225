package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/internal/testenv"
)

// snapshotTestStore is a snapshot store on a topic of its own in the real
// Kafka that `make test` starts.
func snapshotTestStore(t *testing.T) *snapshotStore {
	t.Helper()
	b := testenv.Env(t, "CRMPULSE_KAFKA_BROKERS", "this test needs the real Kafka that `make test` starts")
	brokers := strings.Split(b, ",")
	topic := fmt.Sprintf("snapshot-test-%d-%06x", time.Now().UnixNano(), rand.Uint32()&0xffffff)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, ikafka.EnsureTopics(ctx, ikafka.Plain(brokers),
		ikafka.TopicSpec{Name: topic, Partitions: 2, ReplicationFactor: -1, Configs: snapshotTopicConfigs}))
	s := newSnapshotStore(ikafka.Plain(brokers), topic, "g", 2, nil)
	t.Cleanup(func() { s.close() })
	return s
}

func TestSnapshotsKeepTheFiringSetInChunksOfItsOwn(t *testing.T) {
	s := snapshotTestStore(t)
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	big := bytes.Repeat([]byte("e"), chunkSize+10)   // two engine chunks
	firing := bytes.Repeat([]byte("f"), chunkSize+3) // two firing chunks
	tests := []struct {
		name           string
		engine, firing []byte
	}{
		{"engine and firing set", big, firing},
		{"no firing alerts", []byte("engine"), nil},
		{"empty engine state", nil, []byte("firing")},
	}
	prev := manifest{}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cp := &checkpoint{Engine: tc.engine, Firing: tc.firing, RulesHash: "h", Offsets: map[string]int64{"in": int64(i)}, Watermark: now}
			mf, err := s.save(ctx, 1, cp, prev, now)
			require.NoError(t, err)
			prev = mf
			got, gmf, ok, err := s.load(ctx, 1)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, mf.ID, gmf.ID)
			require.Equal(t, len(tc.engine), gmf.Bytes, "the manifest's size is the engine state's")
			require.Equal(t, string(tc.engine), string(got.Engine))
			require.Equal(t, tc.firing, got.Firing)
			require.Equal(t, int64(i), got.Offsets["in"])
		})
	}
}

func TestSnapshotsWithoutAFiringSetStillRestore(t *testing.T) {
	s := snapshotTestStore(t)
	ctx := t.Context()
	// A manifest as builds before the firing set wrote it: no "firing" key.
	engine := []byte("engine state")
	sum, sp := span(engine)
	mf := manifest{Version: manifestVersion, ID: "old", Partition: 0, Chunks: 1, Bytes: len(engine), SHA256: sum.SHA256,
		Offsets: map[string]int64{"in": 7}, RulesHash: "h"}
	raw, err := json.Marshal(mf)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "firing")
	require.NoError(t, s.w.WriteMessages(ctx,
		kafkago.Message{Key: []byte(s.chunkKey(0, "old", 0)), Value: sp[0], WriterData: 0},
		kafkago.Message{Key: []byte(s.manifestKey(0)), Value: raw, WriterData: 0}))
	cp, _, ok, err := s.load(ctx, 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, engine, cp.Engine)
	require.Nil(t, cp.Firing)
	require.NoError(t, newActiveAlerts("0").restore(cp.Firing, nil))
}

func TestSnapshotsRefuseAFiringSetThatFailsItsChecksum(t *testing.T) {
	s := snapshotTestStore(t)
	ctx := t.Context()
	now := time.Now()
	mf, err := s.save(ctx, 0, &checkpoint{Engine: []byte("engine"), Firing: []byte("firing")}, manifest{}, now)
	require.NoError(t, err)
	require.NotNil(t, mf.Firing)
	require.NoError(t, s.w.WriteMessages(ctx,
		kafkago.Message{Key: []byte(s.chunkKey(0, mf.ID, mf.Chunks)), Value: []byte("tampered"), WriterData: 0}))
	_, _, _, err = s.load(ctx, 0)
	require.ErrorIs(t, err, errCorruptSnapshot)
	require.ErrorContains(t, err, "fails its checksum")
}
