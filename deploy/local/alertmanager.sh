#!/usr/bin/env bash
# deploy/local/alertmanager.sh: a real Alertmanager for dev and CI, as a plain process on
# 127.0.0.1.
#
# Why this way:
# - Debian's prometheus-alertmanager (0.25, binary `prometheus-alertmanager`, with `amtool`) is
#   what is reachable here; `install` also takes `prometheus` (2.42) for `promtool`, which lints
#   our /metrics output and rule files. apt-get update only when needed, sudo only when not root,
#   --no-install-recommends (prometheus would otherwise pull in node-exporter, another service).
# - We never use the packages' system services. Their postinsts call invoke-rc.d: refused where
#   /usr/sbin/policy-rc.d says "exit 101" (Docker-style images, this machine); elsewhere they
#   start Prometheus on :9090 and Alertmanager on 0.0.0.0:9093 with gossip on :9094. Right after
#   *our* install of a package we stop (and on systemd disable) its service again; services of
#   packages that were installed before are left alone. Their init scripts stop by pidfile and
#   user, so ours are never hit. Our process uses other ports anyway.
# - Gossip is off (--cluster.listen-address= empty): otherwise Alertmanager listens on
#   0.0.0.0:9094 and clashes with any other instance.
# - The config is checked with amtool before starting, so a broken file fails here with
#   amtool's message instead of a dead server.
# - The default config is deploy/local/alertmanager-test.yml (short group waits, one webhook
#   receiver on 127.0.0.1:29195 that the tests serve). Alertmanager does not expand environment
#   variables, so with AM_WEBHOOK_PORT set a copy with that port is written to the state dir.
# - Stopped by the PID we recorded, after checking that PID still runs our storage path (PIDs
#   get reused); flock on <state>.lock serialises parallel start/stop runs.
# - All messages go to stderr; only `env` (and `status`) write to stdout.
#
# Usage: deploy/local/alertmanager.sh install|start|stop [--wipe]|status|env
#
# Environment:
#   CRMPULSE_LOCAL        state root (default <repo>/.local); ours is alertmanager/ in it
#   ALERTMANAGER_PORT     web/API port (default 29193)
#   ALERTMANAGER_CONFIG   config file (default deploy/local/alertmanager-test.yml)
#   AM_WEBHOOK_PORT       webhook port for the default config (default 29195)
#   ALERTMANAGER_START_TIMEOUT  seconds to wait for /-/ready (default 30)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${CRMPULSE_LOCAL:-$repo/.local}/alertmanager
port=${ALERTMANAGER_PORT:-29193}
webhook_port=${AM_WEBHOOK_PORT:-29195}
start_timeout=${ALERTMANAGER_START_TIMEOUT:-30}
default_config=$here/alertmanager-test.yml
config=${ALERTMANAGER_CONFIG:-$default_config}
pidfile=$state/alertmanager.pid
storage=$state/data

log() { echo "alertmanager.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

for p in "$port" "$webhook_port"; do
  if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
    die "bad port $p (ALERTMANAGER_PORT/AM_WEBHOOK_PORT)"
  fi
done

installed() {
  command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null && command -v promtool >/dev/null
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

pkg_installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }

apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

cmd_install() {
  if installed; then
    return
  fi
  log "installing prometheus-alertmanager (with amtool) and prometheus (for promtool) from Debian"
  local pkg new=()
  for pkg in prometheus-alertmanager prometheus; do
    pkg_installed "$pkg" || new+=("$pkg")
  done
  if ! apt-cache show prometheus-alertmanager >/dev/null 2>&1 || ! apt_install prometheus-alertmanager prometheus; then
    as_root apt-get update >&2
    apt_install prometheus-alertmanager prometheus
  fi
  installed || die "prometheus-alertmanager/amtool/promtool still missing after apt-get install"
  # The postinsts may have just started (and enabled) system services we did not ask for.
  for pkg in "${new[@]}"; do
    if [[ -d /run/systemd/system ]]; then
      as_root systemctl disable --now "$pkg" >/dev/null 2>&1 || true
    else
      as_root invoke-rc.d --quiet "$pkg" stop >/dev/null 2>&1 || true
    fi
  done
}

# pid prints the recorded PID if that process is alive and is our Alertmanager.
pid() {
  local p
  [[ -f $pidfile ]] || return 1
  p=$(<"$pidfile")
  [[ $p =~ ^[0-9]+$ ]] || return 1
  kill -0 "$p" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--storage.path=$storage " || return 1
  echo "$p"
}
running() { pid >/dev/null; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/-/ready" 2>/dev/null; }

lock_state() {
  mkdir -p "$(dirname "$state")"
  exec 9>"$state.lock"
  flock 9
}

# effective_config prints the file to run: the given one, or the default one with the
# webhook port replaced when AM_WEBHOOK_PORT differs from the committed 29195.
effective_config() {
  if [[ $config == "$default_config" && $webhook_port != 29195 ]]; then
    sed "s#http://127.0.0.1:29195/#http://127.0.0.1:$webhook_port/#" "$default_config" >"$state/alertmanager.yml"
    echo "$state/alertmanager.yml"
  else
    echo "$config"
  fi
}

cmd_start() {
  cmd_install
  lock_state
  if running; then
    log "already running (pid $(pid)) on 127.0.0.1:$port"
    return
  fi
  rm -f "$pidfile"
  [[ -f $config ]] || die "no config file $config"
  listening "$port" && die "127.0.0.1:$port is taken by another process (set ALERTMANAGER_PORT)"
  mkdir -p "$storage"
  local cfg out
  cfg=$(effective_config)
  out=$(amtool check-config "$cfg" 2>&1) || die "amtool check-config $cfg failed:
$out"
  log "starting on 127.0.0.1:$port with $cfg, state in $state"
  # setsid: own session, outlives this script; 9>&-: it must not hold our lock. Non-interactive
  # bash has no job control, so setsid execs in place and $! is Alertmanager's PID.
  setsid prometheus-alertmanager --config.file="$cfg" --storage.path="$storage" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= \
    >"$state/alertmanager.log" 2>&1 </dev/null 9>&- &
  local child=$!
  echo "$child" >"$pidfile"
  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$child" 2>/dev/null; then
      log "exited during startup; log tail:"
      tail -n 30 "$state/alertmanager.log" >&2 || true
      rm -f "$pidfile"
      exit 1
    fi
    if ready; then
      log "ready (pid $child)"
      return
    fi
    sleep 0.1
  done
  log "not ready after ${start_timeout}s; log tail:"
  tail -n 30 "$state/alertmanager.log" >&2 || true
  stop_server
  exit 1
}

stop_server() {
  local p
  if p=$(pid); then
    kill -TERM "$p" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$p" 2>/dev/null && ((SECONDS < deadline)); do
      sleep 0.1
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
    echo "running (pid $(pid)) on 127.0.0.1:$port, state $state"
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
  env)
    echo "export CRMPULSE_ALERTMANAGER_URL=http://127.0.0.1:$port"
    echo "export CRMPULSE_ALERTMANAGER_WEBHOOK_ADDR=127.0.0.1:$webhook_port"
    ;;
  *) echo "usage: $0 install|start|stop [--wipe]|status|env" >&2; exit 2 ;;
esac
