// Package kafka is the Kafka side of ingest: it reads the two input topics
// of SPEC §1 for one partition number and hands the streaming driver
// (package stream) decoded records in event-time order.
//
// What it owns, and nothing else:
//   - Fetcher: one kafka-go connection per topic-partition, read a fetch
//     response at a time from an explicit offset
//     (offsets come from the state snapshot, not the group), decoding in the
//     fetching goroutine and passing records on in batches, with a flag that
//     says whether the fetcher had caught up with the partition's end;
//   - Merger: merges the interactions and receipts of one partition number
//     by occurred_at, as replay merges its two files, waiting for the other
//     topic only while that topic is known to have records pending, so a
//     backlog is processed in exactly replay's order and live traffic is not
//     delayed;
//   - CopartitionBalancer: the group assignment that gives partition p of
//     every input topic to the same member (both topics are keyed by
//     customer_id, so one engine sees a customer's interactions and receipts);
//   - topic administration: partition counts, creating the topics the
//     pipeline writes, end offsets.
//
// Package stream owns the engines, watermarks, outputs, snapshots and
// commits; this package never touches an engine.
package kafka
