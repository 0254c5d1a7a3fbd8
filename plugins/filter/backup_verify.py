# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the ``backup_verify`` role: turn module results into OK / WARN / FAIL checks, a report, metrics.

Every check is a mapping ``{check, subject, status, reason, details}`` with ``status`` one of ``OK``, ``WARN``,
``FAIL``, ``SKIP`` (not applicable / turned off) or ``UNSUPPORTED`` (the store cannot answer). Only OK/WARN/FAIL
count towards a host's, a repository's and the run's status (the worst one wins).
"""

from __future__ import annotations

import hashlib
import html
import posixpath
import random
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError

from ansible_collections.ledgerguard.recovery.plugins.module_utils.notify import (
    NotifyError,
    response_ok,
    webhook_request,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import is_manifest_snapshot
from ansible_collections.ledgerguard.recovery.plugins.module_utils.retention import (
    RetentionPolicyError,
    forget_policy,
    lint_policy,
)
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restore_clients import has_ledger, ledger_paths

RANK = {"OK": 0, "WARN": 1, "FAIL": 2}
SCHEMA = "ledgerguard.backup_verify/1"
_TIME_RE = re.compile(r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?(?P<tz>Z|[+-]\d\d:?\d\d)?$")


# ---------------------------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime:
    """restic / RFC 3339 time (nanoseconds allowed, ``Z`` or offset) -> aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    match = _TIME_RE.match(str(value).strip())
    if not match:
        raise AnsibleFilterError(f"backup_verify: '{value}' is not an RFC 3339 time")
    frac = (match.group("frac") or "0")[:6].ljust(6, "0")
    tz = match.group("tz") or "Z"
    tz = "+00:00" if tz == "Z" else (tz if ":" in tz else tz[:3] + ":" + tz[3:])
    return datetime.fromisoformat(f"{match.group('base')}.{frac}{tz}").astimezone(UTC)


def _now(now: Any = None) -> datetime:
    return parse_time(now) if now else datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _snap_time(snap: dict[str, Any]) -> datetime:
    return parse_time(snap.get("time_utc") or snap.get("time"))


def _norm(path: str) -> str:
    return posixpath.normpath(str(path)) if path else "/"


def covers(snapshot_paths: list[str], path: str) -> bool:
    """True when one of a snapshot's backup paths is ``path`` or a parent of it."""
    target = _norm(path)
    for root in snapshot_paths or []:
        root = _norm(root)
        if target == root or root == "/" or target.startswith(root + "/"):
            return True
    return False


def check(name: str, status: str, reason: str, subject: str = "", **details: Any) -> dict[str, Any]:
    return {"check": name, "subject": subject, "status": status, "reason": reason, "details": details}


def worst(checks: list[dict[str, Any]]) -> str:
    best = "OK"
    for item in checks or []:
        if RANK.get(item.get("status"), -1) > RANK[best]:
            best = item["status"]
    return best


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _client_label(client: dict[str, Any]) -> str:
    name = client.get("name")
    return f"{client.get('id')} {name}".strip() if name and name != client.get("id") else str(client.get("id"))


def host_snapshots(snapshots: list[dict[str, Any]], host: str | None = None) -> list[dict[str, Any]]:
    """The data snapshots of ``host`` (all when empty), oldest first; backup-time manifest snapshots never count."""
    snaps = [
        s
        for s in snapshots or []
        if (not host or s.get("hostname") == host) and not is_manifest_snapshot(s.get("tags"))
    ]
    return sorted(snaps, key=_snap_time)


# ---------------------------------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------------------------------


