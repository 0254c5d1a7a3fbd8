# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers for recovery drills: snapshot choice, sandbox safety, targets, history and the trend chart.

Used by the ``ledgerguard.recovery.drill_*`` filters (role ``drill``) and by the ``ledgerguard`` CLI; no Ansible
imports, so unit tests call them directly.
"""

from __future__ import annotations

import html
import math
import posixpath
import random
from datetime import datetime, timezone
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils import timeutil
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import (
    is_database_dump_snapshot,
    is_manifest_snapshot,
)

# Directories a drill sandbox may never be, nor be inside of (restoring there would overwrite the system).
SYSTEM_DIRS: tuple[str, ...] = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib/dpkg",
    "/var/lib/rpm",
    "/var/log",
)
# Top-level directories a sandbox may be below but never be itself (cleanup removes the sandbox's run folder).
SHARED_DIRS: tuple[str, ...] = ("/home", "/media", "/mnt", "/opt", "/srv", "/tmp", "/var", "/var/lib", "/var/tmp")  # noqa: S108 - paths refused, not used

_UTC = timezone.utc  # noqa: UP017 - module_utils stays importable on Python < 3.11

TARGET_KEYS = ("rto_seconds", "rpo_seconds", "min_throughput_bytes_per_second")


def parse_time(value: Any) -> datetime:
    """restic / ISO 8601 times (nanosecond fractions, Z or offsets; none: UTC), datetimes or epoch numbers -> an aware
    datetime (module_utils/timeutil.py reads the text)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=_UTC)
    try:
        return timeutil.parse_time(value, naive_utc=True)
    except ValueError:
        raise ValueError(f"'{value}' is not an ISO 8601 time such as 2026-01-05T02:00:00+08:00") from None


def snapshot_age_seconds(snapshot_time: Any, now: Any) -> float:
    """RPO achieved by restoring a snapshot: how old it was when the drill started."""
    return round((parse_time(now) - parse_time(snapshot_time)).total_seconds(), 3)


def host_snapshots(snapshots: list[dict[str, Any]], own_host: str) -> list[dict[str, Any]]:
    """The snapshots a drill of host ``own_host`` chooses from when no host filter was given: this host's when it has
    any; every snapshot when one host (or none named) wrote them all (a drill host restoring one server's backups);
    else ValueError naming the hosts: drilling another server's backup of the same paths would prove nothing here."""
    if not own_host:
        return snapshots
    own = [s for s in snapshots if s.get("hostname") == own_host]
    if own:
        return own
    hosts = sorted({str(s.get("hostname") or "") for s in snapshots})
    if len(hosts) <= 1:
        return snapshots
    raise ValueError(
        f"the repository holds snapshots of {len(hosts)} hosts ({', '.join(hosts)}) and none of this host "
        f"({own_host}): set drill_snapshot_host to the host whose backups this drill restores, or drill_snapshot_id"
    )


def pick_snapshot(
    snapshots: list[dict[str, Any]],
    mode: str = "latest",
    window_days: float = 30,
    now: Any = None,
    seed: Any = None,
    snapshot_id: str = "",
    own_host: str = "",
) -> dict[str, Any]:
    """Choose the drill's snapshot; raise ValueError with an operator-facing message when none fits.

    Backup-time manifest snapshots (tag ``ledgerguard-manifest``) and database dumps (paths under ``/ledgerguard-db/``;
    the drill's databases step restores those) are never drilled as files (module_utils/restic/parsers.py). Without
    ``snapshot_id``, the choice is among :func:`host_snapshots` of ``own_host`` (empty: every host).
    """
    snapshots = [
        s
        for s in snapshots or []
        if not is_manifest_snapshot(s.get("tags")) and not is_database_dump_snapshot(s.get("paths"))
    ]
    if not snapshots:
        raise ValueError(
            "the repository has no snapshot matching the drill's filters (host, tags, paths); nothing to restore"
        )
    if snapshot_id:
        for snap in snapshots:
            if snapshot_id in (snap.get("id"), snap.get("short_id")) or str(snap.get("id", "")).startswith(snapshot_id):
                return snap
        raise ValueError(f"drill_snapshot_id '{snapshot_id}' is not among the {len(snapshots)} matching snapshots")
    ordered = sorted(host_snapshots(snapshots, own_host), key=lambda s: parse_time(s["time"]))
    if mode == "latest":
        return ordered[-1]
    if mode != "random":
        raise ValueError(f"drill_snapshot_selection '{mode}' is not one of latest, random")
    reference = parse_time(now) if now is not None else datetime.now(_UTC)
    window = float(window_days) * 86400
    candidates = [s for s in ordered if (reference - parse_time(s["time"])).total_seconds() <= window]
    if not candidates:
        raise ValueError(
            f"no snapshot is younger than drill_random_window_days={window_days:g} (newest is "
            f"{ordered[-1].get('time')}); widen the window or use drill_snapshot_selection=latest"
        )
    return random.Random(str(seed) if seed is not None else None).choice(candidates)  # noqa: S311 (not crypto)


