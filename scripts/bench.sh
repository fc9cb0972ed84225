#!/usr/bin/env bash
# Runs the benchmarks whose figures docs/benchmarks.md records. Every figure
# is printed beside a baseline measured in the same run, as a ratio, so a
# slow or busy machine moves both sides alike.
#   scripts/bench.sh            engine, decoder and replay benchmarks
#   BENCH_SERVICES=1 scripts/bench.sh   also the Kafka and ClickHouse ones (starts deploy/local)
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/crmpulse ./cmd/crmpulse
dir=${BENCH_DIR:-out/bench}
mkdir -p "$dir"
if [[ ! -s $dir/interactions.jsonl ]]; then
  echo "== generating the replay data set (≥ 1 M records) into $dir" >&2
  bin/crmpulse gen --out "$dir" --customers 9000 --days 14 --seed 7 >&2
fi
cp examples/rules.yaml "$dir/rules.yaml"
wc -l "$dir"/interactions.jsonl "$dir"/receipts.jsonl >&2

run() { echo; echo "\$ $*"; "$@"; }
run go test ./ingest -run '^$' -bench 'Decode' -benchmem -count 3
run env CRMPULSE_BENCH_DIR="$(cd "$dir" && pwd)" go test ./replay -run '^$' -bench ReplayVsDecodeOnly -benchtime 1x -count 3
run go test ./processor -run '^$' -bench 'InactivityMemory|SegmentMemory|ProfileMemory' -benchtime 1x
run go test ./processor -run '^$' -bench 'ProfileLookup|EngineRecords' -count 3
# Segments and digests against the example without them (20 000 customers, 30 days).
run go test ./replay -run '^$' -bench ReplaySegments -benchtime 1x
if [[ ${BENCH_SERVICES:-0} == 1 ]]; then
  env_lines="$(deploy/local/up.sh)"; eval "$env_lines"
  trap 'deploy/local/down.sh' EXIT
  run go test ./stream/... -run '^$' -bench . -benchtime 1x
  run go test ./sink/clickhouse/... -run '^$' -bench . -benchtime 1x
fi