def bv_freshness(
    snapshots: list[dict[str, Any]], clients: list[dict[str, Any]], host: str, rpo_hours: float, now: Any = None
) -> list[dict[str, Any]]:
    """Per client path: the newest snapshot of ``host`` that covers it, against the RPO (client ``rpo_hours`` wins)."""
    moment = _now(now)
    snaps = host_snapshots(snapshots, host)
    out = []
    if not clients:
        if not snaps:
            return [check("freshness", "FAIL", f"no snapshot of host {host} in the repository", host)]
        age = (moment - _snap_time(snaps[-1])).total_seconds()
        limit = float(rpo_hours) * 3600
        status = "OK" if age <= limit else "FAIL"
        return [
            check(
                "freshness",
                status,
                f"newest snapshot {snaps[-1].get('short_id')} is {_hours(age)} old (RPO {float(rpo_hours):g} h)",
                host,
                age_seconds=int(age),
                snapshot=snaps[-1].get("short_id"),
            )
        ]
    for client in clients:
        rpo = float(client.get("rpo_hours") or rpo_hours)
        for path in client.get("paths") or []:
            subject = f"{_client_label(client)}: {path}"
            newest = next((s for s in reversed(snaps) if covers(s.get("paths") or [], path)), None)
            if newest is None:
                out.append(
                    check(
                        "freshness",
                        "FAIL",
                        f"no snapshot of host {host} holds {path}",
                        subject,
                        client=client.get("id"),
                        path=path,
                        age_seconds=None,
                        rpo_hours=rpo,
                    )
                )
                continue
            age = (moment - _snap_time(newest)).total_seconds()
            ok = age <= rpo * 3600
            reason = f"newest snapshot {newest.get('short_id')} is {_hours(age)} old, " + (
                f"within the RPO of {rpo:g} h" if ok else f"older than the RPO of {rpo:g} h"
            )
            out.append(
                check(
                    "freshness",
                    "OK" if ok else "FAIL",
                    reason,
                    subject,
                    client=client.get("id"),
                    path=path,
                    age_seconds=int(age),
                    rpo_hours=rpo,
                    snapshot=newest.get("short_id"),
                    snapshot_time=_iso(_snap_time(newest)),
                )
            )
    return out


def bv_damage_plan(
    snapshots: list[dict[str, Any]], clients: list[dict[str, Any]], host: str, count: int
) -> list[dict[str, Any]]:
    """What to hand to ``snapshot_damage``: per client, its ``count`` newest snapshots of ``host`` holding its paths."""
    snaps = host_snapshots(snapshots, host)
    plan = []
    for client in clients or []:
        paths = list(client.get("paths") or [])
        if not paths:
            continue
        mine = [s for s in snaps if all(covers(s.get("paths") or [], p) for p in paths)]
        for index, snap in enumerate(reversed(mine[-max(int(count), 1) :])):
            plan.append(
                {
                    "client": client.get("id"),
                    "label": _client_label(client),
                    "paths": paths,
                    "snapshot": snap.get("id"),
                    "short_id": snap.get("short_id"),
                    "newest": index == 0,
                    # the client's one declaration of its books: snapshot_damage validates these files in every
                    # assessed snapshot, changed or not, with the client's declared format
                    "ledger": client.get("ledger") or {},
                    "ledger_paths": _ledger_paths(client),
                }
            )
    return plan


def _ledger_paths(client: dict[str, Any]) -> list[str]:
    """The client's declared ledger files and folders (restore_clients.ledger_paths, the restore's own reading)."""
    if not client.get("paths"):
        return []
    return ledger_paths({**client, "declared_paths": list(client["paths"])})


def bv_ledger_plan(clients: list[dict[str, Any]], sandbox: str) -> dict[str, Any]:
    """The spot check's bookkeeping checks: the clients that declare their books (``ledger``, ``csv`` or ``sqlite``),
    each to be read by ``ledger_verify`` where the test restore put them (``restored_under``), and the ledger files
    and folders to restore (``paths``, absolute live paths; globs left out as the restore leaves them out)."""
    chosen = [c for c in clients or [] if c.get("paths") and has_ledger(c)]
    paths = [p for c in chosen for p in _ledger_paths(c)]
    return {
        "clients": [{**c, "restored_under": sandbox} for c in chosen],
        "paths": list(dict.fromkeys(paths)),
        "sandbox": sandbox,
    }


