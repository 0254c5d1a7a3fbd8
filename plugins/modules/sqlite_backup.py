#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sqlite_backup
short_description: Back up a client's folders with consistent copies of the SQLite ledgers inside them
description:
  - Takes a consistent copy of each SQLite ledger in O(ledgers) with SQLite's online backup API (one read
    transaction, so the copy holds exactly the transactions committed when it was taken, even while the ledger's
    program keeps writing), into a new root-only (0700) folder under O(work_dir), and checks the copy
    (C(PRAGMA integrity_check) by default).
  - Then runs C(restic backup --json) of O(paths) in a private mount namespace of its own in which each copy is
    bind-mounted over its live ledger, so the snapshot holds the consistent copy B(at the ledger's own path), in the
    same snapshot as the rest of the client's folder. A restore (or the incident path) puts it back where it belongs.
    No other process on the host sees the bind mounts; they end with the task.
  - The live ledgers' C(-wal), C(-shm) and C(-journal) files are left out of the snapshot (restored beside the copy,
    they would be replayed into it).
  - With O(manifest=true) the backup-time manifest is recorded as M(ledgerguard.recovery.restic_backup) records it,
    hashed inside the same namespace (so it describes the copies that were backed up).
  - The copies are removed when the task ends. Every run makes a new snapshot, so the task always reports a change.
version_added: 0.2.0
author: ledgerguard contributors (@ledgerguard)
options:
  paths:
    description: Absolute paths of the client's folders on the managed host. Each must exist.
    type: list
    elements: path
    required: true
  ledgers:
    description:
      - Absolute paths of SQLite databases inside O(paths) (the client's C(sqlite) list in C(ledgerguard_clients)).
      - Each must exist and be a SQLite 3 database.
    type: list
    elements: path
    required: true
  tags:
    description: Tags for the new snapshot.
    type: list
    elements: str
    default: []
  host:
    description: Host name recorded in the snapshot. Default is the managed host's own name.
    type: str
  exclude:
    description: Exclude patterns (restic C(--exclude)), also left out of the manifest.
    type: list
    elements: str
    default: []
  manifest:
    description: Record the backup-time manifest of the new snapshot (see M(ledgerguard.recovery.restic_backup)).
    type: bool
    default: false
  work_dir:
    description:
      - Folder on the managed host under which a new 0700 folder holds the copies during the task. Created (0700)
        when missing. It needs room for the largest client's ledgers.
    type: path
    default: /var/lib/ledgerguard/backup-work
  check:
    description:
      - How each copy is checked before it is backed up; a copy that fails stops the task before anything is
        backed up. V(integrity) (C(PRAGMA integrity_check)), V(quick) (C(quick_check)), V(none).
    type: str
    choices: [integrity, quick, none]
    default: integrity
  busy_timeout:
    description: Seconds to wait for a ledger that a writer holds locked (SQLite busy timeout).
    type: int
    default: 60
  fail_on_unreadable:
    description: Fail when restic could not read some source files (the incomplete snapshot is still made).
    type: bool
    default: false
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description:
      - In check mode no copy is taken and no snapshot is made; each ledger is only checked to be a SQLite database,
        and restic runs C(backup --dry-run) of O(paths) (RV(summary) shows what would be stored).
notes:
  - Needs root (or CAP_SYS_ADMIN) on Linux, for the private mount namespace.
"""

EXAMPLES = r"""
- name: Back up client c001 with a consistent copy of its ledger
  ledgerguard.recovery.sqlite_backup:
    paths: [/srv/books/c001]
    ledgers: [/srv/books/c001/账簿/ledger.sqlite]
    tags: [c001, ledgerguard-backup]
    manifest: true
  register: backup
"""

RETURN = r"""
snapshot_id:
  description: Full ID of the new snapshot; empty in check mode.
  returned: success
  type: str
short_id:
  description: Short ID of the new snapshot; empty in check mode.
  returned: success
  type: str
summary:
  description: restic's backup summary (as M(ledgerguard.recovery.restic_backup) returns it).
  returned: success
  type: dict
paths:
  description: The paths backed up.
  returned: success
  type: list
  elements: str
tags:
  description: The tags of the snapshot.
  returned: success
  type: list
  elements: str
host:
  description: The host name recorded in the snapshot (empty when restic chose it).
  returned: success
  type: str
seconds:
  description: Wall-clock duration of the restic backup command.
  returned: success
  type: float
restic_version:
  description: The version of the restic binary used.
  returned: success
  type: str
ledgers:
  description:
    - One entry per ledger - C(path), C(captured) (false in check mode), C(bytes), C(pages), C(journal_mode),
      C(check) (C(ok) or C(not checked)) and C(seconds) (time to copy and check).
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/srv/books/c001/账簿/ledger.sqlite", "captured": true, "bytes": 65536, "pages": 16,
            "journal_mode": "wal", "check": "ok", "seconds": 0.05}]
