#!/usr/bin/env bash
# deploy/local/chdb.sh: chDB, the in-process ClickHouse engine of a current release, for the
# tests that run the modern rendering of the schema and the dashboards' and docs' SQL
# (sink/clickhouse/chdbtest).
#
# Why this way:
# - The only ClickHouse server Debian has is 18.16; users run 23.8+. chDB (PyPI `chdb-core`,
#   26.x) executes LowCardinality, codecs and TTL like a current server, in a Python process.
# - It is a library, not a server: `start` and `stop` have nothing to do; `install` creates a
#   venv in the state dir with the pinned wheel (a ~45 s download, cached between runs).
# - All messages go to stderr; only `env` (and `status`) write to stdout.
#
# Usage: deploy/local/chdb.sh install|start|stop [--wipe]|status|env
#
# Environment:
#   CRMPULSE_LOCAL   state root (default <repo>/.local); ours is chdb/ in it
#   CHDB_VERSION     chdb-core version (default 26.9.0)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${CRMPULSE_LOCAL:-$repo/.local}/chdb
version=${CHDB_VERSION:-26.9.0}
python=$state/venv/bin/python

log() { echo "chdb.sh: $*" >&2; }

installed() {
  [[ -x $python ]] && "$python" -c "import importlib.metadata as m, sys; sys.exit(m.version('chdb-core') != '$version')" 2>/dev/null
}

cmd_install() {
  if installed; then
    log "chdb-core $version already in $state/venv"
    return
  fi
  mkdir -p "$state"
  exec 9>"$state.lock"
  flock 9
  if installed; then
    return
  fi
  rm -rf "$state/venv"
  log "installing chdb-core $version into $state/venv"
  python3 -m venv "$state/venv" >&2
  "$state/venv/bin/pip" install --quiet --disable-pip-version-check "chdb-core==$version" >&2
  "$python" -c 'from chdb import session; print("chdb.sh: engine", session.Session().query("SELECT version()", "TSV"), end="")' >&2
}

case ${1:-} in
  install) cmd_install ;;
  start)
    installed || { log "not installed: run deploy/local/chdb.sh install"; exit 1; }
    ;;
  stop)
    if [[ ${2:-} == --wipe ]]; then
      rm -rf "$state"
      log "removed $state"
    fi
    ;;
  status)
    if installed; then echo "installed: chdb-core $version in $state/venv"; else echo "not installed"; exit 1; fi
    ;;
  env) echo "export CRMPULSE_CHDB_PYTHON=$python" ;;
  *)
    echo "usage: $0 install|start|stop [--wipe]|status|env" >&2
    exit 2
    ;;
esac