def _clip(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bv_ledger(
    ledger: dict[str, Any] | None,
    plan: dict[str, Any],
    snapshot: dict[str, Any] | None,
    restore: dict[str, Any] | None = None,
    damage_results: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One check ``ledger`` per client that declares its books: its ledgers restored from the newest snapshot and
    read by ``ledger_verify`` (integrity, balance, numbering, amounts), and the file validators' verdicts on the same
    files in the same snapshot (``snapshot_damage``'s ``validated``). FAIL names each ledger or file and why."""
    clients = plan.get("clients") or []
    if not clients:
        return []
    sid = (snapshot or {}).get("short_id")
    where = f"the newest snapshot {sid}" if sid else "the newest snapshot"
    invalid: dict[str, list[dict[str, Any]]] = {}
    for item, res in _damage_items(damage_results or []):
        if not item.get("newest"):
            continue
        for snap in res.get("snapshots") or []:
            if snap.get("id") != item.get("snapshot"):
                continue
            bad = [v for v in snap.get("validated") or [] if v.get("status") == "invalid"]
            invalid.setdefault(str(item.get("client")), []).extend(bad)
    restore_failed = (
        bool(restore) and not restore.get("skipped") and (restore.get("failed") or "snapshot_id" not in restore)
    )
    out = []
    for client in clients:
        cid = str(client.get("id"))
        subject = _client_label(client)
        problems: list[str] = []
        findings: list[dict[str, Any]] = []
        for verdict in invalid.get(cid, []):
            problems.append(f"{verdict.get('path')}: {_clip(verdict.get('reason'))} ({verdict.get('checker')})")
        if restore_failed:
            problems.append(f"its books could not be restored from {where}: {_clip(restore.get('msg'))}")
        elif ledger is None or ledger.get("skipped"):
            pass
        elif ledger.get("failed") or "clients" not in ledger:
            problems.append(f"ledger_verify could not read its books: {_clip(ledger.get('msg'))}")
        else:
            mine = (ledger.get("clients") or {}).get(cid) or {}
            findings = [
                {k: f.get(k) for k in ("kind", "source", "detail") if f.get(k) is not None}
                for f in mine.get("findings") or []
            ]
            for finding in findings:
                problems.append(
                    f"{finding.get('source')}: {_clip(finding.get('detail'))} (ledger_verify {finding.get('kind')})"
                )
        if problems:
            reason = f"the books in {where} fail: " + "; ".join(problems)
            out.append(
                check("ledger", "FAIL", reason, subject, client=cid, snapshot=sid, problems=problems, findings=findings)
            )
        elif ledger is None or ledger.get("skipped"):
            continue  # check mode, or nothing restored: the spot check says so
        else:
            summary = ((ledger.get("clients") or {}).get(cid) or {}).get("summary") or "ok"
            out.append(check("ledger", "OK", f"restored from {where}: {summary}", subject, client=cid, snapshot=sid))
    return out


def _damage_items(results: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(plan item, module result) pairs from a registered loop over bv_damage_plan."""
    out = []
    for res in results or []:
        item = res.get("item") or {}
        out.append((item, res))
    return out


def bv_coverage(
    snapshots: list[dict[str, Any]], clients: list[dict[str, Any]], host: str, damage_results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every declared client path must be in the host's newest snapshot: in its backup paths and in its content."""
    snaps = host_snapshots(snapshots, host)
    if not snaps:
        return [check("coverage", "FAIL", f"no snapshot of host {host} to check coverage against", host)]
    newest = snaps[-1]
    missing_by_client: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for item, res in _damage_items(damage_results):
        if not item.get("newest") or item.get("snapshot") != newest.get("id"):
            continue
        if res.get("failed") or "snapshots" not in res:
            errors[item.get("client")] = str(res.get("msg", "snapshot_damage failed"))
            continue
        for snap in res.get("snapshots") or []:
            if snap.get("id") == newest.get("id"):
                missing_by_client[item.get("client")] = list((snap.get("stats") or {}).get("roots_missing") or [])
    out = []
    total = present = 0
    for client in clients or []:
        for path in client.get("paths") or []:
            total += 1
            subject = f"{_client_label(client)}: {path}"
            cid = client.get("id")
            if not covers(newest.get("paths") or [], path):
                reason = f"{path} is outside the backup paths of the newest snapshot {newest.get('short_id')} " + (
                    f"({', '.join(newest.get('paths') or [])})"
                )
                out.append(check("coverage", "FAIL", reason, subject, client=cid, path=path))
            elif cid in errors:
                out.append(check("coverage", "FAIL", f"could not list the newest snapshot: {errors[cid]}", subject))
            elif cid not in missing_by_client:
                out.append(check("coverage", "WARN", "the newest snapshot's content was not listed", subject))
            elif _norm(path) in [_norm(p) for p in missing_by_client[cid]]:
                out.append(
                    check(
                        "coverage",
                        "FAIL",
                        f"{path} is missing from the newest snapshot {newest.get('short_id')} of host {host}",
                        subject,
                        client=cid,
                        path=path,
                        snapshot=newest.get("short_id"),
                    )
                )
            else:
                present += 1
                out.append(
                    check(
                        "coverage",
                        "OK",
                        f"present in the newest snapshot {newest.get('short_id')}",
                        subject,
                        client=cid,
                        path=path,
                        snapshot=newest.get("short_id"),
                    )
                )
    if total == 0:
        return [check("coverage", "WARN", f"no client paths are declared for host {host} (ledgerguard_clients)", host)]
    for item in out:
        item["details"]["ratio"] = round(present / total, 4)
    return out


def bv_damage(damage_results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One check per assessed snapshot and client: FAIL when snapshot_damage found signs of damage."""
    out = []
    for item, res in _damage_items(damage_results):
        subject = f"{item.get('label')} @ {item.get('short_id')}"
        if res.get("skipped"):
            continue
        if res.get("failed") or "snapshots" not in res:
            out.append(check("damage", "FAIL", f"damage assessment failed: {res.get('msg')}", subject))
            continue
        for snap in res.get("snapshots") or []:
            if snap.get("id") != item.get("snapshot") or not snap.get("assessed"):
                continue
            stats = snap.get("stats") or {}
            if snap.get("clean"):
                reason = f"no sign of damage against {stats.get('predecessor') or 'no predecessor'}"
                out.append(check("damage", "OK", reason, subject, client=item.get("client"), stats=stats))
            else:
                reason = "; ".join(snap.get("reasons") or ["damaged"])
                out.append(
                    check(
                        "damage",
                        "FAIL",
                        f"snapshot {snap.get('short_id')} ({snap.get('time')}) already holds damage: {reason}",
                        subject,
                        client=item.get("client"),
                        snapshot=snap.get("short_id"),
                        reasons=snap.get("reasons") or [],
                        stats=stats,
                    )
                )
    return out


def bv_spot_pick(
    found: list[dict[str, Any]], snapshot: dict[str, Any] | None, count: int, seed: str = ""
) -> list[dict[str, Any]]:
    """Pick up to ``count`` live files (``ansible.builtin.find`` results) that the snapshot should hold unchanged.

    Files modified (mtime) or changed (ctime: also copied in with old times, renamed) after the snapshot are left
    out. The pick is reproducible for one snapshot and seed (its ID and ``seed``); the role seeds it with the run id,
    so each run draws a new sample.
    """
    if not snapshot:
        return []
    taken = _snap_time(snapshot).timestamp()
    files = sorted(
        (
            f
            for f in found or []
            if f.get("path") and not f.get("isdir") and max(float(f.get("mtime", 0)), float(f.get("ctime", 0))) < taken
        ),
        key=lambda f: f["path"],
    )
    rng = random.Random(f"{snapshot.get('id')}:{seed}")  # noqa: S311 - sampling, not security
    picked = rng.sample(files, min(int(count), len(files)))
    return [
        {"path": f["path"], "size": f.get("size"), "mtime": f.get("mtime")}
        for f in sorted(picked, key=lambda f: f["path"])
    ]


def parse_sha256sum(text: str) -> dict[str, str]:
    """``sha256sum --zero`` output (``<hex>  <path>\0`` records, names unescaped) -> {path: hex}."""
    out: dict[str, str] = {}
    for record in (text or "").split("\0"):
        if len(record) > 66 and record[64:66] in ("  ", " *"):
            out[record[66:]] = record[:64]
    return out


def bv_spot_check(
    samples: list[dict[str, Any]],
    hashes: str,
    sandbox: str,
    snapshot: dict[str, Any] | None,
    restore: dict[str, Any] | None = None,
    max_mismatch: int = 0,
    subject: str = "",
) -> list[dict[str, Any]]:
    """Compare sha256 of the sampled live files with the same files restored from the newest snapshot.

    ``hashes`` is the output of ``sha256sum --zero`` over the live paths and ``<sandbox><path>``. Samples were picked
    among files unchanged since the snapshot (``bv_spot_pick``), so a differing hash is a real divergence; a live file
    that vanished meanwhile is tolerated and counted as ``changed_since``.
    """
    return [
        dict(c, subject=subject)
        for c in _spot_check(samples, parse_sha256sum(hashes), sandbox, snapshot, restore, max_mismatch)
    ]


def _spot_check(
    samples: list[dict[str, Any]],
    hashes: dict[str, str],
    sandbox: str,
    snapshot: dict[str, Any] | None,
    restore: dict[str, Any] | None,
    max_mismatch: int,
) -> list[dict[str, Any]]:
    if not snapshot:
        return [check("spot_check", "FAIL", "no snapshot to sample")]
    sid = snapshot.get("short_id")
    if restore and not restore.get("skipped") and (restore.get("failed") or "snapshot_id" not in restore):
        reason = f"test restore of {len(samples)} file(s) from {sid} failed: {restore.get('msg')}"
        return [check("spot_check", "FAIL", reason, snapshot=sid)]
    if not samples:
        return [check("spot_check", "WARN", f"no live file older than snapshot {sid} to sample", snapshot=sid)]
    matched, changed, mismatched, missing = [], [], [], []
    for sample in samples:
        path = sample["path"]
        live, restored = hashes.get(path), hashes.get(sandbox.rstrip("/") + path)
        if restored is None:
            missing.append(path)
        elif live is None:
            changed.append(path)
        elif live == restored:
            matched.append(path)
        else:
            mismatched.append(path)
    details = {
        "snapshot": sid,
        "sampled": len(samples),
        "matched": len(matched),
        "changed_since": changed,
        "mismatched": mismatched,
        "missing_in_restore": missing,
        "restore_seconds": (restore or {}).get("seconds"),
        "restore_verified": (restore or {}).get("verified"),
    }
    if missing:
        reason = f"{len(missing)} sampled file(s) did not come back from snapshot {sid}: {', '.join(missing[:3])}"
        return [check("spot_check", "FAIL", reason, **details)]
    if len(mismatched) > int(max_mismatch):
        reason = (
            f"{len(mismatched)} of {len(samples)} sampled files differ from the live copy although unchanged since "
            f"snapshot {sid}: {', '.join(mismatched[:3])}"
        )
        return [check("spot_check", "FAIL", reason, **details)]
    reason = f"{len(matched)} of {len(samples)} sampled files restored from {sid} match the live sha256"
    if changed:
        reason += f" ({len(changed)} changed since the snapshot, tolerated)"
    return [check("spot_check", "OK", reason, **details)]


def bv_rolling(state: dict[str, Any] | None, total: int) -> dict[str, Any]:
    """The next rolling ``n/t`` part to read. A state with another ``t`` starts a new cycle at 1."""
    total = int(total)
    if total < 1:
        raise AnsibleFilterError(f"backup_verify: rolling total must be at least 1, got {total}")
    state = state or {}
    n = int(state.get("next") or 1) if int(state.get("t") or 0) == total else 1
    n = n if 1 <= n <= total else 1
    return {"n": n, "t": total, "subset": f"{n}/{total}"}


def bv_rolling_update(
    state: dict[str, Any] | None, n: int, total: int, ok: bool, now: Any = None, keep: int = 60
) -> dict[str, Any]:
    """The state after reading part ``n`` of ``total``; the cycle's covered parts and the last full cycle's time."""
    state = dict(state or {})
    n, total = int(n), int(total)
    if int(state.get("t") or 0) != total:
        state = {"t": total, "read": [], "history": state.get("history") or []}
    read = sorted(set(state.get("read") or []) | ({n} if ok else set()))
    moment = _iso(_now(now))
    history = list(state.get("history") or []) + [{"part": f"{n}/{total}", "ok": bool(ok), "at": moment}]
    new = {
        "t": total,
        "next": n % total + 1 if ok else n,
        "read": read,
        "last_full_cycle_at": state.get("last_full_cycle_at"),
        "history": history[-int(keep) :],
    }
    if len(read) == total:
        new["last_full_cycle_at"] = moment
        new["read"] = []
        new["coverage"] = 1.0
    else:
        new["coverage"] = round(len(read) / total, 4)
    return new


def bv_check_result(
    result: dict[str, Any], subset: str | None, rolling: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """``restic_check`` result (``fail_on_error: false``) -> one ``check`` (structure only) or ``data`` check."""
    name = "data" if subset else "check"
    what = f"restic check --read-data-subset={subset}" if subset else "restic check"
    result = result or {}
    details: dict[str, Any] = {"subset": subset}
    for key in ("packs_read", "packs_total", "seconds", "error_kind"):
        if key in result:
            details[key] = result[key]
    if rolling:
        details["rolling"] = {
            "coverage": rolling.get("coverage"),
            "read": rolling.get("read"),
            "last_full_cycle_at": rolling.get("last_full_cycle_at"),
        }
    errors = list(result.get("errors") or [])
    findings = [f for f in result.get("diagnosis") or [] if isinstance(f, dict)]
    if findings:
        details["diagnosis"] = [
            {k: f.get(k) for k in ("kind", "severity", "harmless", "repairable", "summary", "what_to_do")}
            for f in findings
        ]
    if result.get("failed") or result.get("ok") is not True:  # failed_when: false leaves failed false: read ok
        details["errors"] = errors[:50]
        if not result.get("failed") and result.get("harmless") and findings:
            # restic check fails, but only for harmless reasons (a missing pack no snapshot needs, extra packs)
            said = "; ".join(f"{f.get('summary')} ({f.get('what_to_do')})" for f in findings)
            return [check(name, "WARN", f"{what}: nothing any snapshot needs is damaged: {said}", **details)]
        real = [f for f in findings if not f.get("harmless")]
        diagnosis = "; ".join(f"{f.get('kind')}: {f.get('summary')}. {f.get('what_to_do')}" for f in real)
        said = "; ".join(errors[:5])
        if diagnosis and said:
            diagnosis += f" (restic said: {said})"
        msg = diagnosis or result.get("msg") or said or "restic check reported errors"
        return [check(name, "FAIL", f"{what} failed: {msg}", **details)]
    extra = ""
    if rolling:
        extra = f"; rolling coverage this cycle {int(round(float(rolling.get('coverage') or 0) * 100))}%"
        if rolling.get("last_full_cycle_at"):
            extra += f", last full read {rolling['last_full_cycle_at']}"
    packs = ""
    if "packs_read" in details and "packs_total" in details:
        packs = f" ({details['packs_read']} of {details['packs_total']} packs read)"
    return [check(name, "OK", f"{what}: no errors{packs}{extra}", **details)]


def bv_retention(policy: Any, classes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Lint the retention policy (a forget policy mapping, ``keep-all`` or None; see module_utils/retention.py); one
    check per record class, no summary (an unreadable policy is one FAIL)."""
    try:
        res = lint_policy(forget_policy(policy), classes or None)
    except RetentionPolicyError as exc:
        return [check("retention", "FAIL", f"forget policy cannot be read: {exc}")]
    out = [check("retention", c["status"], c["reason"], c["name"], years=c["years"]) for c in res["classes"]]
    return out


def bv_storage(audit: dict[str, Any]) -> list[dict[str, Any]]:
    """``s3_bucket_audit`` result -> one check per storage aspect."""
    if not audit or audit.get("skipped"):
        return [check("storage", "SKIP", (audit or {}).get("skip_reason") or "not an S3 repository")]
    if audit.get("failed") or "status" not in audit:
        return [check("storage", "FAIL", f"storage audit failed: {audit.get('msg')}")]
    if not audit.get("checks"):
        return [check("storage", audit.get("status", "FAIL"), audit.get("reason", ""), audit.get("bucket", ""))]
    bucket = audit.get("bucket", "")
    return [
        check(f"storage_{name}", res["status"], res["reason"], bucket, **(res.get("details") or {}))
        for name, res in audit["checks"].items()
    ]


# ---------------------------------------------------------------------------------------------------------------------
# report, text, metrics, notifications
# ---------------------------------------------------------------------------------------------------------------------


def repository_key(repository: str) -> str:
    """A stable file-name-safe key for a repository URL (for the rolling state file)."""
    return hashlib.sha256(str(repository).encode("utf-8")).hexdigest()[:16]


def bv_report(hosts: list[str], results: dict[str, Any], now: Any = None, run_id: str = "") -> dict[str, Any]:
    """Merge the per-host facts (``__backup_verify_host_result``) into the run's report.

    A host of the play without a result (unreachable, or the role failed on it) is FAIL.
    """
    moment = _now(now)
    host_items, repos = [], {}
    for host in hosts or []:
        res = (results or {}).get(host)
        if not res:
            checks = [check("host", "FAIL", f"host {host} produced no result (unreachable, or the role failed on it)")]
            host_items.append({"host": host, "repository": "", "status": "FAIL", "checks": checks})
            continue
        checks = list(res.get("checks") or [])
        host_items.append(
            {
                "host": host,
                "repository": res.get("repository", ""),
                "snapshot_host": res.get("snapshot_host", host),
                "newest_snapshot": res.get("newest_snapshot"),
                "status": worst(checks),
                "checks": checks,
                **({"survey": list(res["survey"])} if res.get("survey") else {}),
            }
        )
        for repo_res in res.get("repositories") or []:
            repos[repo_res["repository"]] = {
                "repository": repo_res["repository"],
                "checked_from": host,
                "status": worst(repo_res.get("checks") or []),
                "checks": list(repo_res.get("checks") or []),
            }
    repo_items = [repos[k] for k in sorted(repos)]
    every = [c for h in host_items for c in h["checks"]] + [c for r in repo_items for c in r["checks"]]
    counts = {s: sum(1 for c in every if c.get("status") == s) for s in ("OK", "WARN", "FAIL", "SKIP", "UNSUPPORTED")}
    problems = []
    for scope, items, key in (("repository", repo_items, "repository"), ("host", host_items, "host")):
        for item in items:
            for c in item["checks"]:
                if c.get("status") in ("WARN", "FAIL"):
                    where = item[key] + (f" / {c['subject']}" if c.get("subject") else "")
                    problems.append(
                        {
                            "status": c["status"],
                            "scope": scope,
                            "where": where,
                            "check": c["check"],
                            "reason": c["reason"],
                        }
                    )
    problems.sort(key=lambda p: -RANK[p["status"]])
    return {
        "schema": SCHEMA,
        "run_id": run_id or moment.strftime("%Y%m%dT%H%M%SZ"),
        "generated_at": _iso(moment),
        "status": worst(every),
        "counts": counts,
        "problems": problems,
        "failed": [f"{p['check']} at {p['where']}" for p in problems if p["status"] == "FAIL"],
        "repositories": repo_items,
        "hosts": host_items,
    }


def _md_cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def bv_markdown(report: dict[str, Any]) -> str:
    """The run's summary in Markdown (the HTML summary is rendered from the same report by the role's template)."""
    lines = [
        f"# Backup verification — {report['status']}",
        "",
        f"Run {report['run_id']}, generated {report['generated_at']}. "
        + ", ".join(f"{k}: {v}" for k, v in report["counts"].items() if v),
        "",
    ]
    if report["problems"]:
        lines += ["## Problems", ""]
        lines += [f"- **{p['status']}** {p['where']} — {p['check']}: {p['reason']}" for p in report["problems"]]
        lines.append("")
    for title, items, key in (
        ("Repositories", report["repositories"], "repository"),
        ("Hosts", report["hosts"], "host"),
    ):
        if not items:
            continue
        lines += [f"## {title}", ""]
        for item in items:
            lines += [
                f"### {item[key]} — {item['status']}",
                "",
                "| check | subject | status | reason |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {_md_cell(c['check'])} | {_md_cell(c.get('subject'))} | {c['status']} | {_md_cell(c['reason'])} |"
                for c in item["checks"]
            ]
            lines.append("")
            if item.get("survey"):
                lines += survey_lines(item["survey"])
    return "\n".join(lines)


def survey_lines(survey: list[dict[str, Any]]) -> list[str]:
    """The survey table: per client path, how many snapshots hold it, of which hosts, where inside them, the newest."""
    lines = [
        "#### Survey: which snapshots hold each client's books",
        "",
        "| client | path | snapshots | hosts | in the snapshot | newest |",
        "|---|---|---|---|---|---|",
    ]
    for entry in survey:
        newest = entry.get("newest") or {}
        shown = (
            f"{newest.get('short_id')} {newest.get('time', '')[:19]} ({newest.get('hostname')}"
            + (f", tags {', '.join(newest.get('tags') or [])}" if newest.get("tags") else "")
            + ")"
            if newest
            else "**none: the incident path would find no restore point**"
        )
        lines.append(
            f"| {_md_cell(entry.get('client'))} | {_md_cell(entry.get('path'))} | {entry.get('snapshots', 0)} | "
            f"{_md_cell(', '.join(entry.get('hosts') or []))} | "
            f"{_md_cell(', '.join(entry.get('snapshot_paths') or []))} | {_md_cell(shown)} |"
        )
    return lines + [""]


def bv_notify_text(report: dict[str, Any], limit: int = 15) -> str:
    """A short Markdown text for chat and mail: the problems, worst first."""
    lines = [
        f"**{report['status']}** — {report['counts'].get('FAIL', 0)} FAIL, {report['counts'].get('WARN', 0)} WARN, "
        f"{report['counts'].get('OK', 0)} OK (run {report['run_id']})",
        "",
    ]
    for p in report["problems"][: int(limit)]:
        lines.append(f"- {p['status']} {p['where']} · {p['check']}: {p['reason']}")
    more = len(report["problems"]) - int(limit)
    if more > 0:
        lines.append(f"- … and {more} more (see the evidence folder)")
    return "\n".join(lines)


def bv_metrics(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Metric families for ``prometheus_textfile``: run status, check status, snapshot age, coverage, data read."""
    generated = parse_time(report["generated_at"]).timestamp()
    fams: list[dict[str, Any]] = [
        {
            "name": "ledgerguard_backup_verify_status",
            "help": "Backup verification result of the run: 0 OK, 1 WARN, 2 FAIL",
            "samples": [{"labels": {}, "value": RANK[report["status"]]}],
        },
        {
            "name": "ledgerguard_backup_verify_last_run_timestamp_seconds",
            "help": "When the backup verification ran (Unix time)",
            "samples": [{"labels": {}, "value": int(generated)}],
        },
    ]
    status_samples, age_samples, cov_samples, data_samples = [], [], [], []
    for scope, items, key in (("repository", report["repositories"], "repository"), ("host", report["hosts"], "host")):
        for item in items:
            for c in item["checks"]:
                if c.get("status") not in RANK:
                    continue
                labels = {"scope": scope, "target": item[key], "check": c["check"], "subject": c.get("subject") or ""}
                status_samples.append({"labels": labels, "value": RANK[c["status"]]})
                det = c.get("details") or {}
                if c["check"] == "freshness" and det.get("age_seconds") is not None:
                    age_samples.append(
                        {
                            "labels": {
                                "host": item[key],
                                "client": str(det.get("client") or ""),
                                "path": str(det.get("path") or ""),
                            },
                            "value": det["age_seconds"],
                        }
                    )
                if c["check"] == "data" and (det.get("rolling") or {}).get("coverage") is not None:
                    data_samples.append({"labels": {"repository": item[key]}, "value": det["rolling"]["coverage"]})
            covs = [c for c in item["checks"] if c["check"] == "coverage" and "ratio" in (c.get("details") or {})]
            if covs:
                cov_samples.append({"labels": {"host": item[key]}, "value": covs[0]["details"]["ratio"]})
    fams += [
        {
            "name": "ledgerguard_backup_verify_check_status",
            "help": "Each check: 0 OK, 1 WARN, 2 FAIL",
            "samples": status_samples,
        },
        {
            "name": "ledgerguard_backup_snapshot_age_seconds",
            "help": "Age of the newest snapshot holding each client path",
            "samples": age_samples,
        },
        {
            "name": "ledgerguard_backup_coverage_ratio",
            "help": "Share of declared client paths present in the host's newest snapshot",
            "samples": cov_samples,
        },
        {
            "name": "ledgerguard_backup_data_read_coverage_ratio",
            "help": "Share of the repository's data read by rolling restic check in the current cycle",
            "samples": data_samples,
        },
    ]
    return fams


def notify_webhook_request(
    webhook: dict[str, Any], title: str, text: str, status: str = "WARN", data: Any = None
) -> dict[str, Any]:
    """``{url, body}`` for one webhook (``{url, kind, secret}``); see module_utils/notify.py for the formats."""
    try:
        return webhook_request(
            str(webhook.get("kind", "generic")),
            str(webhook.get("url", "")),
            title,
            text,
            status,
            webhook.get("secret"),
            data,
        )
    except NotifyError as exc:
        raise AnsibleFilterError(f"backup_verify notify: {exc}") from exc


def notify_undelivered(results: list[dict[str, Any]], webhooks: list[dict[str, Any]]) -> list[str]:
    """Webhooks (kind and host, never the URL's secrets) whose registered ``uri`` result is not a delivery."""
    out = []
    for res, hook in zip(results or [], webhooks or [], strict=False):
        kind = str(hook.get("kind", "generic"))
        host = urlsplit(str(hook.get("url", ""))).hostname or "?"
        body = res.get("json") if res.get("json") is not None else res.get("content")
        ok, why = response_ok(kind, int(res.get("status") or 0), body)
        if not ok:
            msg = str(res.get("msg") or "") if not res.get("status") or int(res.get("status") or 0) < 0 else ""
            out.append(f"{kind} at {host}: {why}{' (' + msg + ')' if msg else ''}")
    return out


def html_escape(text: Any) -> str:
    return html.escape(str(text if text is not None else ""))


class FilterModule:
    """backup_verify filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "bv_freshness": bv_freshness,
            "bv_damage_plan": bv_damage_plan,
            "bv_coverage": bv_coverage,
            "bv_damage": bv_damage,
            "bv_spot_pick": bv_spot_pick,
            "bv_spot_check": bv_spot_check,
            "bv_ledger_plan": bv_ledger_plan,
            "bv_ledger": bv_ledger,
            "bv_rolling": bv_rolling,
            "bv_rolling_update": bv_rolling_update,
            "bv_check_result": bv_check_result,
            "bv_retention": bv_retention,
            "bv_storage": bv_storage,
            "bv_report": bv_report,
            "bv_markdown": bv_markdown,
            "bv_notify_text": bv_notify_text,
            "bv_metrics": bv_metrics,
            "bv_repository_key": repository_key,
            "notify_webhook_request": notify_webhook_request,
            "notify_undelivered": notify_undelivered,
            "bv_html": html_escape,
        }
