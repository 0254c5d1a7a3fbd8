#!/usr/bin/env bash
# Install everything the project needs, idempotently: Debian packages, the .venv with pinned Python
# dependencies, the ledgerguard CLI, and the link that makes ledgerguard.recovery.* resolve from the checkout.
# A second run with nothing changed does nothing and takes about a second.
#   scripts/setup.sh            everything
#   scripts/setup.sh --system   the Debian packages only (scripts/test.sh: the Molecule images are built from them
#                               beside the .venv's pip install)
set -euo pipefail
case ${1:-} in
  "" | --system) ;;
  *) echo "usage: $0 [--system]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE="$ROOT/.cache"
mkdir -p "$CACHE"

APT_PACKAGES=(python3 python3-venv python3-pip restic podman runc debootstrap uidmap xfsprogs e2fsprogs sqlite3 util-linux systemd postgresql debian-archive-keyring git time openssh-server)
# Commands that prove a package is there (package -> command).
declare -A APT_PROBE=([restic]=restic [podman]=podman [runc]=runc [debootstrap]=debootstrap [xfsprogs]=mkfs.xfs
  [e2fsprogs]=mkfs.ext4 [sqlite3]=sqlite3 [uidmap]=newuidmap [util-linux]=losetup [systemd]=systemd-analyze [git]=git)

say() { printf 'setup: %s\n' "$*"; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  probe=${APT_PROBE[$pkg]:-}
  if [ -n "$probe" ]; then
    command -v "$probe" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$probe" >/dev/null 2>&1 || missing+=("$pkg")
  else
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or ask an administrator to run: apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${1:-}" = --system ] && exit 0

PY=${LEDGERGUARD_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3)
stamp_src=$(cat requirements-dev.txt constraints.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp_file="$CACHE/venv.stamp"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_src" ]; then
  say "creating .venv with $($PY --version) and pinned dependencies (about a minute)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  pip_install=(.venv/bin/python -m pip install -q --disable-pip-version-check)
  "${pip_install[@]}" --upgrade 'pip>=24'
  # The `ansible` package first, without bytecode (--no-compile, no dependencies: the next line installs ansible-core):
  # it holds only ~100 collections (15,000 Python files), which Ansible's collection loader compiles from source
  # whatever pip wrote. Everything else keeps pip's bytecode: where PYTHONDONTWRITEBYTECODE is set (as on these
  # machines), Python never writes what it compiles, and a .venv without bytecode made every ansible-playbook start
  # cost 1.07 CPU s instead of 0.74. On a 2-core machine the requirements took 106 s wall and 103 CPU s with every file
  # compiled, 58 s and 54 CPU s this way.
  "${pip_install[@]}" --no-compile --no-deps "$(grep -m1 '^ansible==' requirements-dev.txt)" -c constraints.txt
  "${pip_install[@]}" -r requirements-dev.txt -c constraints.txt
  "${pip_install[@]}" --no-deps -e .
  echo "$stamp_src" > "$stamp_file"
else
  say ".venv is up to date"
fi

# The checkout is the collection: link it where ansible.cfg's collections_path looks.
link=.collections/ansible_collections/ledgerguard/recovery
mkdir -p "$(dirname "$link")"
if [ "$(readlink "$link" 2>/dev/null)" != "$ROOT" ]; then
  rm -f "$link"
  ln -s "$ROOT" "$link"
  say "linked $link -> $ROOT"
fi
say "ready (restic $(restic version | awk '{print $2}'), ansible-core $(.venv/bin/python -c "from ansible.release import __version__ as v; print(v)"))"
