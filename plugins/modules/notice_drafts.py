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
  - Nothing is sent; C(ledgerguard notices) approves and sends. Runs on the controller only (an action plugin).
author:
  - ledgerguard engineers (@ledgerguard)
options:
  clients:
    description: The clients' results (the report's C(clients)), each with C(id) and C(host).
    type: list
    elements: dict
    required: true
  configured:
    description: Every host's C(ledgerguard_clients) (the contacts and their languages).
    type: list
    elements: dict
    default: []
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
    description: The incident's evidence folder.
    type: path
    required: true
  incident_id:
    description: The incident's id, recorded in the index.
    type: str
    required: true
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
"""

RETURN = r"""
written:
  description: The drafts written or checked this run (paths relative to O(evidence_dir)).
  returned: always
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
"""
