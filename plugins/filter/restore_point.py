# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Choose the restore point from damage assessments: the newest clean snapshot before the loss, or a pinned one."""

from __future__ import annotations

DOCUMENTATION = r"""
name: clean_restore_point
short_description: Pick the newest clean snapshot before a loss (or an operator's pin) and say why
version_added: "0.1.0"
description:
  - Takes the RV(ledgerguard.recovery.snapshot_damage#module:snapshots) list (or the whole module result) and returns
    the chosen snapshot, why it was chosen, and every newer snapshot that was skipped with the reasons.
  - Snapshots taken at or after O(loss_started) are skipped; snapshots whose assessment found damage are skipped; the
    newest remaining clean snapshot wins. A O(pinned) ID wins over everything (its damage signs become warnings),
    except a pinned snapshot the repository cannot restore (C(unusable), e.g. it needs a lost pack); then nothing is
    chosen and RV(_value.why) names the snapshot and the lost pack.
author: ledgerguard contributors (@ledgerguard)
positional: loss_started, pinned
options:
  _input:
    description: The snapshot assessments (list of dicts with id, short_id, time, clean, reasons, assessed).
    type: raw
    required: true
  loss_started:
    description: Earliest time the loss may have started (RFC 3339), or empty.
    type: str
  pinned:
    description: A snapshot ID (or unique prefix) the operator pinned, or empty.
    type: str
"""

EXAMPLES = r"""
- name: Choose the restore point for one client
  ansible.builtin.set_fact:
    point: "{{ damage.snapshots | ledgerguard.recovery.clean_restore_point(loss_started, pinned) }}"
"""

RETURN = r"""
_value:
  description: The choice.
  type: dict
  contains:
    found: {description: Whether a restore point was found., type: bool}
    chosen: {description: The chosen snapshot's assessment (empty when none)., type: dict}
    why: {description: Why it was chosen, or why nothing was., type: str}
    warnings: {description: Damage signs on a pinned snapshot., type: list, elements: str}
    skipped:
      description: Newer snapshots not used, each with id, short_id, time and reasons.
      type: list
      elements: dict
"""

import datetime  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible.errors import AnsibleFilterError  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import is_manifest_snapshot  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import parse_time  # noqa: E402


def _ts(text):
    if not text:
        return None
    try:
        return parse_time(str(text), "clean_restore_point time")
    except ValueError as exc:
        raise AnsibleFilterError(f"clean_restore_point: {exc}") from exc


def _brief(item, reasons):
    out = {
        "id": item.get("id"),
        "short_id": item.get("short_id") or str(item.get("id", ""))[:8],
        "time": item.get("time"),
        "reasons": list(reasons),
    }
    if item.get("unusable"):
        out["unusable"] = True
        out["lost_packs"] = list(item.get("lost_packs") or [])
    return out


def clean_restore_point(assessments, loss_started=None, pinned=None):
    """See DOCUMENTATION."""
    if isinstance(assessments, dict):
        assessments = assessments.get("snapshots", [])
    if not isinstance(assessments, list):
        raise AnsibleFilterError(
            f"clean_restore_point: expected a list of snapshot assessments, got {type(assessments)!r}"
        )
    # A backup-time manifest snapshot is never a restore point (snapshot_damage leaves them out already).
    assessments = [s for s in assessments if not is_manifest_snapshot(s.get("tags"))]
    items = sorted(assessments, key=lambda s: _ts(s.get("time")) or datetime.datetime.min, reverse=True)
    cutoff = _ts(loss_started)
    skipped = []
    if pinned:
        wanted = str(pinned).lower()
        matches = [s for s in items if str(s.get("id", "")).startswith(wanted)]
        if len(matches) != 1:
            return {
                "found": False,
                "chosen": {},
                "why": f"pinned snapshot {pinned} {'is ambiguous' if matches else 'was not found'} among the "
                f"{len(items)} snapshots assessed",
                "warnings": [],
                "skipped": [],
            }
        chosen = matches[0]
        if chosen.get("unusable"):
            packs = ", ".join(chosen.get("lost_packs") or []) or "not named by restic"
            return {
                "found": False,
                "chosen": {},
                "why": "pinned snapshot {} ({}) cannot be restored: the repository lost data it needs (lost pack: {}): "
                "{}. Pin another snapshot, or remove the pin to let the restore point move to an older intact "
                "snapshot".format(
                    chosen.get("short_id"), chosen.get("time"), packs, "; ".join(chosen.get("reasons") or [])
                ),
                "warnings": [],
                "skipped": [_brief(chosen, chosen.get("reasons") or [])],
            }
        warnings = (
            [f"pinned snapshot shows damage: {r}" for r in chosen.get("reasons", [])]
            if chosen.get("clean") is False
            else []
        )
        for item in items:
            if item is chosen:
                break
            skipped.append(_brief(item, ["the operator pinned {}".format(chosen.get("short_id"))]))
        return {
            "found": True,
            "chosen": chosen,
            "why": "pinned by the operator",
            "warnings": warnings,
            "skipped": skipped,
        }
    for item in items:
        when = _ts(item.get("time"))
        if item.get("after_cutoff"):
            skipped.append(_brief(item, item.get("reasons") or ["taken after the loss began"]))
            continue
        if cutoff is not None and when is not None and when >= cutoff:
            skipped.append(
                _brief(
                    item, ["taken at {}, after the loss may have started ({})".format(item.get("time"), loss_started)]
                )
            )
            continue
        if not item.get("assessed", True):
            continue
        if item.get("clean"):
            pred = (item.get("stats") or {}).get("predecessor")
            why = "newest snapshot before the loss with no sign of damage"
            if pred:
                why += f" (compared with {pred})"
            if skipped:
                why += f"; {len(skipped)} newer snapshot{'s' if len(skipped) > 1 else ''} skipped"
            return {"found": True, "chosen": item, "why": why, "warnings": [], "skipped": skipped}
        skipped.append(_brief(item, item.get("reasons") or ["damage detected"]))
    return {
        "found": False,
        "chosen": {},
        "why": f"no clean snapshot before the loss: {len(items)} snapshot{'' if len(items) == 1 else 's'} assessed, "
        "all skipped",
        "warnings": [],
        "skipped": skipped,
    }


class FilterModule:
    def filters(self):
        return {"clean_restore_point": clean_restore_point}
