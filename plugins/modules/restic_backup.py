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
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description:
      - In check mode no snapshot is made. When restic supports C(backup --dry-run) (0.14 and later), it runs in dry-run
        mode and RV(summary) shows what would be stored; RV(snapshot_id) is empty.
"""

EXAMPLES = r"""
- name: Back up the ledgers of every client, tagged with the incident
  ledgerguard.recovery.restic_backup:
    paths: [/srv/ledgers]
    tags: [incident, "{{ ledgerguard_incident_id }}"]
  register: backup

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
error_kind:
  description: On failure, the class of the failure (see the restic doc fragment notes).
  returned: failure
  type: str
"""

import os  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    RESTIC_MUTUALLY_EXCLUSIVE,
    ResticError,
    classify_error,
    parse_backup_summary,
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
        args = ["backup", "--json"]
        if params["host"]:
            args += ["--host", params["host"]]
        for tag in params["tags"]:
            args += ["--tag", tag]
        for pattern in params["exclude"]:
            args += ["--exclude", pattern]
        base = {
            "paths": paths,
            "tags": params["tags"],
            "host": params["host"] or "",
            "restic_version": restic.features.version_string,
        }
        if module.check_mode:
            if not restic.features.backup_dry_run:
                restic.config()  # at least prove the repository opens
                return dict(base, changed=True, snapshot_id="", short_id="", summary={}, seconds=0.0)
            res = restic.must(*args, "--dry-run", "--", *paths, action="dry-run a backup")
            summary = parse_backup_summary(res.stdout + "\n" + res.stderr)
            return dict(base, changed=True, snapshot_id="", short_id="", summary=summary, seconds=round(res.seconds, 3))
        res = restic.run(*args, "--", *paths)
        if res.rc not in (0, 3) or res.timed_out:
            raise classify_error(res, restic.repository, restic.features, action="back up " + ", ".join(paths))
        try:
            summary = parse_backup_summary(res.stdout + "\n" + res.stderr)
        except ValueError:
            raise classify_error(
                res, restic.repository, restic.features, action="back up " + ", ".join(paths)
            ) from None
        short = summary.get("snapshot_id", "")
        full = short
        for snap in restic.snapshots():
            if snap.id.startswith(short):
                full = snap.id
                break
        if res.rc == 3:
            unreadable = summary.get("errors") or ["(restic did not list them)"]
            if params["fail_on_unreadable"]:
                raise ResticError(
                    "unreadable_source",
                    f"Snapshot {short} was made in {restic.repository} but some files could not be read: "
                    f"{'; '.join(unreadable[:10])}. Fix their permissions or exclude them and back up again.",
                    {"snapshot_id": full},
                    res,
                )
            for line in unreadable[:20]:
                module.warn(f"restic could not read: {line}")
        return dict(
            base, changed=True, snapshot_id=full, short_id=full[:8], summary=summary, seconds=round(res.seconds, 3)
        )

    run_module(module, body)


if __name__ == "__main__":
    main()
