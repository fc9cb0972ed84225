#!/usr/bin/env bash
# A real Alertmanager for dev and CI, from Debian's prometheus-alertmanager
# package (0.25, with amtool; `prometheus` brings promtool), run as a plain
# process on loopback with gossip off, stopped by PID.
#   deploy/local/alertmanager.sh install|start|stop [--wipe]|status|env
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${CRMPULSE_LOCAL:-$repo/.local}/alertmanager
port=${ALERTMANAGER_PORT:-29193}
config=${ALERTMANAGER_CONFIG:-$here/alertmanager-test.yml}
pidfile=$state/alertmanager.pid

log() { echo "alertmanager: $*" >&2; }

install() {
  if command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null && command -v promtool >/dev/null; then
    return
  fi
  log "installing prometheus-alertmanager and prometheus (for promtool) from Debian"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus-alertmanager prometheus >&2; then
    $sudo apt-get update >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus-alertmanager prometheus >&2
  fi
  # The packages start system services where systemd runs; ours must not
  # compete with them for ports, and tests use our own process only.
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    $sudo systemctl stop prometheus-alertmanager prometheus >/dev/null 2>&1 || true
  fi
}

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

ready() { curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; }

start() {
  install
  if running; then
    return
  fi
  mkdir -p "$state/data"
  amtool check-config "$config" >/dev/null
  log "starting on 127.0.0.1:$port with $config"
  setsid prometheus-alertmanager --config.file="$config" --storage.path="$state/data" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= \
    >"$state/alertmanager.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    if ready; then
      log "ready"
      return
    fi
    running || break
    sleep 0.1
  done
  log "did not become ready; log tail:"
  tail -n 30 "$state/alertmanager.log" >&2 || true
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
      sleep 0.1
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
  env) echo "export CRMPULSE_ALERTMANAGER_URL=http://127.0.0.1:$port" ;;
  *) echo "usage: $0 install|start|stop [--wipe]|status|env" >&2; exit 2 ;;
esac
