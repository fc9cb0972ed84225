#!/usr/bin/env bash
# A real ClickHouse server for dev and CI, as a plain process on loopback.
#
# Debian's clickhouse-server (18.16.1, the only ClickHouse reachable here) is
# installed when missing; we never use its system service but start our own
# process with a config and data directory under .local/clickhouse, so tests
# cannot touch a developer's real server and CI needs no systemd.
#   deploy/local/clickhouse.sh install|start|stop [--wipe]|status|env
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${CRMPULSE_LOCAL:-$repo/.local}/clickhouse
port=${CLICKHOUSE_PORT:-29000}
http_port=${CLICKHOUSE_HTTP_PORT:-28123}
pidfile=$state/clickhouse.pid

log() { echo "clickhouse: $*" >&2; }

server_bin() { command -v clickhouse-server || echo /usr/sbin/clickhouse-server; }

install() {
  if [[ -x $(server_bin) ]] && command -v clickhouse-client >/dev/null; then
    return
  fi
  log "installing clickhouse-server and clickhouse-client from Debian"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clickhouse-server clickhouse-client >&2; then
    $sudo apt-get update >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clickhouse-server clickhouse-client >&2
  fi
}

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

write_config() {
  mkdir -p "$state"/{data,tmp,user_files,format_schemas,log}
  cat >"$state/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$state/log/server.log</log>
        <errorlog>$state/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$port</tcp_port>
    <http_port>$http_port</http_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>104857600</uncompressed_cache_size>
    <mark_cache_size>104857600</mark_cache_size>
    <path>$state/data/</path>
    <tmp_path>$state/tmp/</tmp_path>
    <user_files_path>$state/user_files/</user_files_path>
    <format_schema_path>$state/format_schemas/</format_schema_path>
    <users_config>$state/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
XML
  cat >"$state/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval><duration>3600</duration><queries>0</queries><errors>0</errors>
            <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
        </default>
    </quotas>
</yandex>
XML
}

ready() { clickhouse-client --host 127.0.0.1 --port "$port" -q 'SELECT 1' >/dev/null 2>&1; }

start() {
  install
  if running; then
    return
  fi
  write_config
  log "starting on 127.0.0.1:$port (native), :$http_port (http), data in $state"
  # setsid: the server outlives this script and is stopped by PID.
  setsid "$(server_bin)" --config-file="$state/config.xml" >"$state/log/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 150); do
    if ready; then
      log "ready ($(clickhouse-client --host 127.0.0.1 --port "$port" -q 'SELECT version()'))"
      return
    fi
    if ! running; then
      break
    fi
    sleep 0.2
  done
  log "did not become ready; log tail:"
  tail -n 30 "$state/log/stdout.log" "$state/log/server.err.log" >&2 2>/dev/null || true
  stop
  exit 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    log "stopped"
  fi
  rm -f "$pidfile"
  if [[ ${1:-} == --wipe ]]; then
    rm -rf "$state"
  fi
}

case ${1:-} in
  install) install ;;
  start) start ;;
  stop) shift; stop "${1:-}" ;;
  status) if running; then echo "running (pid $(cat "$pidfile"))"; else echo stopped; exit 1; fi ;;
  env) echo "export CRMPULSE_CLICKHOUSE_DSN=clickhouse://127.0.0.1:$port/default" ;;
  *) echo "usage: $0 install|start|stop [--wipe]|status|env" >&2; exit 2 ;;
esac
