#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restic_backup
short_description: Back up paths, or several clients one snapshot each, into a restic repository
description:
  - Runs C(restic backup --json) for O(paths) and returns the new snapshot's ID and restic's summary.
  - With O(clients) instead of O(paths), backs up each client into its own snapshot, one C(restic backup) after the
    other in one module run (the C(ledgerguard.recovery.backup) role's step per host), and returns one entry per
    client in RV(clients). A client that fails does not stop the others; the task then fails after all of them, naming
    each failed client and why (the same message a run of its own would give).
  - Every run makes a new snapshot (restic deduplicates the data), so the task always reports a change.
  - If some files could not be read, restic still makes a snapshot (exit code 3); the task then succeeds with
    warnings that list them, unless O(fail_on_unreadable=true).
version_added: 0.1.0
author: ledgerguard contributors (@ledgerguard)
options:
  paths:
    description:
      - Absolute paths on the managed host to back up. Each must exist.
      - Exactly one of O(paths) and O(clients) is required.
    type: list
    elements: path
  clients:
    description:
      - Back up several clients, each into its own snapshot, in this order (instead of O(paths)).
      - Each client's snapshot is tagged with its C(id), then O(tags), then its own C(tags); it excludes O(exclude) and
        its own C(exclude); O(host), O(manifest) and O(fail_on_unreadable) apply to every client.
    type: list
    elements: dict
    suboptions:
      id:
        description: The client's ID (its first snapshot tag; no comma).
        type: str
        required: true
      name:
        description: The client's name, returned with its result.
        type: str
        default: ""
      paths:
        description: Absolute paths of the client on the managed host. Each must exist.
        type: list
        elements: path
        required: true
      tags:
        description: Further tags of this client's snapshot.
        type: list
        elements: str
        default: []
      exclude:
        description: Further exclude patterns for this client (restic C(--exclude)).
        type: list
        elements: str
        default: []
  stop_if_exists:
    description:
      - With O(clients), a path on the managed host (the incident lock) looked for before each client. When it exists,
        that client and the ones after it are not backed up (status C(not_run)), RV(stopped_before) names the first
        of them and the task fails.
    type: path
  lock:
    description:
      - Take the host's backup lock (the one M(ledgerguard.recovery.backup_lock) takes) before anything is backed up,
        so that the run needs no task of its own for it. The run fails without backing anything up, with the message
        M(ledgerguard.recovery.backup_lock) gives, while the incident lock O(lock.incident_lock) exists (looked for
        before and after taking the lock) or while another run holds the lock after O(lock.wait) seconds.
      - Without O(lock.hold_after) the module's own process holds the lock and gives it back when it ends - also when
        it is killed (for example at the end of an C(async) job's time), for a backup that nothing else of the run
        follows. With O(lock.hold_after=true) a small detached process keeps it after the module ends, for the
        run's later steps, until M(ledgerguard.recovery.backup_lock) releases it (C(state=released), the same
        O(lock.run_id)) or O(lock.max_hold) seconds pass.
      - In check mode the lock is only tested (taken and given back at once; without a lock file nothing is created);
        the same refusals apply.
    type: dict
    suboptions:
      path:
        description: As M(ledgerguard.recovery.backup_lock)'s C(path), the lock file.
        type: path
        default: /var/lib/ledgerguard/backup.lock
      incident_lock:
        description: As M(ledgerguard.recovery.backup_lock)'s C(incident_lock), the host's incident lock file.
        type: path
        default: /var/lib/ledgerguard/incident.lock
      run_id:
        description: ID of this run, given to the release too. A lock this run ID already holds is kept.
        type: str
        required: true
      purpose:
        description: As M(ledgerguard.recovery.backup_lock)'s C(purpose), shown to a run that finds the lock held.
        type: str
        default: backup
      max_hold:
        description: With O(lock.hold_after), seconds after which the detached holder gives the lock up by itself.
        type: int
        default: 43200
      wait:
        description: As M(ledgerguard.recovery.backup_lock)'s C(wait), the seconds this run waits for another run's lock
          (V(0) - it fails at once).
        type: int
        default: 0
      hold_after:
        description: Keep the lock after the module ends (see above), for the run's later steps.
        type: bool
        default: false
  progress_file:
    description:
      - With O(clients), a file on the managed host to which the run writes its progress, for a poller while the task
        runs as an C(async) job (the C(ledgerguard.recovery.backup) role reads it with
        M(ledgerguard.recovery.job_progress)) - before each client, about every O(progress_interval) seconds while
        restic backs up a client, and at the end.
      - A JSON object C({"done", "total", "current", "finished", "client"}) - clients done so far, clients in all, the
        ID of the client being backed up (empty at the end), one C({"id", "status"}) per finished client, and
        C(client), the client being backed up (absent at the end) - its C(id) and C(name), and once restic has
        printed a status for it restic's figures C(percent_done) (0 to 1), C(bytes_done), C(total_bytes),
        C(files_done), C(total_files), C(seconds_elapsed), C(seconds_remaining) (0 while restic has no estimate)
        and C(error_count). Client IDs, names, statuses and numbers only - no secrets, no file names (restic's
        C(current_files) is left out).
      - Each write replaces the file atomically (a temporary file in the same folder, then a rename), mode 0600; its
        folder must exist. Not written in check mode. Default is no file.
      - Beside it, C(<progress_file>.finished) (mode 0600, emptied when the run starts) gets one JSON line per client
        as it ends - its C(id), C(name), C(status), and when backed up C(files_new), C(files_changed),
        C(data_added), C(seconds) (the client's duration, manifest included), C(snapshot) and C(manifest) (short
        IDs); when failed C(error_kind). M(ledgerguard.recovery.job_progress) takes these lines at each poll (and
        empties the file), so a client that starts and ends between two polls still shows its one-line result.
    type: path
  progress_interval:
    description:
      - With O(progress_file), the seconds between two updates of the client being backed up in the file. restic is
        asked for one status line per interval (C(RESTIC_PROGRESS_FPS), for that C(restic backup) only), and a
        status arriving sooner after the last write is not written.
      - Without O(progress_file) restic is asked for none (unset, C(restic backup --json) prints up to 60 a second).
    type: float
    default: 5.0
  tags:
    description: Tags for the new snapshot (for example the client ID, C(daily), or an incident ID).
    type: list
    elements: str
    default: []
  host:
    description: Host name recorded in the snapshot. Default is the managed host's own name.
    type: str
  exclude:
    description: Exclude patterns (restic C(--exclude)).
    type: list
    elements: str
    default: []
  fail_on_unreadable:
    description: Fail when restic could not read some source files (the incomplete snapshot is still made).
    type: bool
    default: false
  manifest:
    description:
      - After the data snapshot, record its B(backup-time manifest) - the sha256, size and mtime of every file of
        O(paths), hashed on this host - and store it in the same repository as a separate stdin snapshot tagged
        C(ledgerguard-manifest) and C(ledgerguard-manifest-for=<data snapshot ID>), with the same host and time.
      - The restore role compares a restored tree with it before the swap (file_manifest C(operation=compare_backup)).
        Snapshot listings that choose restore points, check freshness or coverage, assess damage or drill ignore
        manifest snapshots.
      - A file that changes between the backup and the manifest is later reported as changed since the manifest
        (its size or mtime differs), not as damage, so recording after the backup is safe on a live tree.
      - With O(clients) and restic older than 0.17 (whose backup summary names the new snapshot by 8 digits and
        without its time), each client's files are hashed right after its backup, and the manifests are stored after
        the last client's backup, from one C(restic snapshots) listing of the run's new snapshots (instead of one per
        client); those clients' lines in C(<progress_file>.finished) are written then, in order. With restic 0.17 and
        later no listing is needed and each manifest is stored right after its client's backup.
      - Default V(false) because recording reads every backed-up file a second time (as much read I/O as a first
        backup) and adds a snapshot; turn it on for the nightly backups whose restores you want checked end to end.
    type: bool
    default: false
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description:
      - In check mode no snapshot is made. When restic supports C(backup --dry-run) (0.14 and later), it runs in dry-run
        mode and RV(summary) shows what would be stored; RV(snapshot_id) is empty.
      - In check mode no manifest is recorded either; RV(manifest) says so.
      - With O(clients), each client's entry in RV(clients) is its dry run.
"""

EXAMPLES = r"""
- name: Back up the ledgers of every client, tagged with the incident
  ledgerguard.recovery.restic_backup:
    paths: [/srv/ledgers]
    tags: [incident, "{{ ledgerguard_incident_id }}"]
  register: backup

- name: Nightly backup of the books with its backup-time manifest (checked by the restore role before a swap)
  ledgerguard.recovery.restic_backup:
    paths: [/srv/ledgers]
    tags: [nightly]
    manifest: true
  register: nightly

- name: Show the snapshot
  ansible.builtin.debug:
    msg: "snapshot {{ backup.short_id }}: {{ backup.summary.files_new }} new files"

- name: Back up every client of the host in one run, one snapshot each, stopping if an incident takes the host
  ledgerguard.recovery.restic_backup:
    clients:
      - {id: c001, name: 杭州示例贸易有限公司, paths: [/srv/账套/c001], exclude: ["*.tmp"]}
      - {id: c002, name: 宁波示例制造有限公司, paths: [/srv/账套/c002]}
    tags: [ledgerguard-backup]
    manifest: true
    stop_if_exists: /var/lib/ledgerguard/incident.lock
  register: nightly_clients
"""

RETURN = r"""
snapshot_id:
  description: Full ID of the new snapshot; empty in check mode.
  returned: success with O(paths)
  type: str
  sample: e5c57c8f2ab3b24032535430b2c1c6285b94a638368d329057f35a89aea232f4
short_id:
  description: Short ID of the new snapshot; empty in check mode.
  returned: success with O(paths)
  type: str
  sample: e5c57c8f
summary:
  description: restic's backup summary (C(files_new), C(files_changed), C(files_unmodified), C(dirs_new),
    C(data_added), C(total_files_processed), C(total_bytes_processed), C(total_duration), ...) plus C(errors), the
    files restic could not read.
  returned: success with O(paths)
  type: dict
  sample: {"files_new": 3, "data_added": 203571, "total_files_processed": 3, "errors": []}
