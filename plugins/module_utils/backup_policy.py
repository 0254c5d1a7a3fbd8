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
    """restic ``forget --json`` groups -> {keep: [...], remove: [...]} (each {id, short_id, time, tags}); each kept one
    also has ``reasons``, the policy rules that keep it as restic words them ("daily snapshot", "has tags [permanent]").

    restic 0.14 gives a reason's snapshot without its ID: it is matched by time and tree (the ID when there is one).
    """

    def brief(snap: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": snap["id"],
            "short_id": snap.get("short_id") or snap["id"][:8],
            "time": snap["time"],
            "tags": snap.get("tags") or [],
        }

    def key(snap: dict[str, Any]) -> tuple[str, str]:
        return (snap.get("time") or "", snap.get("tree") or "")

    keep: list[dict[str, Any]] = []
    remove: list[dict[str, Any]] = []
    for group in groups or []:
        by_id: dict[str, list[str]] = {}
        by_key: dict[tuple[str, str], list[str]] = {}
        for reason in group.get("reasons") or []:
            snap, matches = reason.get("snapshot") or {}, list(reason.get("matches") or [])
            if snap.get("id"):
                by_id[snap["id"]] = matches
            by_key[key(snap)] = matches
        for s in group.get("keep") or []:
            keep.append(dict(brief(s), reasons=by_id.get(s["id"], by_key.get(key(s), []))))
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
    """Manifest snapshots of ``host`` whose data snapshot no longer exists (forgotten): safe to forget too.

    A data snapshot is known by its ID and by its ``original``: a copy (``restic copy``, the off-site repository) and
    a re-tagged snapshot get a new ID and keep the first one there, while their manifest still names that one."""
    ids = {i for s in snaps if not is_manifest(s) for i in (s["id"], s.get("original")) if i}
    return [s for s in snaps if is_manifest(s) and s.get("hostname") == host and manifest_for(s) not in ids]


def client_snapshots(snaps: list[dict[str, Any]], client_id: str, host: str) -> list[dict[str, Any]]:
    """A client's data snapshots of one host (tagged with the client ID), oldest first."""
    out = [s for s in snaps if not is_manifest(s) and s.get("hostname") == host and client_id in (s.get("tags") or [])]
    return sorted(out, key=snap_time)


def copy_status(
    source: list[dict[str, Any]], dest: list[dict[str, Any]], client_ids: list[str], host: str
) -> list[dict[str, Any]]:
    """Per client: its newest snapshot in ``source`` and whether ``dest`` holds it (by ``original`` ID, or by the
    same time, tree and paths, since ``restic copy`` gives the copy a new ID), and the newest snapshot the two
    repositories both hold (``both_id`` in the source, ``both_copy_id`` in the copy, ``both_time``): what a restore
    from the copy gets."""

    def key(snap: dict[str, Any]) -> tuple:
        return (snap_time(snap), snap.get("tree"), tuple(snap.get("paths") or []))

    originals: dict[str, dict[str, Any]] = {}
    by_key: dict[tuple, dict[str, Any]] = {}
    for snap in dest:
        originals.setdefault(snap.get("original") or snap["id"], snap)
        by_key.setdefault(key(snap), snap)

    def copy_of(snap: dict[str, Any]) -> dict[str, Any] | None:
        return originals.get(snap.get("original") or snap["id"]) or by_key.get(key(snap))

    out = []
    for cid in client_ids:
        mine = client_snapshots(source, cid, host)
        entry: dict[str, Any] = {"client": cid, "newest": "", "time": "", "in_copy": False, "copy_id": ""}
        entry.update(copies=len(client_snapshots(dest, cid, host)), both_id="", both_copy_id="", both_time="")
        if mine:
            match = copy_of(mine[-1])
            entry.update(newest=mine[-1]["id"], time=mine[-1]["time"], in_copy=match is not None)
            entry["copy_id"] = match["id"] if match else ""
            both = next(((s, m) for s in reversed(mine) if (m := copy_of(s)) is not None), None)
            if both:
                entry.update(both_id=both[0]["id"], both_copy_id=both[1]["id"], both_time=both[0]["time"])
        out.append(entry)
    return out


