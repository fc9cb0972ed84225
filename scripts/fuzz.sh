#!/usr/bin/env bash
# Runs every fuzz target for a while (default 30s each): `scripts/fuzz.sh [DURATION [GO TEST FLAGS...]]`,
# e.g. `scripts/fuzz.sh 3s -json` in make test. Targets are found by grepping `^func Fuzz` in
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
