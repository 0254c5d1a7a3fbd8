#!/usr/bin/env bash
# Build (or re-import from cache) the local base image for Molecule scenarios. No registry is reachable here, so
# the image is a debootstrap'ed Debian bookworm (minbase) root filesystem imported with `podman import`.
#
#   scripts/molecule/build-image.sh                      -> localhost/ledgerguard-test:base
#   scripts/molecule/build-image.sh db postgresql mariadb-server
#                                                        -> localhost/ledgerguard-test:db (base + those packages,
#                                                           then scripts/molecule/image-db.sh if present)
#
# Each image is tagged twice: `<variant>-<recipe hash>` (exact) and `<variant>` (what molecule.yml names). The hash
# covers this script, the variant name and its package list, so editing the recipe builds a new image. The root
# filesystem is cached as `ledgerguard-test-<variant>-<hash>.tar` in the machine's image cache,
# /var/cache/ledgerguard/images (LEDGERGUARD_IMAGE_CACHE overrides it), beside debootstrap's packages: a later run, a
# fresh podman storage or another checkout on this machine (a clean clone in CI) re-imports the tarball instead of
# running debootstrap again. The hash names the recipe exactly, so checkouts of one recipe share its tarball.
#
# Needs root, debootstrap and podman. Podman must already be pointed at the project's settings (scripts/molecule.sh
# exports CONTAINERS_CONF and CONTAINERS_STORAGE_CONF before calling this). Packages come from the same Debian
# mirror the host's apt uses (override with LEDGERGUARD_DEBIAN_MIRROR).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH="$PATH:/usr/sbin:/sbin"

VARIANT=${1:-base}
shift || true
EXTRA_PACKAGES=("$@")
SUITE=bookworm
REPO=localhost/ledgerguard-test
BASE_PACKAGES=(python3 systemd systemd-sysv dbus sudo iproute2 procps e2fsprogs xfsprogs restic util-linux
  ca-certificates)
IMAGES_DIR=${LEDGERGUARD_IMAGE_CACHE:-/var/cache/ledgerguard/images}

