#!/usr/bin/env bash
# Installs and starts every real server the test suite needs, then prints
# their `export` lines on stdout (all progress goes to stderr), so that
#   eval "$(deploy/local/up.sh)"
# leaves the environment pointing at them. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for svc in kafka clickhouse alertmanager; do
  "$here/$svc.sh" install >&2
  "$here/$svc.sh" start >&2
done
for svc in kafka clickhouse alertmanager; do
  "$here/$svc.sh" env
done
echo "export CRMPULSE_INTEGRATION=1"