def copy_checks(status: list[dict[str, Any]], host: str, copy_repository: str) -> list[dict[str, Any]]:
    """backup_verify checks (``offsite_copy``, one per client) from ``copy_status``: OK when the client's newest
    snapshot is in the copy, WARN when only an older one is (names it), FAIL when the copy holds none."""
    out = []
    for s in status:
        details = {"client": s["client"], "host": host, "copy_repository": copy_repository, **s}
        if not s["newest"]:
            status_, reason = "WARN", f"no snapshot of client {s['client']} (host {host}) in the first repository"
        elif s["in_copy"]:
            status_ = "OK"
            reason = f"newest snapshot {s['newest'][:8]} ({s['time']}) is in the copy as {s['copy_id'][:8]}"
        elif s["both_id"]:
            status_ = "WARN"
            reason = (
                f"newest snapshot {s['newest'][:8]} ({s['time']}) is not in the copy; the newest in both is "
                f"{s['both_id'][:8]} ({s['both_time']}, copy {s['both_copy_id'][:8]}): run the backup's copy step"
            )
        else:
            status_ = "FAIL"
            reason = (
                f"the copy holds no snapshot of client {s['client']} (host {host}): a restore from it would find "
                "nothing; run the backup role with backup_copy_repository"
            )
        out.append(
            {"check": "offsite_copy", "subject": s["client"], "status": status_, "reason": reason, "details": details}
        )
    return out


def client_status(
    results: list[dict[str, Any]],
    client_ids: list[str],
    snapshots: list[dict[str, Any]],
    host: str,
    failed: bool,
    now: float,
    max_age_seconds: float,
) -> list[dict[str, Any]]:
    """Per client after a backup run: this run's figures (from the role's results) or, for a client this run did not
    back up, the newest snapshot of the repository listing; ``failed`` (the run failed before or during this client),
    ``late`` (the newest successful backup is older than ``max_age_seconds``, or there is none)."""
    done = {str(r.get("client")): r for r in results if r.get("client") and not r.get("database")}
    out = []
    for cid in client_ids:
        entry: dict[str, Any] = {"client": cid, "host": host, "backed_up": False, "failed": False}
        entry.update(duration_seconds=None, bytes_added=None, files_new=None, files_changed=None, snapshot_id="")
        r = done.get(cid)
        if r is not None and not _truthy(r.get("check_mode")):
            entry.update(backed_up=True, last_success=float(now), snapshot_id=str(r.get("snapshot_id") or ""))
            entry.update(duration_seconds=float(r.get("seconds") or 0), bytes_added=int(r.get("bytes_added") or 0))
            entry.update(files_new=int(r.get("files_new") or 0), files_changed=int(r.get("files_changed") or 0))
        else:
            mine = client_snapshots(snapshots, cid, host)
            entry["last_success"] = snap_time(mine[-1]).timestamp() if mine else None
            entry["snapshot_id"] = mine[-1]["id"] if mine else ""
            entry["failed"] = bool(failed) and r is None
        last = entry["last_success"]
        entry["age_seconds"] = None if last is None else max(0.0, float(now) - last)
        entry["last_success_utc"] = "" if last is None else datetime.fromtimestamp(last, timezone.utc).isoformat()  # noqa: UP017
        entry["late"] = last is None or float(now) - last > float(max_age_seconds)
        out.append(entry)
    return out


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "yes", "1")


def metric_families(status: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Prometheus metric families (for the ``prometheus_textfile`` filter) of one host's backup run."""

    def samples(key: str) -> list[dict[str, Any]]:
        return [
            {"labels": {"host": s["host"], "client": s["client"]}, "value": s[key]}
            for s in status
            if s.get(key) is not None
        ]

    hosts = sorted({s["host"] for s in status})
    return [
        {
            "name": "ledgerguard_backup_last_run_timestamp_seconds",
            "help": "When the backup run ended (Unix time)",
            "samples": [{"labels": {"host": h}, "value": int(now)} for h in hosts],
        },
        {
            "name": "ledgerguard_backup_last_success_timestamp_seconds",
            "help": "When the client's newest successful backup was made (Unix time)",
            "samples": samples("last_success"),
        },
        {
            "name": "ledgerguard_backup_duration_seconds",
            "help": "Duration of the client's backup in this run",
            "samples": samples("duration_seconds"),
        },
        {
            "name": "ledgerguard_backup_bytes_added",
            "help": "Bytes the client's backup added to the repository in this run",
            "samples": samples("bytes_added"),
        },
        {
            "name": "ledgerguard_backup_failed",
            "help": "1 when the client's backup failed in this run",
            "samples": [{"labels": {"host": s["host"], "client": s["client"]}, "value": s["failed"]} for s in status],
        },
        {
            "name": "ledgerguard_backup_late",
            "help": "1 when the client's newest backup is older than the policy's maximum age (or missing)",
            "samples": [{"labels": {"host": s["host"], "client": s["client"]}, "value": s["late"]} for s in status],
        },
    ]