def _norm(path: str) -> str:
    out = posixpath.normpath(path)
    return "/" if out in ("/", "//") else out.rstrip("/")


def within(path: str, parent: str) -> bool:
    """``path`` is ``parent`` or below it (both normalised absolute paths)."""
    return path == parent or parent == "/" or path.startswith(parent.rstrip("/") + "/")


def sandbox_problem(
    sandbox: str,
    clients: list[dict[str, Any]] | None = None,
    realpath: str | None = None,
    extra_forbidden: list[str] | None = None,
) -> str | None:
    """Why `sandbox` cannot hold a drill restore, or None when it is safe.

    A sandbox must be absolute, not `/`, not a system directory or inside one, not a shared top-level directory
    itself, and neither inside nor around any production path of `ledgerguard_clients` (or `extra_forbidden`).
    `realpath` is the resolved path on the host (symlinks followed) when it exists; both are checked.
    """
    if not sandbox or not str(sandbox).startswith("/"):
        return (
            f"drill_sandbox_dir '{sandbox}' is not an absolute path; "
            "give an absolute directory such as /var/tmp/ledgerguard-drill"
        )
    candidates = [_norm(str(sandbox))]
    if realpath and _norm(realpath) not in candidates:
        candidates.append(_norm(realpath))
    for cand in candidates:
        shown = f"'{cand}'" if cand == _norm(str(sandbox)) else f"'{cand}' (resolved from '{sandbox}')"
        if cand == "/":
            return f"drill_sandbox_dir {shown} is the root directory; a drill never restores onto /"
        for sysdir in SYSTEM_DIRS:
            if within(cand, sysdir):
                return (
                    f"drill_sandbox_dir {shown} is inside the system directory '{sysdir}'; "
                    "use a dedicated directory such as /var/tmp/ledgerguard-drill"
                )
        if cand in SHARED_DIRS:
            return (
                f"drill_sandbox_dir {shown} is the shared directory '{cand}' itself; "
                "use a dedicated sub-directory such as /var/tmp/ledgerguard-drill"
            )
        for client in clients or []:
            for prod in client.get("paths") or []:
                prod_n = _norm(str(prod))
                label = f"client {client.get('id')} ({client.get('name', client.get('id'))})"
                if within(cand, prod_n):
                    return (
                        f"drill_sandbox_dir {shown} is inside production path '{prod_n}' of {label}; "
                        "a drill must restore outside every path declared in ledgerguard_clients"
                    )
                if within(prod_n, cand):
                    return (
                        f"drill_sandbox_dir {shown} contains production path '{prod_n}' of {label}; "
                        "a drill must restore outside every path declared in ledgerguard_clients"
                    )
        for prod in extra_forbidden or []:
            prod_n = _norm(str(prod))
            if within(cand, prod_n) or within(prod_n, cand):
                return f"drill_sandbox_dir {shown} overlaps the protected path '{prod_n}' (drill_forbidden_paths)"
    return None


def merge_targets(*layers: dict[str, Any] | None) -> dict[str, float | None]:
    """Later layers override earlier ones; None / '' / 0 for a target means 'not enforced'."""
    out: dict[str, float | None] = {k: None for k in TARGET_KEYS}
    for layer in layers:
        for key in TARGET_KEYS:
            if layer and key in layer:
                value = layer[key]
                out[key] = float(value) if value not in (None, "", 0, "0") else None
    return out


