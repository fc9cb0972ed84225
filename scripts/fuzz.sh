#!/usr/bin/env bash
# Runs every fuzz target for a while (default 30s each): `scripts/fuzz.sh [FUZZTIME [GO TEST FLAGS...]]`,
# where FUZZTIME is a duration (30s) or an execution count (4000x), e.g. `scripts/fuzz.sh 4000x -json`
# in make test. make test uses a count: with a duration, Go's fuzz coordinator races its own
# deadline on a loaded machine and fails with a bare "context deadline exceeded" and no crasher
# (golang/go#51484, #75804); a count has no deadline to race, so only a real finding fails. Targets are found by grepping `^func Fuzz` in
# *_test.go. Every target runs even when one fails; the exit status is 1 if any failed (or none
# was found). New crashers land in the package's testdata/fuzz, where `go test` replays them
# forever after.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
shift || true

targets=()
while read -r f; do
  pkg=./$(dirname "${f#./}")
  while read -r name; do
    targets+=("$pkg $name")
  done < <(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //')
done < <(grep -rl --include='*_test.go' --exclude-dir=.local --exclude-dir=out --exclude-dir=.git '^func Fuzz' . | sort)
if ((${#targets[@]} == 0)); then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi

failed=()
for target in "${targets[@]}"; do
  read -r pkg name <<<"$target"
  echo "== $pkg $name ($t)"
  if ! go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$t" "$@"; then
    failed+=("$target")
  fi
done
if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: ${#failed[@]} of ${#targets[@]} fuzz targets failed:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} fuzz targets passed ($t each)"
