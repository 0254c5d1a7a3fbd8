#!/usr/bin/python
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_lock
short_description: Take or give back the host's incident lock with an exclusive create
version_added: "0.1.0"
description:
  - The lock file names the one incident that owns the host. I(state=present) takes it when it is free and reports
    who holds it when it is not; I(state=absent) gives it back, only when I(incident_id) holds it.
  - "Taking is atomic: the lock's full content is written to a private temporary file in the same folder and
    hard-linked to I(path), which fails when I(path) exists (the link is an exclusive create, so two controllers
    that try at the same moment cannot both win, and no one ever reads a half-written lock). The lock is then read
    back and its random token compared, to confirm the owner."
  - Where the filesystem has no hard links, I(path) is instead created exclusively and the content written into it,
    so two controllers still cannot both win, but a reader may briefly see the lock half-written (it is then
    reported as unreadable and never taken over).
  - A lock already held by the same I(incident_id) is kept as it is (a re-run continues the incident); one held by
    another incident, unreadable, or not a regular file is never replaced. The result says which (RV(acquired),
    RV(holder)); the caller decides how to fail (the C(incident) role refuses the host with the holder's name).
author:
  - ledgerguard engineers (@ledgerguard)
attributes:
  check_mode:
    support: full
    description: Reads the lock and reports whether it would be taken or given back; changes nothing.
  diff_mode:
    support: none
    description: RV(holder) says who holds the lock.
  platform:
    support: full
    platforms: posix
    description: Any POSIX host (hard links, or an exclusive create where the filesystem has none).
options:
  path:
    description: The lock file (its folder must exist, or I(create_folder)).
    type: path
    required: true
  incident_id:
    description: The incident that takes or gives back the lock.
    type: str
    required: true
  state:
    description: C(present) takes the lock, C(absent) gives it back.
    type: str
    choices: [present, absent]
    default: present
  info:
    description: More fields recorded in the lock, such as C(operator) and C(controller) (no secrets).
    type: dict
    default: {}
  create_folder:
    description:
      - With I(state=present), create the lock's folder (and its missing parents) with mode 0700 first, and give an
        existing one mode 0700, as C(ansible.builtin.file) with C(state=directory) and C(mode=0700) would (the
        host's ledgerguard state folder). Without it, a missing folder fails the task.
    type: bool
    default: false
  record:
    description:
      - With I(state=absent), a JSON object written to I(record_path) before the lock is given back (the incident
        role's closed marker), whoever holds the lock. Needs I(record_path).
    type: dict
  record_path:
    description:
      - Where I(record) is written (mode 0600, sorted keys, 4-space indent, UTF-8 kept readable); its folder is
        created with mode 0700 when missing, or given mode 0700. An existing file is kept as it is (the first record
        stays).
    type: path
  refuse:
    description:
      - With I(state=present), fail when the lock is not held by I(incident_id) after the call (another incident
        holds it, or it cannot be trusted), with a message that names the host (I(host)), the holder (incident,
        operator, since when and how long, controller) and what to do, and ends with C(Nothing was changed by
        <incident_id> on this host.) Without it the result says so (RV(acquired)) and the caller decides.
    type: bool
    default: false
  host:
    description: The host's name in the refusal message (the inventory name), with I(refuse).
    type: str
    default: this host
  folders:
    description:
      - With I(state=present), folders to look for on the host (e.g. the client folders to freeze once the host is
        locked); RV(folders) lists those that exist as folders (a symbolic link is not one), in the order given.
    type: list
    elements: path
    default: []
  freeze_targets:
    description:
      - With I(state=present), the action plugin publishes the host's freeze targets in the same task, as the fact
        C(incident_result.freeze_targets) (the host's C(incident_result) kept, this key set), these targets (the
        write_freeze format) or, when the list is empty, C(readonly_bind) on each of RV(folders). Handled by the action
        plugin (the incident role's C(start)); the module on the host does not use it.
    type: list
    elements: dict
  outcome:
    description:
      - With I(state=absent), the host's verdict C({done, msg}) (filter C(ledgerguard.recovery.incident_outcome)). The
        module runs only when C(done) is true and I(release) is true; the task then fails with C(msg) when C(done) is
        false and returns it as its C(msg) otherwise. Handled by the action plugin (the incident role's C(finish)); the
        module on the host does not use it.
    type: dict
  release:
    description:
      - With I(outcome), whether a host that is done gives its lock back (false in a dry run, or with the incident
        role's C(incident_release_lock) false). Handled by the action plugin; the module on the host does not use it.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Take the host's incident lock
  ledgerguard.recovery.host_lock:
    path: /var/lib/ledgerguard/incident.lock
    incident_id: INC-20261126-001
    info:
      operator: alice
      controller: ops1
  register: lock

- name: Refuse the host when another incident holds it
  ansible.builtin.assert:
    that: lock.acquired
    fail_msg: "Host locked by {{ lock.holder.incident_id }}"

- name: Give the lock back
  ledgerguard.recovery.host_lock:
    path: /var/lib/ledgerguard/incident.lock
    incident_id: INC-20261126-001
    state: absent

- name: Take the lock, creating the state folder first
  ledgerguard.recovery.host_lock:
    path: /var/lib/ledgerguard/incident.lock
    incident_id: INC-20261126-001
    create_folder: true
  register: lock

- name: Take the lock or refuse the host, and say which client folders exist
  ledgerguard.recovery.host_lock:
    path: /var/lib/ledgerguard/incident.lock
    incident_id: INC-20261126-001
    create_folder: true
    refuse: true
    host: files01
    folders: [/srv/books/c001, /srv/books/c002]
  register: lock

- name: Record the incident as closed on the host and give the lock back
  ledgerguard.recovery.host_lock:
    path: /var/lib/ledgerguard/incident.lock
    incident_id: INC-20261126-001
    state: absent
    record_path: /var/lib/ledgerguard/incidents/INC-20261126-001/closed.json
    record:
      incident_id: INC-20261126-001
      closed_at: "2026-11-26T12:00:00Z"
"""

RETURN = r"""
acquired:
  description:
    - With I(state=present), true when I(incident_id) holds the lock now (taken by this call or earlier); in check
      mode, true when it would. With I(state=absent), true when the lock was (or would be) given back.
  returned: always
  type: bool
  sample: true
holder:
  description:
    - The lock's content as read back (C(incident_id), C(operator), C(controller), C(created), C(created_epoch)).
      Empty when there is no lock. C(error) says why a lock could not be read.
  returned: always
  type: dict
  sample: {"incident_id": "INC-20261126-001", "operator": "alice", "created": "2026-11-26T08:00:00Z"}
path:
  description: The lock file.
  returned: always
  type: str
  sample: /var/lib/ledgerguard/incident.lock
folders:
  description: Those of I(folders) that exist as folders on the host, in the order given.
  returned: with state=present
  type: list
  elements: str
  sample: [/srv/books/c001]
record_written:
  description: Whether I(record) was (or, in check mode, would be) written to I(record_path) (false when a file was
    already there).
  returned: when record_path is given with state=absent
  type: bool
  sample: true
"""

import json  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import os  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import secrets  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import time  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.incident_lock import (  # noqa: E402
    read_lock,
    refusal,
    take,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import format_utc  # noqa: E402


def ensure_folder(path: str, check: bool) -> bool:
    """Make ``path`` a folder of mode 0700, creating it and its missing parents (each 0700); whether it changed."""
    missing = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if check:
        return bool(missing) or (os.stat(path).st_mode & 0o7777) != 0o700
    for folder in reversed(missing):
        os.mkdir(folder, 0o700)
        os.chmod(folder, 0o700)  # the umask may have narrowed it
    if os.stat(path).st_mode & 0o7777 != 0o700:
        os.chmod(path, 0o700)
        return True
    return bool(missing)


def write_record(path: str, record: dict, check: bool) -> tuple[bool, bool]:
    """Make the folder of ``path`` a 0700 folder and write ``record`` as JSON to ``path`` (0600) unless a file is
    there. Returns (changed, written)."""
    changed = ensure_folder(os.path.dirname(path), check)
    if os.path.lexists(path):
        return changed, False
    if check:
        return True, True
    data = (json.dumps(record, ensure_ascii=False, indent=4, sort_keys=True) + "\n").encode("utf-8")
    tmp = f"{path}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)  # an exclusive create: a record that appeared meanwhile is kept
    except FileExistsError:
        return changed, False
    finally:
        os.unlink(tmp)
    return True, True


def existing_folders(paths: list[str]) -> list[str]:
    """Those of ``paths`` that are folders (not symbolic links), in the order given."""
    return [p for p in paths if os.path.isdir(p) and not os.path.islink(p)]


def take_lock(module: AnsibleModule, path: str, incident: str, result: dict) -> None:
    """State present: take the lock when it is free; say who holds it (``result``) when it is not."""
    holder = read_lock(path)
    if holder is not None:
        result["holder"] = holder
        result["acquired"] = holder.get("incident_id") == incident and "error" not in holder
        return
    now = time.time()
    content = dict(module.params["info"] or {})
    content.update(
        incident_id=incident,
        created=format_utc(now),
        created_epoch=int(now),
        token=secrets.token_hex(16),
    )
    if module.check_mode:
        result.update(changed=True, acquired=True, holder=content)
        return
    try:
        won = take(path, content)
    except OSError as exc:
        module.fail_json(
            msg=f"Taking the lock {path} failed: {exc.strerror}. Check the folder and its space.", **result
        )
    # Read it back: the owner is whoever's token is in the file, whatever take() believed.
    holder = read_lock(path) or {"error": f"{path} vanished right after it was taken"}
    result["holder"] = holder
    result["acquired"] = holder.get("token") == content["token"] or (
        not won and holder.get("incident_id") == incident and "error" not in holder
    )
    if won and result["acquired"]:
        result["changed"] = True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "incident_id": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "info": {"type": "dict", "default": {}},
            "create_folder": {"type": "bool", "default": False},
            "record": {"type": "dict"},
            "record_path": {"type": "path"},
            "refuse": {"type": "bool", "default": False},
            "host": {"type": "str", "default": "this host"},
            "folders": {"type": "list", "elements": "path", "default": []},
            # handled by the action plugin (plugins/action/host_lock.py), never sent with these values
            "freeze_targets": {"type": "list", "elements": "dict"},
            "outcome": {"type": "dict"},
            "release": {"type": "bool", "default": True},
        },
        required_together=[("record", "record_path")],
        supports_check_mode=True,
    )
    path = module.params["path"]
    incident = module.params["incident_id"]
    present = module.params["state"] == "present"
    result = {"changed": False, "path": path, "acquired": False, "holder": {}}
    folder = os.path.dirname(path) or "."
    if present and module.params["create_folder"]:
        try:
            result["changed"] = ensure_folder(folder, module.check_mode)
        except OSError as exc:
            module.fail_json(msg=f"Creating the lock's folder {folder} failed: {exc}. Check the path.", **result)
    if not present and module.params["record_path"]:
        try:
            changed, written = write_record(module.params["record_path"], module.params["record"], module.check_mode)
        except OSError as exc:
            module.fail_json(
                msg=f"Writing {module.params['record_path']} failed: {exc}. Check the folder and its space.", **result
            )
        result.update(record_written=written, changed=changed)
    if not os.path.isdir(folder):
        if not module.check_mode:
            module.fail_json(
                msg=f"The folder of the lock {path} does not exist: create it first (mode 0700).", **result
            )
        # A dry run before the state folder exists: there is no lock, so it would be taken (and nothing to give back).
        result.update(changed=present or result["changed"], acquired=present)
    elif present:
        take_lock(module, path, incident, result)
    else:
        holder = read_lock(path)
        result["holder"] = holder or {}
        if holder and holder.get("incident_id") == incident and "error" not in holder:
            result.update(changed=True, acquired=True)
            if not module.check_mode:
                os.unlink(path)
    if present:
        if module.params["refuse"] and not result["acquired"]:
            module.fail_json(
                msg=refusal(module.params["host"], path, incident, result["holder"], time.time()), **result
            )
        result["folders"] = existing_folders(module.params["folders"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
