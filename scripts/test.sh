#!/usr/bin/env bash
# Every test, in the order that fails fastest: lint, sanity, unit, integration, integration again with a newer
# restic, molecule. Prints how long each took.
#   scripts/test.sh          what `make test` (and CI) runs
#   scripts/test.sh check    what `make check` runs: lint, sanity, unit and the smoke incident (the edit loop)
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-all}" in
  all) steps=(lint sanity unit integration restic-newer molecule) ;;
  check) steps=(lint sanity unit smoke) ;;
  *) echo "usage: $0 [check]" >&2; exit 2 ;;
esac
failed=()
step() {
  local name=$1; shift
  local t0=$SECONDS
  printf '\n=== %s ===\n' "$name"
  if "$@"; then status=ok; else status=FAILED; failed+=("$name"); fi
  printf '=== %s: %s in %d s ===\n' "$name" "$status" $((SECONDS - t0))
}
for name in "${steps[@]}"; do
  step "$name" make --no-print-directory "$name"
done
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nmake %s: FAILED steps: %s\n' "${1:-test}" "${failed[*]}"
  exit 1
fi
printf '\nmake %s: all steps passed in %d s\n' "${1:-test}" "$SECONDS"
