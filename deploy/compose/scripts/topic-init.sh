#!/bin/sh
# topic-init: creates the input topics of CRM Pulse, all with the same
# partition count, and refuses to finish when existing ones differ: the
# pipeline needs them co-partitioned (docs/run.md, "Topics"). Runs in the
# apache/kafka image; idempotent.
#
# Environment:
#   KAFKA_BOOTSTRAP        bootstrap server (default kafka:9092)
#   CRMPULSE_INPUT_TOPICS  space-separated input topics
#                          (default "crm.interactions crm.delivery-receipts")
#   CRMPULSE_PARTITIONS    partitions of each new topic (default 6); the upper
#                          bound on how many crmpulse instances share the work
#   KAFKA_REPLICATION      replication factor of new topics (default 1)
#   KAFKA_WAIT_SECONDS     how long to wait for the broker (default 120)
#   KAFKA_BIN              Kafka's bin directory (default /opt/kafka/bin)
set -eu

bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
topics=${CRMPULSE_INPUT_TOPICS:-crm.interactions crm.delivery-receipts}
partitions=${CRMPULSE_PARTITIONS:-6}
replication=${KAFKA_REPLICATION:-1}
wait_seconds=${KAFKA_WAIT_SECONDS:-120}
bin=${KAFKA_BIN:-/opt/kafka/bin}

log() { echo "topic-init: $*" >&2; }

kafka_topics() { "$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" "$@"; }

# The broker takes a few seconds to format its storage and elect itself.
deadline=$(($(date +%s) + wait_seconds))
until kafka_topics --list >/dev/null 2>&1; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		log "Kafka at $bootstrap did not answer within ${wait_seconds}s"
		exit 1
	fi
	sleep 2
done

for topic in $topics; do
	kafka_topics --create --if-not-exists --topic "$topic" \
		--partitions "$partitions" --replication-factor "$replication"
done

# Topics that existed before keep their partition count: check that all
# inputs agree.
want=
for topic in $topics; do
	n=$(kafka_topics --describe --topic "$topic" |
		sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)
	if [ -z "$n" ]; then
		log "cannot read the partition count of $topic"
		exit 1
	fi
	log "$topic: $n partitions"
	if [ -z "$want" ]; then
		want=$n
	elif [ "$n" != "$want" ]; then
		log "input topics must have the same partition count; $topic has $n, the first has $want"
		exit 1
	fi
done
if [ "$want" != "$partitions" ]; then
	log "note: existing input topics have $want partitions (CRMPULSE_PARTITIONS=$partitions applies to new ones only)"
fi
log "input topics ready"
