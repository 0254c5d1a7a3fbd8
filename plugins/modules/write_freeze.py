#!/usr/bin/python
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: write_freeze
short_description: Freeze and thaw writes on a host during an incident, with a registry and a watchdog
version_added: "0.1.0"
description:
  - Stops further writes to the data of an affected host (I(state=frozen)) and gives them back (I(state=thawed)).
  - Each target has a method. C(service) stops a systemd unit (thaw starts it only if it was running before).
    C(remount_ro) remounts a filesystem read-only (thaw restores its previous mount options).
    C(readonly_bind) bind-mounts a directory read-only over itself (thaw unmounts it).
    C(fsfreeze) freezes a filesystem with the FIFREEZE ioctl, for short consistent windows only (thaw is FITHAW).
    C(postgresql) sets C(default_transaction_read_only) with ALTER SYSTEM, reloads, and ends the sessions that hold
    write transactions (thaw restores the previous value). C(mariadb) sets C(read_only) (thaw restores it).
  - A registry on the host, C(<state_dir>/freeze/<incident>.json), records each target, its method, its previous
    state and when it was frozen. Thaw undoes exactly what this incident did, in reverse order, and leaves alone
    what was already stopped, read-only or frozen before. Freezing twice or thawing twice changes nothing.
  - Freezing arms a watchdog on the host that thaws by itself after I(max_duration) (a transient systemd timer, or a
    detached process on hosts without systemd). Thaw disarms it; I(extend=true) re-arms it with a new deadline.
  - "Refuses: C(/) and the root filesystem, the filesystem that holds I(state_dir), a path that does not exist, a
    unit that does not exist, and a target another incident holds."
  - After freezing, the module proves that a write really fails and returns that proof.
  - "Containment: before the path targets freeze, every process that holds anything under them is found in C(/proc)
    (working directory, root, open files with their open mode, memory maps; compared by device and inode ancestry,
    so a relative-path handle or another mount namespace does not hide it). Writers are stopped (I(containment));
    readers (files open read-only only), allow-listed agents (I(allow)) and this module's own process chain are
    recorded and left running. Each process is recorded in the registry and returned in C(writers): pid, parent,
    user, executable and its sha256, masked command line, start time, what it holds, whether for writing."
  - "Stopped processes stay stopped at the thaw, and the watchdog never resumes them: resuming a suspect is a
    person's decision (C(kill -CONT <pid>) or C(kill -KILL <pid>)); the thaw returns them in C(stopped_processes)."
  - "I(state=rescan) scans the incident's frozen folders again and stops writers that appeared since (run it before
    and after the swap and before the thaw)."
author:
  - ledgerguard engineers (@ledgerguard)
attributes:
  check_mode:
    support: full
    description: Reports the plan (targets, method, what is already frozen) and changes nothing.
  diff_mode:
    support: none
    description: The plan and the registry entries say what changes; there is no diff.
  platform:
    support: full
    platforms: posix
    description: Linux hosts (mountinfo, FIFREEZE, systemd or a detached watchdog process).