paths:
  description: The paths backed up.
  returned: success with O(paths)
  type: list
  elements: str
tags:
  description: The tags of the snapshot.
  returned: success with O(paths)
  type: list
  elements: str
host:
  description: The host name recorded in the snapshot (empty when restic chose it).
  returned: success
  type: str
seconds:
  description: Wall-clock duration of the backup command.
  returned: success with O(paths)
  type: float
restic_version:
  description: The version of the restic binary used.
  returned: success
  type: str
  sample: 0.14.0
manifest:
  description:
    - The backup-time manifest recorded with O(manifest=true) - C(recorded) (false in check mode),
      C(manifest_snapshot_id), C(manifest_short_id), C(files), C(bytes), C(errors) (files that could not be read),
      C(manifest_bytes), C(digest) (sha256 of the manifest file) and C(seconds).
  returned: with O(paths) and O(manifest=true)
  type: dict
  sample: {"recorded": true, "manifest_snapshot_id": "9b2f5c...", "manifest_short_id": "9b2f5c1a", "files": 62,
           "bytes": 204810, "errors": 0, "manifest_bytes": 15872, "digest": "5e8848...", "seconds": 0.42}
manifest_snapshot_id:
  description: Full ID of the manifest snapshot; empty in check mode and when O(manifest=false).
  returned: success with O(paths)
  type: str
  sample: 9b2f5c1a3c0e4d6f8a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7
