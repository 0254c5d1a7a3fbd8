#!/usr/bin/python
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill's sandbox: refused when it could touch production or the system, else this run's folder created."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: drill_sandbox
short_description: Refuse an unsafe drill sandbox, or create the run's folder in a safe one
version_added: "0.1.0"
description:
  - Checks the drill's sandbox O(sandbox) as given and as resolved on the host (symbolic links followed, missing
    parts allowed, as C(realpath -m)). It must be absolute, not C(/), not a system folder or inside one, not a shared
    top-level folder itself, and neither inside nor around a production path of O(clients) or a path of
    O(forbidden_paths) (the rules of the filter C(ledgerguard.recovery.drill_sandbox_problem)). An unsafe sandbox
    fails the task with the reason, and nothing is created.
  - In a safe sandbox, creates the run's folder O(path) (and its missing parents), each created folder mode C(0700),
    and gives O(path) mode C(0700), as C(ansible.builtin.file) with C(state=directory) would.
  - The drill role took three tasks for this (a C(realpath) command, an C(assert) and a C(file) task; issue 19).
author:
  - ledgerguard engineers (@ledgerguard)
attributes:
  check_mode:
    support: full
    description: Checks the sandbox (an unsafe one fails the task as in a real run) and reports whether O(path) would
      be created; creates nothing.
  diff_mode:
    support: none
    description: No diff is produced.
  platform:
    support: full
    platforms: posix
    description: Any POSIX host.
options:
  sandbox:
    description: The sandbox (the drill role's C(drill_sandbox_dir)), checked as given and as resolved on the host.
    type: str
    required: true
  path:
    description:
      - The run's folder to create (absolute, inside O(sandbox), e.g. C(<sandbox>/<drill id>)). A path outside the
        sandbox, or one that a link inside the sandbox leads out of it, is refused and nothing is created or changed.
    type: path
    required: true
  clients:
    description: The clients (C(ledgerguard_clients)); each one's C(paths) are production paths.
    type: list
    elements: dict
    default: []
  forbidden_paths:
    description: More paths the sandbox must keep away from.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Refuse an unsafe sandbox, else create this drill's folder in it
  ledgerguard.recovery.drill_sandbox:
    sandbox: /var/tmp/ledgerguard-drill
    path: /var/tmp/ledgerguard-drill/drill-20261206T020000
    clients: "{{ ledgerguard_clients }}"
    forbidden_paths: [/srv/archive]
"""

RETURN = r"""
path:
  description: The run's folder.
  returned: always
  type: str
  sample: /var/tmp/ledgerguard-drill/drill-20261206T020000
realpath:
  description: The sandbox resolved on the host (symbolic links followed).
  returned: always
  type: str
  sample: /var/tmp/ledgerguard-drill
created:
  description: The folders created (in check mode, those that would be), outermost first.
  returned: always
  type: list
  elements: str
refused:
  description:
    - Whether the sandbox (or O(path)) was refused as unsafe; the task's C(msg) says why. False when the sandbox is
      safe, also when the task failed because O(path) could not be created (then RV(error) says why).
  returned: when the task failed
  type: bool
  sample: true
error:
  description: Why the run's folder could not be created in a safe sandbox (the folder, the system's reason).
  returned: when the folder could not be created
  type: str
  sample: "drill_sandbox: cannot create /var/tmp/ledgerguard-drill/d1: Permission denied; fix the folder's owner or
    mode, or choose another drill_sandbox_dir"
"""

import os  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils import drill  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

MODE = "0700"


def fail_create(module: AnsibleModule, path: str, real: str, why: str) -> None:
    """A safe sandbox whose run folder cannot be made: failed, not refused (RV(refused) false, RV(error) the reason),
    so that the drill role can record it as the drill's error and go on to its record and report."""
    msg = f"drill_sandbox: {why}; fix the folder's owner or mode, or choose another drill_sandbox_dir"
    module.fail_json(msg=msg, error=msg, refused=False, path=path, realpath=real, created=[])


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "sandbox": {"type": "str", "required": True},
            "path": {"type": "path", "required": True},
            "clients": {"type": "list", "elements": "dict", "default": []},
            "forbidden_paths": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    sandbox, path = module.params["sandbox"], module.params["path"]
    real = os.path.realpath(sandbox) if sandbox.startswith("/") else ""
    problem = drill.sandbox_problem(
        sandbox, module.params["clients"], realpath=real or None, extra_forbidden=module.params["forbidden_paths"]
    )
    if problem:
        module.fail_json(msg=problem, refused=True, path=path, realpath=real, created=[])
    if not os.path.isabs(path):
        module.fail_json(
            msg=f"drill_sandbox: path must be absolute (the run's folder in the sandbox), got {path!r}", refused=True
        )
    if not drill.within(os.path.normpath(path), os.path.normpath(sandbox)):
        module.fail_json(
            msg=f"drill_sandbox: path {path!r} is not inside the sandbox {sandbox!r}; the drill makes and changes "
            "folders only there",
            refused=True,
            path=path,
            realpath=real,
            created=[],
        )
    missing = []
    cur = path
    while not os.path.lexists(cur):
        missing.append(cur)
        cur = os.path.dirname(cur)
    # what exists of the path inside the sandbox must resolve inside it too (no link leads out of it)
    if drill.within(cur, os.path.normpath(sandbox)) and not drill.within(os.path.realpath(cur), real):
        module.fail_json(
            msg=f"drill_sandbox: {cur!r} resolves to {os.path.realpath(cur)!r}, outside the sandbox {real!r}; "
            "remove the link from the sandbox",
            refused=True,
            path=path,
            realpath=real,
            created=[],
        )
    if not os.path.isdir(cur):
        fail_create(module, path, real, f"{cur} is not a folder, so the drill's folder {path} cannot be made under it")
    created = list(reversed(missing))
    if module.check_mode:
        wrong_mode = not missing and (os.stat(path).st_mode & 0o7777) != int(MODE, 8)
        module.exit_json(changed=bool(missing) or wrong_mode, path=path, realpath=real, created=created)
    changed = False
    made = []
    for folder in created:
        try:
            os.mkdir(folder)
        except FileExistsError:
            if not os.path.isdir(folder):
                fail_create(
                    module,
                    path,
                    real,
                    f"{folder} is not a folder, so the drill's folder {path} cannot be made under it",
                )
            # another host of the same run (a shared parent) made it first, as ansible.builtin.file allows
        except OSError as exc:
            fail_create(module, path, real, f"cannot create {folder}: {exc.strerror or exc}")
        else:
            made.append(folder)
        changed = module.set_mode_if_different(folder, MODE, changed or folder in made)
    changed = module.set_mode_if_different(path, MODE, changed)
    module.exit_json(changed=changed, path=path, realpath=real, created=made)


if __name__ == "__main__":
    main()