options:
  incident:
    description:
      - The incident id that owns the freeze. It names the registry file and the watchdog unit.
      - 1 to 128 letters, digits, C(_), C(.) or C(-), starting with a letter or digit.
    type: str
    required: true
  state:
    description:
      - C(frozen) freezes every target in I(targets); C(thawed) thaws what this incident froze.
      - C(rescan) finds the processes holding the incident's frozen folders again, stops the new writers (same
        I(containment) and I(allow)) and fails if a writer still runs; it freezes and thaws nothing.
    type: str
    choices: [frozen, thawed, rescan]
    default: frozen
  targets:
    description:
      - What to freeze, in order (thaw goes in reverse order). Required with I(state=frozen).
      - With I(state=thawed), only the listed targets are thawed; omitted or empty thaws everything the incident holds.
    type: list
    elements: dict
    default: []
    suboptions:
      method:
        description: How to stop writes to this target.
        type: str
        required: true
        choices: [service, remount_ro, readonly_bind, fsfreeze, postgresql, mariadb]
      name:
        description: A label for reports. Defaults to the method and the path, unit or database.
        type: str
      path:
        description:
          - Absolute path. For C(remount_ro) and C(fsfreeze), a mount point; for C(readonly_bind), a directory that
            is not itself a mount point.
        type: path
      unit:
        description: The systemd unit for C(service) (C(.service) is added when no suffix is given).
        type: str
      port:
        description: The PostgreSQL port (default 5432).
        type: int
      socket_dir:
        description: The PostgreSQL socket directory (psql C(-h)).
        type: path
      database:
        description: The PostgreSQL database to connect to.
        type: str
        default: postgres
      os_user:
        description: The operating-system user psql runs as (through runuser when the module runs as root).
        type: str
        default: postgres
      socket:
        description: The MariaDB socket.
        type: path
      defaults_file:
        description: A MariaDB option file with the login (client section).
        type: path
      login_user:
        description: The MariaDB user (default, the client's own default, root through unix_socket on Debian).
        type: str
  containment:
    description:
      - What to do with a process that can write under a path target (working directory or root inside, a
        directory or a file open for writing there, a shared writable map).
      - C(stop) sends SIGSTOP (the process and its memory stay for forensics); C(kill) sends SIGSTOP then SIGKILL;
        C(report) refuses to freeze while such a process runs, listing them, and leaves nothing frozen (what this run
        froze is thawed again).
    type: str
    choices: [stop, kill, report]
    default: stop
  allow:
    description:
      - The host's own agents, never stopped (recorded as C(allowed)). An entry with a C(/) is an executable path,
        one without is a process name (C(comm), as C(ps -o comm) shows it).
      - This module's own process, its ancestors (the ansible python, the sshd session) and pid 1 are never stopped.
    type: list
    elements: str
    default: []
  services:
    description:
      - systemd units that serve the client folders (smbd, nfs-server, the firm's bookkeeping application, an sftp
        server). Each becomes a C(service) target frozen before the other targets (stopped by the freeze, started
        again by the thaw when it was running). Their processes are left to systemd, not signalled.
    type: list
    elements: str
    default: []
  max_duration:
    description:
      - Seconds after which the watchdog thaws the targets by itself if no thaw comes.
    type: int
    default: 14400
  fsfreeze_max_duration:
    description:
      - Upper bound in seconds for C(fsfreeze) targets (a frozen filesystem blocks every writer, so keep it short).
    type: int
    default: 60
  extend:
    description:
      - With I(state=frozen), move the deadline of every target this incident already holds to now plus
        I(max_duration) and re-arm the watchdog.
    type: bool
    default: false
  verify:
    description:
      - After freezing, prove that a write fails (a probe file gets EROFS, PostgreSQL refuses a write transaction,
        a second FIFREEZE answers EBUSY, the unit is inactive, MariaDB reports read_only) and return the proof.
    type: bool
    default: true
  state_dir:
    description:
      - The host's ledgerguard state directory; the registry lives in its C(freeze/) folder.
    type: path
    default: /var/lib/ledgerguard
  watchdog_backend:
    description:
      - C(systemd) arms a transient timer with systemd-run; C(process) a detached sleeping process whose pid is
        recorded; C(auto) uses systemd when it runs as the init system.
    type: str
    choices: [auto, systemd, process]
    default: auto
  rescan_before_thaw:
    description:
      - With I(state=thawed), first scan the incident's frozen folders again as I(state=rescan) does (same
        I(containment) and I(allow)) and stop the writers that appeared, then thaw. The thaw runs whatever the rescan
        met (a writer that cannot be stopped, an error); the rescan's result is returned as RV(rescan).
    type: bool
    default: false
  evidence_dir:
    description:
      - A folder on the controller (the incident's C(hosts/<host>/) evidence folder) where the action plugin records
        this run in the same task, folder 0700 and file 0600 - C(freeze.json) after a freeze that changed something or
        failed, C(rescan-<label>.json) after a rescan that found a process, C(thaw.json) after a thaw (or its rescan)
        that changed something. Nothing is recorded in check mode. The module on the host does not use it.
    type: path
  rollback_of:
    description:
      - With I(state=thawed), the result of this run's freeze on this host (a failed one too). The action plugin thaws
        only the targets that freeze froze (action C(freeze), C(refreeze) or C(failed)), never what the incident held
        before, and adds them to that freeze's record (C(freeze.json)) as C(rolled_back). When it froze nothing,
        nothing is run. Handled by the action plugin; the module on the host does not use it.
    type: dict
  fail_msg:
    description:
      - Fail the task with this message once the module's work is done (the role's rollback, O(rollback_of), after a
        host failed to freeze, names the hosts that failed). A failure of that work keeps its own message. Handled by
        the action plugin; the module on the host does not use it.
    type: str
  label:
    description:
      - With I(state=rescan), a label for this rescan (C(before_swap), C(after_swap)); returned as RV(label) and naming
        its record C(rescan-<label>.json). Handled by the action plugin; the module on the host does not use it.
    type: str
    default: rescan
