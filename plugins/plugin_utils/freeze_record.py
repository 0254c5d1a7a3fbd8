# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's record of a write_freeze run in the incident's evidence folder (``hosts/<host>/freeze.json``,
``rescan-<label>.json``, ``thaw.json``): the fields the report and a person read, each present (empty when the run
did not return it), and when each run is recorded. Written by the write_freeze action plugin."""

from __future__ import annotations

import datetime as dt
from typing import Any

# Field -> its value when the result lacks it, in the record's order.
FIELDS: tuple[tuple[str, Any], ...] = (
    ("failed", False),
    ("msg", ""),
    ("changed", False),
    ("targets", []),
    ("proof", []),
    ("writers", []),
    ("containment", {}),
    ("held", []),
    ("stopped_processes", []),
    ("rescan", {}),
    ("watchdog", None),
    ("remaining", []),
    ("registry", ""),
    ("rolled_back", []),
)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(host: str, incident: str, result: dict[str, Any], recorded_at: str | None = None) -> dict[str, Any]:
    """The record of one write_freeze result (a freeze, a rescan or a thaw) of ``host``."""
    out: dict[str, Any] = {"host": host, "incident": incident, "recorded_at": recorded_at or utc_now()}
    for key, empty in FIELDS:
        out[key] = result.get(key, empty)
    return out


def record_name(state: str, label: str = "rescan") -> str:
    """The record's file name for a run of ``state`` (frozen, rescan, thawed)."""
    return {"frozen": "freeze.json", "thawed": "thaw.json"}.get(state, f"rescan-{label}.json")


def worth_recording(state: str, result: dict[str, Any]) -> bool:
    """Only a run that did something is recorded, so a no-op re-run keeps the original proof: a freeze that changed
    something or failed, a rescan that found a process, a thaw (or the rescan before it) that changed something."""
    if state == "frozen":
        return bool(result.get("changed") or result.get("failed"))
    if state == "rescan":
        return bool(result.get("writers"))
    return bool(result.get("changed") or (result.get("rescan") or {}).get("changed"))


def frozen_by(freeze: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets a freeze's result says this run froze (or left half-done): what its rollback thaws. Targets that
    were already frozen before this run (``already_frozen``, ``left_alone``) are not this run's to undo."""
    return [
        t["target"]
        for t in freeze.get("targets") or []
        if isinstance(t, dict)
        and t.get("action") in ("freeze", "refreeze", "failed")
        and isinstance(t.get("target"), dict)
    ]
