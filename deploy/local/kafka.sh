#!/usr/bin/env bash
# deploy/local/kafka.sh: a real single-node Apache Kafka (KRaft, broker+controller in one JVM)
# on 127.0.0.1 for development and CI.
#
# Why this way: Debian has no Kafka package and only package registries are reachable, but
# Apache Kafka is published on Maven Central. `install` resolves the broker and its runtime
# classpath with Maven (deploy/local/kafka/pom.xml, which also pins the version) into a cache
# folder; `start` formats KRaft storage once and runs kafka.Kafka in the background.
# franz-go's kfake stays the embedded default for `demo`; this is for testing against the
# real thing.
#
# Usage: deploy/local/kafka.sh install|start|stop [--wipe]|status|env|topics ARGS...
#
# Environment:
#   CRMPULSE_CACHE         cache root (default ~/.cache/crmpulse); jars in kafka-<version>/lib
#   CRMPULSE_LOCAL         state root (default <repo>/.local); broker state in kafka/
#   KAFKA_PORT             client listener (default 29092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener (default 29093)
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xmx512m -Xms512m)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default 60)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
POM="$HERE/kafka/pom.xml"

KAFKA_VERSION=$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$POM")
if [[ -z "$KAFKA_VERSION" ]]; then
	echo "kafka.sh: no <kafka.version> in $POM" >&2
	exit 1
fi
CACHE="${CRMPULSE_CACHE:-$HOME/.cache/crmpulse}/kafka-$KAFKA_VERSION"
LIB="$CACHE/lib"
STATE="${CRMPULSE_LOCAL:-$REPO/.local}/kafka"
PORT="${KAFKA_PORT:-29092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-29093}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
PIDFILE="$STATE/kafka.pid"
LOG="$STATE/server.log"
PROPS="$STATE/server.properties"

log() { echo "kafka.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# Serialize concurrent runs (parallel CI steps): fd 8 guards the cache, fd 9 the state dir.
# Locks are released when the script exits; the broker must not inherit them (see start).
lock_cache() {
	mkdir -p "$(dirname "$CACHE")"
	exec 8>"$CACHE.lock"
	flock 8
}
lock_state() {
	mkdir -p "$(dirname "$STATE")"
	exec 9>"$STATE.lock"
	flock 9
}

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found ($2)"
}

java_major() {
	java -XshowSettings:properties -version 2>&1 |
		sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}

# The cache is valid for this exact pom: changing dependencies without bumping the version
# still triggers a fresh resolve.
pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }

