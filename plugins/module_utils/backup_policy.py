# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decisions of the backup role's retention and off-site copy (no I/O; unit-tested with plain dicts).

Snapshots here are restic's ``snapshots --json`` items (``id``, ``time``, ``hostname``, ``paths``, ``tags``, and
``original`` once ``restic tag`` or ``restic copy`` rewrote them).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.retention import normalize_policy
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import parse_time

MANIFEST_TAG = "ledgerguard-manifest"
MANIFEST_FOR = "ledgerguard-manifest-for="
_COUNT_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
_WITHIN_KEYS = (
    "keep_within",
    "keep_within_hourly",
    "keep_within_daily",
    "keep_within_weekly",
    "keep_within_monthly",
    "keep_within_yearly",
)
_DURATION = re.compile(r"^(\d+[ymdh])+$")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def is_manifest(snap: dict[str, Any]) -> bool:
    return MANIFEST_TAG in (snap.get("tags") or [])


def snap_time(snap: dict[str, Any]) -> datetime:
    return parse_time(snap["time"], "snapshot time")


def parse_offset(text: str) -> timezone:
    match = _OFFSET.match(str(text).strip())
    if not match:
        raise ValueError(f"fiscal_utc_offset {text!r} is not an offset such as +08:00")
    sign = 1 if match.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def forget_options(policy: dict[str, Any] | None, permanent_tag: str) -> list[str]:
    """restic forget options for ``policy`` (restic flag names or snake_case), plus ``--keep-tag permanent_tag``.

    Raises ValueError on a value restic would refuse or read differently. ``None`` policy: no options (the caller
    then forgets nothing)."""
    norm = normalize_policy(policy)
    if norm is None:
        return []
    out: list[str] = []
    for key in _COUNT_KEYS:
        if norm.get(key) in (None, ""):
            continue
        try:
            count = int(norm[key])
        except (TypeError, ValueError):
            raise ValueError(f"forget policy {key} must be an integer, got {norm[key]!r}") from None
        if count < -1:
            raise ValueError(f"forget policy {key} must be -1 (unlimited, restic 0.17+) or more, got {count}")
        out.append(f"--{key.replace('_', '-')}={count}")
    for key in _WITHIN_KEYS:
        if norm.get(key) in (None, ""):
            continue
        value = str(norm[key]).replace(" ", "")
        if not _DURATION.match(value):
            raise ValueError(f"forget policy {key} {norm[key]!r} is not a restic duration such as 30y or 1y6m")
        out.append(f"--{key.replace('_', '-')}={value}")
    raw = norm.get("keep_tag") or []
    tags = [raw] if isinstance(raw, str) else list(raw)
    if permanent_tag and permanent_tag not in tags:
        tags.append(permanent_tag)
    for tag in tags:
        if not str(tag).strip():
            raise ValueError("forget policy keep_tag holds an empty tag")
        out.append(f"--keep-tag={tag}")
    if not any(o.split("=")[0] != "--keep-tag" for o in out):
        raise ValueError(
            "the forget policy has no keep rule besides keep_tag: restic would forget every untagged snapshot; "
            "add keep_daily / keep_monthly / keep_yearly ..."
        )
    return out


def year_end_snapshots(
    snaps: list[dict[str, Any]], now: datetime, dates: list[str], tz: timezone
) -> list[dict[str, Any]]:
    """The data snapshots to keep for ever: for each calendar (fiscal) year and each ``MM-DD`` in ``dates`` whose end
    has passed at ``now``, the newest snapshot taken in that year up to the end of that day (in ``tz``).

    Returns [{id, time, year, date}] (one per distinct snapshot, oldest first)."""
    data = [s for s in snaps if not is_manifest(s)]
    local = now.astimezone(tz)
    picked: dict[str, dict[str, Any]] = {}
    years = sorted({snap_time(s).astimezone(tz).year for s in data})
    for year in years:
        for day in dates:
            month, _sep, dom = str(day).partition("-")
            try:
                end = datetime(year, int(month), int(dom), tzinfo=tz) + timedelta(days=1)
            except ValueError:
                raise ValueError(f"permanent date {day!r} is not MM-DD") from None
            if local < end:
                continue
            start = datetime(year, 1, 1, tzinfo=tz)
            inside = [s for s in data if start <= snap_time(s) < end]
            if inside:
                best = max(inside, key=snap_time)
                picked.setdefault(best["id"], {"id": best["id"], "time": best["time"], "year": year, "date": day})
    return sorted(picked.values(), key=lambda s: s["time"])


def forget_summary(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """restic ``forget --json`` groups -> {keep: [...], remove: [...]} (each {id, short_id, time, tags})."""

    def brief(snap: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": snap["id"],
            "short_id": snap.get("short_id") or snap["id"][:8],
            "time": snap["time"],
            "tags": snap.get("tags") or [],
        }

    keep: list[dict[str, Any]] = []
    remove: list[dict[str, Any]] = []
    for group in groups or []:
        keep += [brief(s) for s in group.get("keep") or []]
        remove += [brief(s) for s in group.get("remove") or []]
    return {
        "keep": sorted(keep, key=lambda s: s["time"]),
        "remove": sorted(remove, key=lambda s: s["time"]),
    }


def manifest_for(snap: dict[str, Any]) -> str:
    for tag in snap.get("tags") or []:
        if tag.startswith(MANIFEST_FOR):
            return tag[len(MANIFEST_FOR) :]
    return ""


def orphan_manifests(snaps: list[dict[str, Any]], host: str) -> list[dict[str, Any]]:
    """Manifest snapshots of ``host`` whose data snapshot no longer exists (forgotten): safe to forget too."""
    ids = {s["id"] for s in snaps if not is_manifest(s)}
    return [s for s in snaps if is_manifest(s) and s.get("hostname") == host and manifest_for(s) not in ids]


def client_snapshots(snaps: list[dict[str, Any]], client_id: str, host: str) -> list[dict[str, Any]]:
    """A client's data snapshots of one host (tagged with the client ID), oldest first."""
    out = [s for s in snaps if not is_manifest(s) and s.get("hostname") == host and client_id in (s.get("tags") or [])]
    return sorted(out, key=snap_time)


def copy_status(
    source: list[dict[str, Any]], dest: list[dict[str, Any]], client_ids: list[str], host: str
) -> list[dict[str, Any]]:
    """Per client: its newest snapshot in ``source`` and whether ``dest`` holds it (by ``original`` ID, or by the
    same time, tree and paths, since ``restic copy`` gives the copy a new ID)."""

    def key(snap: dict[str, Any]) -> tuple:
        return (snap_time(snap), snap.get("tree"), tuple(snap.get("paths") or []))

    originals: dict[str, dict[str, Any]] = {}
    by_key: dict[tuple, dict[str, Any]] = {}
    for snap in dest:
        originals.setdefault(snap.get("original") or snap["id"], snap)
        by_key.setdefault(key(snap), snap)
    out = []
    for cid in client_ids:
        mine = client_snapshots(source, cid, host)
        if not mine:
            out.append({"client": cid, "newest": "", "time": "", "in_copy": False, "copy_id": "", "copies": 0})
            continue
        newest = mine[-1]
        match = originals.get(newest.get("original") or newest["id"]) or by_key.get(key(newest))
        out.append(
            {
                "client": cid,
                "newest": newest["id"],
                "time": newest["time"],
                "in_copy": match is not None,
                "copy_id": match["id"] if match else "",
                "copies": len(client_snapshots(dest, cid, host)),
            }
        )
    return out
