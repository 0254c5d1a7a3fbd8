#!/usr/bin/env bash
# ansible-test sanity for the collection, offline.
#
#   scripts/sanity.sh                 the default set of tests (below), as two ansible-test processes side by side:
#                                     pylint, and every other test
#   scripts/sanity.sh --test pep8     any ansible-test sanity arguments replace the default set
#
# ansible-test needs the collection in a real directory whose path ends in ansible_collections/ledgerguard/recovery
# (a symlinked path is resolved and refused), so this copies the tracked and untracked-but-not-ignored files into
# .cache/sanity-run.XXXXXX/ansible_collections/ledgerguard/recovery (one per run) and runs there. ansible-test
# bootstraps pip in its test virtualenvs with a script it downloads from a host that is not reachable here; a
# stand-in in its cache runs `python -m ensurepip` and then pip with the same arguments. Results: tests/output/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY_VERSION=3.11

say() { printf 'sanity: %s\n' "$*"; }
die() { printf 'sanity: ERROR: %s\n' "$*" >&2; exit 2; }

[ -x .venv/bin/ansible-test ] || die "no .venv with ansible-test: run 'make setup' first"
command -v git >/dev/null || die "git is needed to list the collection's files: apt-get install -y git"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$ROOT is not a git checkout: ansible-test sanity needs the list of tracked files"

# The tests. Left out: pslint (PowerShell: none here, no pwsh), shellcheck (the shellcheck binary is not a
# dependency; scripts/ are outside the collection build anyway), changelog (needs antsibull-changelog, not in
# requirements-dev.txt; changelog fragments are linted by yamllint).
SKIP=(--skip-test pslint --skip-test shellcheck --skip-test changelog)

CACHE="$ROOT/.cache"
# Each run has its own copy (several engineers may run this in one checkout at once, and the default set runs as two
# ansible-test processes); the copies are removed at exit and the results are copied to tests/output/ (git-ignored).
RUNS=()
trap 'for r in "${RUNS[@]}"; do rm -rf --one-file-system "$r"; done' EXIT
export HOME="$CACHE/home"            # ansible-test keeps its venvs and caches under ~/.ansible/test
export ANSIBLE_HOME="${ANSIBLE_HOME:-$CACHE/ansible-home}"
export PATH="$ROOT/.venv/bin:$PATH"
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS
mkdir -p "$HOME" "$ANSIBLE_HOME"

# pip bootstrap stand-in for ansible-test (it looks here before downloading get-pip-<version>.py). ansible-test makes
# each sanity test's virtualenv without pip, then runs this with the pinned pip and --no-setuptools --no-wheel; the
# stand-in has the .venv's pip install that pip into the new environment (pip's --python option), as get-pip.py
# would. The earlier stand-in ran ensurepip first (pip 23 and setuptools from Python's bundled wheels, then pip
# uninstalled again for the pinned one): 6.4 CPU s per virtualenv against 1.9, and eight virtualenvs per clean run.
pip_version=$(grep -ohP "^\s+pip='\K[0-9.]+(?=')" .venv/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py |
  head -n1 || true)
pip_version=${pip_version:-24.2}
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$get_pip")"
cat >"$get_pip.tmp" <<PY
"""Offline stand-in for get-pip.py, written by scripts/sanity.sh: the checkout's .venv pip installs what ansible-test
asked for (the pinned pip; neither setuptools nor wheel, as --no-setuptools and --no-wheel ask) into the environment of
the interpreter that runs this, from the configured package index."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call(["$ROOT/.venv/bin/python", "-m", "pip", "--python", sys.executable, "install", *args])
PY
if cmp -s "$get_pip.tmp" "$get_pip"; then rm -f "$get_pip.tmp"; else mv "$get_pip.tmp" "$get_pip"; fi

# The collection's files: what ansible-galaxy would build (galaxy.yml build_ignore applies: the CLI in src/, bench/,
# scripts/, molecule/ are not collection content and are checked by ruff, yamllint and ansible-lint instead), plus
# tests/, which ansible-test sanity covers in every collection.
COLLECTION_FILES='
import fnmatch, os, sys, yaml
ignore = [p for p in yaml.safe_load(open("galaxy.yml"))["build_ignore"] if p.rstrip("/") != "tests"]
for f in sys.stdin.buffer.read().decode().split("\0"):
    if not f or not (os.path.lexists(f)):
        continue
    if any(fnmatch.fnmatch(f, p) or f.startswith(p.rstrip("/") + "/") for p in ignore):
        continue
    sys.stdout.buffer.write(f.encode() + b"\0")
'
# A new folder for one run's copy, removed at exit.
new_run() {
  RUNS+=("$(mktemp -d "$CACHE/sanity-run.XXXXXX")")
}
# One ansible-test sanity run with the given arguments (after the run folder) in a fresh copy of the collection:
# tracked files plus untracked files that are not ignored, as they are on disk now.
sanity_in_copy() {
  local run=$1 coll t0=$SECONDS rc
  shift
  coll="$run/ansible_collections/ledgerguard/recovery"
  mkdir -p "$coll"
  git ls-files -z --cached --others --exclude-standard | .venv/bin/python -c "$COLLECTION_FILES" |
    tar --null --no-recursion -T - -cf - | tar -xf - -C "$coll"
  # ansible-test asks git which files belong to the collection: give the copy the same list.
  git -C "$coll" init -q
  git -C "$coll" add -A
  say "copied $(git -C "$coll" ls-files | wc -l) files to ${coll#"$ROOT"/} in $((SECONDS - t0)) s"
  t0=$SECONDS
  rc=0
  (cd "$coll" && ansible-test sanity --local --python "$PY_VERSION" --color no "$@") || rc=$?
  if [ -d "$coll/tests/output" ]; then
    mkdir -p "$ROOT/tests/output"
    cp -a "$coll/tests/output/." "$ROOT/tests/output/"
  fi
  say "ansible-test sanity $* exited $rc in $((SECONDS - t0)) s (results in tests/output/)"
  return "$rc"
}

if [ $# -gt 0 ]; then
  new_run
  sanity_in_copy "${RUNS[0]}" "$@" || exit $?
  exit 0
fi
# The default set as two ansible-test processes side by side, each in its own copy: pylint (about half of the time,
# on one core) and every other test (also one core at a time). Their output is printed one after the other.
t0=$SECONDS
new_run
new_run
sanity_in_copy "${RUNS[0]}" --test pylint >"${RUNS[0]}/output.log" 2>&1 &
pylint_pid=$!
rest_rc=0 pylint_rc=0
sanity_in_copy "${RUNS[1]}" "${SKIP[@]}" --skip-test pylint >"${RUNS[1]}/output.log" 2>&1 || rest_rc=$?
wait "$pylint_pid" || pylint_rc=$?
cat "${RUNS[1]}/output.log" "${RUNS[0]}/output.log"
say "all tests but pylint: exit $rest_rc; pylint: exit $pylint_rc; $((SECONDS - t0)) s in all"
[ "$rest_rc" -eq 0 ] && [ "$pylint_rc" -eq 0 ]
