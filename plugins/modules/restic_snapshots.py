#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restic_snapshots
short_description: List and filter restic snapshots, and find which snapshots contain a path
description:
  - Lists the snapshots of a restic repository (C(restic snapshots --json)), oldest first, filtered by host, tags,
    paths and time.
  - With O(contains_path), also tells which of the filtered snapshots contain that path (C(restic find)).
  - Read-only; never changes anything.
version_added: 0.1.0
author: ledgerguard contributors (@ledgerguard)
options:
  hosts:
    description: Keep snapshots taken on any of these hosts.
    type: list
    elements: str
    default: []
    aliases: [host]
  tags:
    description: Keep snapshots that carry B(every) one of these tags.
    type: list
    elements: str
    default: []
  paths:
    description: Keep snapshots whose backed-up paths include B(every) one of these absolute paths.
    type: list
    elements: path
    default: []
  before:
    description:
      - Keep snapshots taken strictly before this moment.
      - ISO 8601 with a timezone, for example C(2026-03-01T09:30:00+08:00) or C(2026-03-01T01:30:00Z). A timestamp
        without a timezone is refused, because it would silently mean different moments on different hosts.
    type: str
  after:
    description:
      - Keep snapshots taken at or after this moment. Same format as O(before); a timezone is required.
    type: str
  include_manifests:
    description:
      - Also list backup-time manifest snapshots (tag C(ledgerguard-manifest), written by restic_backup
        C(manifest=true) or C(ledgerguard manifest record)). By default they are left out, because they are never
        restore points, freshness or coverage evidence; RV(total) then counts data snapshots only.
    type: bool
    default: false
  contains_path:
    description:
      - An absolute path (file or directory) as it is on the host that was backed up, e.g. a client folder.
        RV(containing) lists the filtered snapshots that contain it, and each entry of RV(snapshots) gets
        C(contains_path) true or false and C(contains_path_in_snapshot), where that snapshot stores it.
      - The path is mapped into each snapshot's tree by the same rule as restic_restore (relative backups such as
        C(cd /srv && restic backup ledgers) store C(/srv/ledgers/C001) as C(/ledgers/C001); C(restic backup .)
        stores the folder's contents at the top; symlinked paths are resolved on this host).
    type: path
  clients:
    description:
      - "A survey (RV(survey)): for each path of each client (the shape of C(ledgerguard_clients): C(id), C(name),
        C(paths), optional C(snapshot_path)), which of the filtered snapshots hold it, under which host and tags,
        and at which path inside each snapshot (the same mapping restic_restore uses)."
    type: list
    elements: dict
    default: []
  snapshot_path:
    description:
      - "A pin for O(contains_path): the path inside the snapshots (as C(restic ls) shows it), for layouts the mapping
        cannot work out (C(ledgerguard_clients[].snapshot_path))."
    type: str
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
"""

EXAMPLES = r"""
- name: Snapshots of web01 tagged daily and C001, taken before the loss was noticed
  ledgerguard.recovery.restic_snapshots:
    hosts: [web01]
    tags: [daily, C001]
    before: "2026-03-01T09:30:00+08:00"
  register: snaps

- name: Which snapshots still hold client C001's ledger?
  ledgerguard.recovery.restic_snapshots:
    contains_path: /srv/ledgers/C001/2026.sqlite
  register: holding

- name: Restore from the newest snapshot that holds it
  ledgerguard.recovery.restic_restore:
    snapshot: "{{ holding.containing[-1] }}"
    target: /srv/staging
    include_paths: [/srv/ledgers/C001]
  when: holding.containing | length > 0
