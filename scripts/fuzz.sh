#!/usr/bin/env bash
# Runs every fuzz target for a while (default 30s each). New crashers land
# in the package's testdata/fuzz, where `go test` replays them forever after.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  pkg=./$(dirname "${f#./}")
  grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r name; do
    echo "== $pkg $name ($t)"
    go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$t"
  done
done
