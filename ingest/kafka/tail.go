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
func TopicBounds(ctx context.Context, brokers []string, topics ...string) (map[string]map[int]Bounds, error) {
	deadline := time.Now().Add(adminTimeout)
	for {
		b, err := topicBounds(ctx, brokers, topics)
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

func topicBounds(ctx context.Context, brokers []string, topics []string) (map[string]map[int]Bounds, error) {
	cl := client(brokers)
	meta, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("reading topic metadata from %s: %w", strings.Join(brokers, ","), err)
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
// end offset: ReadRange would wait for records that do not exist yet.
func ReadRange(ctx context.Context, brokers []string, topic string, partition int, from, to int64, fn func(*kafkago.Message) error) error {
	if from >= to {
		return nil
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: brokers, Topic: topic, Partition: partition,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("seeking %s/%d to %d: %w", topic, partition, from, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("reading %s/%d from %d to %d: %w", topic, partition, from, to, err)
		}
		if m.Offset >= to {
			return nil // past a gap at the end of the range
		}
		if err := fn(&m); err != nil {
			return err
		}
		if m.Offset+1 >= to {
			return nil
		}
	}
}