"""

RETURN = r"""
snapshots:
  description: The snapshots that passed the filters, oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Full snapshot ID.
      type: str
      sample: e5c57c8f2ab3b24032535430b2c1c6285b94a638368d329057f35a89aea232f4
    short_id:
      description: First 8 characters of the ID.
      type: str
      sample: e5c57c8f
    time:
      description: When the snapshot was taken, as restic recorded it (with the backup host's offset).
      type: str
      sample: "2026-11-26T18:01:25.106570565Z"
    time_utc:
      description: The same moment in UTC, ISO 8601.
      type: str
      sample: "2026-11-26T18:01:25.106570Z"
    hostname:
      description: Host the snapshot was taken on.
      type: str
    username:
      description: User that ran the backup.
      type: str
    paths:
      description: The paths that were backed up.
      type: list
      elements: str
    tags:
      description: The snapshot's tags.
      type: list
      elements: str
    tree:
      description: ID of the snapshot's root tree.
      type: str
    parent:
      description: ID of the parent snapshot, empty when none.
      type: str
    contains_path:
      description: Whether the snapshot contains O(contains_path). Only when O(contains_path) is set.
      type: bool
    contains_path_in_snapshot:
      description: Where the snapshot stores O(contains_path) (empty when it does not). Only with O(contains_path).
      type: str
survey:
  description:
    - With O(clients), one entry per client path - C(client), C(name), C(path), C(pinned_snapshot_path), C(snapshots)
      (how many hold it), C(hosts), C(snapshot_paths) (where the snapshots store it), C(newest) and C(covering)
      (each with C(id), C(short_id), C(time), C(hostname), C(tags), C(snapshot_path)), oldest first.
  returned: when O(clients) is set
  type: list
  elements: dict
count:
  description: Number of snapshots returned.
  returned: success
  type: int
  sample: 3
total:
  description: Number of snapshots in the repository before filtering (without manifest snapshots unless
    O(include_manifests=true)).
  returned: success
  type: int
  sample: 12
latest:
  description: The newest snapshot that passed the filters, or null when none did.
  returned: success
  type: dict
containing:
  description: IDs of the filtered snapshots that contain O(contains_path), oldest first.
  returned: when O(contains_path) is set
  type: list
  elements: str
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

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import filter_snapshots  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import parse_time  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        hosts={"type": "list", "elements": "str", "default": [], "aliases": ["host"]},
        tags={"type": "list", "elements": "str", "default": []},
        paths={"type": "list", "elements": "path", "default": []},
        before={"type": "str"},
        after={"type": "str"},
        contains_path={"type": "path"},
        snapshot_path={"type": "str"},
        clients={"type": "list", "elements": "dict", "default": []},
        include_manifests={"type": "bool", "default": False},
    )
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    params = module.params

    def body(restic):
        before = parse_time(params["before"], "before") if params["before"] else None
        after = parse_time(params["after"], "after") if params["after"] else None
        if before and after and after >= before:
            raise ValueError(
                f"after ({params['after']}) is not earlier than before ({params['before']}): no snapshot can match"
            )
        for path in params["paths"] + ([params["contains_path"]] if params["contains_path"] else []):
            if not path.startswith("/"):
                raise ValueError(f"path {path!r} is not absolute; snapshots store absolute paths such as /srv/ledgers")
        every = restic.snapshots(manifests=params["include_manifests"])
        chosen = filter_snapshots(every, params["hosts"], params["tags"], params["paths"], before, after)
        items = [s.as_dict() for s in chosen]
        result = {
            "changed": False,
            "snapshots": items,
            "count": len(items),
            "total": len(every),
            "latest": items[-1] if items else None,
            "restic_version": restic.features.version_string,
        }
        if params["contains_path"] is not None:
            # the live path mapped into each snapshot's tree (relative, '.', symlinked backups: Restic.covering)
            found = restic.covering(chosen, params["contains_path"], params["snapshot_path"]) if chosen else {}
            for item in items:
                item["contains_path"] = item["id"] in found
                item["contains_path_in_snapshot"] = found.get(item["id"], "")
            result["containing"] = [i["id"] for i in items if i["contains_path"]]
        if params["clients"]:
            result["survey"] = restic.survey(chosen, params["clients"])
        return result

    run_module(module, body)


if __name__ == "__main__":
    main()
