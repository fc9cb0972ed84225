#!/usr/bin/env bash
# deploy/local/up.sh: installs and starts every real server the test suite uses (Kafka when
# deploy/local/kafka.sh exists, ClickHouse, Alertmanager) as plain processes on 127.0.0.1, then
# prints their `export` lines, so that
#   eval "$(deploy/local/up.sh)"
# points the environment at them. Only export lines go to stdout: all progress, from here and
# from the service scripts, goes to stderr. Idempotent: running servers are left alone.
# Any failure exits non-zero with nothing on stdout, so a caller's eval sets nothing.
# Ports, state root and versions: see each service script and deploy/local/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

services=()
for svc in kafka clickhouse alertmanager chdb tools; do
  if [[ -x $here/$svc.sh ]]; then
    services+=("$svc")
  elif [[ $svc != kafka ]]; then
    echo "up.sh: $here/$svc.sh missing" >&2
    exit 1
  fi
done

for svc in "${services[@]}"; do
  echo "up.sh: $svc" >&2
  "$here/$svc.sh" install >&2
  "$here/$svc.sh" start >&2
done

# Collect first, print after: a failing env leaves stdout empty.
lines=""
for svc in "${services[@]}"; do
  lines+=$("$here/$svc.sh" env)$'\n'
done
lines+="export CRMPULSE_INTEGRATION=1"
echo "$lines"
