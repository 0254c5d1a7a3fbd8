#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the action plugin plugins/action/evidence_sums.py, which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: evidence_sums
short_description: Write the SHA256SUMS of an evidence folder on the controller
version_added: 0.1.0
description:
  - Hashes every regular file under O(path) (symlinks and special files are not evidence and are left out) and writes
    C(SHA256SUMS) in O(path), sorted by path, in GNU C(sha256sum) format, so C(sha256sum -c SHA256SUMS) run inside the
    folder checks it.
  - Files named in O(exclude), at any depth, are left out (files that are still being appended to, such as the
    timeline, which carries its own hash chain). C(SHA256SUMS) itself is always left out, and so are the evidence
    pack's manifest and signature C(evidence-pack.json) and C(evidence-pack.sig) directly in O(path) (files of those
    names in subfolders are hashed).
  - The file (mode 0600) is replaced only when its content changes, so a re-run over the same evidence reports
    C(changed=false). A folder that cannot be read completely fails the task and writes nothing.
  - Runs on the controller only (an action plugin; nothing is sent to the managed host).
author:
  - ledgerguard engineers (@ledgerguard)
options:
  path:
    description: The evidence folder, for example C(/var/lib/ledgerguard/evidence/INC-20261126-001).
    type: path
    required: true
  exclude:
    description: File names to leave out wherever they are in the folder.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Computes the sums and reports whether the file would change; writes nothing.
  diff_mode:
    support: none
    description: No diff is shown.
"""

EXAMPLES = r"""
- name: Write SHA256SUMS of the incident's evidence (the timelines have their own hash chains)
  ledgerguard.recovery.evidence_sums:
    path: /var/lib/ledgerguard/evidence/INC-20261126-001
    exclude: [timeline.jsonl, oncall.jsonl]
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: The C(SHA256SUMS) file.
  returned: success
  type: str
  sample: /var/lib/ledgerguard/evidence/INC-20261126-001/SHA256SUMS
files:
  description: How many files it lists.
  returned: success
  type: int
  sample: 42
sha256:
  description: The sha256 of the C(SHA256SUMS) content.
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
"""