say() { printf 'build-image: %s\n' "$*" >&2; }
die() { printf 'build-image: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $VARIANT =~ ^[a-z0-9][a-z0-9_.-]*$ ]] || die "variant '$VARIANT' must be lower-case letters, digits, '.', '_' or '-'"
if [ "$VARIANT" = base ] && [ ${#EXTRA_PACKAGES[@]} -gt 0 ]; then
  die "the 'base' variant takes no extra packages; name a variant, e.g.: $0 db ${EXTRA_PACKAGES[*]}"
fi
if [ "$VARIANT" != base ] && [ ${#EXTRA_PACKAGES[@]} -eq 0 ]; then
  die "variant '$VARIANT' needs at least one extra package, e.g.: $0 $VARIANT postgresql"
fi
[ "$(id -u)" -eq 0 ] || die "debootstrap and podman import need root; run as root (sudo $0 $VARIANT ${EXTRA_PACKAGES[*]})"
command -v podman >/dev/null || die "podman is not installed: apt-get install -y podman runc (or: make setup)"

# A variant's own settings: scripts/molecule/image-<variant>.sh, when present, runs in the image's root (chroot) after
# its packages are installed; its text is part of the variant's hash.
SETUP_SCRIPT="$ROOT/scripts/molecule/image-$VARIANT.sh"
recipe_hash() { # $1 variant, rest: packages
  { cat "$ROOT/scripts/molecule/build-image.sh"; printf '%s\n' "$SUITE" "${BASE_PACKAGES[@]}" "--" "$@"; } |
    sha256sum | cut -c1-12
}
BASE_HASH=$(recipe_hash base)
if [ "$VARIANT" = base ]; then
  HASH=$BASE_HASH
else
  HASH=$({ printf '%s\n' "$BASE_HASH" "$VARIANT" "${EXTRA_PACKAGES[@]}"; cat "$SETUP_SCRIPT" 2>/dev/null || true; } |
    sha256sum | cut -c1-12)
fi
TAG="$REPO:$VARIANT-$HASH"
TARBALL="$IMAGES_DIR/ledgerguard-test-$VARIANT-$HASH.tar"
mkdir -p "$IMAGES_DIR/debs"

# The host's Debian mirror for $SUITE: first `deb` source (one-line or deb822 format) whose suite is $SUITE.
debian_mirror() {
  if [ -n "${LEDGERGUARD_DEBIAN_MIRROR:-}" ]; then echo "$LEDGERGUARD_DEBIAN_MIRROR"; return; fi
  local f uri=""
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk -v s="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
          if ($(i + 1) == s) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk -v s="$SUITE" '
      function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && enabled != "no" && uris != "") {
                           split(uris, u, " "); print u[1]; found = 1; exit } types = suites = uris = ""; enabled = "" }
      /^[ \t]*$/ { flush(); next }
      /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
      /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      /^Enabled:/ { sub(/^Enabled:[ \t]*/, ""); enabled = tolower($0) }
      END { if (!found) flush() }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  echo "http://deb.debian.org/debian"
}

import_tarball() { # $1 tarball
  local t0=$SECONDS
  podman import --quiet \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change 'ENV container=podman' \
    --change 'ENV LANG=C.UTF-8' \
    --message "ledgerguard test image $VARIANT ($HASH)" \
    "$1" "$TAG" >/dev/null
  say "imported $TAG from $(basename "$1") in $((SECONDS - t0)) s"
}

tag_alias() {
  podman tag "$TAG" "$REPO:$VARIANT"
  # Images of older recipes of this variant are unreachable by hash: drop them (one still in use by a container stays).
  podman images --format '{{.Repository}}:{{.Tag}}' "$REPO" | grep -E "^$REPO:$VARIANT-[0-9a-f]{12}\$" |
    grep -vx "$TAG" | xargs -r podman rmi >/dev/null 2>&1 || true
  echo "$REPO:$VARIANT"
}

# One build per variant at a time (several scenarios or engineers may start at once); the others wait, then find it.
exec 9>"$IMAGES_DIR/.build-$VARIANT.lock"
flock 9
if podman image exists "$TAG"; then
  say "$TAG is present"
  tag_alias
  exit 0
fi
if [ -s "$TARBALL" ]; then
  import_tarball "$TARBALL"
  tag_alias
  exit 0
fi

command -v debootstrap >/dev/null || die "debootstrap is not installed: apt-get install -y debootstrap (or: make setup)"
WORK=$(mktemp -d "$IMAGES_DIR/build-$VARIANT.XXXXXX")
ROOTFS="$WORK/rootfs"
mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

t0=$SECONDS
if [ "$VARIANT" = base ]; then
  MIRROR=$(debian_mirror)
  say "debootstrap $SUITE (minbase) from $MIRROR with: ${BASE_PACKAGES[*]}"
  inc=$(IFS=,; echo "${BASE_PACKAGES[*]}")
  debootstrap --variant=minbase --include="$inc" --cache-dir="$IMAGES_DIR/debs" "$SUITE" "$ROOTFS" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  # Point apt inside the image at the same mirror, with the security and updates suites beside it.
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$ROOTFS/etc/apt/sources.list"
  # systemd as PID 1 in a container: no consoles, no udev, no hardware units.
  for unit in getty.target console-getty.service systemd-udevd.service systemd-udevd-control.socket \
    systemd-udevd-kernel.socket systemd-udev-trigger.service systemd-modules-load.service \
    systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    systemd-firstboot.service systemd-logind.service getty@tty1.service; do
    ln -sf /dev/null "$ROOTFS/etc/systemd/system/$unit"
  done
  : >"$ROOTFS/etc/machine-id"
  rm -f "$ROOTFS/var/lib/dbus/machine-id"
  echo ledgerguard-test >"$ROOTFS/etc/hostname"
else
  base_tar=$("$0" base >/dev/null && ls -1 "$IMAGES_DIR"/ledgerguard-test-base-"$BASE_HASH".tar)
  say "variant $VARIANT: base ($BASE_HASH) + ${EXTRA_PACKAGES[*]}"
  mkdir -p "$ROOTFS"
  tar --numeric-owner -xpf "$base_tar" -C "$ROOTFS"
  # Never start daemons while installing into the chroot (they would run on the host).
  printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
  chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  for m in proc sys dev; do
    mkdir -p "$ROOTFS/$m"
    mount --bind "/$m" "$ROOTFS/$m"
    mounted=("$ROOTFS/$m" "${mounted[@]}")
  done
  chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
    sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"' sh "${EXTRA_PACKAGES[@]}" \
    >"$WORK/apt.log" 2>&1 || { tail -n 30 "$WORK/apt.log" >&2; die "installing ${EXTRA_PACKAGES[*]} failed (log above)"; }
  if [ -f "$SETUP_SCRIPT" ]; then
    cp "$SETUP_SCRIPT" "$ROOTFS/tmp/ledgerguard-image-setup.sh"
    chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      sh -eu /tmp/ledgerguard-image-setup.sh >"$WORK/setup.log" 2>&1 ||
      { tail -n 30 "$WORK/setup.log" >&2; die "$(basename "$SETUP_SCRIPT") failed in the image (log above)"; }
    rm -f "$ROOTFS/tmp/ledgerguard-image-setup.sh"
  fi
  for m in "${mounted[@]}"; do umount -l "$m"; done
  mounted=()
  rm -f "$ROOTFS/usr/sbin/policy-rc.d"
  : >"$ROOTFS/etc/resolv.conf"
fi
# Smaller image: no apt lists, caches, docs or man pages.
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/var/log/*.log \
  "$ROOTFS"/var/cache/debconf/*-old
say "root filesystem ready in $((SECONDS - t0)) s ($(du -sm "$ROOTFS" | cut -f1) MB)"
tar --numeric-owner --xattrs --acls -C "$ROOTFS" -cf "$WORK/rootfs.tar" .
mv "$WORK/rootfs.tar" "$TARBALL"
# Keep only the newest tarball of this variant: older recipes are unreachable by hash.
find "$IMAGES_DIR" -maxdepth 1 -name "ledgerguard-test-$VARIANT-*.tar" ! -name "$(basename "$TARBALL")" -delete
import_tarball "$TARBALL"
tag_alias
