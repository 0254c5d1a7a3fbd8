#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the action plugin plugins/action/evidence_file.py, which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: evidence_file
short_description: Write one file of an incident's evidence folder on the controller
version_added: 0.1.0
description:
  - Writes O(data) as JSON (sorted keys, 4-space indent, UTF-8 kept readable and a final newline, as the filter
    C(to_nice_json) with C(ensure_ascii=false) writes it) or O(content) as it is, to O(path), mode 0600, atomically
    (a temporary file in the same folder, renamed).
  - The file's folder is made a 0700 folder first, as C(ansible.builtin.file) with C(state=directory) and
    C(mode=0700) would (created with its missing parents, each 0700, or given mode 0700).
  - The file is replaced only when its bytes change, so a re-run with the same data reports C(changed=false).
  - Runs on the controller only (an action plugin; nothing is sent to the managed host).
author:
  - ledgerguard engineers (@ledgerguard)
options:
  path:
    description:
      - The file, an absolute path, for example
        C(/var/lib/ledgerguard/evidence/INC-20261126-001/hosts/books01/freeze.json).
    type: path
    required: true
  data:
    description: Written as JSON. Exactly one of O(data) and O(content) is required.
    type: raw
  content:
    description: Written as it is (UTF-8). Exactly one of O(data) and O(content) is required.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports whether the folder or the file would change; writes nothing.
  diff_mode:
    support: none
    description: No diff is shown.
"""

EXAMPLES = r"""
- name: Write the host's freeze record into the incident's evidence folder
  ledgerguard.recovery.evidence_file:
    path: "/var/lib/ledgerguard/evidence/INC-20261126-001/hosts/{{ inventory_hostname }}/freeze.json"
    data:
      host: "{{ inventory_hostname }}"
      incident: INC-20261126-001
      targets: "{{ write_freeze_result.targets }}"
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: The file.
  returned: success
  type: str
  sample: /var/lib/ledgerguard/evidence/INC-20261126-001/hosts/books01/freeze.json
written:
  description: Whether the file was (or, in check mode, would be) written; false when it already held the same bytes.
  returned: success
  type: bool
  sample: true
"""