cmd_install() {
	if [[ -f "$CACHE/.complete" && "$(cat "$CACHE/.complete")" == "$(pom_sum)" ]]; then
		return 0
	fi
	lock_cache
	if [[ -f "$CACHE/.complete" && "$(cat "$CACHE/.complete")" == "$(pom_sum)" ]]; then
		return 0 # another run installed it while we waited
	fi
	need mvn "apt-get install -y maven"
	need java "apt-get install -y openjdk-17-jre-headless"
	log "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $CACHE"
	mkdir -p "$(dirname "$CACHE")"
	local tmp
	tmp=$(mktemp -d "$CACHE.tmp.XXXXXX")
	# shellcheck disable=SC2064 # expand $tmp now
	trap "rm -rf '$tmp'" EXIT
	if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp/lib" >"$tmp/mvn.log" 2>&1; then
		cat "$tmp/mvn.log" >&2
		die "maven could not resolve Kafka $KAFKA_VERSION (see above)"
	fi
	rm -f "$tmp/mvn.log"
	[[ -f "$tmp/lib/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "maven did not produce kafka_2.13-$KAFKA_VERSION.jar"
	pom_sum >"$tmp/.complete"
	rm -rf "$CACHE"
	mv "$tmp" "$CACHE"
	trap - EXIT
	log "installed $(find "$LIB" -name '*.jar' | wc -l) jars ($(du -sh "$LIB" | cut -f1))"
}

# pid_alive PID: true when PID is a running broker started with our server.properties
# (guards against a stale PID file whose number was reused by another process).
pid_alive() {
	local pid=$1
	[[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "kafka.Kafka $PROPS"
}

running_pid() {
	local pid
	[[ -f "$PIDFILE" ]] || return 1
	pid=$(cat "$PIDFILE")
	pid_alive "$pid" || return 1
	echo "$pid"
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Kafka 4.x wants a 22-character base64url UUID; one starting with '-' would read as an option.
random_cluster_id() {
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
		[[ "$id" == -* ]] || break
	done
	echo "$id"
}

write_config() {
	cat >"$PROPS" <<EOF
# Written by deploy/local/kafka.sh on every start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$STATE/data
num.partitions=4
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Compacted topics (snapshots) need the cleaner.
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432
EOF
	cat >"$STATE/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = info
logger.state.name = state.change.logger
logger.state.level = warn
EOF
}

cmd_start() {
	local pid
	lock_state
	if pid=$(running_pid); then
		log "already running (pid $pid) on 127.0.0.1:$PORT"
		return 0
	fi
	cmd_install
	if [[ "$(java_major)" -lt 17 ]]; then
		die "Kafka $KAFKA_VERSION needs Java 17+, found $(java_major)"
	fi
	for p in "$PORT" "$CONTROLLER_PORT"; do
		if port_open "$p"; then
			die "127.0.0.1:$p is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
		fi
	done
	mkdir -p "$STATE/data"
	rm -f "$PIDFILE"
	write_config

	if [[ ! -f "$STATE/data/meta.properties" ]]; then
		local id
		id=$(random_cluster_id)
		log "formatting KRaft storage in $STATE/data (cluster id $id)"
		if ! java -Xmx256m -cp "$LIB/*" -Dlog4j2.configurationFile="$STATE/log4j2.properties" \
			kafka.tools.StorageTool format --cluster-id "$id" --config "$PROPS" --ignore-formatted \
			>"$STATE/format.log" 2>&1; then
			cat "$STATE/format.log" >&2
			die "formatting storage failed"
		fi
	fi

	local t0=$SECONDS
	echo "==== start $(date -u +%FT%TZ) ====" >>"$LOG"
	# shellcheck disable=SC2086 # HEAP_OPTS is a list of flags
	nohup java $HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
		-Djava.awt.headless=true -Dlog4j2.configurationFile="$STATE/log4j2.properties" \
		-Dkafka.logs.dir="$STATE" \
		-cp "$LIB/*" kafka.Kafka "$PROPS" >>"$LOG" 2>&1 </dev/null 8>&- 9>&- &
	pid=$!
	echo "$pid" >"$PIDFILE"

	local from
	from=$(grep -n '^==== start ' "$LOG" | tail -1 | cut -d: -f1)
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PIDFILE"
			log "broker exited during startup; last lines of $LOG:"
			tail -n 40 "$LOG" >&2
			exit 1
		fi
		if tail -n "+$from" "$LOG" | grep -q 'Kafka Server started' && port_open "$PORT"; then
			break
		fi
		if ((SECONDS - t0 >= START_TIMEOUT)); then
			log "broker not ready after ${START_TIMEOUT}s; last lines of $LOG:"
			tail -n 40 "$LOG" >&2
			stop_pid "$pid"
			rm -f "$PIDFILE"
			exit 1
		fi
		sleep 0.2
	done
	log "Kafka $KAFKA_VERSION ready on 127.0.0.1:$PORT (pid $pid, $((SECONDS - t0))s; logs $LOG)"
}

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	log "pid $pid still alive after 20s, sending KILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 25; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
}

cmd_stop() {
	local wipe=false pid
	case "${1:-}" in
	--wipe) wipe=true ;;
	"") ;;
	*) die "usage: kafka.sh stop [--wipe]" ;;
	esac
	lock_state
	if pid=$(running_pid); then
		log "stopping pid $pid"
		stop_pid "$pid"
	fi
	rm -f "$PIDFILE"
	if $wipe; then
		rm -rf "$STATE"
		log "removed $STATE"
	fi
}

cmd_status() {
	local pid
	if pid=$(running_pid); then
		local port
		port=$(sed -n 's|^listeners=PLAINTEXT://127\.0\.0\.1:\([0-9]*\),.*|\1|p' "$PROPS")
		echo "running: pid $pid, 127.0.0.1:${port:-$PORT}, Kafka $KAFKA_VERSION, state $STATE"
	else
		echo "not running"
		return 1
	fi
}

cmd_env() {
	echo "export CRMPULSE_KAFKA_BROKERS=127.0.0.1:$PORT"
}

# topics ARGS...: kafka-topics against the local broker, e.g. `kafka.sh topics --list`.
cmd_topics() {
	cmd_install
	java -Xmx256m -cp "$LIB/*" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "127.0.0.1:$PORT" "$@"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop)
	shift
	cmd_stop "$@"
	;;
status) cmd_status ;;
env) cmd_env ;;
topics)
	shift
	cmd_topics "$@"
	;;
*)
	echo "usage: $0 install|start|stop [--wipe]|status|env|topics ARGS..." >&2
	exit 2
	;;
esac