clients:
  description:
    - With O(clients), one entry per client in the given order - C(id), C(name), C(status) (C(ok), C(failed), or
      C(not_run) after a stop by O(stop_if_exists)); with C(ok) the keys a run with O(paths) returns (C(snapshot_id),
      C(short_id), C(summary), C(seconds), C(paths), C(tags), C(host), C(manifest_snapshot_id), C(manifest)); with
      C(failed) C(msg) (the message a run of its own would fail with) and C(error_kind) when restic failed.
  returned: with O(clients), also when the task fails
  type: list
  elements: dict
  sample: [{"id": "c001", "name": "杭州示例贸易有限公司", "status": "ok", "snapshot_id": "e5c57c8f...",
            "short_id": "e5c57c8f", "summary": {"files_new": 3, "data_added": 203571}, "seconds": 1.2,
            "manifest_snapshot_id": "9b2f5c1a..."},
           {"id": "c002", "name": "", "status": "failed", "msg": "paths entry /srv/c002 does not exist on this host;
            nothing was backed up"}]
failed_clients:
  description: With O(clients), the IDs of the clients that failed, in order.
  returned: with O(clients), also when the task fails
  type: list
  elements: str
stopped_before:
  description: With O(clients), the client before which O(stop_if_exists) stopped the run; empty when it did not.
  returned: with O(clients), also when the task fails
  type: str
lock:
  description:
    - With O(lock), the lock as the run left it - C(taken) (false when this O(lock.run_id) held it already, or when
      refused), C(held_after) (whether it is still held for this run after the module - O(lock.hold_after), or held
      already), C(holder) (the run holding it - C(run_id), C(purpose), C(host), C(pid), C(started); another run's when
      refused) and C(waited) (seconds).
  returned: with O(lock), also when the task fails
  type: dict
  sample: {"taken": true, "held_after": false, "waited": 0.0,
           "holder": {"run_id": "20261207T020000Z-books-hz01-1", "purpose": "backup", "host": "books-hz01",
                      "pid": 41873, "held_by": "module", "started": "2026-12-07T02:00:00Z"}}
error_kind:
  description: On failure, the class of the failure (see the restic doc fragment notes).
  returned: failure
  type: str
"""

import os  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import time  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_lock import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    LOCK_OPTIONS,
    LockRefused,
    acquire,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_manifest import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    ManifestBatch,
    backup_and_record,
    backup_args,
    backup_base,
    backup_dry_run,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    ResticError,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)


def check_paths(paths: list[str]) -> None:
    if not paths:
        raise ValueError("paths is empty: give at least one absolute path to back up")
    for path in paths:
        if not os.path.isabs(path):
            raise ValueError(f"paths entry {path!r} is not absolute; give absolute paths such as /srv/ledgers")
        if not os.path.lexists(path):
            raise ValueError(f"paths entry {path} does not exist on this host; nothing was backed up")


def check_tags(tags: list[str]) -> None:
    for tag in tags:
        if not tag or "," in tag:
            raise ValueError(f"tag {tag!r} is empty or contains a comma; restic tags cannot contain commas")


def back_up(module, restic, paths: list[str], tags: list[str], exclude: list[str], on_status=None, batch=None) -> dict:
    """One snapshot of ``paths`` (check mode: its dry run), with its manifest when asked: the result of a run with
    O(paths), and of each client with O(clients). ``on_status`` gets restic's progress while it backs up; ``batch``
    (a ManifestBatch) holds a manifest that waits for the run's one listing."""
    params = module.params
    check_paths(paths)
    check_tags(tags)
    args = backup_args(params["host"], tags, exclude)
    base = backup_base(restic, params["host"], paths, tags, params["manifest"])
    if module.check_mode:
        return backup_dry_run(restic, args, paths, base)
    return backup_and_record(
        restic,
        args,
        paths,
        base,
        fail_on_unreadable=params["fail_on_unreadable"],
        manifest=params["manifest"],
        manifest_exclude=exclude,
        warn=module.warn,
        tmpdir=module.tmpdir,
        on_status=on_status,
        progress_interval=params["progress_interval"],
        batch=batch,
    )


def named(entry: dict) -> str:
    """A client as the messages name it: its id, and its name when it has another one."""
    name = entry.get("name") or ""
    return entry["id"] + (f" ({name})" if name and name != entry["id"] else "")


class ProgressFile:
    """O(progress_file): the run's progress, replaced atomically (0600) before each client, about every
    O(progress_interval) seconds while restic backs one up (``status``, restic's figures without file names), and at
    the end; and each finished client's one-line result appended to ``<progress_file>.finished`` (``finished``),
    which the poller empties as it reads it. ``clock``: monotonic seconds (a test's own clock)."""

    def __init__(self, path: str, total: int, interval: float, warn, clock=time.monotonic):
        # module_utils/progress_file is imported by the runs that write a progress file only: a run without one
        # (the plain nightly backup) does not compile it
        from ansible_collections.ledgerguard.recovery.plugins.module_utils import progress_file

        self.files = progress_file
        self.path, self.total, self.interval, self.warn, self.clock = path, total, interval, warn, clock
        self.entries: list[dict] = []
        self.client: dict | None = None
        self.written = -float("inf")
        self.broken = False
        self.finished_broken = False
        progress_file.start_finished(path)

    def state(self, figures: dict | None = None) -> dict:
        state = {
            "done": len(self.entries),
            "total": self.total,
            "current": self.client["id"] if self.client else "",
            "finished": [{"id": e["id"], "status": e["status"]} for e in self.entries],
        }
        if self.client:
            state["client"] = {"id": self.client["id"], "name": self.client["name"] or "", **(figures or {})}
        return state

    def write(self, state: dict) -> None:
        self.files.write_state(self.path, state)
        self.written = self.clock()

    def start(self, entries: list[dict], client: dict | None) -> None:
        """Before ``client`` (None: at the end), ``entries`` finished."""
        self.entries, self.client = entries, client
        self.write(self.state())

    def finished(self, entry: dict, seconds: float) -> None:
        """``entry`` (a client's result) has ended after ``seconds``: its record for the poller. A failed write is a
        warning, once; the backup goes on."""
        if self.finished_broken:
            return
        try:
            self.files.append_finished(self.path, self.files.finished_record(entry, seconds))
        except OSError as exc:
            self.finished_broken = True
            self.warn(f"progress_file {self.path}: the finished clients could not be recorded ({exc.strerror}); "
                      "the backup went on without them")  # fmt: skip

    def status(self, figures: dict) -> None:
        """One status of restic for the current client: written unless the last write is less than 0.9 interval
        old (restic is asked for one per interval). A failed write while restic runs is a warning, once; the backup
        goes on."""
        if self.broken or self.clock() - self.written < 0.9 * self.interval:
            return
        try:
            self.write(self.state(figures))
        except OSError as exc:
            self.broken = True
            self.warn(f"progress_file {self.path} could not be written while restic ran ({exc.strerror}); "
                      "the backup went on without updating it until the next client")  # fmt: skip


def back_up_client(
    module, restic, client: dict, stopped_before: str, progress: ProgressFile | None, batch: ManifestBatch | None
) -> dict:
    """One client of O(clients): its entry of RV(clients) (``not_run`` once the run stopped, or when the incident
    lock O(stop_if_exists) exists now). With ``batch``, an ``ok`` entry may wait there for its manifest (the
    entry is the batch's result, completed in place)."""
    params = module.params
    entry = {"id": client["id"], "name": client["name"] or ""}
    stop = params["stop_if_exists"]
    if stopped_before or (stop and os.path.lexists(stop)):
        return dict(entry, status="not_run")
    tags = [client["id"], *params["tags"], *client["tags"]]
    exclude = [*params["exclude"], *client["exclude"]]
    try:
        made = back_up(module, restic, client["paths"], tags, exclude, progress.status if progress else None, batch)
    except (ResticError, ValueError) as exc:
        return failed_entry(entry, exc)
    made.pop("restic_version", None)
    made.update(entry, status="ok")
    return made


def failed_entry(entry: dict, exc: ResticError | ValueError) -> dict:
    """A client's entry of RV(clients) when ``exc`` failed it: the message a run of its own would fail with."""
    if isinstance(exc, ResticError):
        return {"id": entry["id"], "name": entry["name"], "status": "failed", "msg": exc.message,
                "error_kind": exc.kind}  # fmt: skip
    return {"id": entry["id"], "name": entry["name"], "status": "failed", "msg": str(exc)}


def back_up_clients(module, restic) -> dict:
    """Each client of O(clients) in order, one snapshot each; a failure is the client's entry, not the run's end."""
    params = module.params
    ids = [c["id"] for c in params["clients"]]
    if not ids:
        raise ValueError("clients is empty: give at least one client (id, paths) to back up")
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"clients holds the ids {', '.join(twice)} more than once; give each client once")
    entries, stopped_before = [], ""
    path = params["progress_file"] if not module.check_mode else None
    if path and not os.path.isdir(os.path.dirname(path) or "."):
        raise ValueError(
            f"progress_file {path}: its folder does not exist on this host; create it or give another path"
        )
    if not params["progress_interval"] > 0:
        raise ValueError(
            f"progress_interval {params['progress_interval']} is not above 0; give the seconds between two updates "
            "of the progress file, e.g. 5"
        )
    progress = ProgressFile(path, len(ids), params["progress_interval"], module.warn) if path else None
    # restic < 0.17 names a new snapshot by 8 digits without its time: the manifests wait for one listing after the
    # last client (ManifestBatch) instead of one listing per client, and so do the finished clients' records (in
    # order: none overtakes a client still waiting for its manifest)
    batch = ManifestBatch(restic, module.tmpdir) if params["manifest"] and not module.check_mode else None
    held: list[tuple[int, float]] = []
    for client in params["clients"]:
        if progress:
            progress.broken = False
            progress.start(entries, client)
        started = time.monotonic()
        entries.append(back_up_client(module, restic, client, stopped_before, progress, batch))
        if entries[-1]["status"] == "not_run":
            stopped_before = stopped_before or client["id"]
        if held or (batch and batch.waiting):
            held.append((len(entries) - 1, time.monotonic() - started))
        elif progress:
            progress.finished(entries[-1], time.monotonic() - started)
    spent = batch.finish() if batch else {}
    for index, seconds in held:
        error, more = spent.get(id(entries[index]), (None, 0.0))
        if error is not None:
            entries[index] = failed_entry(entries[index], error)
        if progress:
            progress.finished(entries[index], seconds + more)
    if progress:
        progress.start(entries, None)
    failed = [e for e in entries if e["status"] == "failed"]
    out = {
        "changed": any(e["status"] == "ok" for e in entries),
        "clients": entries,
        "failed_clients": [e["id"] for e in failed],
        "stopped_before": stopped_before,
        "host": params["host"] or "",
        "restic_version": restic.features.version_string,
    }
    problems = [f"client {named(e)}: {e['msg']}" for e in failed]
    if stopped_before:
        done = [e["id"] for e in entries if e["status"] == "ok"]
        problems.append(
            f"{params['stop_if_exists']} exists: stopped before client {stopped_before}; clients backed up: "
            f"{', '.join(done) or 'none'}"
        )
    if problems:
        out["failed"] = True
        out["msg"] = f"{len(failed)} of {len(entries)} clients failed" if failed else "The backup stopped"
        out["msg"] += ": " + "; ".join(problems)
    return out


def back_up_all(module, restic) -> dict:
    """The run's backups: each client of O(clients), or O(paths)."""
    params = module.params
    if params["clients"] is not None:
        return back_up_clients(module, restic)
    return back_up(module, restic, params["paths"], params["tags"], params["exclude"])


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        paths={"type": "list", "elements": "path"},
        clients={
            "type": "list",
            "elements": "dict",
            "options": {
                "id": {"type": "str", "required": True},
                "name": {"type": "str", "default": ""},
                "paths": {"type": "list", "elements": "path", "required": True},
                "tags": {"type": "list", "elements": "str", "default": []},
                "exclude": {"type": "list", "elements": "str", "default": []},
            },
        },
        stop_if_exists={"type": "path"},
        lock={"type": "dict", "options": dict(LOCK_OPTIONS, hold_after={"type": "bool", "default": False})},
        progress_file={"type": "path"},
        progress_interval={"type": "float", "default": 5.0},
        tags={"type": "list", "elements": "str", "default": []},
        host={"type": "str"},
        exclude={"type": "list", "elements": "str", "default": []},
        fail_on_unreadable={"type": "bool", "default": False},
        manifest={"type": "bool", "default": False},
    )
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=[*RESTIC_MUTUALLY_EXCLUSIVE, ("paths", "clients")],
        required_one_of=[("paths", "clients")],
        supports_check_mode=True,
    )
    params = module.params

    def body(restic):
        if params["lock"] is None:
            return back_up_all(module, restic)
        try:
            held = acquire(params["lock"], module.check_mode, detach=params["lock"]["hold_after"])
        except LockRefused as exc:
            lock = {"taken": False, "held_after": False, "holder": exc.holder, "waited": exc.waited}
            return {"failed": True, "changed": False, "msg": exc.message, "lock": lock}
        after = not module.check_mode and (params["lock"]["hold_after"] or not held["taken"])
        try:
            result = back_up_all(module, restic)
        finally:
            if held["fd"] is not None:
                os.close(held["fd"])  # the lock this process held ends here
        result["lock"] = {"taken": held["taken"], "held_after": after, "holder": held["holder"],
                          "waited": held["waited"]}  # fmt: skip
        return result

    run_module(module, body)


if __name__ == "__main__":
    main()
