#!/usr/bin/env bash
# deploy/local/down.sh: stops every server deploy/local/up.sh starts, each by its recorded PID
# (see the service scripts). One failing does not keep the others running: all are tried and
# the exit status says whether any failed. Idempotent: stopped servers are skipped.
#   deploy/local/down.sh [--wipe]   # --wipe also deletes their state dirs
# Output goes to stderr.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rc=0
for svc in tools chdb mailpit alertmanager clickhouse kafka; do
  [[ -x $here/$svc.sh ]] || continue
  if ! "$here/$svc.sh" stop "$@" >&2; then
    echo "down.sh: stopping $svc failed" >&2
    rc=1
  fi
done
exit "$rc"
