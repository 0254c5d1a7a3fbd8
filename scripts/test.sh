#!/usr/bin/env bash
# Every test, in the order that fails fastest: lint, sanity, unit, integration, integration again with a newer
# restic, molecule (which runs in the background beside the two integration layers, see below). Prints how long each
# took.
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
# The Molecule scenarios run in the background beside the integration layers once unit passed: they spend much of
# their time waiting for containers and systemd, which the CPU-bound integration tests fill. Their output goes to
# .cache/molecule-step.log and is printed whole when the molecule step comes (after restic-newer).
molecule_pid="" molecule_t0=0
start_molecule() {
  mkdir -p .cache
  molecule_t0=$SECONDS
  (
    while [ -n "$images_pid" ] && kill -0 "$images_pid" 2>/dev/null; do sleep 2; done
    exec make --no-print-directory molecule
  ) >.cache/molecule-step.log 2>&1 &
  molecule_pid=$!
  printf '\n=== molecule: started in the background (log: .cache/molecule-step.log) ===\n'
}
for name in "${steps[@]}"; do
  if [ "$name" = integration ] && [[ " ${steps[*]} " == *" molecule "* ]] && [ ${#failed[@]} -eq 0 ]; then
    start_molecule
  fi
  if [ "$name" = molecule ] && [ -n "$molecule_pid" ]; then
    printf '\n=== molecule (ran in the background since %d s into the steps) ===\n' "$molecule_t0"
    wait "$molecule_pid"
    rc=$?
    cat .cache/molecule-step.log
    if [ "$rc" -eq 0 ]; then status=ok; else status=FAILED; failed+=(molecule); fi
    printf '=== molecule: %s in %d s (background, finished %d s after the end of restic-newer) ===\n' \
      "$status" $((SECONDS - molecule_t0)) $((SECONDS - last_end))
    continue
  fi
  if [ "$name" = molecule ] && [ -n "$images_pid" ]; then
    t0=$SECONDS
    wait "$images_pid" || printf 'images: preparing them in the background failed (see .cache/molecule-images.log)\n'
    printf '=== waited %d s for the Molecule images ===\n' $((SECONDS - t0))
  fi
  step "$name" make --no-print-directory "$name"
  last_end=$SECONDS
done
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nmake %s: FAILED steps: %s\n' "${1:-test}" "${failed[*]}"
  exit 1
fi
printf '\nmake %s: all steps passed in %d s\n' "${1:-test}" "$SECONDS"
