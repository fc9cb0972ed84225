#!/usr/bin/env bash
# deploy/local/up.sh: installs and starts every real server the test suite uses (Kafka,
# ClickHouse, Alertmanager, Mailpit) as plain processes on 127.0.0.1, then prints their `export` lines
# and CRMPULSE_INTEGRATION=1 (tests then fail, not skip, when a server or tool is missing:
# internal/testenv), so that
#   eval "$(deploy/local/up.sh)"
# points the environment at them. Only export lines go to stdout: all progress, from here and
# from the service scripts, goes to stderr. Idempotent: running servers are left alone.
# Any failure exits non-zero with nothing on stdout, so a caller's eval sets nothing.
# Ports, state root and versions: see each service script and deploy/local/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Every service is required: a missing script is an error, never a service
# quietly left out (the tests that need it would then fail under
# CRMPULSE_INTEGRATION=1 with a less direct message).
services=(kafka clickhouse alertmanager mailpit chdb tools)
for svc in "${services[@]}"; do
  if [[ ! -x $here/$svc.sh ]]; then
    echo "up.sh: $here/$svc.sh missing (or not executable)" >&2
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
