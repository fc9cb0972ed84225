#!/usr/bin/env bash
# Stops every server up.sh started, by PID; one failing does not keep the
# others running.
here=$(cd "$(dirname "$0")" && pwd)
rc=0
for svc in alertmanager clickhouse kafka; do
  "$here/$svc.sh" stop "$@" >&2 || rc=1
done
exit $rc
