#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the action plugin plugins/action/incident_report.py, which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_report
short_description: Write an incident's report, notice drafts, compliance checklist and evidence hashes on the controller
version_added: 0.1.0
description:
  - Reads every play host's published results itself (C(incident_result), C(restore_results),
    C(restore_database_results), C(write_freeze_result), C(write_freeze_thaw_result), C(write_freeze_rescans),
    C(write_freeze_rescan_result), C(state_snapshot_result); a host that dropped out of the run has its selected
    clients reported C(not_done)) and builds the report (status, RTO, data-loss windows, containment, databases,
    restore queue, the timeline checked against its hash chain, the evidence files with their sha256; see
    docs/contracts.md).
  - With O(write) (the default), in this order - C(report.json); when O(notices), the customer notice drafts and
    C(notices/index.json) (every draft no person has acted on re-rendered from the final results, plus the final
    notices; a problem is a warning and the report goes on); the compliance checklist from the inputs in
    O(compliance_from) (C(compliance.json) in incident mode; an input it cannot use is shown in the report instead);
    C(report.<format>) for each of O(formats) from the calling role's templates C(report.<format>.j2) (with
    C(__report), C(report_compliance) and C(report_compliance_error)); C(SHA256SUMS) of the evidence folder (the
    timeline and C(oncall.jsonl) left out, they carry their own hash chains). Each file is mode 0600, written
    atomically and only when its bytes change.
  - Publishes the job artifacts (set_stats) C(ledgerguard_incident_id), C(ledgerguard_report) (C(report.html) when
    HTML is among O(formats), else the first format written, else C(report.json)), C(ledgerguard_incident_status) and
    C(ledgerguard_clients_failed).
  - Without O(write), nothing is written and the report is returned as RV(report) (the notice drafts of the
    C(restored) milestone read it).
  - Runs on the controller only (an action plugin; nothing is sent to the managed host).
author:
  - ledgerguard engineers (@ledgerguard)
options:
  record:
    description:
      - The incident object (C(incident.json), the fact C(incident_record)); the report goes into its C(evidence_dir).
    type: dict
    required: true
  write:
    description: Write the files and publish the artifacts; false returns the report only.
    type: bool
    default: true
  formats:
    description: Formats besides JSON.
    type: list
    elements: str
    choices: [md, html]
    default: [md, html]
  notices:
    description: Write the customer notice drafts (not in check mode).
    type: bool
    default: false
  notice_languages:
    description: Languages of the drafts for a client with neither C(contacts) nor C(language).
    type: list
    elements: str
    default: []
  compliance_from:
    description:
      - The name of the variable holding the compliance checklist's inputs (see
        M(ledgerguard.recovery.compliance_checklist)), templated by the action so an error inside them is shown in the
        report. Required with O(write).
    type: str
attributes:
  check_mode:
    support: full
    description: Builds the report and the checklist, reports whether a file would change; writes and drafts nothing.
  diff_mode:
    support: none
    description: No diff is shown.
"""

EXAMPLES = r"""
- name: Write the report, the notice drafts, the compliance checklist and the evidence hashes
  ledgerguard.recovery.incident_report:
    record: "{{ incident_record }}"
    notices: true
    compliance_from: __report_compliance_inputs
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
status:
  description: The incident's status.
  returned: O(write)
  type: str
  sample: restored
summary:
  description: The report's summary (clients restored, files, RTO, data-loss window, containment).
  returned: O(write)
  type: dict
path:
  description: C(report.json).
  returned: O(write)
  type: str
  sample: /var/lib/ledgerguard/evidence/INC-20261126-001/report.json
sums:
  description: C(SHA256SUMS).
  returned: O(write)
  type: str
  sample: /var/lib/ledgerguard/evidence/INC-20261126-001/SHA256SUMS
compliance:
  description: The checklist's C(mode) and C(overall), or the C(error) why it could not be computed.
  returned: O(write)
  type: dict
notices:
  description: The drafts C(written) and C(kept), and the C(index).
  returned: O(write) and O(notices)
  type: dict
report:
  description: The report (what C(report.json) holds).
  returned: not O(write)
  type: dict
"""
