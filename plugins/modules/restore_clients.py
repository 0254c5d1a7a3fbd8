#!/usr/bin/python
# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the work is done by the action plugin plugins/action/restore_clients.py, which runs the
# collection's modules on the host (logic in plugins/plugin_utils/restore_clients.py).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: restore_clients
short_description: Restore every client of an incident on one host - choose, restore, compare, swap, check
version_added: "0.1.0"
description:
  - The per-client restore of the C(ledgerguard.recovery.restore) role in one task per host. For each client in
    the incident queue's order (the nearest filing deadline after O(detected_at) among the client's C(filings) in
    the filing calendar O(filing_calendar) first, then C(priority), then id; the same order on every host) it
    chooses the restore point (M(ledgerguard.recovery.snapshot_damage) and the C(clean_restore_point) rules; a pin
    in O(pins) wins), restores it into a fresh staging folder of this run
    (C(<work>/staging/<client>/<run id>) next to the client's first path, created by M(ledgerguard.recovery.work_dir)),
    compares the restored tree with the snapshot's listing (only when the client's C(restore_paths) are its
    C(declared_paths); a restore of only some of its paths skips this comparison) and with its backup-time manifest
    (M(ledgerguard.recovery.file_manifest)), checks the books in staging (M(ledgerguard.recovery.ledger_verify)),
    re-scans the frozen folders for writers right before the client's swap (the M(ledgerguard.recovery.write_freeze)
    C(state=rescan) rescan, label C(before_swap)), swaps the restored files into place with the damaged ones to
    quarantine (M(ledgerguard.recovery.restore_swap)), records the swap (C(<marker_dir>/<client>.swapped.json)),
    checks the books in place and records the finished client (C(<marker_dir>/<client>.done.json); a re-run keeps that
    result).
  - Clients whose restore point is the same snapshot and whose work folder is the same are restored with one restic
    restore (O(batch)); their staging folder is then C(<work>/staging/<ids>/<run id>), shared. When the repository
    lost data the chosen snapshot needs, each of them moves on alone to its newest older clean snapshot.
  - Steps that need no per-client moment run once for all the host's clients - the assessment (one
    M(ledgerguard.recovery.snapshot_damage) run with C(clients), sharing the snapshot list, listings and diffs), the
    hashing of the restored trees (one M(ledgerguard.recovery.file_manifest) run with C(trees)) and the book checks;
    each client's result is its own. The swaps are one M(ledgerguard.recovery.restore_swap) run with C(clients)
    in which, client by client, come the write_freeze rescan right before that client's swap (C(rescan), the code of
    M(ledgerguard.recovery.write_freeze) C(state=rescan)), then the swap, then the client's C(swapped.json) (C(marker)).
    A client whose rescan fails is not swapped; the others go on.
  - One client's failure does not stop the others; its entry names the step that failed (C(failed_task) in RV(clients))
    and why. The task itself fails only on invalid arguments.
  - In check mode nothing is changed - per client, the restore point it would choose and why (status C(planned), or
    C(failed) with the reason).
