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
    description: In check mode the lock is only tested (taken and given back at once; without a lock file nothing is
      created); the same refusals apply.
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
  description:
    - The run holding the lock after the task - C(run_id), C(purpose), C(host), C(started), C(started_epoch),
      C(expires_epoch), and C(pid) (the holding process; not in check mode), C(held_by) V(module) when a module process
      holds it itself.
    - Empty when this run released it or nobody held it; when another run holds it, that run's record (left alone).
  returned: success
  type: dict
waited:
  description: Seconds spent waiting for another run's lock.
  returned: success
  type: float
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_lock import (  # noqa: E402
    LOCK_OPTIONS,
    LockRefused,
    acquire,
    release,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["acquired", "released"], "default": "acquired"},
            **LOCK_OPTIONS,
        },  # fmt: skip
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "released":
        try:
            changed, holder, warning = release(p["path"], p["run_id"], module.check_mode)
        except OSError as exc:
            module.fail_json(msg=str(exc))
        if warning:
            module.warn(warning)
        module.exit_json(changed=changed, holder=holder, waited=0.0)
    try:
        held = acquire(p, module.check_mode)
    except LockRefused as exc:
        module.fail_json(msg=exc.message, holder=exc.holder, waited=exc.waited)
    module.exit_json(changed=held["taken"], holder=held["holder"], waited=held["waited"])


if __name__ == "__main__":
    main()
