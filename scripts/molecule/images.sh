#!/usr/bin/env bash
# Prepare the Molecule images the named scenarios need (every scenario when none is named): the base image always,
# the db image when a chosen scenario's molecule.yml names localhost/ledgerguard-test:db. Each is built, or re-imported
# from its cached root filesystem, by scripts/molecule/build-image.sh.
#
#   scripts/molecule/images.sh                 images for every scenario under molecule/
#   scripts/molecule/images.sh backup drill    images for these scenarios
#
# It needs root, podman and debootstrap, not the .venv: `scripts/test.sh` starts it beside `make setup`'s pip
# install (which keeps one core of two busy), and scripts/molecule.sh runs it before its scenarios.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { printf 'images: ERROR: %s\n' "$*" >&2; exit 2; }

# The db image also serves the write_freeze scenario's SMB share (smbd stopped by the freeze, smbclient as client).
DB_PACKAGES=(postgresql mariadb-server samba smbclient)

scenario_files=()
if [ $# -eq 0 ]; then
  for f in molecule/*/molecule.yml; do [ -f "$f" ] && scenario_files+=("$f"); done
else
  for s in "$@"; do
    [ -f "molecule/$s/molecule.yml" ] || die "no scenario '$s' (expected molecule/$s/molecule.yml)"
    scenario_files+=("molecule/$s/molecule.yml")
  done
fi
[ ${#scenario_files[@]} -gt 0 ] || die "no scenario found under molecule/"

# shellcheck source=scripts/molecule/env.sh
source scripts/molecule/env.sh
scripts/molecule/build-image.sh base >/dev/null || die "building the base image failed"
if grep -qs 'localhost/ledgerguard-test:db' "${scenario_files[@]}"; then
  scripts/molecule/build-image.sh db "${DB_PACKAGES[@]}" >/dev/null || die "building the db image failed"
fi