author: ledgerguard contributors (@ledgerguard)
options:
  clients:
    description:
      - The incident's selected clients on this host (C(ledgerguard.recovery.incident) sets them), each with C(id),
        C(name), C(priority), C(declared_paths), C(restore_paths) and optionally C(ledger), C(csv), C(sqlite),
        C(root), C(snapshot_path).
    type: list
    elements: dict
    required: true
  loss_started:
    description: When the loss may have started (RFC 3339), or empty; snapshots from then on are never restore points.
    type: str
    default: ""
  cutoff:
    description: Snapshots from this time on are not assessed (the loss start, else the detection time).
    type: str
    required: true
  detected_at:
    description:
      - When the incident was detected (RFC 3339); the restore order counts filing deadlines from then. Empty - the
        O(cutoff).
    type: str
    default: ""
  filing_calendar:
    description:
      - The firm's filing calendar (a YAML file on the controller, format in docs/filing_calendar.md); empty - the
        calendar shipped with the collection. A calendar that cannot be read leaves the priority order, said in each
        client's C(filing_warnings).
    type: str
    default: ""
  pins:
    description: Client id to a snapshot id (or unique prefix) the operator pinned.
    type: dict
    default: {}
  snapshot_host:
    description: The snapshot host name to restore from.
    type: str
    required: true
  exclude_tags:
    description: Snapshots with any of these tags are never restore points.
    type: list
    elements: str
    default: [pre-restore]
  unusable:
    description: Snapshots known to be unusable (C(id), C(reasons), C(packs)), skipped with those reasons.
    type: list
    elements: dict
    default: []
  detect_damage:
    description: Skip candidate snapshots that already hold the damage (false makes every snapshot count as clean).
    type: bool
    default: true
  damage_mode:
    description: Stop at the newest clean candidate, or assess every candidate.
    type: str
    choices: [until_clean, all]
    default: until_clean
  damage_thresholds:
    description: Overrides of M(ledgerguard.recovery.snapshot_damage) thresholds.
    type: dict
    default: {}
  work_name:
    description: Name of the root-only work folder (staging, quarantine) next to each client's first path.
    type: str
    required: true
  marker_dir:
    description:
      - Folder of the per-client progress markers on the host (root only, created mode C(0700)).
      - Its C(listings) folder keeps the listings M(ledgerguard.recovery.snapshot_damage) made of the snapshots it
        assessed, one file per repository and full snapshot ID, so that M(ledgerguard.recovery.restic_restore) does
        not list the chosen snapshot again (the listing of a snapshot named by its full ID never changes).
    type: str
    required: true
  verify:
    description: restic restore C(--verify).
    type: bool
    default: true
  swap:
    description: Swap the restored files into place (false stops after the checks in staging).
    type: bool
    default: true
  ledger_verify:
    description: Check the books in place after the swap, for clients that declare books.
    type: bool
    default: true
  ledger_fail_on_findings:
    description: Fail the client when the books in place have findings.
    type: bool
    default: true
  ledger_check_before_swap:
    description: Check the books in staging first; a client whose restored books have findings is not swapped.
    type: bool
    default: true
  fallback_on_damaged_repository:
    description: When the repository lost data the chosen snapshot needs, restore the newest older clean one.
    type: bool
    default: true
  backup_manifest:
    description: Compare the restored files with the snapshot's backup-time manifest before the swap.
    type: bool
    default: true
  backup_manifest_max_list:
    description: Most differing or missing paths named and kept.
    type: int
    default: 20
  batch:
    description: Restore clients that share a restore point and a work folder with one restic restore.
    type: bool
    default: true
  rescan:
    description: The write_freeze rescan right before each swap.
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Re-scan (the incident froze writes).
        type: bool
        default: false
      incident:
        description: The incident that owns the freeze.
        type: str
        default: ""
      state_dir:
        description: The host's ledgerguard state folder.
        type: str
        default: /var/lib/ledgerguard
      containment:
        description: What to do with a writer found (C(stop), C(kill), C(report)).
        type: str
        default: stop
      allow:
        description: The host's own agents, never stopped.
        type: list
        elements: str
        default: []
      evidence:
        description:
          - Write a rescan that found writers to C(<evidence_dir>/<incident>/hosts/<host>/rescan-before_swap.json).
        type: bool
        default: true
      evidence_dir:
        description: The controller's evidence folder.
        type: str
        default: ""
attributes:
  check_mode:
    support: full
    description: Plans each client (restore point and why); creates, restores and swaps nothing.
  diff_mode:
    support: none
    description: No diff is produced.
  action:
    support: full
    description: Implemented by the action plugin of the same name.
  platform:
    support: full
    platforms: posix
    description: Linux hosts, run as root (C(become)).
notes:
  - Every module call is listed in RV(ledgerguard_steps); the C(ledgerguard.recovery.timeline) callback writes each
    as a timeline line of its own, so the timeline shows each client's steps.
seealso:
  - module: ledgerguard.recovery.snapshot_damage
  - module: ledgerguard.recovery.restore_swap
"""

EXAMPLES = r"""
- name: Restore every client of the incident on this host
  ledgerguard.recovery.restore_clients:
    clients: "{{ selected_clients }}"
    loss_started: "2026-11-26T08:00:00Z"
    cutoff: "2026-11-26T08:00:00Z"
    snapshot_host: files01
    work_name: .ledgerguard-INC-20261126-001
    marker_dir: /var/lib/ledgerguard/incidents/INC-20261126-001/restore
  register: restored
"""

RETURN = r"""
clients:
  description:
    - One entry per client, in the restore order (the role publishes them as C(restore_results)). Every entry has
      C(id), C(name), C(priority), C(host), C(filings), C(next_deadline) (C(date), C(due), C(filing), C(period),
      C(source), C(certainty), C(note); null without a deadline) and C(filing_warnings). Status C(ok) with
      C(snapshot), C(why), C(warnings), C(skipped), C(files), C(bytes), C(restore_seconds), C(verified),
      C(late_writers), C(manifests), C(backup_manifest), C(staging), C(quarantine), C(restored), C(replaced),
      C(quarantined), C(kept_changed), C(kept_new), C(unchanged), C(detached_mounts), C(ledger), C(started),
      C(finished), C(seconds) (C(resumed) when an earlier run finished it); status C(failed) with C(failed_task) and
      C(msg); in check mode status C(planned) with C(action).
  returned: always
  type: list
  elements: dict
rescans:
  description: The host's write_freeze rescans so far (the earlier ones and this task's, label C(before_swap)).
  returned: always
  type: list
  elements: dict
ledgerguard_steps:
  description:
    - Each module call - C(task) (the step), C(clients), C(status), C(changed), C(duration), C(msg) when failed.
  returned: always
  type: list
  elements: dict
"""
