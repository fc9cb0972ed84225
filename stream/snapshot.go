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
	// Firing is the owner's set of firing alerts (activealerts.go), stored
	// in chunks after the engine's; nil in snapshots written without it.
	Firing []byte
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
	// Firing describes the last chunks, which hold checkpoint.Firing; nil
	// when there are none (and in manifests written before it existed), so
	// Chunks, Bytes and SHA256 above stay the engine state's.
	Firing *chunkSpan `json:"firing,omitempty"`
}

// chunkSpan is a part of a snapshot stored in chunks of its own.
type chunkSpan struct {
	Chunks int    `json:"chunks"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// span returns how data is split into chunks, and its chunks.
func span(data []byte) (chunkSpan, [][]byte) {
	sum := sha256.Sum256(data)
	sp := chunkSpan{Chunks: (len(data) + chunkSize - 1) / chunkSize, Bytes: len(data), SHA256: hex.EncodeToString(sum[:])}
	chunks := make([][]byte, 0, sp.Chunks)
	for i := 0; i < sp.Chunks; i++ {
		chunks = append(chunks, data[i*chunkSize:min((i+1)*chunkSize, len(data))])
	}
	return sp, chunks
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
	cluster    ikafka.Cluster
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

func newSnapshotStore(cl ikafka.Cluster, topic, group string, partitions int, logger kafkago.Logger) *snapshotStore {
	return &snapshotStore{
		cluster: cl, topic: topic, group: group, partitions: partitions,
		w: &kafkago.Writer{
			Addr:         kafkago.TCP(cl.Brokers...),
			Transport:    cl.Security.Transport(),
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
	eng, parts := span(cp.Engine)
	mf := manifest{
		Version: manifestVersion, ID: hex.EncodeToString(rnd[:]), Partition: p,
		Chunks: eng.Chunks, Bytes: eng.Bytes, SHA256: eng.SHA256, RulesHash: cp.RulesHash, Offsets: cp.Offsets,
		Watermark: cp.Watermark.UTC(), WrittenAt: now.UTC(), OutputOffsets: cp.Outputs,
	}
	if len(cp.Firing) > 0 {
		fs, more := span(cp.Firing)
		mf.Firing, parts = &fs, append(parts, more...)
	}
	target := s.target(p)
	chunks := make([]kafkago.Message, 0, len(parts))
	for i, part := range parts {
		chunks = append(chunks, kafkago.Message{Key: []byte(s.chunkKey(p, mf.ID, i)), Value: part, WriterData: target})
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
		n := prev.Chunks
		if prev.Firing != nil {
			n += prev.Firing.Chunks
		}
		tombs := make([]kafkago.Message, 0, n)
		for i := 0; i < n; i++ {
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
	first, end, err := ikafka.PartitionBounds(ctx, s.cluster, s.topic, target)
	if err != nil {
		return nil, mf, false, err
	}
	if end <= first {
		return nil, mf, false, nil
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: s.cluster.Brokers, Dialer: s.cluster.Security.Dialer(), Topic: s.topic, Partition: target,
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
	data, err := s.gather(latest, p, mf, 0, chunkSpan{Chunks: mf.Chunks, Bytes: mf.Bytes, SHA256: mf.SHA256})
	if err != nil {
		return nil, mf, false, err
	}
	cp = &checkpoint{Engine: data, Offsets: mf.Offsets, RulesHash: mf.RulesHash, Watermark: mf.Watermark, Outputs: mf.OutputOffsets}
	if mf.Firing != nil {
		if cp.Firing, err = s.gather(latest, p, mf, mf.Chunks, *mf.Firing); err != nil {
			return nil, mf, false, err
		}
	}
	return cp, mf, true, nil
}

// gather joins the chunks of sp, which start at chunk index first of the
// snapshot mf, and checks them against sp's checksum.
func (s *snapshotStore) gather(latest map[string][]byte, p int, mf manifest, first int, sp chunkSpan) ([]byte, error) {
	data := make([]byte, 0, sp.Bytes)
	for i := first; i < first+sp.Chunks; i++ {
		c, ok := latest[s.chunkKey(p, mf.ID, i)]
		if !ok {
			return nil, fmt.Errorf("%w: partition %d: snapshot %s lacks chunk %d of %d", errCorruptSnapshot, p, mf.ID, i, first+sp.Chunks)
		}
		data = append(data, c...)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sp.SHA256 {
		return nil, fmt.Errorf("%w: partition %d: snapshot %s (chunks %d to %d) fails its checksum", errCorruptSnapshot, p, mf.ID, first, first+sp.Chunks-1)
	}
	return data, nil
}