def evaluate(measured: dict[str, Any], targets: dict[str, Any]) -> list[str]:
    """The targets `measured` misses, as sentences (empty list: all met)."""
    misses = []
    rto, rpo = measured.get("rto_seconds"), measured.get("rpo_seconds")
    tput = measured.get("throughput_bytes_per_second")
    if targets.get("rto_seconds") is not None and rto is not None and float(rto) > float(targets["rto_seconds"]):
        misses.append(f"RTO {float(rto):.1f}s exceeds the target of {float(targets['rto_seconds']):g}s")
    if targets.get("rpo_seconds") is not None and rpo is not None and float(rpo) > float(targets["rpo_seconds"]):
        misses.append(f"RPO {float(rpo):.1f}s (snapshot age) exceeds the target of {float(targets['rpo_seconds']):g}s")
    floor = targets.get("min_throughput_bytes_per_second")
    if floor is not None and tput is not None and float(tput) < float(floor):
        misses.append(f"throughput {float(tput):.0f} B/s is below the target of {float(floor):g} B/s")
    return misses


def client_result(
    client: dict[str, Any],
    restore: dict[str, Any],
    restore_seconds: float,
    verify_seconds: float,
    rpo_seconds: float,
    checks: dict[str, Any],
    targets: dict[str, Any],
) -> dict[str, Any]:
    """One client's drill outcome: measurements, targets, misses and whether its checks passed."""
    rto = round(float(restore_seconds) + float(verify_seconds), 3)
    size = int(restore.get("bytes") or restore.get("bytes_restored") or 0)
    seconds = float(restore.get("seconds") or restore_seconds or 0)
    throughput = round(size / seconds, 1) if seconds > 0 else None
    measured = {
        "rto_seconds": rto,
        "rpo_seconds": round(float(rpo_seconds), 3),
        "restore_seconds": round(float(restore_seconds), 3),
        "verify_seconds": round(float(verify_seconds), 3),
        "throughput_bytes_per_second": throughput,
        "files": int(restore.get("files") or restore.get("files_restored") or 0),
        "bytes": size,
    }
    misses = evaluate(measured, targets)
    failed_checks = sorted(k for k, v in checks.items() if isinstance(v, dict) and v.get("ok") is False)
    return {
        "id": client.get("id"),
        "name": client.get("name", client.get("id")),
        **measured,
        "targets": targets,
        "misses": misses,
        "checks": checks,
        "failed_checks": failed_checks,
        "passed": not misses and not failed_checks,
    }


def drill_record(
    base: dict[str, Any], clients: list[dict[str, Any]], errors: list[str] | None = None
) -> dict[str, Any]:
    """The history line of one drill on one host."""
    errors = [e for e in (errors or []) if e]
    misses = [f"{c['id']}: {m}" for c in clients for m in c.get("misses", [])]
    failed = [f"{c['id']}: {k}" for c in clients for k in c.get("failed_checks", [])]
    rtos = [c["rto_seconds"] for c in clients if c.get("rto_seconds") is not None]
    rpos = [c["rpo_seconds"] for c in clients if c.get("rpo_seconds") is not None]
    out = dict(base)
    out.update(
        {
            "clients": clients,
            "rto_seconds": max(rtos) if rtos else None,
            "rpo_seconds": max(rpos) if rpos else None,
            "bytes": sum(int(c.get("bytes") or 0) for c in clients),
            "files": sum(int(c.get("files") or 0) for c in clients),
            "misses": misses,
            "failed_checks": failed,
            "errors": errors,
            # Clients whose drilled backup already holds damage (check `damage`), one sentence each: an early warning.
            "damaged_backups": [
                f"{c['id']}: {(c.get('checks') or {}).get('damage', {}).get('message') or 'damage found'}"
                for c in clients
                if isinstance((c.get("checks") or {}).get("damage"), dict) and c["checks"]["damage"].get("ok") is False
            ],
            "targets_missed": bool(misses),
            "verification_failed": bool(failed or errors),
            "passed": bool(clients) and not misses and not failed and not errors,
        }
    )
    return out


def parse_history(text: str) -> list[dict[str, Any]]:
    """History lines (JSON Lines); unreadable lines are skipped, not fatal."""
    import json

    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _fmt_seconds(value: float) -> str:
    value = float(value)
    if value >= 7200:
        return f"{value / 3600:.1f}h"
    if value >= 120:
        return f"{value / 60:.0f}m"
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        cand = step * 10**exp
        if cand >= value:
            return float(cand)
    return float(10 ** (exp + 1))


