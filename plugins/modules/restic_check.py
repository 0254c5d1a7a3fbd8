#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restic_check
short_description: Check a restic repository for errors, optionally reading a subset of the data
description:
  - Runs C(restic check), which verifies the repository's structure (indexes, snapshots, trees), and with
    O(read_data) or O(read_data_subset) also downloads and verifies pack files.
  - C(restic check) takes an exclusive lock, so it fails (with a message naming the lock holder) while a backup runs.
  - Never changes the repository's data; the task never reports a change.
version_added: 0.1.0
author: ledgerguard contributors (@ledgerguard)
options:
  read_data:
    description:
      - Read and verify all data (expensive on large repositories). Mutually exclusive with O(read_data_subset).
    type: bool
    default: false
  read_data_subset:
    description:
      - Read and verify only a subset of the pack files, one of
      - "V(n/t): part n of t (rolling; e.g. V(1/7) on Mondays, V(2/7) on Tuesdays covers everything in a week);"
      - "V(x%) or V(x.y%): a random percentage of the packs, above 0 and at most 100;"
      - "a size such as V(500M) or V(2G) (suffixes k, m, g, t): random packs up to that much data."
    type: str
  fail_on_error:
    description:
      - Fail the task when the check finds errors. With V(false) the task succeeds and returns RV(ok=false) and
        RV(errors), so a role can record the result before deciding.
      - Failures to run the check at all (wrong password, lock, unreachable backend) always fail the task.
    type: bool
    default: true
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description: C(restic check) is read-only, so it runs the same in check mode.
"""

EXAMPLES = r"""
- name: Weekly rolling data check, one seventh per day
  ledgerguard.recovery.restic_check:
    read_data_subset: "{{ ansible_date_time.weekday_number | int % 7 + 1 }}/7"

- name: Check structure and 5 % of the data, record the outcome without failing
  ledgerguard.recovery.restic_check:
    read_data_subset: 5%
    fail_on_error: false
  register: check
"""

RETURN = r"""
ok:
  description: Whether restic found no errors.
  returned: success
  type: bool
  sample: true
errors:
  description: The lines in which restic reported problems (empty when RV(ok)).
  returned: success
  type: list
  elements: str
  sample: []
read_data:
  description: "What was read: V(none), V(all), or the subset given."
  returned: success
  type: str
  sample: 1/7
packs_read:
  description: Number of pack files read in a subset check, when restic reports it.
  returned: when restic reports it
  type: int
packs_total:
  description: Number of pack files in the repository, when restic reports it.
  returned: when restic reports it
  type: int
seconds:
  description: Wall-clock duration of the check.
  returned: success
  type: float
restic_version:
  description: The version of the restic binary used.
  returned: success
  type: str
  sample: 0.14.0
error_kind:
  description:
    - On failure, the class of the failure; C(check_failed) when the check ran and found errors.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    RESTIC_MUTUALLY_EXCLUSIVE,
    ResticError,
    classify_error,
    parse_check,
    redact_repository,
    restic_argument_spec,
    run_module,
    validate_read_data_subset,
)


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        read_data={"type": "bool", "default": False},
        read_data_subset={"type": "str"},
        fail_on_error={"type": "bool", "default": True},
    )
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE + [("read_data", "read_data_subset")],
        supports_check_mode=True,
    )
    params = module.params

    def body(restic):
        args = ["check"]
        read = "none"
        if params["read_data_subset"]:
            read = validate_read_data_subset(params["read_data_subset"])
            if not restic.features.check_read_data_subset:
                raise ValueError(
                    f"restic {restic.features.version_string} has no 'check --read-data-subset'; "
                    "use read_data: true or upgrade restic"
                )
            args += ["--read-data-subset", read]
        elif params["read_data"]:
            args.append("--read-data")
            read = "all"
        res = restic.run(*args)
        parsed = parse_check(res)
        # A run that could not even start (password, lock, backend, timeout) is a failure of its own kind.
        if res.rc != 0 or res.timed_out:
            err = classify_error(res, restic.repository, restic.features, action="check the repository")
            if err.kind != "failed":
                raise err
            if not parsed["errors"]:
                parsed["errors"] = [line.strip() for line in res.stderr.splitlines() if line.strip()][-10:]
        result = {
            "changed": False,
            "ok": parsed["ok"],
            "errors": parsed["errors"],
            "read_data": read,
            "seconds": round(res.seconds, 3),
            "restic_version": restic.features.version_string,
        }
        for key in ("packs_read", "packs_total"):
            if key in parsed:
                result[key] = parsed[key]
        if not parsed["ok"] and params["fail_on_error"]:
            raise ResticError(
                "check_failed",
                f"restic check found {len(parsed['errors'])} problem(s) in repository "
                f"{redact_repository(restic.repository)}: {'; '.join(parsed['errors'][:5])}. Do not prune or forget "
                "anything; run 'restic check --read-data' to see the full extent and 'restic repair' (restic 0.16+) "
                "or restore from another copy.",
                {"errors": parsed["errors"], "read_data": read},
                res,
            )
        return result

    run_module(module, body)


if __name__ == "__main__":
    main()
