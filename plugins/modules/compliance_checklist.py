#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the action plugin plugins/action/compliance_checklist.py, which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: compliance_checklist
short_description: Compute the compliance checklist from the evidence on the controller
version_added: 0.1.0
description:
  - Reads the evidence itself - the drill histories (C(history.jsonl)) and backup-verify results
    (C(backup_verify/**/result.json)) under the evidence root, every signed evidence pack verified with the firm's
    public key when one is given, and in incident mode the incident's notice records (C(notices/index.json)) - plus
    every play host's C(ledgerguard_clients), and computes the checklist (PASS / FAIL / NOT-APPLICABLE / MANUAL per
    requirement, with its source; see docs/compliance.md).
  - Returns the checklist as RV(checklist). When the inputs cannot be used (a time without a timezone, a history
    line that is not JSON, a retention policy given twice and different), RV(checklist) is C({}) and RV(error) says
    why, or the task fails when O(fail_on_error).
  - In incident mode the checklist is kept as C(compliance.json) (mode 0600) in O(evidence_dir), rewritten only when
    it changes.
  - Runs on the controller only (an action plugin; nothing is sent to the managed host).
author:
  - ledgerguard engineers (@ledgerguard)
options:
  inputs_from:
    description:
      - The name of the variable holding the checklist's inputs, a dict with C(mode) (C(incident) or C(periodic)),
        C(now) (ISO 8601 with timezone; empty - now), C(evidence_root), C(history_patterns), C(public_key), C(settings),
        C(policy) (ledgerguard_backup_policy), C(incident) (the incident's grading record), C(extra_drills),
        C(extra_verifies), C(record_classes). The report role's is C(__report_compliance_inputs) (its vars/main.yml).
      - The action templates it itself, so an error inside the inputs becomes C(report_compliance_error).
    type: str
    required: true
  evidence_dir:
    description:
      - The incident's evidence folder (incident mode; its C(notices/index.json) is read, C(compliance.json) written).
    type: str
    default: ""
  fail_on_error:
    description:
      - "Fail with C(The compliance checklist could not be computed: <reason>) when it cannot be computed (the
        periodic report, which has nothing to show without it), instead of setting C(report_compliance_error)."
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Computes the checklist (reading only), reports whether C(compliance.json) would change; writes nothing.
  diff_mode:
    support: none
    description: No diff is shown.
"""

EXAMPLES = r"""
- name: Compute the compliance checklist
  ledgerguard.recovery.compliance_checklist:
    inputs_from: __report_compliance_inputs
    fail_on_error: true
  register: computed
  run_once: true
  delegate_to: localhost

- name: Keep it for the templates
  ansible.builtin.set_fact:
    report_compliance: "{{ computed.checklist }}"
  run_once: true
"""

RETURN = r"""
checklist:
  description:
    - The checklist - C(mode), C(generated_at), C(timezone), C(rows) (each with its status and sources), C(summary)
      (rows per status), C(deadlines), C(grading), C(drills), C(verifies); C({}) when it could not be computed.
  returned: always
  type: dict
error:
  description: Why the checklist could not be computed; empty when it was.
  returned: always
  type: str
  sample: "compliance_checklist: ledgerguard_incident_record.detected_at: '2026-11-26T23:30:00' has no timezone"
"""
