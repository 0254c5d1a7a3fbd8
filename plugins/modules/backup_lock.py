#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_lock
short_description: Take or release the host's backup lock, refusing while an incident holds the host
description:
  - O(state=acquired) takes an exclusive C(flock) on O(path) and leaves a small detached process holding it, so the
    lock lasts for the whole backup run (across tasks) and ends by itself when that process ends - at O(state=released),
    after O(max_hold) seconds, or when it is killed. The file names the run that holds it (run ID, host, PID, start).
  - A second run finds the lock held and fails with a message naming the holder (or waits up to O(wait) seconds).
  - It also refuses, before and after taking the lock, while the incident lock O(incident_lock) exists - no backup,
    retention or prune runs while an incident owns the host.
  - O(state=released) stops the holder of this O(run_id) (never another run's) and reports whether it held the lock.
version_added: 0.2.0
author: ledgerguard contributors (@ledgerguard)
options:
  state:
    description: V(acquired) or V(released).
    type: str
    choices: [acquired, released]
    default: acquired
  path:
    description: The lock file (created 0600). Its folder is created 0700 when missing.
    type: path
    default: /var/lib/ledgerguard/backup.lock
  incident_lock:
    description: The incident lock file of the host (the incident role's C(<ledgerguard_state_dir>/incident.lock)).
    type: path
    default: /var/lib/ledgerguard/incident.lock
  run_id:
    description: ID of this run (the same for acquire and release), for example the playbook's start time and PID.
    type: str
    required: true
  purpose:
    description: What the run does (shown to a run that finds the lock held), for example C(backup) or C(prune).
    type: str
    default: backup
  max_hold:
    description: Seconds after which the holder gives the lock up by itself (a run that died without releasing it).
    type: int
    default: 43200
  wait:
    description: Seconds to wait for a lock another run holds before failing. V(0) fails at once.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description: In check mode the lock is only tested (taken and given back at once); the same refusals apply.
  diff_mode:
    support: none
    description: No diff is produced.
  platform:
    support: full
    platforms: posix
    description: Linux and other POSIX hosts with flock.
"""

EXAMPLES = r"""
- name: Take the backup lock
  ledgerguard.recovery.backup_lock:
    path: /var/lib/ledgerguard/backup.lock
    incident_lock: /var/lib/ledgerguard/incident.lock
    run_id: "{{ backup_run_id }}"

- name: Release it
  ledgerguard.recovery.backup_lock:
    state: released
    path: /var/lib/ledgerguard/backup.lock
    run_id: "{{ backup_run_id }}"
"""

RETURN = r"""
holder:
  description: The run holding the lock after the task (C(run_id), C(purpose), C(host), C(pid), C(started)); empty when
    released.
  returned: success
  type: dict
waited:
  description: Seconds spent waiting for another run's lock.
  returned: success
  type: float
"""

import os  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ledgerguard.recovery.plugins.module_utils.dbcapture import (  # noqa: E402
    hold_detached,
    holder_info,
    lock_is_free,
    read_holder,
    try_flock,
    write_holder,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import pid_alive  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.incident_lock import read_lock  # noqa: E402


def incident_message(module: AnsibleModule, what: str) -> str | None:
    """Why this run must not start (an incident owns the host), or None. A lock that cannot be read (a link, a FIFO,
    not JSON) still refuses: nobody can tell that no incident owns the host."""
    path = module.params["incident_lock"]
    holder = read_lock(path)
    if holder is None:
        return None
    if "error" in holder:
        owner = f"An incident lock that cannot be read holds this host ({holder['error']})"
    else:
        owner = (
            f"Incident {holder.get('incident_id', '?')} holds this host (operator "
            f"{holder.get('operator') or 'unknown'}, since {holder.get('created', '?')}; lock {path})"
        )
    return (
        f"{owner}. No {what} runs while an incident owns the host: nothing was backed up, forgotten or pruned. Run it "
        "again after the incident is released."
    )


def held_message(path: str, holder: dict, waited: float) -> str:
    pid = holder.get("pid")
    alive = isinstance(pid, int) and pid > 0 and pid_alive(pid)
    return (
        f"Another {holder.get('purpose', 'backup')} run holds {path} (run {holder.get('run_id', '?')}, started "
        f"{holder.get('started', '?')} on {holder.get('host', '?')}, holder PID {pid or '?'}"
        f"{'' if alive else ', not running here'}); this run exits without doing anything"
        f"{f' after waiting {int(waited)} s' if waited else ''}. Wait for it to finish; if that run is dead, its lock "
        f"ends with PID {pid or '?'} (kill {pid or '?'})."
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["acquired", "released"], "default": "acquired"},
            "path": {"type": "path", "default": "/var/lib/ledgerguard/backup.lock"},
            "incident_lock": {"type": "path", "default": "/var/lib/ledgerguard/incident.lock"},
            "run_id": {"type": "str", "required": True},
            "purpose": {"type": "str", "default": "backup"},
            "max_hold": {"type": "int", "default": 43200},
            "wait": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    p = module.params
    path = p["path"]
    if p["state"] == "released":
        holder = read_holder(path)
        if lock_is_free(path):
            module.exit_json(changed=False, holder={}, waited=0.0)
        if holder.get("run_id") != p["run_id"]:
            module.warn(f"{path} is held by run {holder.get('run_id', '?')}, not by {p['run_id']}: left alone")
            module.exit_json(changed=False, holder=holder, waited=0.0)
        if module.check_mode:
            module.exit_json(changed=True, holder={}, waited=0.0)
        pid = int(holder.get("pid") or 0)
        if pid > 0 and pid_alive(pid):
            os.kill(pid, 15)
        deadline = time.monotonic() + 15
        while not lock_is_free(path) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not lock_is_free(path):
            module.fail_json(msg=f"the holder of {path} (PID {pid}) did not end within 15 s; kill {pid} by hand")
        module.exit_json(changed=True, holder={}, waited=0.0)

    refused = incident_message(module, p["purpose"])
    if refused:
        module.fail_json(msg=refused, holder={}, waited=0.0)
    os.makedirs(os.path.dirname(path) or "/", mode=0o700, exist_ok=True)
    started = time.monotonic()
    fd = try_flock(path)
    while fd is None and time.monotonic() - started < p["wait"]:
        time.sleep(1.0)
        fd = try_flock(path)
    waited = round(time.monotonic() - started, 1) if p["wait"] else 0.0
    if fd is None:
        holder = read_holder(path)
        if holder.get("run_id") == p["run_id"]:
            module.exit_json(changed=False, holder=holder, waited=waited)
        module.fail_json(msg=held_message(path, holder, waited), holder=holder, waited=waited)
    try:
        refused = incident_message(module, p["purpose"])  # an incident that started while we took the lock
        if refused:
            module.fail_json(msg=refused, holder={}, waited=waited)
        info = dict(holder_info(p["run_id"], p["max_hold"]), purpose=p["purpose"])
        if module.check_mode:
            module.exit_json(changed=True, holder=info, waited=waited)
        write_holder(fd, dict(info, pid=0))
        info["pid"] = hold_detached(fd, p["max_hold"])
        write_holder(fd, info)
    finally:
        os.close(fd)
    module.exit_json(changed=True, holder=info, waited=waited)


if __name__ == "__main__":
    main()