manifest:
  description: The backup-time manifest recorded with O(manifest=true) (as M(ledgerguard.recovery.restic_backup)).
  returned: when O(manifest=true)
  type: dict
manifest_snapshot_id:
  description: Full ID of the manifest snapshot; empty in check mode and when O(manifest=false).
  returned: success
  type: str
error_kind:
  description: On failure, the class of the failure (see the restic doc fragment notes).
  returned: failure
  type: str
"""

import os  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import shutil  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_manifest import (  # noqa: E402
    backup_and_record,
    backup_args,
    backup_base,
    backup_dry_run,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.dbcapture import (  # noqa: E402
    CaptureError,
    bind_file,
    capture_sqlite,
    is_sqlite,
    ledger_excludes,
    owning_root,
    private_mount_namespace,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)


def validate(params: dict) -> None:
    for path in params["paths"]:
        if not os.path.isabs(path):
            raise ValueError(f"paths entry {path!r} is not absolute; give absolute paths such as /srv/books/c001")
        if not os.path.lexists(path):
            raise ValueError(f"paths entry {path} does not exist on this host; nothing was backed up")
    if not params["ledgers"]:
        raise ValueError("ledgers is empty: use ledgerguard.recovery.restic_backup for a client without SQLite ledgers")
    for ledger in params["ledgers"]:
        if not os.path.isabs(ledger):
            raise ValueError(f"ledgers entry {ledger!r} is not absolute")
        if owning_root(ledger, params["paths"]) is None:
            raise ValueError(
                f"SQLite ledger {ledger} is not inside the backed-up paths ({', '.join(params['paths'])}); declare it "
                "inside the client's folder"
            )
        if not os.path.isfile(ledger) or os.path.islink(ledger):
            raise ValueError(f"SQLite ledger {ledger} does not exist on this host (or is not a regular file)")
        if not is_sqlite(ledger):
            raise ValueError(f"{ledger} is declared as a SQLite ledger but is not a SQLite 3 database")
    for tag in params["tags"]:
        if not tag or "," in tag:
            raise ValueError(f"tag {tag!r} is empty or contains a comma; restic tags cannot contain commas")


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        paths={"type": "list", "elements": "path", "required": True},
        ledgers={"type": "list", "elements": "path", "required": True},
        tags={"type": "list", "elements": "str", "default": []},
        host={"type": "str"},
        exclude={"type": "list", "elements": "str", "default": []},
        manifest={"type": "bool", "default": False},
        work_dir={"type": "path", "default": "/var/lib/ledgerguard/backup-work"},
        check={"type": "str", "choices": ["integrity", "quick", "none"], "default": "integrity"},
        busy_timeout={"type": "int", "default": 60},
        fail_on_unreadable={"type": "bool", "default": False},
    )
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    params = module.params

    def body(restic):
        validate(params)
        paths = params["paths"]
        companions, manifest_companions = ledger_excludes(params["ledgers"], paths)
        args = backup_args(params["host"], params["tags"], list(params["exclude"]) + companions)
        base = backup_base(restic, params["host"], paths, params["tags"], params["manifest"])
        if module.check_mode:
            base["ledgers"] = [{"path": p, "captured": False} for p in params["ledgers"]]
            return backup_dry_run(restic, args, paths, base)

        os.makedirs(params["work_dir"], mode=0o700, exist_ok=True)
        work = tempfile.mkdtemp(prefix="sqlite-", dir=params["work_dir"])  # 0700, this run only
        try:
            copies = []
            for index, ledger in enumerate(params["ledgers"]):
                copy = os.path.join(work, f"{index}.sqlite")
                try:
                    info = capture_sqlite(ledger, copy, params["check"], float(params["busy_timeout"]))
                except CaptureError as exc:
                    raise ValueError(str(exc)) from None
                copies.append((copy, ledger))
                info["captured"] = True
                base.setdefault("ledgers", []).append(info)
            try:
                private_mount_namespace()
                for copy, ledger in copies:
                    bind_file(copy, ledger)
            except CaptureError as exc:
                raise ValueError(str(exc)) from None
            return backup_and_record(
                restic,
                args,
                paths,
                base,
                fail_on_unreadable=params["fail_on_unreadable"],
                manifest=params["manifest"],
                manifest_exclude=list(params["exclude"]) + manifest_companions,
                warn=module.warn,
                tmpdir=module.tmpdir,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    run_module(module, body)


if __name__ == "__main__":
    main()
