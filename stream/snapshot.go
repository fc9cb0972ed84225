package stream

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
)

// A checkpoint is one partition's engine state and the input offsets it
// covers: restoring it and reading on from those offsets continues exactly
// where the writer was.
type checkpoint struct {
	Engine    []byte
	Offsets   map[string]int64 // topic → next offset of this partition
	RulesHash string
	Watermark time.Time
	// Outputs are, per output topic and partition, the offset from which a
	// restore reads back what was already written since this checkpoint
	// (outputdedup.go); nil in snapshots of older versions, which restore
	// without deduplication.
	Outputs map[string]map[int]int64
}

// manifest is the record that makes a snapshot visible. The state itself
// is split into chunks under keys unique to the snapshot, written first; the
// manifest, keyed <group>/<partition>, is written last, so compaction keeps
// the latest complete snapshot and a crash halfway leaves the previous one
// intact. Chunks of the snapshot a manifest replaced are then deleted with
// tombstones.
type manifest struct {
	Version   int              `json:"version"`
	ID        string           `json:"id"`
	Partition int              `json:"partition"`
	Chunks    int              `json:"chunks"`
	Bytes     int              `json:"bytes"`
	SHA256    string           `json:"sha256"`
	RulesHash string           `json:"rules_hash"`
	Offsets   map[string]int64 `json:"offsets"`
	Watermark time.Time        `json:"watermark"`
	WrittenAt time.Time        `json:"written_at"`
	// OutputOffsets is checkpoint.Outputs; absent in older manifests.
	OutputOffsets map[string]map[int]int64 `json:"output_offsets,omitempty"`
}

const (
	manifestVersion = 1
	// chunkSize keeps every record well under Kafka's default 1 MB limit.
	chunkSize = 512 << 10
)

// snapshotTopicConfigs make the snapshots topic compacted and keep its
// uncompacted tail short, which bounds what a restore reads.
var snapshotTopicConfigs = map[string]string{
	"cleanup.policy":            "compact",
	"segment.bytes":             strconv.Itoa(64 << 20),
	"segment.ms":                strconv.Itoa(int(time.Hour / time.Millisecond)),
	"min.cleanable.dirty.ratio": "0.1",
	"delete.retention.ms":       strconv.Itoa(int(time.Hour / time.Millisecond)),
}

// snapshotStore writes and reads checkpoints on the compacted snapshots
// topic. Partition p's records go to partition p mod N of that topic, so a
// restore reads one partition, not the whole topic.
type snapshotStore struct {
	brokers    []string
	topic      string
	group      string
	partitions int
	w          *kafkago.Writer
}

// explicitPartition sends a message to the partition in its WriterData.
type explicitPartition struct{}

func (explicitPartition) Balance(m kafkago.Message, partitions ...int) int {
	p, _ := m.WriterData.(int)
	for _, x := range partitions {
		if x == p {
			return p
		}
	}
	return partitions[p%len(partitions)]
}

func newSnapshotStore(brokers []string, topic, group string, partitions int, logger kafkago.Logger) *snapshotStore {
	return &snapshotStore{
		brokers: brokers, topic: topic, group: group, partitions: partitions,
		w: &kafkago.Writer{
			Addr:         kafkago.TCP(brokers...),
			Topic:        topic,
			Balancer:     explicitPartition{},
			RequiredAcks: kafkago.RequireAll,
			BatchSize:    1,
			BatchBytes:   chunkSize + 64<<10,
			BatchTimeout: time.Millisecond,
			MaxAttempts:  outputMaxAttempts,
			Compression:  kafkago.Lz4,
			ErrorLogger:  logger,
		},
	}
}

func (s *snapshotStore) close() error { return s.w.Close() }

// name is how p appears in keys: its number, or "groups" for the group
// stage.
func name(p int) string {
	if p == groupStageID {
		return "groups"
	}
	return strconv.Itoa(p)
}

func (s *snapshotStore) manifestKey(p int) string { return s.group + "/" + name(p) }

func (s *snapshotStore) chunkKey(p int, id string, i int) string {
	return s.group + "/" + name(p) + "/" + id + "/" + strconv.Itoa(i)
}

// target is the snapshots topic partition holding p's records.
func (s *snapshotStore) target(p int) int { return max(p, 0) % s.partitions }

