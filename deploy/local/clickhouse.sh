#!/usr/bin/env bash
# deploy/local/clickhouse.sh: a real ClickHouse server for dev and CI, as a plain process on
# 127.0.0.1.
#
# Why this way:
# - Debian's clickhouse-server/clickhouse-client (18.16.1) is the only ClickHouse reachable here,
#   so `install` takes it from apt (apt-get update only when the package is unknown or the first
#   install attempt fails; sudo only when not root).
# - We never use the package's system service. Its postinst runs `invoke-rc.d clickhouse-server
#   start`: refused where /usr/sbin/policy-rc.d says "exit 101" (Docker-style images, this
#   machine); on a systemd host it starts and enables a server on 9000/8123/9009, and on a
#   sysvinit host /etc/init.d starts one as user clickhouse. Right after *our* install we stop
#   that one again: `systemctl disable --now`, or on sysvinit by its PID. Never with
#   `service clickhouse-server stop`: that init script stops every process running
#   /usr/sbin/clickhouse-server (start-stop-daemon --exec without --user), ours included; the
#   package's prerm does the same on upgrade/removal where policy-rc.d allows it.
#   Our own process reads a generated config.xml/users.xml in the state dir, with every path
#   (data, tmp, user_files, format schemas, logs) inside it, so tests never touch a developer's
#   server and CI needs no systemd. Non-default ports (29000 native, 28123 HTTP) and no
#   interserver port, so it coexists with a system server.
# - 18.16 runs fine as root; it just needs the data dir owned by the user that runs it, which is
#   true because this script creates it as that user.
# - The server is stopped by the PID we recorded, and only after checking that PID still runs our
#   config (PIDs get reused); no pkill.
# - flock on <state>.lock serialises parallel start/stop runs (parallel CI steps or go test
#   packages); the server does not inherit the lock.
# - All messages go to stderr; only `env` (and `status`) write to stdout.
#
# Usage: deploy/local/clickhouse.sh install|start|stop [--wipe]|status|env
#
# Environment:
#   CRMPULSE_LOCAL          state root (default <repo>/.local); ours is clickhouse/ in it
#   CLICKHOUSE_PORT         native protocol port (default 29000)
#   CLICKHOUSE_HTTP_PORT    HTTP port (default 28123)
#   CLICKHOUSE_START_TIMEOUT  seconds to wait for SELECT 1 (default 30)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${CRMPULSE_LOCAL:-$repo/.local}/clickhouse
port=${CLICKHOUSE_PORT:-29000}
http_port=${CLICKHOUSE_HTTP_PORT:-28123}
start_timeout=${CLICKHOUSE_START_TIMEOUT:-30}
pidfile=$state/clickhouse.pid
config=$state/config.xml

log() { echo "clickhouse.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

for p in "$port" "$http_port"; do
  if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
    die "bad port $p (CLICKHOUSE_PORT/CLICKHOUSE_HTTP_PORT)"
  fi
done

# The package puts the server in /usr/sbin (not on a normal user's PATH) or, in some builds,
# /usr/bin.
server_bin() {
  local b
  for b in /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
    if [[ -x $b ]]; then
      echo "$b"
      return
    fi
  done
  command -v clickhouse-server || return 1
}

installed() { server_bin >/dev/null && command -v clickhouse-client >/dev/null; }

pkg_installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }

