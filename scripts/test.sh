#!/usr/bin/env bash
# Every test: lint, sanity, unit, integration, integration again with a newer restic, molecule, reported in that
# order with how long each took and the CPU it used. lint, sanity and unit run together, then restic-newer and
# molecule beside the integration layer (below).
#   scripts/test.sh          what `make test` (and CI) runs
#   scripts/test.sh check    what `make check` runs: lint, sanity, unit and the smoke incident (the edit loop)
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-all}" in
  all) steps=(lint sanity unit integration restic-newer molecule) ;;
  check) steps=(lint sanity unit smoke) ;;
  *) echo "usage: $0 [check]" >&2; exit 2 ;;
esac
# Once, before any step: the Debian packages, then the .venv (the steps' own `make` runs then find everything in
# place and change nothing; several run at once below). The Molecule images need only the Debian packages: they are
# prepared in the background (below) beside the .venv's pip install, which keeps one core of two busy.
bash scripts/setup.sh --system >/dev/null || { echo "test.sh: scripts/setup.sh --system failed" >&2; exit 2; }
failed=()
mkdir -p .cache
# The CPU seconds (user + system) of every process a step ran and waited for, written to .cache/step-<name>.cpu by
# the subshell that ran the step: bash's `times` prints the shell's own times, then its children's. (Molecule's
# modules enter the containers with nsenter, so they count too; a daemon that detached from the step does not.)
record_cpu() {
  times >".cache/step-$1.times"
  awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
    printf "%d\n", n + 0.5 }' ".cache/step-$1.times" >".cache/step-$1.cpu"
}
# A step's closing line (its status, how long it ran: from t0 to its end, by default now, and the CPU it used), and
# its name kept when it failed.
ended() {
  local name=$1 rc=$2 t0=$3 end=${4:-$SECONDS} status=ok cpu
  if [ "$rc" -ne 0 ]; then status=FAILED; failed+=("$name"); fi
  cpu=$(cat ".cache/step-$name.cpu" 2>/dev/null) || cpu="?"
  printf '=== %s: %s in %d s (CPU %s s) ===\n' "$name" "$status" $((end - t0)) "$cpu"
}
step() {
  local name=$1 t0=$SECONDS rc=0; shift
  printf '\n=== %s ===\n' "$name"
  rm -f ".cache/step-$name.cpu"
  ("$@"; rc=$?; record_cpu "$name"; exit "$rc") || rc=$?
  ended "$name" "$rc" "$t0"
}
# The Molecule images (debootstrap, then the database packages: about 4 minutes on a clean machine, mostly downloads
# and unpacking; a re-import of the machine's cached image tarballs otherwise) are prepared in the background from here
# on, beside `make setup` and the first layers (scripts/molecule/images.sh; log in .cache/molecule-images.log). The
# molecule step then finds them ready (or builds them itself if this failed).
images_pid=""
if [[ " ${steps[*]} " == *" molecule "* ]] && [ "$(id -u)" -eq 0 ]; then
  bash scripts/molecule/images.sh >.cache/molecule-images.log 2>&1 &
  images_pid=$!
fi
make --no-print-directory setup >/dev/null || { echo "test.sh: make setup failed" >&2; exit 2; }
# Steps that run in the background, beside others: each writes .cache/step-<name>.log, printed whole when the step is
# collected, in the order of the steps. lint, sanity and unit run together (much of unit and sanity waits on
# subprocesses, and ansible-lint and pylint are single-threaded); the Molecule scenarios and restic-newer run beside
# the integration layer (the scenarios spend much of their time waiting for containers, systemd and the network, and
# several integration files wait on restic 0.14's retries of a lost pack: the CPU-bound tests fill those waits).
# Starting those three as soon as lint and unit had ended, beside the rest of sanity, was tried and undone: on a clean
# clone it took 1,591 s where this order took 1,461 s, every step used more CPU under the heavier contention
# (2,973 CPU s in all against 2,656; sanity alone stretched from 200 to 581 s).
declare -A bg_pid bg_t0
# restic-newer beside the integration layer with one pytest worker instead of three: it still ends long before the
# integration layer, and fewer processes at once cost less CPU for the same work (docs/testing.md, Where the time goes).
declare -A step_make_args=([restic-newer]="RESTIC_NEWER_WORKERS=1")
start_bg() {
  local name=$1
  bg_t0[$name]=$SECONDS
  rm -f ".cache/step-$name.end" ".cache/step-$name.cpu"
  (
    if [ "$name" = molecule ]; then
      while [ -n "$images_pid" ] && kill -0 "$images_pid" 2>/dev/null; do sleep 2; done
    fi
    make --no-print-directory "$name" ${step_make_args[$name]:-}
    rc=$?
    echo "$SECONDS" >".cache/step-$name.end" # when it ended (the subshell counts on from the script's SECONDS)
    record_cpu "$name"
    exit "$rc"
  ) >".cache/step-$name.log" 2>&1 &
  bg_pid[$name]=$!
  printf '=== %s: started in the background at %d s (log: .cache/step-%s.log) ===\n' "$name" "$SECONDS" "$name"
}
finish_bg() {
  local name=$1 t0=$SECONDS rc end
  wait "${bg_pid[$name]}"
  rc=$?
  end=$(cat ".cache/step-$name.end" 2>/dev/null) || end=$SECONDS
  printf '\n=== %s (ran in the background from %d s to %d s; waited %d s for it here) ===\n' "$name" \
    "${bg_t0[$name]}" "$end" $((SECONDS - t0))
  cat ".cache/step-$name.log"
  ended "$name" "$rc" "${bg_t0[$name]}" "$end"
}
for name in lint sanity unit; do start_bg "$name"; done
for name in "${steps[@]}"; do
  case $name in
    lint | sanity | unit) finish_bg "$name" ;;
    restic-newer | molecule)
      if [ -n "${bg_pid[$name]:-}" ]; then finish_bg "$name"; else step "$name" make --no-print-directory "$name"; fi
      ;;
    *)
      if [ "$name" = integration ]; then
        [ -n "$images_pid" ] && start_bg molecule
        [[ " ${steps[*]} " == *" restic-newer "* ]] && start_bg restic-newer
      fi
      step "$name" make --no-print-directory "$name"
      ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nmake %s: FAILED steps: %s\n' "${1:-test}" "${failed[*]}"
  exit 1
fi
printf '\nmake %s: all steps passed in %d s\n' "${1:-test}" "$SECONDS"
