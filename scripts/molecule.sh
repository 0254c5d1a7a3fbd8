#!/usr/bin/env bash
# Run the Molecule scenarios (podman, local image) against an embedded S3 server on the host's loopback.
#
#   scripts/molecule.sh                  every scenario directory under molecule/
#   scripts/molecule.sh restic           only the named scenario(s)
#   scripts/molecule.sh --cmd converge restic
#                                        another molecule command (e.g. "test --destroy=never" to keep the container
#                                        for `source scripts/molecule/env.sh; podman exec -it ledgerguard-restic bash`)
#
# What it does: points podman, Molecule and Ansible at private settings inside .cache (scripts/molecule/env.sh),
# builds or re-imports the test images (scripts/molecule/images.sh; a scenario that needs the database image
# says so in molecule.yml with `image: localhost/ledgerguard-test:db`), starts moto on 127.0.0.1 and exports
# LEDGERGUARD_TEST_S3_ENDPOINT, LEDGERGUARD_TEST_PASSWORD_FILE, LEDGERGUARD_TEST_S3_CREDENTIALS_FILE and the AWS_*
# credentials, runs `molecule <cmd> -s <scenario>` for each scenario, stops moto, and prints a summary with times.
# The summary's CPU seconds: 'here' is what this script waited for (molecule, Ansible, testinfra, podman's CLI, and
# the modules and their restic that lg_podman runs in the containers through nsenter, which stay in this cgroup);
# 'in containers' is the containers' own processes (systemd, the services) and their conmon, from the cpuacct counter
# of the cgroup podman puts this run's containers under (create.yml's --cgroup-parent,
# LEDGERGUARD_MOLECULE_CGROUP_PARENT); '-' where no cpuacct cgroup is writable.
# Exits non-zero when any scenario fails or leaves a loop device attached.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CMD=test
# One scenario may take this long (seconds) before it is stopped, cleaned up and counted as failed.
SCENARIO_TIMEOUT=${LEDGERGUARD_MOLECULE_TIMEOUT:-1200}
scenarios=()
while [ $# -gt 0 ]; do
  case $1 in
    --cmd) CMD=${2:?--cmd needs a molecule command}; shift 2 ;;
    --cmd=*) CMD=${1#--cmd=}; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "molecule.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) scenarios+=("$1"); shift ;;
  esac
done

say() { printf 'molecule.sh: %s\n' "$*"; }
die() { printf 'molecule.sh: ERROR: %s\n' "$*" >&2; exit 2; }

[ -x .venv/bin/molecule ] || die "no .venv with molecule: run 'make setup' first"
[ "$(id -u)" -eq 0 ] || die "the scenarios run privileged podman containers and build images with debootstrap: run as root"
for tool in podman runc debootstrap; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null || die "$tool is not installed: run 'make setup' (it installs podman, runc, debootstrap)"
done

# shellcheck source=scripts/molecule/env.sh
source scripts/molecule/env.sh
export MOLECULE_GLOB="molecule/*/molecule.yml"
export PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 NO_COLOR=1
# The module_utils part of each module's payload, built once and kept across the scenarios' runs on the controller
# (tests/pyboot/sitecustomize.py, test harness only; its header says why). Set LEDGERGUARD_TEST_MODULE_PAYLOADS empty
# to run without it. The modules that run in the containers are the ones Ansible builds either way.
export LEDGERGUARD_TEST_MODULE_PAYLOADS="${LEDGERGUARD_TEST_MODULE_PAYLOADS-$ROOT/.cache/module-payloads}"
export PYTHONPATH="$ROOT/tests/pyboot${PYTHONPATH:+:$PYTHONPATH}"

if [ ${#scenarios[@]} -eq 0 ]; then
  for d in molecule/*/; do
    [ -f "$d/molecule.yml" ] && scenarios+=("$(basename "$d")")
  done
fi
[ ${#scenarios[@]} -gt 0 ] || die "no scenario found under molecule/"
for s in "${scenarios[@]}"; do
  [ -f "molecule/$s/molecule.yml" ] || die "no scenario '$s' (expected molecule/$s/molecule.yml)"
done

# Images: the base image always; the database image only when a chosen scenario names it.
t0=$SECONDS
scripts/molecule/images.sh "${scenarios[@]}" || die "preparing the images failed (output above)"
image_seconds=$((SECONDS - t0))

# The S3 server, its password and credentials files live for this run only.
# Each run has its own folder (several runs may share the checkout); its secrets are removed at exit, its logs kept
# for a day.
RUNS="$ROOT/.cache/molecule-runs"
mkdir -p "$RUNS"
find "$RUNS" -mindepth 1 -maxdepth 1 -type d -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
RUN_DIR=$(mktemp -d "$RUNS/$(date +%Y%m%dT%H%M%S)-XXXX")
chmod 0700 "$RUN_DIR"
date +%s >"$RUN_DIR/started"
echo $$ >"$RUN_DIR/pid"
.venv/bin/python scripts/molecule/s3_server.py "$RUN_DIR" &
s3_pid=$!
stop_s3() {
  if kill -0 "$s3_pid" 2>/dev/null; then
    kill -TERM "$s3_pid" 2>/dev/null
    wait "$s3_pid" 2>/dev/null
  fi
  rm -f "$RUN_DIR/restic-password" "$RUN_DIR/s3-credentials" "$RUN_DIR/s3.env"
}
trap stop_s3 EXIT
trap 'stop_s3; exit 130' INT TERM
for _ in $(seq 300); do
  [ -s "$RUN_DIR/s3.env" ] && break
  kill -0 "$s3_pid" 2>/dev/null || die "the S3 server did not start (see $RUN_DIR/moto.log)"
  sleep 0.1
done
[ -s "$RUN_DIR/s3.env" ] || die "the S3 server did not report its endpoint within 30 s"
# shellcheck disable=SC1091
source "$RUN_DIR/s3.env"
say "S3 server at $LEDGERGUARD_TEST_S3_ENDPOINT; images ready in ${image_seconds} s"

# The containers' CPU: every container of this run (and its conmon) under one cgroup, whose cpuacct counter keeps
# what removed containers used.
CG_NAME="ledgerguard-molecule-$(basename "$RUN_DIR")"
cg_usage_file=""
if [ -d /sys/fs/cgroup/cpuacct ] && mkdir -p "/sys/fs/cgroup/cpuacct/$CG_NAME" 2>/dev/null; then
  cg_usage_file="/sys/fs/cgroup/cpuacct/$CG_NAME/cpuacct.usage" # cgroup v1, nanoseconds
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && mkdir -p "/sys/fs/cgroup/$CG_NAME" 2>/dev/null; then
  cg_usage_file="/sys/fs/cgroup/$CG_NAME/cpu.stat" # cgroup v2, usage_usec
fi
[ -n "$cg_usage_file" ] && export LEDGERGUARD_MOLECULE_CGROUP_PARENT="/$CG_NAME"
containers_cpu_ms() { # CPU milliseconds the run's containers used so far, or nothing
  [ -n "$cg_usage_file" ] && [ -r "$cg_usage_file" ] || return 0
  case $cg_usage_file in
    */cpuacct.usage) echo $(($(cat "$cg_usage_file") / 1000000)) ;;
    *) awk '$1 == "usage_usec" { print int($2 / 1000) }' "$cg_usage_file" ;;
  esac
}
remove_cgroup() {
  find /sys/fs/cgroup/*/"$CG_NAME" /sys/fs/cgroup/"$CG_NAME" -depth -type d -exec rmdir {} \; 2>/dev/null || true
}
read_children_cpu() { # CHILDREN_MS: user + system CPU ms of this shell's waited-for children so far (`times`, run
  # in this shell: in a subshell it would count the subshell's children)
  times >"$RUN_DIR/times"
  CHILDREN_MS=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
                               print int(t * 1000) }' "$RUN_DIR/times")
}
cpu_s() { [ -n "$1" ] && printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)) || printf -- -; }

loops_before=$(losetup -a 2>/dev/null | cut -d: -f1 | sort)
results=()
failed=0
for s in "${scenarios[@]}"; do
  printf '\n=== molecule %s -s %s ===\n' "$CMD" "$s"
  ts=$SECONDS
  read_children_cpu
  here0=$CHILDREN_MS
  cont0=$(containers_cpu_ms)
  log="$RUN_DIR/$s.log"
  # shellcheck disable=SC2086
  timeout --kill-after=60 "$SCENARIO_TIMEOUT" .venv/bin/molecule $CMD -s "$s" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    # A hung scenario: thaw and release through its cleanup playbook before its containers are destroyed.
    say "scenario $s did not finish within $SCENARIO_TIMEOUT s: running its cleanup, then destroy"
    { .venv/bin/molecule cleanup -s "$s" && .venv/bin/molecule destroy -s "$s"; } >>"$log" 2>&1 ||
      say "cleanup/destroy of $s failed too: inspect with 'source scripts/molecule/env.sh; podman ps -a' (see $log)"
  fi
  read_children_cpu
  here=$((CHILDREN_MS - here0))
  cont=$(containers_cpu_ms)
  [ -n "$cont" ] && [ -n "$cont0" ] && cont=$((cont - cont0)) || cont=""
  cpu="$(printf 'CPU %6s s here, %6s s in containers' "$(cpu_s "$here")" "$(cpu_s "$cont")")"
  if [ "$rc" -eq 0 ]; then
    results+=("$(printf '%-16s passed %5d s  %s' "$s" $((SECONDS - ts)) "$cpu")")
  else
    results+=("$(printf '%-16s FAILED %5d s  %s  (exit %d, log: %s)' "$s" $((SECONDS - ts)) "$cpu" "$rc" "${log#"$ROOT"/}")")
    failed=1
  fi
done
loops_after=$(losetup -a 2>/dev/null | cut -d: -f1 | sort)
leaked=$(comm -13 <(echo "$loops_before") <(echo "$loops_after") | grep . || true)
date +%s >"$RUN_DIR/ended"

# Did another run of this script overlap ours? Then a new loop device may be its, not ours.
overlapped=""
for other in "$RUNS"/*/; do
  other=${other%/}
  [ "$other" != "$RUN_DIR" ] && [ -f "$other/started" ] || continue
  o_start=$(cat "$other/started")
  if [ -f "$other/ended" ]; then o_end=$(cat "$other/ended")
  elif kill -0 "$(cat "$other/pid" 2>/dev/null || echo 0)" 2>/dev/null; then o_end=$(date +%s)
  else o_end=$(stat -c %Y "$other"); fi
  if [ "$o_start" -le "$(cat "$RUN_DIR/ended")" ] && [ "$o_end" -ge "$(cat "$RUN_DIR/started")" ]; then
    overlapped=${other#"$ROOT"/}
  fi
done

stop_s3
remove_cgroup
printf '\n=== molecule summary (%s) ===\n' "$CMD"
printf '%s\n' "${results[@]}"
if [ -n "$leaked" ]; then
  if [ -n "$overlapped" ]; then
    printf 'warning: new loop devices attached during this run (%s), but another run (%s) overlapped it: check them\n' \
      "$(echo "$leaked" | tr '\n' ' ')" "$overlapped"
  else
    printf 'FAILED: loop devices left attached by the scenarios (thaw, unmount, then losetup -d): %s\n' \
      "$(echo "$leaked" | tr '\n' ' ')"
    failed=1
  fi
fi
n_failed=$(printf '%s\n' "${results[@]}" | grep -c ' FAILED' || true)
printf 'molecule: %d passed, %d failed in %d s\n' $((${#scenarios[@]} - n_failed)) "$n_failed" "$SECONDS"
exit "$failed"
