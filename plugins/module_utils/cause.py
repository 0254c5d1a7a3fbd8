# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each client's cause of loss, derived from what the restore found for that client.

The one place that maps damage signs to a cause. The signs are the sentences that
:func:`ansible_collections.ledgerguard.recovery.plugins.module_utils.damage.assess` (snapshot assessment) and
:func:`~ansible_collections.ledgerguard.recovery.plugins.module_utils.damage.file_damage` (quarantine reasons) write;
tests/unit/plugins/module_utils/test_cause.py feeds real output of both through :func:`classify_reason`, so a change
of wording there fails a test here instead of silently turning a detected cause into "declared".

Rules (first match wins, strongest first):

- ransomware: a ransom note, files renamed with a ransomware extension, or changed files that look encrypted or random
  (high entropy);
- deleted: a client folder vanished, a mass drop of files or bytes, or files missing from the live folder that the
  restore put back;
- corruption: a mass of modified files, or damaged files (broken header, truncated, no longer text, silent corruption,
  a file or ledger that fails its format's validator, see module_utils/validators.py) without any encryption sign;
- nothing detected: the operator's declared cause (source ``declared``), or ``unknown`` (source ``undetermined``).
"""

from __future__ import annotations

import re
from typing import Any

CAUSES = ("ransomware", "deleted", "corruption", "unknown")
# Strongest first: when a client shows several kinds of signs, the first kind found here is its cause.
PRECEDENCE = ("ransomware", "deleted", "corruption")

# (cause, sign, pattern) over one reason sentence. Reasons that are not damage signs (a snapshot taken after the loss
# began, a pin, a repository that lost data) match nothing and are ignored.
_RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    # snapshot_damage (module_utils/damage.assess)
    ("ransomware", "ransom_note", re.compile(r"^ransom notes? present:")),
    ("ransomware", "ransom_extension", re.compile(r"^\d+ files? with ransomware extensions? ")),
    ("ransomware", "encrypted_content", re.compile(r"sampled changed files look encrypted or random")),
    ("deleted", "folder_vanished", re.compile(r"^client folder .* vanished")),
    ("deleted", "folder_vanished", re.compile(r"^client folder .* is missing from this snapshot")),
    ("deleted", "files_dropped", re.compile(r"^file count fell by ")),
    ("deleted", "files_dropped", re.compile(r"^data size fell by ")),
    ("corruption", "mass_modified", re.compile(r"files \(\d+%\) modified or replaced since the previous snapshot$")),
    # snapshot_damage's content validation (module_utils/validators): a file that passed in an older snapshot, or a
    # declared ledger, fails its format's validator
    ("corruption", "damaged_files", re.compile(r" fails validation in this snapshot: ")),
    # restore_swap quarantine reasons (module_utils/damage.file_damage, restore_swap)
    ("ransomware", "ransom_note", re.compile(r"^ransom note name$")),
    ("ransomware", "ransom_extension", re.compile(r"^ransomware extension ")),
    ("ransomware", "encrypted_content", re.compile(r"^content looks encrypted or random")),
    ("corruption", "damaged_files", re.compile(r"^file header is not .* any more$")),
    ("corruption", "damaged_files", re.compile(r"^truncated to 0 bytes$")),
    ("corruption", "damaged_files", re.compile(r"^text file no longer decodes as text$")),
    ("corruption", "damaged_files", re.compile(r"\(silent corruption\)$")),
    # restore_swap with validators.changed_file_verdict: the live file fails, the snapshot's version passes
    ("corruption", "damaged_files", re.compile(r"^corrupt: .*; the snapshot's version passes$")),
)

# Sign keys (for notices in other languages): ransom_note, ransom_extension, encrypted_content, folder_vanished,
# files_dropped, files_missing, mass_modified, damaged_files.
SIGNS = (
    "ransom_note",
    "ransom_extension",
    "encrypted_content",
    "folder_vanished",
    "files_dropped",
    "files_missing",
    "mass_modified",
    "damaged_files",
)

# A pinned snapshot's damage signs come back as warnings with this prefix (filter clean_restore_point).
_PIN_WARNING = "pinned snapshot shows damage: "


def classify_sign(reason: str) -> tuple[str, str] | None:
    """``(cause, sign)`` for one damage sentence, or None when it is not a damage sign."""
    text = str(reason or "").strip()
    if text.startswith(_PIN_WARNING):
        text = text[len(_PIN_WARNING) :]
    for cause, sign, pattern in _RULES:
        if pattern.search(text):
            return cause, sign
    return None


def classify_reason(reason: str) -> str | None:
    """The cause one damage sentence points to, or None when it is not a damage sign."""
    found = classify_sign(reason)
    return found[0] if found else None


def _signs(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Every (cause, sign, where, sentence) the restore of one client found."""
    found: list[tuple[str, str, str, str]] = []
    for snap in result.get("skipped") or []:
        if not isinstance(snap, dict):
            continue
        label = "snapshot {}".format(snap.get("short_id") or str(snap.get("id") or "")[:8] or "?")
        for reason in snap.get("reasons") or []:
            hit = classify_sign(reason)
            if hit:
                found.append((hit[0], hit[1], label, str(reason)))
    for warning in result.get("warnings") or []:
        hit = classify_sign(warning)
        if hit:
            found.append((hit[0], hit[1], "pinned snapshot", str(warning)))
    quarantine: dict[tuple[str, str, str], int] = {}
    for entry in result.get("quarantined") or []:
        if not isinstance(entry, dict):
            continue
        hit = classify_sign(entry.get("reason", ""))
        if hit:
            key = (hit[0], hit[1], str(entry.get("reason")))
            quarantine[key] = quarantine.get(key, 0) + 1
    for (cause, sign, reason), count in sorted(quarantine.items()):
        found.append((cause, sign, "quarantine", f"{count} file{'s' if count > 1 else ''}: {reason}"))
    missing = len(result.get("restored") or [])
    if missing:
        found.append(
            (
                "deleted",
                "files_missing",
                "live folder",
                f"{missing} file{'s were' if missing > 1 else ' was'} missing and put back from the snapshot",
            )
        )
    return found


def client_cause(result: dict[str, Any] | None, declared: str | None = "unknown") -> dict[str, Any]:
    """The cause of one client's loss, where it came from, and the signs behind it.

    ``result`` is one entry of ``restore_results`` (or of report.json's ``clients``): its ``skipped`` snapshots'
    reasons, the pinned snapshot's ``warnings``, the ``quarantined`` files' reasons and the ``restored`` (missing)
    files. ``declared`` is the operator's ``incident_cause``.

    Returns ``{"cause", "source", "declared", "signs", "evidence", "other_signs"}``: ``source`` is ``detected``
    (found in the restore's findings), ``declared`` (nothing found; the operator's cause) or ``undetermined`` (nothing
    found and the operator declared ``unknown``). ``signs`` are the sign keys behind the cause (see :data:`SIGNS`, for
    translated notices), ``evidence`` the same signs as "where: sentence", ``other_signs`` the signs of weaker causes
    (e.g. the mass modification that comes with an encryption).
    """
    declared_cause = str(declared or "unknown")
    if declared_cause not in CAUSES:
        declared_cause = "unknown"
    signs = _signs(result or {})
    for cause in PRECEDENCE:
        mine = [s for s in signs if s[0] == cause]
        if mine:
            return {
                "cause": cause,
                "source": "detected",
                "declared": declared_cause,
                "signs": [key for key in SIGNS if any(s[1] == key for s in mine)],
                "evidence": [f"{where}: {text}" for _c, _k, where, text in mine],
                "other_signs": [f"{where}: {text}" for kind, _k, where, text in signs if kind != cause],
            }
    return {
        "cause": declared_cause,
        "source": "declared" if declared_cause != "unknown" else "undetermined",
        "declared": declared_cause,
        "signs": [],
        "evidence": [],
        "other_signs": [],
    }
