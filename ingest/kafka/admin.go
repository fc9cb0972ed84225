package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// adminTimeout bounds one administrative request.
const adminTimeout = 15 * time.Second

// PartitionCounts returns the partition count of each topic; a topic that
// does not exist is absent from the map.
func PartitionCounts(ctx context.Context, c Cluster, topics ...string) (map[string]int, error) {
	resp, err := c.client().Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("reading topic metadata: %w", c.Security.Explain(c.String(), err))
	}
	out := make(map[string]int, len(topics))
	for _, t := range resp.Topics {
		if t.Error != nil {
			if errors.Is(t.Error, kafkago.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("reading metadata of topic %s: %w", t.Name, t.Error)
		}
		if len(t.Partitions) > 0 {
			out[t.Name] = len(t.Partitions)
		}
	}
	return out, nil
}

// TopicSpec is a topic the pipeline creates when it is missing.
type TopicSpec struct {
	Name       string
	Partitions int
	// ReplicationFactor -1 takes the broker's default.
	ReplicationFactor int
	Configs           map[string]string
}

// EnsureTopics creates the topics of specs that do not exist. A topic that
// exists is left as it is, whatever its settings.
func EnsureTopics(ctx context.Context, c Cluster, specs ...TopicSpec) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	have, err := PartitionCounts(ctx, c, names...)
	if err != nil {
		return err
	}
	var req kafkago.CreateTopicsRequest
	for _, s := range specs {
		if _, ok := have[s.Name]; ok {
			continue
		}
		tc := kafkago.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		keys := make([]string, 0, len(s.Configs))
		for k := range s.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tc.ConfigEntries = append(tc.ConfigEntries, kafkago.ConfigEntry{ConfigName: k, ConfigValue: s.Configs[k]})
		}
		req.Topics = append(req.Topics, tc)
	}
	if len(req.Topics) == 0 {
		return nil
	}
	resp, err := c.client().CreateTopics(ctx, &req)
	if err != nil {
		return fmt.Errorf("creating topics: %w", c.Security.Explain(c.String(), err))
	}
	var errs []error
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("creating topic %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Metadata propagates asynchronously; wait until every topic is visible
	// so that the first write does not fail on an unknown topic.
	deadline := time.Now().Add(adminTimeout)
	for {
		have, err := PartitionCounts(ctx, c, names...)
		if err == nil && len(have) == len(names) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("created topics did not appear in metadata within %s", adminTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// retriable reports errors that go away once metadata settles, as right
// after a topic was created or a leader moved.
func retriable(err error) bool {
	var ke kafkago.Error
	return errors.As(err, &ke) && ke.Temporary()
}

// PartitionBounds returns the first offset and the end offset (the high
// watermark: the offset the next record will get) of one partition. It
// retries while the partition's leader is unknown or moving.
func PartitionBounds(ctx context.Context, c Cluster, topic string, partition int) (first, end int64, err error) {
	deadline := time.Now().Add(adminTimeout)
	for {
		first, end, err = partitionBounds(ctx, c, topic, partition)
		if err == nil || !retriable(err) || time.Now().After(deadline) {
			return first, end, err
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func partitionBounds(ctx context.Context, c Cluster, topic string, partition int) (first, end int64, err error) {
	resp, err := c.client().ListOffsets(ctx, &kafkago.ListOffsetsRequest{
		Topics: map[string][]kafkago.OffsetRequest{topic: {kafkago.FirstOffsetOf(partition), kafkago.LastOffsetOf(partition)}},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, partition, c.Security.Explain(c.String(), err))
	}
	for _, po := range resp.Topics[topic] {
		if po.Partition != partition {
			continue
		}
		if po.Error != nil {
			return 0, 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, partition, po.Error)
		}
		return po.FirstOffset, po.LastOffset, nil
	}
	return 0, 0, fmt.Errorf("listing offsets of %s/%d: partition missing from the answer", topic, partition)
}
