package kafka

import (
	"slices"

	kafkago "github.com/segmentio/kafka-go"
)

// CopartitionBalancer assigns partition numbers, not topic-partitions: a
// member that gets number p gets partition p of every subscribed topic, so
// the engine for p sees both inputs of its customers. Numbers are split
// into contiguous ranges over the members sorted by id, like Kafka's range
// assignor, and partitions that exist in only some topics still follow
// their number.
type CopartitionBalancer struct{}

var _ kafkago.GroupBalancer = CopartitionBalancer{}

// ProtocolName names the assignment strategy in the group protocol; every
// member of a group must offer it.
func (CopartitionBalancer) ProtocolName() string { return "crmpulse-copartitioned" }

// UserData is empty: the assignment needs nothing but member ids.
func (CopartitionBalancer) UserData() ([]byte, error) { return nil, nil }

// AssignGroups implements kafkago.GroupBalancer.
func (CopartitionBalancer) AssignGroups(members []kafkago.GroupMember, partitions []kafkago.Partition) kafkago.GroupMemberAssignments {
	out := kafkago.GroupMemberAssignments{}
	if len(members) == 0 {
		return out
	}
	ids := make([]string, len(members))
	subs := make(map[string]map[string]bool, len(members))
	for i, m := range members {
		ids[i] = m.ID
		subs[m.ID] = map[string]bool{}
		for _, t := range m.Topics {
			subs[m.ID][t] = true
		}
		out[m.ID] = map[string][]int{}
	}
	slices.Sort(ids)
	var numbers []int
	for _, p := range partitions {
		numbers = append(numbers, p.ID)
	}
	slices.Sort(numbers)
	numbers = slices.Compact(numbers)
	owner := make(map[int]string, len(numbers))
	for j, n := range numbers {
		owner[n] = ids[j*len(ids)/len(numbers)]
	}
	for _, p := range partitions {
		id := owner[p.ID]
		if subs[id][p.Topic] {
			out[id][p.Topic] = append(out[id][p.Topic], p.ID)
		}
	}
	for _, topics := range out {
		for _, ps := range topics {
			slices.Sort(ps)
		}
	}
	return out
}
