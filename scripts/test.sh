#!/usr/bin/env bash
# Every test, in the order that fails fastest: lint, sanity, unit, integration, integration again with a newer
# restic, molecule. Prints how long each took.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
step() {
  local name=$1; shift
  local t0=$SECONDS
  printf '\n=== %s ===\n' "$name"
  if "$@"; then status=ok; else status=FAILED; failed+=("$name"); fi
  printf '=== %s: %s in %d s ===\n' "$name" "$status" $((SECONDS - t0))
}
step lint make --no-print-directory lint
step sanity make --no-print-directory sanity
step unit make --no-print-directory unit
step integration make --no-print-directory integration
step restic-newer make --no-print-directory restic-newer
step molecule make --no-print-directory molecule
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nmake test: FAILED steps: %s\n' "${failed[*]}"
  exit 1
fi
printf '\nmake test: all steps passed in %d s\n' "$SECONDS"
