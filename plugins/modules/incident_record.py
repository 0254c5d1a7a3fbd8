#!/usr/bin/python
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the work is done on the controller by the action plugin plugins/action/incident_record.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: incident_record
short_description: Read or update the incident object, evidence/<id>/incident.json, on the controller
version_added: "0.1.0"
description:
  - The incident object is the one record of an incident that every role and report reads; its fields are listed
    in docs/contracts.md. It is kept in C(<evidence_root>/<incident_id>/incident.json) on the controller.
  - I(state=read) returns the object (RV(exists) is false and RV(record) empty when there is none yet). Without
    I(incident_id) it returns the next free id of the day (C(INC-YYYYMMDD-NNN), controller's local date) and
    creates nothing.
  - I(state=declare) names the incident for the run and reads nothing else. It sets the collection-wide facts
    C(ledgerguard_incident_id) (the id given, or the next free one of the day) and C(ledgerguard_timeline)
    (C(incident_id), C(path) of C(timeline.jsonl) in the evidence folder, C(operator), and C(run), a new token naming
    this run), which the C(ledgerguard.recovery.timeline) callback starts the timeline from. In check mode
    C(ledgerguard_timeline) is empty (a dry run writes no timeline). It creates nothing.
  - I(state=update) applies I(record) to the object and writes it back atomically (temporary file and rename, mode
    0600) under an exclusive lock on the evidence folder, creating the folder (0700) when needed. C(declared_at) is
    the first update's time and never changes; an empty C(detected_at) keeps the earlier value (or becomes now);
    C(detected_at) and C(loss_started) are normalised to UTC; I(new_run=true) adds the time of this run to C(runs).
    The file is rewritten only when its content changes.
  - The file must be a regular file (a symlink is refused) holding a JSON object.
  - This is an action plugin; it runs on the controller whatever the task's host is and needs no connection.
author:
  - ledgerguard engineers (@ledgerguard)
attributes:
  check_mode:
    support: full
    description: Returns the object as it would be written; writes nothing, creates no folder.
  diff_mode:
    support: none
    description: The whole object is returned in RV(record).
  action:
    support: full
    description: Implemented by the action plugin of the same name.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller.
options:
  state:
    description:
      - C(read) returns the object, C(declare) sets the run's incident id and timeline facts, C(update) applies
        I(record) and writes it.
    type: str
    choices: [read, declare, update]
    default: read
  evidence_root:
    description:
      - The folder that holds one folder per incident (C(ledgerguard_evidence_dir)).
    type: path
    required: true
  incident_id:
    description:
      - The incident, C(INC-YYYYMMDD-NNN). Empty means the next free id of the day in I(evidence_root) (for
        I(state=update) the object is then created under that id).
    type: str
    default: ""
  record:
    description:
      - Fields to set (I(state=update)). Accepted are C(detected_at), C(loss_started) (RFC 3339 with timezone, or
        empty), C(cause), C(operator), C(summary) (strings), C(hosts) (list of host names), C(clients) (dict of host
        name to list of client ids), C(pinned) (dict of client id to snapshot id), C(compliance) (dict, the
        compliance part filled by the operator, see docs/compliance.md). Any other field is refused.
    type: dict
    default: {}
  new_run:
    description:
      - Record this update as a new run of the incident (its time is added to C(runs)).
    type: bool
    default: false
  folders:
    description:
      - With I(state=update), folders to make in the incident's evidence folder (plain names, such as C(hosts) and
        C(notices)), each mode 0700 (created when missing, given mode 0700 when not). A link or a file under that name
        is refused.
    type: list
    elements: str
    default: []
  timeline:
    description:
      - With I(state=update), the incident's timeline as the fact C(ledgerguard_timeline) names it (C(path) and this
        run's token C(run)). Before anything is written, the file must hold the token (the
        C(ledgerguard.recovery.timeline) callback writes it into its C(run_start) line when it sees the fact);
        otherwise the task fails saying how to enable the callback, and nothing is written. Empty (or check mode)
        skips the check.
    type: dict
    default: {}
  operator:
    description:
      - With I(state=declare), who runs the incident, recorded in C(ledgerguard_timeline) (the timeline's lines).
    type: str
    default: ""
  publish:
    description:
      - With I(state=update), also set the object as the fact C(incident_record) (on every host of the play when the
        task runs once).
    type: bool
    default: false
notes:
  - Field reference and the other roles' published results are documented in docs/contracts.md.
seealso:
  - module: ledgerguard.recovery.host_lock
"""

EXAMPLES = r"""
- name: Declare the incident (or continue it) and publish the object
  ledgerguard.recovery.incident_record:
    state: update
    evidence_root: /srv/ledgerguard/evidence
    incident_id: INC-20261126-001
    new_run: true
    folders: [hosts, notices]
    timeline: "{{ ledgerguard_timeline }}"
    record:
      detected_at: "2026-11-26T09:10:00+08:00"
      loss_started: ""
      cause: ransomware
      operator: 王会计
      summary: 甲公司的账套被加密
      hosts: [files01]
      clients: {files01: [c001, c002]}
      pinned: {}
  run_once: true
  register: incident_declared

- name: Name the incident and start its timeline (facts ledgerguard_incident_id, ledgerguard_timeline)
  ledgerguard.recovery.incident_record:
    state: declare
    evidence_root: /srv/ledgerguard/evidence
    incident_id: ""
    operator: 王会计
  run_once: true

- name: Read the object of an earlier incident
  ledgerguard.recovery.incident_record:
    evidence_root: /srv/ledgerguard/evidence
    incident_id: INC-20261126-001
  register: incident_read

- name: Ask for the next free incident id of today (creates nothing)
  ledgerguard.recovery.incident_record:
    evidence_root: /srv/ledgerguard/evidence
  register: incident_next
"""

RETURN = r"""
incident_id:
  description: The incident's id (the one given, or the next free one when none was given).
  returned: success
  type: str
  sample: INC-20261126-001
evidence_dir:
  description: The incident's evidence folder (absolute, symlinks resolved).
  returned: success
  type: str
  sample: /srv/ledgerguard/evidence/INC-20261126-001
path:
  description: The incident object's file.
  returned: success
  type: str
  sample: /srv/ledgerguard/evidence/INC-20261126-001/incident.json
exists:
  description: Whether the file exists (after I(state=update) it always does, except in check mode).
  returned: state=read or state=update
  type: bool
created:
  description: The update created the file (or would, in check mode).
  returned: state=update
  type: bool
ansible_facts:
  description: With I(state=declare), the facts C(ledgerguard_incident_id) and C(ledgerguard_timeline); with
    I(state=update) and I(publish), the fact C(incident_record) (the object).
  returned: state=declare, or state=update with publish
  type: dict
  sample:
    ledgerguard_incident_id: INC-20261126-001
    ledgerguard_timeline:
      incident_id: INC-20261126-001
      path: /srv/ledgerguard/evidence/INC-20261126-001/timeline.jsonl
      operator: 王会计
      run: 20261126T011200123456Z-3141592653
record:
  description: The incident object (empty when I(state=read) finds no file). Fields in docs/contracts.md.
  returned: state=read or state=update
  type: dict
  sample:
    version: 1
    incident_id: INC-20261126-001
    evidence_dir: /srv/ledgerguard/evidence/INC-20261126-001
    declared_at: "2026-11-26T01:12:00Z"
    runs: ["2026-11-26T01:12:00Z"]
    detected_at: "2026-11-26T01:10:00Z"
    loss_started: ""
    cause: ransomware
    operator: 王会计
    summary: 甲公司的账套被加密
    hosts: [files01]
    clients: {files01: [c001, c002]}
    pinned: {}
"""
