# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One client's cause of loss from what its restore (or its dry-run plan) found."""

from __future__ import annotations

DOCUMENTATION = r"""
name: incident_client_cause
short_description: A client's cause of loss (ransomware, deleted, corruption, unknown) and where it came from
version_added: "0.1.0"
description:
  - Maps the damage signs found for one client to a cause, strongest first. Ransomware is a ransom note, files renamed
    with a ransomware extension, or changed files that look encrypted (high entropy). Deleted is a vanished client
    folder (or one missing from the snapshot), a mass drop of files or bytes, or missing files put back. Corruption
    is a mass of modified files, damaged files, or a file or ledger that fails its format's validator
    (module_utils/validators.py, e.g. a SQLite ledger failing C(quick_check)), without encryption signs; the file
    and the validator's reason are the evidence.
  - The signs are the skipped snapshots' reasons, a pinned snapshot's warnings, the quarantine reasons and the
    missing files put back. When none is found, the operator's declared cause is used (source C(declared)), or
    C(unknown) (source C(undetermined)).
  - The same mapping (module_utils/cause.py) gives every client of report.json its C(cause).
author: ledgerguard contributors (@ledgerguard)
positional: declared
options:
  _input:
    description: One entry of C(restore_results) (or a dry-run plan entry), with C(skipped), C(warnings),
      C(quarantined) and C(restored).
    type: dict
    required: true
  declared:
    description: The operator's declared cause (C(incident_cause)).
    type: str
    default: unknown
"""

EXAMPLES = r"""
- name: Show the cause a client's plan points to
  ansible.builtin.debug:
    msg: "{{ (plan | ledgerguard.recovery.incident_client_cause(incident_cause)).cause }}"
"""

RETURN = r"""
_value:
  description: The cause.
  type: dict
  contains:
    cause: {description: "ransomware, deleted, corruption or unknown.", type: str}
    source: {description: "detected, declared or undetermined.", type: str}
    declared: {description: The operator's declared cause., type: str}
    evidence: {description: 'The signs behind the cause, each as "where: sentence".', type: list, elements: str}
    other_signs: {description: Signs of weaker causes., type: list, elements: str}
"""

from ansible_collections.ledgerguard.recovery.plugins.module_utils.cause import (  # noqa: E402
    client_cause,
)


def incident_client_cause(result, declared="unknown"):
    """See DOCUMENTATION."""
    return client_cause(result if isinstance(result, dict) else {}, declared)


class FilterModule:
    def filters(self):
        return {"incident_client_cause": incident_client_cause}
