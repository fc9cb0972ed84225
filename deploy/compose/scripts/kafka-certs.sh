#!/bin/sh
# kafka-certs: the TLS material and the SCRAM password of the SASL_SSL
# example (sasl-ssl.yml), made once with the JDK's keytool of the
# apache/kafka image; a second run keeps what exists.
#
#   $KAFKA_SECRETS     (broker) kafka.keystore.p12, keystore_creds,
#                      kafka_server_jaas.conf
#   $CRMPULSE_SECRETS  (crmpulse) kafka-ca.crt, kafka-password
#
# Environment:
#   KAFKA_SECRETS      default /etc/kafka/secrets
#   CRMPULSE_SECRETS   default /etc/crmpulse/secrets
#   KAFKA_CERT_NAMES   DNS names of the broker certificate (default kafka,localhost)
#   KAFKA_UID          owner of the broker's files (default 1000, the image's appuser)
#   CRMPULSE_UID       owner of crmpulse's files (default 65532, distroless nonroot)
set -eu

ks=${KAFKA_SECRETS:-/etc/kafka/secrets}
cs=${CRMPULSE_SECRETS:-/etc/crmpulse/secrets}
names=${KAFKA_CERT_NAMES:-kafka,localhost}
kafka_uid=${KAFKA_UID:-1000}
crmpulse_uid=${CRMPULSE_UID:-65532}
PATH=$PATH:${JAVA_HOME:-/opt/java/openjdk}/bin

log() { echo "kafka-certs: $*" >&2; }

if [ -s "$ks/kafka.keystore.p12" ] && [ -s "$cs/kafka-ca.crt" ] && [ -s "$cs/kafka-password" ]; then
	log "certificates and password exist, kept"
	exit 0
fi

random() { head -c 24 /dev/urandom | base64 | tr -d '/+=\n'; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=$(random)
san=
for n in $(echo "$names" | tr ',' ' '); do
	san="${san:+$san,}dns:$n"
done

# The CA: a key pair whose certificate signs the broker's.
keytool -genkeypair -alias ca -keyalg EC -groupname secp256r1 -validity 3650 \
	-dname "CN=crmpulse compose CA" -ext bc:c -keystore "$work/ca.p12" -storetype PKCS12 \
	-storepass "$pass" -keypass "$pass" -noprompt
keytool -exportcert -rfc -alias ca -keystore "$work/ca.p12" -storepass "$pass" >"$work/ca.crt"

# The broker's key pair, its certificate signed by the CA, the chain in its keystore.
keytool -genkeypair -alias kafka -keyalg EC -groupname secp256r1 -validity 825 \
	-dname "CN=kafka" -keystore "$work/kafka.p12" -storetype PKCS12 \
	-storepass "$pass" -keypass "$pass" -noprompt
keytool -certreq -alias kafka -keystore "$work/kafka.p12" -storepass "$pass" >"$work/kafka.csr"
keytool -gencert -alias ca -keystore "$work/ca.p12" -storepass "$pass" -validity 825 -rfc \
	-ext "san=$san" -ext ku:c=digitalSignature -ext eku=serverAuth \
	-infile "$work/kafka.csr" -outfile "$work/kafka.crt"
keytool -importcert -alias ca -file "$work/ca.crt" -keystore "$work/kafka.p12" -storepass "$pass" -noprompt
keytool -importcert -alias kafka -file "$work/kafka.crt" -keystore "$work/kafka.p12" -storepass "$pass" -noprompt

mkdir -p "$ks" "$cs"
cp "$work/kafka.p12" "$ks/kafka.keystore.p12"
printf '%s' "$pass" >"$ks/keystore_creds"
cat >"$ks/kafka_server_jaas.conf" <<'JAAS'
KafkaServer {
	org.apache.kafka.common.security.scram.ScramLoginModule required;
};
JAAS
chown "$kafka_uid" "$ks"/*
chmod 0400 "$ks/kafka.keystore.p12" "$ks/keystore_creds"
chmod 0444 "$ks/kafka_server_jaas.conf"

cp "$work/ca.crt" "$cs/kafka-ca.crt"
random >"$cs/kafka-password"
chown "$crmpulse_uid" "$cs/kafka-ca.crt" "$cs/kafka-password"
chmod 0444 "$cs/kafka-ca.crt"
# kafka-scram-user (appuser) reads it too.
chmod 0444 "$cs/kafka-password"
log "CA, broker keystore (for $names) and SCRAM password written"
