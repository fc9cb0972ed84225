#!/bin/sh
# kafka-scram-user: creates (or updates) the SCRAM-SHA-512 and SCRAM-SHA-256
# credentials of the user crmpulse logs in as in the SASL_SSL example
# (sasl-ssl.yml), through the broker's own kafka-configs.sh on the
# plaintext listener. Runs in the apache/kafka image; idempotent.
#
# Environment:
#   KAFKA_BOOTSTRAP            bootstrap server (default kafka:9092)
#   KAFKA_SCRAM_USER           user name (default crmpulse)
#   KAFKA_SCRAM_PASSWORD_FILE  file holding the password
#   KAFKA_BIN                  Kafka's bin directory (default /opt/kafka/bin)
set -eu

bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
user=${KAFKA_SCRAM_USER:-crmpulse}
pwfile=${KAFKA_SCRAM_PASSWORD_FILE:?set KAFKA_SCRAM_PASSWORD_FILE}
bin=${KAFKA_BIN:-/opt/kafka/bin}

pw=$(cat "$pwfile")
[ -n "$pw" ] || { echo "kafka-scram-user: $pwfile is empty" >&2; exit 1; }
# One mechanism per request: the broker refuses two credentials of one
# user in one request.
for mech in SCRAM-SHA-512 SCRAM-SHA-256; do
	"$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --alter \
		--entity-type users --entity-name "$user" \
		--add-config "$mech=[iterations=8192,password=$pw]"
done
echo "kafka-scram-user: $user can log in with SCRAM-SHA-512 and SCRAM-SHA-256" >&2
