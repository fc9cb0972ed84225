#!/usr/bin/env bash
# deploy/local/mailpit.sh: a real SMTP server with an HTTP API for reading mail (Mailpit), for
# the tests that follow an alert through Alertmanager's email receivers into a mailbox, as a
# plain process on 127.0.0.1.
#
# Why this way:
# - Debian has no Mailpit and MailHog no longer builds from the Go proxy, so `install` builds
#   Mailpit from source with the Go toolchain the project uses anyway:
#   `GOBIN=<state>/bin go install github.com/axllent/mailpit@<version>` (~40 s cold, cached by
#   the Go build cache afterwards); skipped when <state>/bin/mailpit reports that version.
# - SMTP and HTTP listen on 127.0.0.1 only. SMTP takes any sender and recipient, without TLS or
#   authentication (Alertmanager's test configs set smtp_require_tls: false); nothing is relayed.
# - Messages live in an SQLite file in the state dir (--database), so they survive a restart;
#   `stop --wipe` deletes them. Tests delete the messages they read, by ID, or use recipients
#   unique to their run.
# - The version check against GitHub and reverse DNS of SMTP clients are off
#   (--disable-version-check, --smtp-disable-rdns): no internet here, nothing to wait for.
# - Stopped by the PID we recorded, after checking that PID still runs our database path (PIDs
#   get reused); flock on <state>.lock serialises parallel start/stop runs.
# - All messages go to stderr; only `env` (and `status`) write to stdout.
#
# Usage: deploy/local/mailpit.sh install|start|stop [--wipe]|status|env
#
# Environment:
#   CRMPULSE_LOCAL          state root (default <repo>/.local); ours is mailpit/ in it
#   MAILPIT_SMTP_PORT       SMTP port (default 29025)
#   MAILPIT_HTTP_PORT       web UI and API port (default 29026; both below the ephemeral range,
#                           where a client connection can hold a port)
#   MAILPIT_VERSION         module version to install (default v1.33.1)
#   MAILPIT_START_TIMEOUT   seconds to wait for /readyz (default 30)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${CRMPULSE_LOCAL:-$repo/.local}/mailpit
smtp_port=${MAILPIT_SMTP_PORT:-29025}
http_port=${MAILPIT_HTTP_PORT:-29026}
version=${MAILPIT_VERSION:-v1.33.1}
start_timeout=${MAILPIT_START_TIMEOUT:-30}
bin=$state/bin/mailpit
pidfile=$state/mailpit.pid
db=$state/mailpit.db

log() { echo "mailpit.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

for p in "$smtp_port" "$http_port"; do
  if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
    die "bad port $p (MAILPIT_SMTP_PORT/MAILPIT_HTTP_PORT)"
  fi
done
[[ $smtp_port != "$http_port" ]] || die "MAILPIT_SMTP_PORT and MAILPIT_HTTP_PORT are both $smtp_port"

# installed: the binary is there and was built from the wanted module version. Asked of the
# Go build info (`go version -m`): a go-installed Mailpit's own `version` says "dev" (its
# release version comes from linker flags) and then looks for a newer release on GitHub.
installed() {
  [[ -x $bin ]] && command -v go >/dev/null &&
    go version -m "$bin" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/axllent/mailpit[[:space:]]+$version([[:space:]]|$)"
}

cmd_install() {
  if installed; then
    return
  fi
  command -v go >/dev/null || die "go is not on PATH: it builds Mailpit (go install github.com/axllent/mailpit@$version)"
  log "building Mailpit $version with go install into $state/bin (~40 s cold)"
  mkdir -p "$state/bin"
  # Outside any module: go install pkg@version ignores the current module anyway, but a
  # neutral directory keeps GOFLAGS=-mod=... of a caller's module from interfering.
  (cd "$state" && GOBIN="$state/bin" GOFLAGS='' go install "github.com/axllent/mailpit@$version") >&2 ||
    die "go install github.com/axllent/mailpit@$version failed"
  installed || die "$bin is not Mailpit $version after go install"
}

# pid prints the recorded PID if that process is alive and is our Mailpit.
pid() {
  local p
  [[ -f $pidfile ]] || return 1
  p=$(<"$pidfile")
  [[ $p =~ ^[0-9]+$ ]] || return 1
  kill -0 "$p" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--database=$db " || return 1
  echo "$p"
}
running() { pid >/dev/null; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$http_port/readyz" 2>/dev/null; }

lock_state() {
  mkdir -p "$(dirname "$state")"
  exec 9>"$state.lock"
  flock 9
}

cmd_start() {
  cmd_install
  lock_state
  if running; then
    log "already running (pid $(pid)), SMTP 127.0.0.1:$smtp_port, HTTP 127.0.0.1:$http_port"
    return
  fi
  rm -f "$pidfile"
  local p
  for p in "$smtp_port" "$http_port"; do
    listening "$p" && die "127.0.0.1:$p is taken by another process (set MAILPIT_SMTP_PORT/MAILPIT_HTTP_PORT)"
  done
  mkdir -p "$state"
  log "starting: SMTP 127.0.0.1:$smtp_port, HTTP 127.0.0.1:$http_port, state in $state"
  # setsid: own session, outlives this script; 9>&-: it must not hold our lock. Non-interactive
  # bash has no job control, so setsid execs in place and $! is Mailpit's PID.
  setsid "$bin" --database="$db" --smtp="127.0.0.1:$smtp_port" --listen="127.0.0.1:$http_port" \
    --smtp-auth-accept-any --smtp-auth-allow-insecure --smtp-disable-rdns --disable-version-check \
    >"$state/mailpit.log" 2>&1 </dev/null 9>&- &
  local child=$!
  echo "$child" >"$pidfile"
  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$child" 2>/dev/null; then
      log "exited during startup; log tail:"
      tail -n 30 "$state/mailpit.log" >&2 || true
      rm -f "$pidfile"
      exit 1
    fi
    if ready && listening "$smtp_port"; then
      log "ready (pid $child)"
      return
    fi
    sleep 0.1
  done
  log "not ready after ${start_timeout}s; log tail:"
  tail -n 30 "$state/mailpit.log" >&2 || true
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
    echo "running (pid $(pid)), SMTP 127.0.0.1:$smtp_port, HTTP 127.0.0.1:$http_port, state $state"
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
    echo "export CRMPULSE_MAILPIT_SMTP=127.0.0.1:$smtp_port"
    echo "export CRMPULSE_MAILPIT_API=http://127.0.0.1:$http_port"
    echo "export CRMPULSE_MAILPIT_BIN=$bin"
    ;;
  *) echo "usage: $0 install|start|stop [--wipe]|status|env" >&2; exit 2 ;;
esac