notes:
  - C(fsfreeze) cannot read the frozen state of a filesystem without freezing it, so check mode cannot tell whether
    a filesystem was frozen before; the freeze itself records it (FIFREEZE answering EBUSY).
  - MariaDB C(read_only) does not stop accounts holding C(READ_ONLY ADMIN) (root has it); stop or restrict those.
seealso:
  - name: ledgerguard freeze runbook
    description: docs/freeze.md in the collection.
    link: https://example.invalid/ledgerguard/recovery/docs/freeze.md
"""

EXAMPLES = r"""
- name: Freeze the bookkeeping data of this host for incident INC-2026-0042
  ledgerguard.recovery.write_freeze:
    incident: INC-2026-0042
    state: frozen
    max_duration: 7200
    targets:
      - method: service
        unit: ledger-app.service
      - method: readonly_bind
        path: /srv/clients/acme
      - method: remount_ro
        path: /srv/archive
      - method: postgresql
  register: freeze

- name: Give the writes back
  ledgerguard.recovery.write_freeze:
    incident: INC-2026-0042
    state: thawed
"""

RETURN = r"""
incident:
  description: The incident id.
  returned: always
  type: str
  sample: INC-2026-0042
state:
  description: The requested state.
  returned: always
  type: str
  sample: frozen
targets:
  description:
    - One entry per target, with its action (C(freeze), C(already_frozen), C(refreeze), C(left_alone) when it was
      frozen before this incident; C(thaw), C(thawed), C(failed) when thawing), its previous state and its proof.
  returned: O(state=frozen) and O(state=thawed) (not with O(state=rescan))
  type: list
  elements: dict
  sample:
    - name: readonly_bind /srv/clients/acme
      method: readonly_bind
      action: freeze
      previous: {read_only: false, mount_point: false, holding_mount: /srv}
      deadline: "2026-11-26T22:00:00Z"
      proof: {kind: write_refused, errno: EROFS}
msg:
  description: With I(state=thawed), when nothing was left to thaw, says so and who thawed each target and when.
  returned: when a thaw changed nothing
  type: str
  sample: "Nothing to thaw: every target of incident INC-1 on this host was already thawed (readonly_bind /srv/c
    thawed by watchdog at 2026-11-26T10:00:00Z)."
plan:
  description: With I(state=frozen), what the module found before acting (the same entries without proof).
  returned: when state is frozen
  type: list
  elements: dict
proof:
  description: The verification proofs of the targets frozen by this run (see I(verify)).
  returned: when state is frozen
  type: list
  elements: dict
  sample:
    - target: remount_ro /srv/archive
      method: remount_ro
      kind: write_refused
      errno: EROFS
      detail: "creating /srv/archive/.ledgerguard-freeze-probe-INC-1-0a1b2c3d failed: Read-only file system"
watchdog:
  description: The armed watchdog (kind C(systemd) with its unit, or C(process) with its pid), or null.
  returned: O(state=frozen) and O(state=thawed) (not with O(state=rescan))
  type: dict
  sample: {kind: systemd, unit: ledgerguard-thaw-INC-2026-0042-1, fires_at: "2026-11-26T22:00:00Z"}
writers:
  description:
    - The processes found holding the path targets by this run (freeze or rescan), each with C(pid), C(ppid),
      C(user), C(uid), C(comm), C(exe), C(exe_sha256), C(cmdline) (secrets masked), C(started), C(start_ticks),
      C(state), C(holds) (C(kind) cwd/root/fd/map, C(fd), C(path), C(mode), C(writing), C(target)), C(writing),
      C(targets), C(role) (C(writer), C(reader), C(allowed), C(protected), C(service)), C(action) (C(stopped),
      C(killed), C(gone), C(stop_failed), C(refused), C(recorded), C(allowed), C(protected), C(left_to_service),
      in check mode C(would_stop), C(would_kill), C(would_refuse)), C(found_at), C(found_by), C(acted_at),
      C(state_after), C(resume).
  returned: when state is frozen or rescan
  type: list
  elements: dict
  sample:
    - pid: 4242
      user: acct
      exe: /usr/bin/python3.11
      cmdline: python3 encrypt.py --key=***
      holds: [{kind: cwd, path: /srv/clients/acme, mode: dir, writing: true, target: /srv/clients/acme}]
      role: writer
      action: stopped
