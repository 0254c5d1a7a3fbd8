#!/usr/bin/python
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the work is done on the controller by the action plugin plugins/action/incident_inputs.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: incident_inputs
short_description: Check the incident's inputs for a host and select its clients, before anything is touched
version_added: "0.1.0"
description:
  - "Refuses the incident on the host, changing nothing, when a host named for it is not in the inventory
    (C(Incident input refused, nothing was touched: ...)) or when the host's inputs are wrong
    (C(Incident input refused on <host>, nothing was touched: ...)), each problem named, separated by C(;) - clients
    (ids, names, paths, priorities), the selected clients and paths, the incident id, the cause, a repository URL that
    embeds credentials, pins of clients that are not selected, detection and loss-start times (timezone, future,
    order). The checks are those of the filters C(ledgerguard.recovery.incident_input_errors),
    C(ledgerguard.recovery.incident_host_errors) and C(ledgerguard.recovery.incident_time_errors)."
  - Otherwise sets the host's fact C(incident_result) - C(clients) (the selected clients in restore order, by priority
    then id, each with C(restore_paths) and C(declared_paths), as C(ledgerguard.recovery.incident_select_clients)
    gives them), C(client_ids) and C(paths) (the affected paths, each once).
  - With I(incident_id) and I(closed_path), reads this incident's closed marker on the host (C(ansible.builtin.slurp))
    and returns it as RV(closed) when it is there (the incident was closed on the host, a re-run has nothing to do).
  - This is an action plugin; the checks run on the controller, only the marker is read on the host.
author:
  - ledgerguard engineers (@ledgerguard)
attributes:
  check_mode:
    support: full
    description: Changes nothing in any mode; the checks and the selection are the same.
  diff_mode:
    support: none
    description: Nothing is changed.
  action:
    support: full
    description: Implemented by the action plugin of the same name.
  platform:
    support: full
    platforms: posix
    description: The checks run on the controller; the marker is read on the host.
options:
  clients:
    description: The host's C(ledgerguard_clients) (the shared client spec, docs/contracts.md).
    type: raw
    default: []
  selected:
    description: The affected client ids (C(incident_clients)), a list or a comma-separated string; empty means all.
    type: raw
    default: []
  paths:
    description: Narrow the restore to these absolute paths (C(incident_paths)), a list or a comma-separated string.
    type: raw
    default: []
  host:
    description: The host's inventory name, named in the messages.
    type: str
    required: true
  incident_id:
    description: The incident's id when given (C(INC-YYYYMMDD-NNN)); empty when the incident gets the next free one.
    type: str
    default: ""
  cause:
    description: The suspected cause (C(deleted), C(ransomware), C(corruption), C(unknown)).
    type: str
    default: unknown
  repository:
    description: The restic repository URL, refused when it embeds credentials.
    type: str
    default: ""
  pins:
    description: Snapshot pins per client id (C(incident_pinned_snapshots)); each must name a selected client.
    type: raw
    default: {}
  hosts:
    description: The hosts named for the incident (C(incident_hosts)), each checked against I(inventory_hosts).
    type: raw
    default: []
  inventory_hosts:
    description: Every host of the inventory (C(groups['all'])).
    type: list
    elements: str
    default: []
  detected_at:
    description: When the loss was detected, RFC 3339 with timezone; empty means now.
    type: str
    default: ""
  loss_started:
    description: Earliest time the loss may have started, RFC 3339 with timezone; empty means unknown.
    type: str
    default: ""
  closed_path:
    description: This incident's closed marker on the host (written when the incident gave the host's lock back).
    type: str
    default: ""
seealso:
  - module: ledgerguard.recovery.incident_record
  - module: ledgerguard.recovery.host_lock
"""

EXAMPLES = r"""
- name: Refuse bad inputs for this host and publish its selected clients
  ledgerguard.recovery.incident_inputs:
    clients: "{{ ledgerguard_clients | default([]) }}"
    selected: [c001, c002]
    host: "{{ inventory_hostname }}"
    incident_id: INC-20261126-001
    cause: ransomware
    detected_at: "2026-11-26T09:10:00+08:00"
    inventory_hosts: "{{ groups['all'] }}"
    closed_path: /var/lib/ledgerguard/incidents/INC-20261126-001/closed.json
  register: inputs
"""

RETURN = r"""
ansible_facts:
  description: The host's C(incident_result) - C(clients), C(client_ids), C(paths).
  returned: success
  type: dict
  sample:
    incident_result:
      clients:
        - id: c001
          name: 杭州示例贸易有限公司
          paths: [/srv/books/c001]
          priority: 10
          filings: []
          restore_paths: [/srv/books/c001]
          declared_paths: [/srv/books/c001]
      client_ids: [c001]
      paths: [/srv/books/c001]
closed:
  description: This incident's closed marker on the host (C(incident_id), C(closed_at), C(clients), C(report), ...).
  returned: when the marker is there
  type: dict
  sample: {"incident_id": "INC-20261126-001", "closed_at": "2026-11-26T12:00:00Z", "host": "files01"}
"""
