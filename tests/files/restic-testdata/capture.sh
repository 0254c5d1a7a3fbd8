#!/usr/bin/env bash
# capture.sh <restic binary> <suffix>: unpack each of restic's test repositories here into a temporary folder and
# record what `restic check` (and `restic check --read-data`) prints on it, plus `restic find --json --pack` for every
# pack the check names, into check/<repo>_<suffix>[_read_data].{stdout,stderr,rc} and check/<repo>_<suffix>.find-<pack>.
# The unit tests (tests/unit/test_restic_testdata.py) replay these files. Password of every repository: geheim.
set -u
R=$1; SUFFIX=$2
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
printf geheim > "$WORK/pw"; chmod 600 "$WORK/pw"
mkdir -p "$WORK/cache" "$HERE/check"
export RESTIC_PASSWORD_FILE=$WORK/pw RESTIC_CACHE_DIR=$WORK/cache LC_ALL=C
for tarball in "$HERE"/repo-*.tar.gz; do
  name=$(basename "$tarball" .tar.gz)
  mkdir "$WORK/$name"; tar xzf "$tarball" -C "$WORK/$name"
  export RESTIC_REPOSITORY=$WORK/$name/repo
  for mode in "" _read_data; do
    out=$HERE/check/${name}_${SUFFIX}${mode}
    if [ -n "$mode" ]; then "$R" check --read-data >"$out.stdout" 2>"$out.stderr"; else "$R" check >"$out.stdout" 2>"$out.stderr"; fi
    echo $? >"$out.rc"
    sed -i "s#$WORK#/WORK#g" "$out.stdout" "$out.stderr"
  done
  for pack in $(grep -ohE 'pack [0-9a-f]{64}' "$HERE/check/${name}_${SUFFIX}"*.stdout "$HERE/check/${name}_${SUFFIX}"*.stderr | awk '{print $2}' | sort -u); do
    "$R" find --json --pack -- "$pack" >"$HERE/check/${name}_${SUFFIX}.find-${pack:0:8}" 2>/dev/null
  done
  "$R" snapshots --json >"$HERE/check/${name}_${SUFFIX}.snapshots"
done