containment:
  description: The policy and the pids by outcome (C(stopped), C(killed), C(readers), C(allowed), C(held)).
  returned: when state is frozen or rescan
  type: dict
held:
  description: With I(state=rescan), writers that still run (the module fails when there are any).
  returned: when state is rescan
  type: list
  elements: dict
stopped_processes:
  description:
    - With I(state=thawed), the processes this incident stopped that are still stopped, each with C(pid), C(exe),
      C(cmdline), C(resume) (C(kill -CONT <pid>)) and C(end) (C(kill -KILL <pid>)). The thaw never resumes them.
  returned: when state is thawed
  type: list
  elements: dict
registry:
  description: Path of the incident's registry on the host.
  returned: when a registry exists
  type: str
  sample: /var/lib/ledgerguard/freeze/INC-2026-0042.json
remaining:
  description: With I(state=thawed), the targets the incident still holds (those not selected, or whose thaw failed).
  returned: when state is thawed and a registry exists
  type: list
  elements: str
rescan:
  description: With O(rescan_before_thaw), the rescan's result (as I(state=rescan) returns it, with C(failed), C(msg)).
  returned: when state is thawed and rescan_before_thaw is true
  type: dict
label:
  description: With I(state=rescan), the rescan's O(label).
  returned: when state is rescan
  type: str
  sample: after_swap
finished_at:
  description:
    - When the module's run ended, in UTC on the controller's clock (set by the action plugin). The incident notes
      when writes stopped from the freeze's, and its report when they resumed from the thaw's.
  returned: when the module ran
  type: str
  sample: "2026-11-26T09:00:00Z"
