package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Bounds are one partition's first offset and end offset (the high
// watermark: the offset the next record will get).
type Bounds struct {
	First, End int64
}

// TopicBounds returns the bounds of every partition of each topic, by
// topic and partition; a topic that does not exist is absent. One metadata
// request and one ListOffsets request (split by partition leader), retried
// while a leader is unknown or moving (as right after the topics were
// created).
func TopicBounds(ctx context.Context, c Cluster, topics ...string) (map[string]map[int]Bounds, error) {
	deadline := time.Now().Add(adminTimeout)
	for {
		b, err := topicBounds(ctx, c, topics)
		if err == nil || !retriable(err) || time.Now().After(deadline) {
			return b, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func topicBounds(ctx context.Context, c Cluster, topics []string) (map[string]map[int]Bounds, error) {
	cl := c.client()
	meta, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("reading topic metadata: %w", c.Security.Explain(c.String(), err))
	}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, t := range meta.Topics {
		if t.Error != nil {
			if errors.Is(t.Error, kafkago.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("reading metadata of topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafkago.FirstOffsetOf(p.ID), kafkago.LastOffsetOf(p.ID))
		}
	}
	out := make(map[string]map[int]Bounds, len(req.Topics))
	if len(req.Topics) == 0 {
		return out, nil
	}
	resp, err := cl.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", strings.Join(topics, ","), err)
	}
	for topic, parts := range resp.Topics {
		m := make(map[int]Bounds, len(parts))
		for _, po := range parts {
			if po.Error != nil {
				return nil, fmt.Errorf("listing offsets of %s/%d: %w", topic, po.Partition, po.Error)
			}
			m[po.Partition] = Bounds{First: po.FirstOffset, End: po.LastOffset}
		}
		if len(m) != len(req.Topics[topic])/2 {
			return nil, fmt.Errorf("listing offsets of %s: %d of %d partitions answered", topic, len(m), len(req.Topics[topic])/2)
		}
		out[topic] = m
	}
	for topic := range req.Topics {
		if _, ok := out[topic]; !ok {
			return nil, fmt.Errorf("listing offsets of %s: topic missing from the answer", topic)
		}
	}
	return out, nil
}

// ReadRange calls fn with every record of topic/partition whose offset is
// in [from, to), in offset order, and returns when the record before to was
// read (or fn or reading failed). to must not be beyond the partition's
// end offset: ReadRange would wait for records that do not exist yet. It
// reads fetch responses on one connection to the leader, as the Fetcher
// does, without a Reader's goroutines and queue.
func ReadRange(ctx context.Context, cl Cluster, topic string, partition int, from, to int64, fn func(*kafkago.Message) error) error {
	if from >= to {
		return nil
	}
	d := cl.Security.Dialer()
	var conn *kafkago.Conn
	var errs []error
	for _, addr := range cl.Brokers {
		c, err := d.DialLeader(ctx, "tcp", addr, topic, partition)
		if err == nil {
			conn = c
			break
		}
		errs = append(errs, cl.Security.Explain(addr, err))
	}
	if conn == nil {
		return fmt.Errorf("connecting to the leader of %s/%d: %w", topic, partition, errors.Join(errs...))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	offset := from
	for offset < to {
		if _, err := conn.Seek(offset, kafkago.SeekAbsolute|kafkago.SeekDontCheck); err != nil {
			return fmt.Errorf("seeking %s/%d to %d: %w", topic, partition, offset, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		batch := conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 500 * time.Millisecond})
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break // io.EOF at the end of the response; anything else is Close's error too
			}
			if m.Offset >= to {
				break
			}
			offset = m.Offset + 1
			if err := fn(&m); err != nil {
				batch.Close()
				return err
			}
		}
		// Past control records and compacted gaps too.
		offset = max(offset, batch.Offset())
		if err := batch.Close(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading %s/%d from %d to %d at %d: %w", topic, partition, from, to, offset, err)
		}
	}
	return nil
}
