#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the action plugin plugins/action/notice_drafts.py, which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: notice_drafts
short_description: Write an incident's customer notice drafts and their index on the controller
version_added: 0.1.0
description:
  - Plans the drafts (one per affected client, milestone reached and contact language;
    C(plugins/plugin_utils/notices.py)), renders each from the calling role's templates (C(notice.<lang>.md.j2) for
    the confirmed notice, C(notice_<milestone>.<lang>.md.j2) for C(restoring), C(restored) and C(final)) with the
    task's variables plus C(__notice) (the draft) and C(__client) (the client's result), and writes them (mode 0600) and
    C(notices/index.json) (each draft's sha256 as written, status C(draft)) under O(evidence_dir).
  - A notice that is no longer a draft (approved, sent, failed) is never rewritten. A draft whose text is unchanged is
    not rewritten either, so a re-run reports C(changed=false).
  - With O(milestone), the drafts of that milestone of the incident in O(record), written when it happens; the
    clients are read from every host of the play (C(confirmed), C(restoring) - each host's selected clients,
    C(incident_result.clients); C(restored) - the report's view of every host's published results), C(restoring)
    adds each client's ETA from the incident's one restore queue across the hosts (the drills' measured throughput,
    every C(history.jsonl) up to four levels under O(drills_root)) and returns the queue as RV(queue_lines). A problem
    is a warning (RV(msg)), never a failure - the report at the end of the incident writes every draft again.
  - Nothing is sent; C(ledgerguard notices) approves and sends. Runs on the controller only (an action plugin).
author:
  - ledgerguard engineers (@ledgerguard)
options:
  clients:
    description:
      - The clients' results (the report's C(clients)), each with C(id) and C(host).
      - Required without O(milestone); with it, the clients are read from the play's hosts.
    type: list
    elements: dict
  milestone:
    description:
      - Draft this milestone of the incident, gathering its clients from every host of the play (see above).
    type: str
    choices: [confirmed, restoring, restored]
  record:
    description:
      - The incident object (C(incident_record)); required with O(milestone). Its C(evidence_dir) and C(incident_id)
        are the defaults of O(evidence_dir) and O(incident_id), its C(detected_at) the time after which the
        C(restoring) queue looks for each client's next filing deadline.
    type: dict
  drills_root:
    description: The folder under which the drill histories (C(history.jsonl)) are found for the C(restoring) ETAs.
    type: path
  calendar:
    description: The firm's filing calendar file (C(ledgerguard_filing_calendar)); empty - the shipped one.
    type: str
    default: ""
  configured:
    description:
      - Every host's C(ledgerguard_clients) (the contacts and their languages); not given - those of every host of
        the play.
    type: list
    elements: dict
  languages:
    description: The languages of a client without contacts.
    type: list
    elements: str
    default: []
  milestones:
    description:
      - The milestones to draft now; empty drafts every milestone each client reached (the end of the incident).
    type: list
    elements: str
    default: []
  evidence_dir:
    description: The incident's evidence folder; required without O(milestone).
    type: path
  incident_id:
    description: The incident's id, recorded in the index; required without O(milestone).
    type: str
attributes:
  check_mode:
    support: full
    description: Plans and reports the drafts it would write; writes nothing.
  diff_mode:
    support: none
    description: No diff is shown.
"""

EXAMPLES = r"""
- name: Draft the notices of the restored milestone
  ledgerguard.recovery.notice_drafts:
    clients: "{{ __report.clients }}"
    configured: "{{ ledgerguard_clients }}"
    languages: [zh-CN, en]
    milestones: [restored]
    evidence_dir: /var/lib/ledgerguard/evidence/INC-20261126-001
    incident_id: INC-20261126-001
  run_once: true
  delegate_to: localhost

- name: Draft the notices that the restore is under way, with each client's ETA from the restore queue
  ledgerguard.recovery.notice_drafts:
    milestone: restoring
    record: "{{ incident_record }}"
    languages: [zh-CN, en]
    drills_root: /var/lib/ledgerguard/evidence
  register: restoring
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
written:
  description: The drafts written or checked this run (paths relative to O(evidence_dir)).
  returned: success, except with O(milestone) when the drafts were not written (then RV(msg) says why)
  type: list
  elements: str
  sample: [notices/c001.restored.zh-CN.md]
kept:
  description: The notices left as they are (approved, sent or failed).
  returned: success
  type: list
  elements: str
  sample: [notices/c001.zh-CN.md]
index:
  description: The index file.
  returned: success
  type: str
  sample: /var/lib/ledgerguard/evidence/INC-20261126-001/notices/index.json
milestone:
  description: The milestone drafted (with O(milestone)).
  returned: when O(milestone) is given
  type: str
  sample: restoring
queue_lines:
  description: The incident's restore queue as text, one line per client and warning (O(milestone=restoring)).
  returned: when O(milestone) is restoring and the queue was built
  type: list
  elements: str
  sample: ["Restore queue of the incident (all hosts; nearest filing deadline first, then priority, then id):"]
msg:
  description: With O(milestone), why the drafts were not written (also a warning); the task does not fail.
  returned: when O(milestone) is given and the drafts were not written
  type: str
  sample: "WARNING: customer notice drafts (restoring) not written (building the restore queue): ..."
"""