// save writes cp as partition p's latest snapshot and deletes the chunks of
// the snapshot prev (the one it replaces; empty for none). It returns the
// new snapshot's id.
func (s *snapshotStore) save(ctx context.Context, p int, cp *checkpoint, prev manifest, now time.Time) (manifest, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	sum := sha256.Sum256(cp.Engine)
	mf := manifest{
		Version: manifestVersion, ID: hex.EncodeToString(rnd[:]), Partition: p,
		Chunks: (len(cp.Engine) + chunkSize - 1) / chunkSize, Bytes: len(cp.Engine),
		SHA256: hex.EncodeToString(sum[:]), RulesHash: cp.RulesHash, Offsets: cp.Offsets,
		Watermark: cp.Watermark.UTC(), WrittenAt: now.UTC(), OutputOffsets: cp.Outputs,
	}
	target := s.target(p)
	chunks := make([]kafkago.Message, 0, mf.Chunks)
	for i := 0; i < mf.Chunks; i++ {
		end := min((i+1)*chunkSize, len(cp.Engine))
		chunks = append(chunks, kafkago.Message{Key: []byte(s.chunkKey(p, mf.ID, i)), Value: cp.Engine[i*chunkSize : end], WriterData: target})
	}
	if len(chunks) > 0 {
		if err := s.w.WriteMessages(ctx, chunks...); err != nil {
			return prev, fmt.Errorf("writing snapshot of partition %d to %s: %w", p, s.topic, err)
		}
	}
	v, err := json.Marshal(mf)
	if err != nil {
		return prev, err
	}
	if err := s.w.WriteMessages(ctx, kafkago.Message{Key: []byte(s.manifestKey(p)), Value: v, WriterData: target}); err != nil {
		return prev, fmt.Errorf("writing snapshot manifest of partition %d to %s: %w", p, s.topic, err)
	}
	if prev.ID != "" {
		tombs := make([]kafkago.Message, 0, prev.Chunks)
		for i := 0; i < prev.Chunks; i++ {
			tombs = append(tombs, kafkago.Message{Key: []byte(s.chunkKey(p, prev.ID, i)), WriterData: target})
		}
		// A tombstone that fails leaves garbage for compaction, not an
		// inconsistency: the manifest names the chunks that count.
		_ = s.w.WriteMessages(ctx, tombs...)
	}
	return mf, nil
}

// errCorruptSnapshot marks a manifest whose chunks are missing or do not
// match its checksum.
var errCorruptSnapshot = errors.New("corrupt snapshot")

// load reads partition p's latest snapshot; ok is false when there is none.
func (s *snapshotStore) load(ctx context.Context, p int) (cp *checkpoint, mf manifest, ok bool, err error) {
	target := s.target(p)
	first, end, err := ikafka.PartitionBounds(ctx, s.brokers, s.topic, target)
	if err != nil {
		return nil, mf, false, err
	}
	if end <= first {
		return nil, mf, false, nil
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: s.brokers, Topic: s.topic, Partition: target,
		MinBytes: 1, MaxBytes: 32 << 20, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return nil, mf, false, err
	}
	mkey := s.manifestKey(p)
	prefix := mkey + "/"
	latest := map[string][]byte{}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return nil, mf, false, fmt.Errorf("reading snapshots of partition %d from %s: %w", p, s.topic, err)
		}
		if k := string(m.Key); k == mkey || strings.HasPrefix(k, prefix) {
			if m.Value == nil {
				delete(latest, k)
			} else {
				latest[k] = m.Value
			}
		}
		if m.Offset+1 >= end {
			break
		}
	}
	raw, found := latest[mkey]
	if !found {
		return nil, mf, false, nil
	}
	if err := json.Unmarshal(raw, &mf); err != nil {
		return nil, mf, false, fmt.Errorf("%w: partition %d: manifest: %w", errCorruptSnapshot, p, err)
	}
	if mf.Version != manifestVersion {
		return nil, mf, false, fmt.Errorf("%w: partition %d: manifest version %d, this build reads %d", errCorruptSnapshot, p, mf.Version, manifestVersion)
	}
	data := make([]byte, 0, mf.Bytes)
	for i := 0; i < mf.Chunks; i++ {
		c, ok := latest[s.chunkKey(p, mf.ID, i)]
		if !ok {
			return nil, mf, false, fmt.Errorf("%w: partition %d: snapshot %s lacks chunk %d of %d", errCorruptSnapshot, p, mf.ID, i, mf.Chunks)
		}
		data = append(data, c...)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != mf.SHA256 {
		return nil, mf, false, fmt.Errorf("%w: partition %d: snapshot %s fails its checksum", errCorruptSnapshot, p, mf.ID)
	}
	return &checkpoint{Engine: data, Offsets: mf.Offsets, RulesHash: mf.RulesHash, Watermark: mf.Watermark, Outputs: mf.OutputOffsets}, mf, true, nil
}
