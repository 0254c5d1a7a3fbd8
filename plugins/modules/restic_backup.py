#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restic_backup
short_description: Back up paths into a restic repository, with tags and host
description:
  - Runs C(restic backup --json) for O(paths) and returns the new snapshot's ID and restic's summary.
  - Every run makes a new snapshot (restic deduplicates the data), so the task always reports a change.
  - If some files could not be read, restic still makes a snapshot (exit code 3); the task then succeeds with
    warnings that list them, unless O(fail_on_unreadable=true).
version_added: 0.1.0
author: ledgerguard contributors (@ledgerguard)
options:
  paths:
    description: Absolute paths on the managed host to back up. Each must exist.
    type: list
    elements: path
    required: true
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
"""

RETURN = r"""
snapshot_id:
  description: Full ID of the new snapshot; empty in check mode.
  returned: success
  type: str
  sample: e5c57c8f2ab3b24032535430b2c1c6285b94a638368d329057f35a89aea232f4
short_id:
  description: Short ID of the new snapshot; empty in check mode.
  returned: success
  type: str
  sample: e5c57c8f
summary:
  description: restic's backup summary (C(files_new), C(files_changed), C(files_unmodified), C(dirs_new),
    C(data_added), C(total_files_processed), C(total_bytes_processed), C(total_duration), ...) plus C(errors), the
    files restic could not read.
  returned: success
  type: dict
  sample: {"files_new": 3, "data_added": 203571, "total_files_processed": 3, "errors": []}
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
  description: Wall-clock duration of the backup command.
  returned: success
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
  returned: when O(manifest=true)
  type: dict
  sample: {"recorded": true, "manifest_snapshot_id": "9b2f5c...", "manifest_short_id": "9b2f5c1a", "files": 62,
           "bytes": 204810, "errors": 0, "manifest_bytes": 15872, "digest": "5e8848...", "seconds": 0.42}
manifest_snapshot_id:
  description: Full ID of the manifest snapshot; empty in check mode and when O(manifest=false).
  returned: success
  type: str
  sample: 9b2f5c1a3c0e4d6f8a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7
error_kind:
  description: On failure, the class of the failure (see the restic doc fragment notes).
  returned: failure
  type: str
"""

import os  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_manifest import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    backup_and_record,
    backup_args,
    backup_dry_run,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        paths={"type": "list", "elements": "path", "required": True},
        tags={"type": "list", "elements": "str", "default": []},
        host={"type": "str"},
        exclude={"type": "list", "elements": "str", "default": []},
        fail_on_unreadable={"type": "bool", "default": False},
        manifest={"type": "bool", "default": False},
    )
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    params = module.params

    def body(restic):
        paths = params["paths"]
        if not paths:
            raise ValueError("paths is empty: give at least one absolute path to back up")
        for path in paths:
            if not os.path.isabs(path):
                raise ValueError(f"paths entry {path!r} is not absolute; give absolute paths such as /srv/ledgers")
            if not os.path.lexists(path):
                raise ValueError(f"paths entry {path} does not exist on this host; nothing was backed up")
        for tag in params["tags"]:
            if not tag or "," in tag:
                raise ValueError(f"tag {tag!r} is empty or contains a comma; restic tags cannot contain commas")
        args = backup_args(params["host"], params["tags"], params["exclude"])
        base = {
            "paths": paths,
            "tags": params["tags"],
            "host": params["host"] or "",
            "restic_version": restic.features.version_string,
            "manifest_snapshot_id": "",
        }
        if params["manifest"]:
            base["manifest"] = {"recorded": False}
        if module.check_mode:
            return backup_dry_run(restic, args, paths, base)
        return backup_and_record(
            restic,
            args,
            paths,
            base,
            fail_on_unreadable=params["fail_on_unreadable"],
            manifest=params["manifest"],
            manifest_exclude=params["exclude"],
            warn=module.warn,
            tmpdir=module.tmpdir,
        )

    run_module(module, body)


if __name__ == "__main__":
    main()
