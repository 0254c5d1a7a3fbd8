#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_copy
short_description: Copy the clients' snapshots to a second (off-site) repository and verify the copy
description:
  - Runs C(restic copy) against the second repository O(to_repository) with the first repository (the shared
    O(repository) option) as its source (C(--from-repo), given through restic's environment), once per client tag
    and host, then once for the host's backup-time manifest snapshots. restic copies only what the second repository
    does not hold yet.
  - Then verifies by listing both repositories - per client, the newest snapshot of the first repository must be
    present in the second (restic gives a copy a new ID and records the source's in C(original)). With
    O(verify=true) and O(copy=true) a client whose newest snapshot is missing after the copy fails the task (not in
    check mode). With O(copy=false) the repositories are only compared and a missing snapshot does not fail the task -
    it is reported in RV(checks).
    A client with no snapshot in the first repository never fails the task; its check is WARN.
  - Stale restic locks are removed from both repositories (see O(stale_lock_age)), but only those removed from the
    first repository are returned in C(stale_locks_removed) and shown as warnings; removals on the second
    repository are not reported.
  - Both repositories are reached with the same backend credentials (O(env), or O(to_env) for the second one when it
    lives with another provider; restic 0.14 reads one set of AWS variables for both, so O(to_env) replaces O(env)
    for the whole copy command).
version_added: 0.2.0
author: ledgerguard contributors (@ledgerguard)
options:
  clients:
    description: Client IDs (the snapshot tag of each client); any snapshot tag copied and verified the same way, such
      as a database's dump tag C(db-<engine>-<database>) (P(ledgerguard.recovery.db_dump_backup#module) gives every
      dump its tag).
    type: list
    elements: str
    required: true
  host:
    description: Snapshot host name of the clients' snapshots.
    type: str
    required: true
  to_repository:
    description: The second repository (must exist; create it with C(restic init), ideally C(--copy-chunker-params)).
    type: str
    required: true
  to_password:
    description:
      - The second repository's password (handed to restic in a 0600 temporary file). The action plugin fills it from
        the controller file O(to_password_controller_file).
    type: str
  to_password_file:
    description: Path, on the managed host, of a file with the second repository's password.
    type: path
  to_password_controller_file:
    description:
      - A 0600 file on the controller with the second repository's password; read by the action plugin (refused
        when group or others may read it) and passed as O(to_password). Never copied to the host's disk.
    type: path
  to_env:
    description: Backend credentials for the copy (see the description); default O(env).
    type: dict
    default: {}
  to_s3_credentials_controller_file:
    description: A 0600 AWS shared-credentials file on the controller for O(to_env) (read by the action plugin).
    type: path
  verify:
    description:
      - Fail when a client's newest snapshot is not in the second repository after the copy. Applies only with
        O(copy=true) outside check mode; a client with no snapshot in the first repository never fails (WARN).
    type: bool
    default: true
  copy:
    description:
      - Run C(restic copy). V(false) only compares the two repositories (what C(backup_verify) reports per client);
        nothing is written.
    type: bool
    default: true
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description: In check mode nothing is copied; the verification reports what the second repository holds now.
"""

EXAMPLES = r"""
- name: Copy off-site and verify
  ledgerguard.recovery.backup_copy:
    clients: [c001, c002]
    host: books-hz01
    to_repository: "s3:https://s3.other-provider.example/agency-offsite/restic"
    to_password_controller_file: ~/.config/ledgerguard/offsite-password
"""

RETURN = r"""
clients:
  description:
    - Per client - C(client), C(newest) (ID of its newest snapshot in the first repository), C(time), C(in_copy),
      C(copy_id) (the copy's ID in the second repository), C(copies) (its snapshots there), and the newest snapshot
      both repositories hold - C(both_id) (first repository), C(both_copy_id) (second), C(both_time).
  returned: success
  type: list
  elements: dict
checks:
  description:
    - The same per client as C(backup_verify) checks (C(check=offsite_copy), C(subject), C(status) OK / WARN / FAIL,
      C(reason), C(details)) - OK when the newest snapshot is in the copy, WARN when only an older one is (or the
      first repository holds no snapshot of the client), FAIL when the copy holds none.
  returned: success
  type: list
  elements: dict
copied:
  description: Snapshots restic copied in this run (from its output).
  returned: success
  type: int
"""

import json  # noqa: E402
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_policy import (  # noqa: E402
    MANIFEST_TAG,
    copy_checks,
    copy_status,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import Restic  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import PasswordFile  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import (  # noqa: E402
    redact_repository,
    url_embeds_credentials,
)


def listing(restic) -> list[dict]:
    return json.loads(restic.must("snapshots", "--json", action="list the snapshots").stdout or "[]") or []


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        clients={"type": "list", "elements": "str", "required": True},
        host={"type": "str", "required": True},
        to_repository={"type": "str", "required": True},
        to_password={"type": "str", "no_log": True},
        to_password_file={"type": "path", "no_log": False},
        to_password_controller_file={"type": "path", "no_log": False},
        to_env={"type": "dict", "no_log": True, "default": {}},
        to_s3_credentials_controller_file={"type": "path"},
        verify={"type": "bool", "default": True},
        copy={"type": "bool", "default": True},
    )
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE + [("to_password", "to_password_file")],
        supports_check_mode=True,
    )
    p = module.params
    if url_embeds_credentials(p["to_repository"]):
        module.fail_json(msg=f"to_repository {redact_repository(p['to_repository'])} embeds credentials; use to_env")
    if p["to_password"] is None and not p["to_password_file"]:
        module.fail_json(
            msg="No password for the second repository: set to_password_controller_file or to_password_file"
        )

    def body(source: Restic) -> dict:
        with PasswordFile(p["to_password"], p["to_password_file"], module.tmpdir) as pw2:
            dest = Restic(
                source.binary,
                p["to_repository"],
                pw2.path,
                env=p["to_env"] or p["env"],
                cache_dir=p["cache_dir"],
                timeout=p["timeout"],
                stale_lock_age=p["stale_lock_age"],
            )
            dest.env["RESTIC_FROM_REPOSITORY"] = source.repository
            dest.env["RESTIC_FROM_PASSWORD_FILE"] = source.env["RESTIC_PASSWORD_FILE"]
            src_snaps = listing(source)
            copied = 0
            if p["copy"] and not module.check_mode:
                scopes = [["--tag", cid] for cid in p["clients"]] + [["--tag", MANIFEST_TAG]]
                for scope in scopes:
                    res = dest.must("copy", "--host", p["host"], *scope, action=f"copy {' '.join(scope)} off-site")
                    copied += len(re.findall(r"^snapshot \S+ saved", res.stdout + res.stderr, re.M))
            status = copy_status(src_snaps, listing(dest), p["clients"], p["host"])
        missing = [s["client"] for s in status if s["newest"] and not s["in_copy"]]
        if missing and p["verify"] and p["copy"] and not module.check_mode:
            raise ValueError(
                f"after restic copy, the newest snapshot of client(s) {', '.join(missing)} is not in "
                f"{redact_repository(p['to_repository'])}; look at the copy's output and run it again"
            )
        checks = copy_checks(status, p["host"], redact_repository(p["to_repository"]))
        return {"changed": copied > 0, "clients": status, "copied": copied, "checks": checks}

    run_module(module, body)


if __name__ == "__main__":
    main()