# stop_system_server stops the package's own server if its postinst has just started one.
stop_system_server() {
  if [[ -d /run/systemd/system ]]; then
    as_root systemctl disable --now clickhouse-server >/dev/null 2>&1 || true
    return
  fi
  # sysvinit: the init script has no pidfile; find the server it starts (user clickhouse,
  # /etc config) by PID and stop only that one.
  local d p
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [[ $(stat -c %U "$d" 2>/dev/null) == clickhouse ]] || continue
    tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF -- "--config=/etc/clickhouse-server/config.xml" || continue
    log "stopping the system clickhouse-server (pid $p) the package just started"
    as_root kill -TERM "$p" 2>/dev/null || true
  done
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

cmd_install() {
  if installed; then
    return
  fi
  log "installing clickhouse-server and clickhouse-client from Debian"
  local had_server=false
  if pkg_installed clickhouse-server; then had_server=true; fi
  # apt-get update only if needed: when the package lists do not know the package, or when
  # installing from them fails (stale lists point at removed .debs).
  if ! apt-cache show clickhouse-server >/dev/null 2>&1 || ! apt_install clickhouse-server clickhouse-client; then
    as_root apt-get update >&2
    apt_install clickhouse-server clickhouse-client
  fi
  installed || die "clickhouse-server/clickhouse-client still missing after apt-get install"
  # A system server we did not ask for (ports 9000/8123/9009, /var/lib/clickhouse) goes again;
  # one that was installed before us is the machine owner's business.
  if ! $had_server; then
    stop_system_server
  fi
}

# pid prints the recorded PID if that process is alive and is our server (same config file).
pid() {
  local p
  [[ -f $pidfile ]] || return 1
  p=$(<"$pidfile")
  [[ $p =~ ^[0-9]+$ ]] || return 1
  kill -0 "$p" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--config-file=$config" || return 1
  echo "$p"
}
running() { pid >/dev/null; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

client() { clickhouse-client --host 127.0.0.1 --port "$port" "$@"; }
ready() { client -q 'SELECT 1' >/dev/null 2>&1; }

lock_state() {
  mkdir -p "$(dirname "$state")"
  exec 9>"$state.lock"
  flock 9
}

write_config() {
  mkdir -p "$state"/{data,tmp,user_files,format_schemas,log}
  cat >"$config" <<XML
<?xml version="1.0"?>
<!-- Generated by deploy/local/clickhouse.sh; rewritten on every start. -->
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
    <!-- no interserver_http_port: a single server, nothing else listens -->
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
<!-- Generated by deploy/local/clickhouse.sh: user default, no password, loopback only. -->
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

log_tail() {
  local f
  for f in "$state/log/stdout.log" "$state/log/server.err.log"; do
    [[ -s $f ]] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
  done
  return 0
}

cmd_start() {
  cmd_install
  lock_state
  if running; then
    log "already running (pid $(pid)) on 127.0.0.1:$port"
    return
  fi
  rm -f "$pidfile"
  local p
  for p in "$port" "$http_port"; do
    listening "$p" && die "127.0.0.1:$p is taken by another process (another checkout's server? set CLICKHOUSE_PORT/CLICKHOUSE_HTTP_PORT)"
  done
  write_config
  log "starting on 127.0.0.1:$port (native) and :$http_port (http), state in $state"
  # setsid: own session, so the server outlives this script and a Ctrl-C in the caller's
  # terminal; 9>&-: it must not hold our lock. Non-interactive bash has no job control, so
  # setsid execs in place and $! is the server's PID.
  setsid "$(server_bin)" --config-file="$config" >"$state/log/stdout.log" 2>&1 </dev/null 9>&- &
  local child=$!
  echo "$child" >"$pidfile"
  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    # kill -0, not running(): until setsid has exec'd, the child's cmdline is still bash's.
    if ! kill -0 "$child" 2>/dev/null; then
      log "server exited during startup; log tail:"
      log_tail
      rm -f "$pidfile"
      exit 1
    fi
    if ready; then
      log "ready: ClickHouse $(client -q 'SELECT version()') (pid $child)"
      return
    fi
    sleep 0.2
  done
  log "not ready after ${start_timeout}s; log tail:"
  log_tail
  stop_server
  exit 1
}

stop_server() {
  local p
  if p=$(pid); then
    kill -TERM "$p" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$p" 2>/dev/null && ((SECONDS < deadline)); do
      sleep 0.2
    done
    if kill -0 "$p" 2>/dev/null; then
      log "pid $p ignored TERM for 20s; killing"
      kill -KILL "$p" 2>/dev/null || true
    fi
    log "stopped (pid $p)"
  fi
  rm -f "$pidfile"
}

cmd_stop() {
  local wipe=false
  case ${1:-} in
    "") ;;
    --wipe) wipe=true ;;
    *) die "usage: $0 stop [--wipe]" ;;
  esac
  lock_state
  stop_server
  if $wipe && [[ -d $state ]]; then
    rm -rf "$state"
    log "wiped $state"
  fi
}

cmd_status() {
  if running; then
    echo "running (pid $(pid)) on 127.0.0.1:$port (native), :$http_port (http), state $state"
  else
    echo "stopped"
    return 1
  fi
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  env) echo "export CRMPULSE_CLICKHOUSE_DSN=clickhouse://127.0.0.1:$port/default" ;;
  *) echo "usage: $0 install|start|stop [--wipe]|status|env" >&2; exit 2 ;;
esac