def trend_svg(
    history: list[dict[str, Any]],
    metric: str = "rto_seconds",
    title: str = "RTO",
    target: float | None = None,
    width: int = 640,
    height: int = 220,
    last: int = 30,
) -> str:
    """An inline SVG line chart of `metric` over the last `last` drills (oldest left), with the target dashed.

    Failed drills are drawn as red points. No scripts, no external resources: safe to embed in an offline report.
    """
    points = [(h.get("started") or h.get("drill_id") or "", h.get(metric), h.get("passed")) for h in history][-last:]
    points = [(lbl, float(v), ok) for lbl, v, ok in points if isinstance(v, (int, float))]
    pad_l, pad_r, pad_t, pad_b = 56, 16, 28, 40
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{esc(title)} trend over {len(points)} drills" class="lg-trend">',
        f'<text x="{pad_l}" y="18" font-size="13" font-weight="bold">'
        f"{esc(title)} over the last {len(points)} drills</text>",
    ]
    if not points:
        parts.append(
            f'<text x="{pad_l}" y="{pad_t + plot_h / 2:.0f}" font-size="12">no drill recorded yet</text></svg>'
        )
        return "".join(parts)
    top = max([v for _label, v, _ok in points] + ([float(target)] if target else []))
    ymax = _nice_ceiling(top * 1.1)

    def x_of(i: int) -> float:
        return pad_l + (plot_w * i / (len(points) - 1) if len(points) > 1 else plot_w / 2)

    def y_of(v: float) -> float:
        return pad_t + plot_h - plot_h * (v / ymax)

    parts.append(
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}" stroke="#444"/>'
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + plot_h}" stroke="#444"/>'
    )
    for frac in (0, 0.5, 1):
        yv = ymax * frac
        y = y_of(yv)
        parts.append(
            f'<line x1="{pad_l - 4}" y1="{y:.1f}" x2="{pad_l + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{pad_l - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt_seconds(yv)}</text>'
        )
    if target:
        y = y_of(float(target))
        parts.append(
            f'<line x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + plot_w}" y2="{y:.1f}" stroke="#c60" stroke-dasharray="6,4"/>'
            f'<text x="{pad_l + plot_w}" y="{y - 4:.1f}" font-size="10" text-anchor="end" fill="#c60">'
            f"target {_fmt_seconds(float(target))}</text>"
        )
    path = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, (_label, v, _ok) in enumerate(points))
    parts.append(f'<polyline fill="none" stroke="#2463a6" stroke-width="2" points="{path}"/>')
    for i, (label, v, ok) in enumerate(points):
        color = "#2a8a3e" if ok else "#c0392b"
        parts.append(
            f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="4" fill="{color}">'
            f"<title>{esc(str(label))}: {_fmt_seconds(v)} ({'passed' if ok else 'failed'})</title></circle>"
        )
    first, last_label = str(points[0][0])[:10], str(points[-1][0])[:10]
    parts.append(
        f'<text x="{pad_l}" y="{height - 12}" font-size="10">{esc(first)}</text>'
        f'<text x="{pad_l + plot_w}" y="{height - 12}" font-size="10" text-anchor="end">{esc(last_label)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def metric_families(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Prometheus families (for the prometheus_textfile filter) describing one drill record."""
    host = record.get("host", "")
    started = record.get("started")
    ts = parse_time(started).timestamp() if started else None
    fams: list[dict[str, Any]] = [
        {
            "name": "ledgerguard_drill_last_run_timestamp_seconds",
            "help": "Unix time the last recovery drill started",
            "samples": [{"labels": {"host": host}, "value": ts}],
        },
        {
            "name": "ledgerguard_drill_passed",
            "help": "1 if the last recovery drill passed every check and target, else 0",
            "samples": [{"labels": {"host": host}, "value": 1 if record.get("passed") else 0}],
        },
        {
            "name": "ledgerguard_drill_targets_missed",
            "help": "1 if the last recovery drill missed an RTO, RPO or throughput target",
            "samples": [{"labels": {"host": host}, "value": 1 if record.get("targets_missed") else 0}],
        },
    ]
    per_client = [
        ("ledgerguard_drill_rto_seconds", "Achieved RTO (restore + verify) of the last drill", "rto_seconds"),
        (
            "ledgerguard_drill_rpo_seconds",
            "Achieved RPO (age of the restored snapshot) of the last drill",
            "rpo_seconds",
        ),
        ("ledgerguard_drill_restored_bytes", "Bytes restored by the last drill", "bytes"),
        (
            "ledgerguard_drill_throughput_bytes_per_second",
            "Restore throughput of the last drill",
            "throughput_bytes_per_second",
        ),
    ]
    for name, help_text, key in per_client:
        fams.append(
            {
                "name": name,
                "help": help_text,
                "samples": [
                    {"labels": {"host": host, "client": c.get("id", "")}, "value": c.get(key)}
                    for c in record.get("clients", [])
                ],
            }
        )
    return fams + database_metric_families(host, record.get("databases") or [])


# Per database the drill restored into a scratch database: (name, help, record key, only for a passed restore).
DATABASE_METRICS = [
    ("ledgerguard_drill_database_passed", "1 if the last drill's scratch restore of the database checked out, else 0",
     "passed", False),
    ("ledgerguard_drill_database_tables", "Tables in the last drill's scratch restore of the database",
     "table_count", True),
    ("ledgerguard_drill_database_rows", "Rows (exact count(*) over every table) in the last drill's scratch restore",
     "total_rows", True),
    ("ledgerguard_drill_database_restore_seconds", "Seconds the last drill's scratch restore and check took",
     "seconds", True),
]  # fmt: skip


def database_metric_families(host: str, databases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per database of the record (engine, database): passed, and for a restore that checked out its tables, rows
    and seconds. A failed one has only ``passed 0`` (its counts are not those of a usable restore)."""
    fams = []
    for name, help_text, key, only_passed in DATABASE_METRICS:
        samples = []
        for d in databases:
            labels = {"host": host, "engine": d.get("engine", ""), "database": d.get("database", "")}
            if key == "passed":
                samples.append({"labels": labels, "value": 1 if d.get("passed") else 0})
            elif d.get("passed") or not only_passed:
                samples.append({"labels": labels, "value": d.get(key)})
        fams.append({"name": name, "help": help_text, "samples": samples})
    checked = [d for d in databases if d.get("ledger")]
    for name, help_text, value in LEDGER_METRICS:
        samples = [
            {"labels": {"host": host, "engine": d.get("engine", ""), "database": d.get("database", "")},
             "value": value(d["ledger"])}
            for d in checked
        ]  # fmt: skip
        fams.append({"name": name, "help": help_text, "samples": samples})
    return fams


# Per database with a ledger table (drill_databases[].ledger) whose restore was read: the ledger verdict.
LEDGER_METRICS = [
    ("ledgerguard_drill_database_ledger_ok",
     "1 if the ledger table of the last drill's scratch restore passed the ledger checks (balanced, no gap or "
     "reused voucher number), else 0", lambda v: 1 if v.get("ok") else 0),
    ("ledgerguard_drill_database_ledger_findings",
     "Problems the ledger checks found in the ledger table of the last drill's scratch restore",
     lambda v: int(v.get("findings_count") or 0)),
    ("ledgerguard_drill_database_ledger_vouchers",
     "Vouchers in the ledger table of the last drill's scratch restore", lambda v: int(v.get("vouchers") or 0)),
]  # fmt: skip


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The short form of a drill record published with set_stats (AWX job artifacts) and shown by the CLI."""
    snap = record.get("snapshot") or {}
    return {
        "passed": bool(record.get("passed")),
        "targets_missed": bool(record.get("targets_missed")),
        "verification_failed": bool(record.get("verification_failed")),
        "snapshot": snap.get("short_id") or snap.get("id"),
        "snapshot_time": snap.get("time"),
        "rto_seconds": record.get("rto_seconds"),
        "rpo_seconds": record.get("rpo_seconds"),
        "bytes": record.get("bytes"),
        "files": record.get("files"),
        "problems": list(record.get("errors") or [])
        + list(record.get("failed_checks") or [])
        + list(record.get("misses") or []),
        "damaged_backups": list(record.get("damaged_backups") or []),
        "databases": [database_line(d) for d in record.get("databases") or []],
    }


def database_line(d: dict[str, Any]) -> str:
    """One line per database of a drill record, as the CLI and the reports name it."""
    head = f"{d.get('engine')}/{d.get('database')}"
    if not d.get("passed"):
        return f"{head}: FAILED: {d.get('message') or 'the scratch restore failed'}"
    checked = d.get("ledger")
    return (
        f"{head}: passed, snapshot {d.get('snapshot') or '-'}, {int(d.get('table_count') or 0)} table(s), "
        f"{int(d.get('total_rows') or 0)} rows, {float(d.get('seconds') or 0):.1f} s"
        + (f", ledger {checked.get('summary')}" if checked else "")
    )
