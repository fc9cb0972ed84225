#!/bin/sh
# demo-produce: produces the data set written by `crmpulse gen` into the
# input topics, keyed by customer_id as upstream systems must (both topics
# with the same partitioner, so a customer's interactions and receipts land in
# the same partition number). Malformed lines are produced too, with an
# empty key: the pipeline dead-letters them. Runs in the apache/kafka image.
#
# Environment:
#   KAFKA_BOOTSTRAP              bootstrap server (default kafka:9092)
#   DEMO_DIR                     where interactions.jsonl and receipts.jsonl are (default /demo)
#   CRMPULSE_TOPIC_INTERACTIONS  default crm.interactions
#   CRMPULSE_TOPIC_RECEIPTS      default crm.delivery-receipts
#   KAFKA_BIN                    Kafka's bin directory (default /opt/kafka/bin)
set -eu

bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
dir=${DEMO_DIR:-/demo}
bin=${KAFKA_BIN:-/opt/kafka/bin}
tab=$(printf '\t')

# key_lines prefixes every line with its customer_id and a tab (JSON strings
# cannot hold a raw tab, so the first tab always ends the key).
key_lines() {
	awk '{
		key = ""
		if (match($0, /"customer_id"[ \t]*:[ \t]*"[^"]*"/)) {
			key = substr($0, RSTART, RLENGTH)
			sub(/^"customer_id"[ \t]*:[ \t]*"/, "", key)
			sub(/"$/, "", key)
		}
		printf "%s\t%s\n", key, $0
	}' "$1"
}

produce() {
	file=$1 topic=$2
	if [ ! -s "$file" ]; then
		echo "demo-produce: $file is missing or empty (did demo-gen run?)" >&2
		exit 1
	fi
	echo "demo-produce: $(wc -l <"$file") records from $file into $topic" >&2
	key_lines "$file" | "$bin/kafka-console-producer.sh" --bootstrap-server "$bootstrap" \
		--topic "$topic" --property parse.key=true --property "key.separator=$tab" \
		--producer-property acks=all --producer-property linger.ms=20
}

produce "$dir/interactions.jsonl" "${CRMPULSE_TOPIC_INTERACTIONS:-crm.interactions}"
produce "$dir/receipts.jsonl" "${CRMPULSE_TOPIC_RECEIPTS:-crm.delivery-receipts}"
echo "demo-produce: done" >&2
