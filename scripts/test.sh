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
# The Molecule images (debootstrap, then the database packages: about 4 minutes on a clean machine, mostly downloads
# and unpacking) are prepared in the background while the other layers run: scripts/molecule.sh builds the images a
# scenario needs before it runs `molecule list` (which changes nothing) for it; one scenario that names the db image
# brings both. The molecule step then finds them ready (or builds them itself if this failed).
images_pid=""
if [[ " ${steps[*]} " == *" molecule "* ]] && [ "$(id -u)" -eq 0 ]; then
  scenario=""
  for f in molecule/*/molecule.yml; do
    [ -f "$f" ] || continue
    [ -n "$scenario" ] || scenario=$f
    if grep -q 'localhost/ledgerguard-test:db' "$f"; then scenario=$f; break; fi
  done
  if [ -n "$scenario" ]; then
    mkdir -p .cache
    bash scripts/molecule.sh --cmd list "$(basename "$(dirname "$scenario")")" >.cache/molecule-images.log 2>&1 &
    images_pid=$!
  fi
fi
for name in "${steps[@]}"; do
  if [ "$name" = molecule ] && [ -n "$images_pid" ]; then
    t0=$SECONDS
    wait "$images_pid" || printf 'images: preparing them in the background failed (see .cache/molecule-images.log)\n'
    printf '=== waited %d s for the Molecule images ===\n' $((SECONDS - t0))
  fi
  step "$name" make --no-print-directory "$name"
done
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nmake %s: FAILED steps: %s\n' "${1:-test}" "${failed[*]}"
  exit 1
fi
printf '\nmake %s: all steps passed in %d s\n' "${1:-test}" "$SECONDS"
