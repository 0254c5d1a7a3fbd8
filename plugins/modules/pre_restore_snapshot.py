#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the action plugin plugins/action/pre_restore_snapshot.py, which runs the steps on the host.

from __future__ import annotations

DOCUMENTATION = r"""
module: pre_restore_snapshot
short_description: Keep an incident's damaged state in restic once, before anything is restored
version_added: 0.1.0
description:
  - Backs up the affected paths as they are now, tagged with the incident id and C(pre-restore) (and O(tags)), unless
    an earlier run of the same incident already did (then that snapshot is reused and nothing is written). Only the
    paths an earlier snapshot holds are reused; an existing path no earlier run kept (a client added to the
    incident later) is backed up now.
  - "On the host, in one task: one shell command sees which of O(paths) exist (a broken symlink counts; the others
    are listed in C(missing_paths) of RV(snapshot)), M(ledgerguard.recovery.restic_snapshots) looks for the incident's
    pre-restore snapshots of this host, and M(ledgerguard.recovery.restic_backup) backs up the existing paths none of
    them holds."
  - The repository, its password and the backend credentials are resolved on the controller as for every restic
    module of the collection (C(ledgerguard_repository), C(ledgerguard_password_file),
    C(ledgerguard_s3_credentials_file) or the controller's environment); the password travels only as a C(no_log)
    module option.
  - With O(bundle), the same task then collects the host's state bundle as M(ledgerguard.recovery.state_capture) with
    its C(evidence_dir) does - the module on the host records the state, hashes the paths that exist (when
    O(bundle.manifest)) and notes RV(snapshot); the bundle is filed in O(bundle.evidence_dir) on the controller.
    O(backup=false) collects only the bundle (no path is known to exist then, and none is hashed).
  - Used by the C(ledgerguard.recovery.state_snapshot) role in one task, which registers its result as
    C(state_snapshot_result) (O(publish)).
author:
  - ledgerguard engineers (@ledgerguard)
options:
  paths:
    description: The affected paths (client folders), in order.
    type: list
    elements: path
    required: true
  incident:
    description: The incident id; the snapshot is tagged with it and C(pre-restore).
    type: str
    required: true
  tags:
    description: Extra tags for the snapshot.
    type: list
    elements: str
    default: []
  host:
    description: The host name the snapshot is recorded under (and looked for), normally C(inventory_hostname).
    type: str
    required: true
  repository:
    description: A separate (forensic) repository; omitted, C(ledgerguard_repository).
    type: str
  password_file:
    description:
      - The controller password file (mode 0600) of O(repository); omitted, C(ledgerguard_password_file).
    type: path
  backup:
    description: Keep the damaged state in restic (the steps above); false - only the bundle (O(bundle)).
    type: bool
    default: true
  bundle:
    description:
      - Collect the host's state bundle after the backup (the options of M(ledgerguard.recovery.state_capture)).
    type: dict
    suboptions:
      dest:
        description: The folder on the host the bundle is written into.
        type: path
        required: true
      archive:
        description: The bundle packed on the host (C(.tar.gz)), brought into O(bundle.evidence_dir).
        type: path
        required: true
      evidence_dir:
        description: The host's folder in the incident's evidence folder on the controller (absolute).
        type: path
        required: true
      journal_lines:
        description: Most recent journal lines kept.
        type: int
        default: 2000
      manifest:
        description: Hash the paths that exist into the bundle's manifest.
        type: bool
        default: true
  publish:
    description:
      - Also return the fields of RV(snapshot) at the top of the result, so the registered result is the
        state_snapshot role's C(state_snapshot_result) (C(snapshot_id), C(short_id), C(reused), C(paths),
        C(missing_paths), C(repository), C(tags)).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The backup runs as C(restic backup --dry-run); no snapshot is written; the bundle is not collected.
  diff_mode:
    support: none
    description: No diff is shown.
notes:
  - An earlier pre-restore snapshot of the incident is reused as it is, so a re-run never overwrites the damaged
    state it kept first.
  - A bundle that fails fails the task after the backup; the result still holds RV(snapshot) (and, with O(publish),
    its fields), and the message names the snapshot that keeps the damaged state.
"""

EXAMPLES = r"""
- name: Back up the affected paths as they are now
  ledgerguard.recovery.pre_restore_snapshot:
    paths: [/srv/账套/c001, /srv/账套/c002]
    incident: INC-20261126-001
    host: "{{ inventory_hostname }}"
  register: pre_restore

- name: Keep the damaged state in a forensic repository with its own password file
  ledgerguard.recovery.pre_restore_snapshot:
    paths: [/srv/账套/c001]
    incident: INC-20261126-001
    host: "{{ inventory_hostname }}"
    repository: s3:https://s3.example.cn/forensics
    password_file: /etc/ledgerguard/forensic-password

- name: Back up the affected paths and file the host's state bundle in the evidence folder
  ledgerguard.recovery.pre_restore_snapshot:
    paths: [/srv/账套/c001]
    incident: INC-20261126-001
    host: "{{ inventory_hostname }}"
    bundle:
      dest: /var/lib/ledgerguard/incidents/INC-20261126-001/state
      archive: /var/lib/ledgerguard/incidents/INC-20261126-001/state.tar.gz
      evidence_dir: /srv/evidence/INC-20261126-001/hosts/{{ inventory_hostname }}
    publish: true
  register: state_snapshot_result
"""

RETURN = r"""
snapshot:
  description:
    - What the role publishes as C(state_snapshot_result).
    - C(snapshot_id) and C(short_id) of the snapshot made now or reused (empty when none, and in check mode when
      nothing was written), C(reused), C(paths) (those that existed, backed up), C(missing_paths), C(repository)
      (C(same) or C(forensic)) and C(tags); C(paths_in_earlier) (path -> short ID of the earlier snapshot that holds
      it) when this run backed up some paths and an earlier run holds the others.
  returned: success
  type: dict
  sample:
    snapshot_id: 4b4622035c1e9bd0a9f5e4b3c2a1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3
    short_id: 4b462203
    reused: false
    paths: [/srv/账套/c001]
    missing_paths: [/srv/账套/c002]
    repository: same
    tags: [INC-20261126-001, pre-restore]
backup:
  description: The M(ledgerguard.recovery.restic_backup) result when a backup ran, else empty.
  returned: success
  type: dict
bundle:
  description:
    - The M(ledgerguard.recovery.state_capture) result (its C(evidence_files) and C(evidence_sums) once filed; the
      bundle's bytes are not in it).
  returned: when O(bundle) is given
  type: dict
msg:
  description: In a dry run, what the bundle would hold; why the bundle failed.
  returned: when O(bundle) is given in a dry run, or the bundle failed
  type: str
step:
  description: The step that failed (C(restic_snapshots), C(restic_backup) or C(state_capture)).
  returned: failure of a step
  type: str
  sample: restic_backup
"""
