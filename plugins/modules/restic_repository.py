#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restic_repository
short_description: Ensure a restic repository exists and report its id, format version and backend
description:
  - Opens the repository with C(restic cat config) and reports its ID, repository format version, backend type and the
    restic version on the host.
  - With O(init=true), a repository that does not exist yet is initialised. An existing repository is never
    re-initialised, and a repository that cannot be opened for another reason (wrong password, backend unreachable,
    lock) is never initialised either; the task fails with the reason.
version_added: 0.1.0
author: ledgerguard contributors (@ledgerguard)
options:
  init:
    description:
      - Initialise the repository when (and only when) it does not exist.
      - When V(false) and the repository does not exist, the task fails and says so.
    type: bool
    default: false
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description: In check mode nothing is initialised; the task's C(changed) says whether an init would happen.
"""

EXAMPLES = r"""
- name: Make sure the backup repository exists (create it on first run)
  ledgerguard.recovery.restic_repository:
    init: true
  register: repo

- name: Report the repository of an explicit S3 location
  ledgerguard.recovery.restic_repository:
    repository: s3:https://s3.example.com/ledger-backups/restic
    password_file: /etc/ledgerguard/restic.pass
    env:
      AWS_ACCESS_KEY_ID: "{{ vault_aws_key }}"
      AWS_SECRET_ACCESS_KEY: "{{ vault_aws_secret }}"
"""

RETURN = r"""
repository:
  description: The repository location (never with credentials).
  returned: always
  type: str
  sample: s3:http://127.0.0.1:9000/ledger-backups/restic
exists:
  description: Whether the repository exists after the task (V(false) only in check mode before an init).
  returned: success
  type: bool
  sample: true
initialized:
  description: Whether this task initialised the repository (or would have, in check mode).
  returned: success
  type: bool
  sample: false
repository_id:
  description: The repository ID from its config; empty when it does not exist yet (check mode).
  returned: success
  type: str
  sample: 8a154eab59f621a56f1fa07caaa97815404389959f8c99326248126eacbf6382
repository_version:
  description: The repository format version (1 or 2); 0 when it does not exist yet (check mode).
  returned: success
  type: int
  sample: 2
backend:
  description: The backend type named by the repository location.
  returned: success
  type: str
  sample: s3
restic_version:
  description: The version of the restic binary used.
  returned: success
  type: str
  sample: 0.14.0
error_kind:
  description:
    - On failure, the class of the failure, one of C(wrong_password), C(repo_missing), C(locked), C(unreachable),
      C(permission_denied), C(no_space), C(timeout), C(failed).
  returned: failure
  type: str
  sample: wrong_password
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import ResticError  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    backend_of,
    redact_repository,
)


def main() -> None:
    spec = restic_argument_spec()
    spec.update(init={"type": "bool", "default": False})
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE, supports_check_mode=True)

    def body(restic):
        base = {
            "repository": redact_repository(restic.repository),
            "backend": backend_of(restic.repository),
            "restic_version": restic.features.version_string,
        }
        try:
            config = restic.config()
            return dict(
                base,
                changed=False,
                exists=True,
                initialized=False,
                repository_id=config["id"],
                repository_version=config["version"],
            )
        except ResticError as exc:
            if exc.kind != "repo_missing" or not module.params["init"]:
                raise
        if module.check_mode:
            return dict(base, changed=True, exists=False, initialized=True, repository_id="", repository_version=0)
        restic.must("init", action="initialise the repository")
        config = restic.config()
        return dict(
            base,
            changed=True,
            exists=True,
            initialized=True,
            repository_id=config["id"],
            repository_version=config["version"],
        )

    run_module(module, body)


if __name__ == "__main__":
    main()
