#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the action plugin plugins/action/evidence_pack.py, which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: evidence_pack
short_description: Sign or verify a signed evidence pack on the controller
version_added: 0.1.0
description:
  - An evidence pack is a manifest of every file in an evidence folder (path, sha256, size, and the last hash of each
    C(timeline.jsonl) chain) in C(evidence-pack.json), signed with the firm's ed25519 key in C(evidence-pack.sig).
  - O(state=signed) writes the pack and verifies it at once with the key's public half. A folder whose pack already
    verifies with that key, signer and kind is left as it is (C(changed) false), so a re-run does not re-sign.
  - O(state=verified) checks each folder of O(path) against the firm's public key, every file's hash, files missing
    or added, and every timeline hash chain, and returns one result per folder in RV(packs). The task fails when a
    pack does not verify unless O(fail_on_problems=false).
  - Runs on the controller only (an action plugin; nothing is sent to the managed host). The same code is behind the
    command line C(ledgerguard evidence sign|verify).
author:
  - ledgerguard engineers (@ledgerguard)
requirements:
  - cryptography (Python, on the controller)
options:
  state:
    description: Sign the folder, or verify the folders.
    type: str
    choices: [signed, verified]
    default: verified
  path:
    description:
      - The evidence folder(s), for example C(/var/lib/ledgerguard/evidence/INC-20261126-001).
      - O(state=signed) takes exactly one folder.
    type: list
    elements: path
    required: true
  key:
    description:
      - The signing key (unencrypted PEM ed25519, mode 0600), made with C(ledgerguard evidence keygen).
      - Required for O(state=signed). For O(state=verified), its C(.pub) is trusted when O(public_key) is not given.
    type: path
  public_key:
    description: The firm's trusted public key (PEM) for O(state=verified).
    type: path
  kind:
    description: What the folder holds, recorded in the manifest (O(state=signed)).
    type: str
    choices: [incident, drill, verify, compliance, other]
    default: incident
  signer:
    description: Name recorded in the manifest (O(state=signed)); defaults to the controller user.
    type: str
  fail_on_problems:
    description: With O(state=verified), fail the task when a pack does not verify.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Verification runs in check mode; signing reports what it would do and writes nothing.
  diff_mode:
    support: none
    description: No diff is shown.
"""

EXAMPLES = r"""
- name: Sign the incident's evidence folder with the firm's key
  ledgerguard.recovery.evidence_pack:
    state: signed
    path: /var/lib/ledgerguard/evidence/INC-20261126-001
    key: /etc/ledgerguard/evidence-signing.key
    signer: 张会计
  run_once: true

- name: Check every pack, keep going when one fails
  ledgerguard.recovery.evidence_pack:
    path:
      - /var/lib/ledgerguard/evidence/INC-20261120-001
      - /var/lib/ledgerguard/evidence/INC-20261126-001
    public_key: /etc/ledgerguard/evidence-signing.key.pub
    fail_on_problems: false
  register: packs
  run_once: true
"""

RETURN = r"""
packs:
  description:
    - One result per folder, in the order given (O(state=signed) verifies the pack it signed); a folder that does not
      exist is a pack with C(ok=false) and the problem C(folder-missing), and the others are still verified.
  returned: always
  type: list
  elements: dict
  contains:
    pack:
      description: The folder.
      type: str
    ok:
      description: Whether the pack verified.
      type: bool
    key_id:
      description: First 16 hex digits of the sha256 of the signing public key.
      type: str
    signer:
      description: Signer recorded in the manifest.
      type: str
    created_at:
      description: When the pack was signed (UTC).
      type: str
    files_checked:
      description: Files whose hash was checked.
      type: int
    timelines_checked:
      description: Timeline hash chains checked.
      type: int
    problems:
      description: >-
        Each problem as C(<kind>: <path>: <detail>), for example C(file-changed: report.json: sha256 ...).
      type: list
      elements: str
ok:
  description: Whether every pack verified.
  returned: always
  type: bool
signed:
  description: What was signed (O(state=signed), when it signed).
  returned: when a pack was written
  type: dict
  contains:
    pack:
      description: The folder.
      type: str
    files:
      description: Files in the manifest.
      type: int
    timelines:
      description: Timeline chains anchored in the manifest.
      type: int
    key_id:
      description: The signing key's id.
      type: str
    manifest_sha256:
      description: sha256 of the signed manifest.
      type: str
"""