record:
  description: The record written into O(evidence_dir), when one was written.
  returned: when a record was written
  type: str
  sample: /var/lib/ledgerguard/evidence/INC-2026-0042/hosts/books01/freeze.json
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ledgerguard.recovery.plugins.module_utils.freeze import (  # noqa: E402
    DEFAULT_FSFREEZE_MAX_DURATION,
    DEFAULT_MAX_DURATION,
    DEFAULT_STATE_DIR,
    METHODS,
    FreezeError,
    Host,
    apply_freeze,
    apply_thaw,
    load_registry,
    validate_incident,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.writers import (  # noqa: E402
    NEEDS_ROOT,
    POLICIES,
    containment_summary,
    make_hook,
    rescan,
    stopped_processes,
)

TARGET_SPEC = {
    "method": {"type": "str", "required": True, "choices": list(METHODS)},
    "name": {"type": "str"},
    "path": {"type": "path"},
    "unit": {"type": "str"},
    "port": {"type": "int"},
    "socket_dir": {"type": "path"},
    "database": {"type": "str", "default": "postgres"},
    "os_user": {"type": "str", "default": "postgres"},
    "socket": {"type": "path"},
    "defaults_file": {"type": "path"},
    "login_user": {"type": "str"},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "incident": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["frozen", "thawed", "rescan"], "default": "frozen"},
            "containment": {"type": "str", "choices": list(POLICIES), "default": "stop"},
            "allow": {"type": "list", "elements": "str", "default": []},
            "services": {"type": "list", "elements": "str", "default": []},
            "targets": {"type": "list", "elements": "dict", "options": TARGET_SPEC, "default": []},
            "max_duration": {"type": "int", "default": DEFAULT_MAX_DURATION},
            "fsfreeze_max_duration": {"type": "int", "default": DEFAULT_FSFREEZE_MAX_DURATION},
            "extend": {"type": "bool", "default": False},
            "verify": {"type": "bool", "default": True},
            "state_dir": {"type": "path", "default": DEFAULT_STATE_DIR},
            "watchdog_backend": {"type": "str", "choices": ["auto", "systemd", "process"], "default": "auto"},
            "rescan_before_thaw": {"type": "bool", "default": False},
            "evidence_dir": {"type": "path"},
            "label": {"type": "str", "default": "rescan"},
            "rollback_of": {"type": "dict"},
            "fail_msg": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    module.run_command_environ_update = {"LC_ALL": "C", "LANG": "C", "LC_MESSAGES": "C"}
    try:
        validate_incident(p["incident"])
    except FreezeError as exc:
        module.fail_json(msg=str(exc), incident=p["incident"], state=p["state"])

    def run(argv: list[str]) -> tuple[int, str, str]:
        return module.run_command(argv)

    def which(name: str) -> str | None:
        return module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"])

    if os.geteuid() != 0 and not module.check_mode:
        module.fail_json(msg=NEEDS_ROOT)

    if p["state"] == "rescan":
        # The one rescan (module_utils/writers.rescan), which restore_swap runs too, right before each client's swap.
        result = rescan(p["incident"], p["state_dir"], p["containment"], p["allow"], run, which, module.check_mode)
        for warning in result.pop("warnings", None) or []:
            module.warn(warning)
        if result.pop("failed", False):
            module.fail_json(**result)
        module.exit_json(**result)

    host = Host(run, state_dir=p["state_dir"], which=which)
    result = {"incident": p["incident"], "state": p["state"]}
    if p["state"] == "thawed" and p["rescan_before_thaw"]:
        result["rescan"] = _rescan_before_thaw(module, p, run, which)
    contain = make_hook(p["containment"], p["allow"])
    targets = [{"method": "service", "unit": u} for u in p["services"]] + list(p["targets"])
    try:
        if p["state"] == "frozen":
            if not targets:
                module.fail_json(
                    msg="state=frozen needs at least one target in 'targets' (method plus path, unit or database); "
                    "with the role, set write_freeze_targets for this host.",
                    **result,
                )
            out = apply_freeze(
                host,
                p["incident"],
                targets,
                max_duration=p["max_duration"],
                fsfreeze_max_duration=p["fsfreeze_max_duration"],
                verify=p["verify"],
                extend=p["extend"],
                check_mode=module.check_mode,
                watchdog_backend=p["watchdog_backend"],
                contain=contain,
            )
        else:
            out = apply_thaw(
                host,
                p["incident"],
                p["targets"] or None,
                check_mode=module.check_mode,
                watchdog_backend=p["watchdog_backend"],
            )
    except FreezeError as exc:
        result.update(exc.result)
        result.pop("errors", None)
        containment_summary(result, p["containment"])
        module.fail_json(msg=str(exc), **result)
    except OSError as exc:
        module.fail_json(msg=f"write_freeze for incident {p['incident']} failed on the host: {exc}", **result)
    result.update(out)
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    if p["state"] == "thawed":
        registry = _registry_or_none(p["state_dir"], p["incident"])
        result["stopped_processes"] = stopped_processes(registry) if registry else []
    else:
        containment_summary(result, p["containment"])
    errors = result.pop("errors", None)
    if errors:
        module.fail_json(
            msg="thawing failed for: "
            + "; ".join(errors)
            + ". The failed targets stay in the registry and the watchdog stays armed; fix the cause and thaw again.",
            **result,
        )
    if p["state"] == "thawed" and not result.get("changed") and not module.check_mode:
        result["msg"] = _nothing_to_thaw(p["state_dir"], p["incident"])
    if result.get("rescan", {}).get("changed"):
        result["changed"] = True
    module.exit_json(**result)


def _rescan_before_thaw(module: AnsibleModule, p: dict, run, which) -> dict:
    """The rescan right before the thaw, as state=rescan runs it. The thaw runs whatever happens here: a writer that
    cannot be stopped is recorded (the report names it), and so is any error."""
    try:
        scan = rescan(p["incident"], p["state_dir"], p["containment"], p["allow"], run, which, module.check_mode)
    except Exception as exc:  # noqa: BLE001 - nothing may keep the thaw from running
        scan = {"incident": p["incident"], "state": "rescan", "msg": f"the rescan before the thaw failed: {exc!r}"}
        scan["failed"] = True
    for warning in scan.pop("warnings", None) or []:
        module.warn(warning)
    scan.setdefault("failed", False)
    scan.setdefault("changed", False)
    return scan


def _registry_or_none(state_dir: str, incident: str) -> dict | None:
    try:
        return load_registry(state_dir, incident)
    except FreezeError:
        return None


def _nothing_to_thaw(state_dir: str, incident: str) -> str:
    """Say why a thaw changed nothing: no freeze was recorded, or who thawed the targets and when."""
    try:
        registry = load_registry(state_dir, incident)
    except FreezeError:
        registry = None
    if not registry:
        return f"Nothing to thaw: incident {incident} froze nothing on this host (no registry in {state_dir}/freeze)."
    released = registry.get("released") or []
    if not released:
        return f"Nothing to thaw: incident {incident} holds no frozen target on this host."
    done = "; ".join(
        f"{r.get('label', r.get('method'))} thawed by {r.get('thawed_by', '?')} at {r.get('thawed_at', '?')}"
        for r in released
    )
    return f"Nothing to thaw: every target of incident {incident} on this host was already thawed ({done})."


if __name__ == "__main__":
    main()
