# shellcheck shell=bash
# Source this file to point podman, Molecule and Ansible at the project's private settings:
#   source scripts/molecule/env.sh && podman ps -a
# scripts/molecule.sh sources it before it builds images or runs scenarios. Everything lives in the checkout's
# ignored .cache folder, apart from the podman run root (see below).
_lg_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_lg_cache="$_lg_root/.cache"
_lg_podman="$_lg_cache/podman"
mkdir -p "$_lg_podman/storage" "$_lg_cache/home" "$_lg_cache/ansible-home"
# The run root holds podman's locks and container state. This machine keeps /run across restarts (it is not a
# tmpfs), so the run root is kept per boot: a restart leaves no stale "running" containers or locks behind.
_lg_boot=$(cut -c1-8 /proc/sys/kernel/random/boot_id 2>/dev/null || echo noboot)
_lg_runroot="$_lg_podman/run-$_lg_boot"
if [ ! -d "$_lg_runroot" ]; then
  # Earlier boots' run roots are dead state: drop them (podman state for their containers is rebuilt on refresh).
  find "$_lg_podman" -maxdepth 1 -name 'run-*' -type d -exec rm -rf --one-file-system {} + 2>/dev/null || true
  mkdir -p "$_lg_runroot"
fi
for _lg_f in containers storage; do
  sed -e "s|@RUNROOT@|$_lg_runroot|g" -e "s|@GRAPHROOT@|$_lg_podman/storage|g" \
    "$_lg_root/scripts/molecule/$_lg_f.conf.in" >"$_lg_podman/$_lg_f.conf.tmp"
  if ! cmp -s "$_lg_podman/$_lg_f.conf.tmp" "$_lg_podman/$_lg_f.conf"; then
    mv "$_lg_podman/$_lg_f.conf.tmp" "$_lg_podman/$_lg_f.conf"
  else
    rm -f "$_lg_podman/$_lg_f.conf.tmp"
  fi
done
export CONTAINERS_CONF="$_lg_podman/containers.conf"
export CONTAINERS_STORAGE_CONF="$_lg_podman/storage.conf"
# Molecule, ansible-compat and Ansible write caches under HOME / ANSIBLE_HOME: keep them in .cache too.
export HOME="$_lg_cache/home"
export ANSIBLE_HOME="$_lg_cache/ansible-home"
export ANSIBLE_CONFIG="$_lg_root/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$_lg_root/.collections"
export PATH="$_lg_root/.venv/bin:$PATH:/usr/sbin:/sbin"
export LEDGERGUARD_ROOT="$_lg_root"
unset _lg_root _lg_cache _lg_podman _lg_boot _lg_runroot _lg_f
