#!/usr/bin/env bash
# Fetch a newer restic than Debian 12's 0.14 for the compatibility tests: Debian 13 (trixie)'s package, downloaded
# and signature-checked by apt with an apt configuration of its own under .cache (the system's sources are not
# touched, nothing is installed), then unpacked to .cache/restic-newer/restic. restic is one static Go binary, so
# trixie's build runs on bookworm. Prints the binary's path on stdout; everything else goes to stderr.
# Usage: scripts/fetch-restic.sh [SUITE]   (default trixie)
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:-trixie}
root=$PWD/.cache/restic-newer
bin=$root/restic
if [ -x "$bin" ] && [ "$(cat "$root/suite" 2>/dev/null)" = "$suite" ]; then
  echo "$bin"
  exit 0
fi
apt_dir=$root/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$root/deb"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
  > "$apt_dir/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Dir::State::Status=/dev/null"
  -o APT::Sandbox::User=root -o Debug::NoLocking=1
)
echo "fetch-restic: reading Debian $suite's package list" >&2
apt-get -q "${apt_opts[@]}" update >&2
rm -f "$root"/deb/*.deb
(cd "$root/deb" && apt-get -q "${apt_opts[@]}" download restic >&2)
deb=$(ls "$root"/deb/restic_*.deb)
rm -rf "$root/unpacked"
dpkg-deb -x "$deb" "$root/unpacked"
install -m 0755 "$root/unpacked/usr/bin/restic" "$bin"
echo "$suite" > "$root/suite"
echo "fetch-restic: $("$bin" version) from $(basename "$deb")" >&2
echo "$bin"
