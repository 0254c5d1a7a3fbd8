# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the incident report (the data behind report.json, report.md, report.html and the notices)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: incident_report
short_description: Assemble the incident report from the incident record and every host's results
version_added: "0.1.0"
description:
  - Computes the status, achieved RTO (declared to verified), the data-loss window per client (loss start, or
    detection when the start is unknown, minus the restored snapshot's time), the files to review, the freeze window,
    the timeline summary and the evidence files with their sha256.
  - Gives every client its own C(cause) (ransomware, deleted, corruption or unknown) with its C(source), which is
    C(detected) from the damage its restore found (skipped snapshots' reasons, a pinned snapshot's warnings,
    quarantine reasons, missing files put back), else C(declared) (the incident's O(_input.cause)) or
    C(undetermined) (nothing found, cause declared unknown). The mapping lives in module_utils/cause.py.
  - Builds the C(containment) section from each host's C(freeze) result (its C(writers)), its C(rescans) and its
    C(thaw) (C(stopped_processes)); every process found holding a frozen folder, what it held, what was done to it and
    when, and whether it is still stopped. A writer found after the freeze (by a rescan) that held a client's folder
    makes that client a problem (its files must be re-checked; they are never reported verified on trust), and so does
    a writer still running. Each client's C(cause) gains C(writers), the processes found writing in its folder.
  - Lists the clients in the incident's restore queue (nearest filing deadline first, then priority, then id) and
    carries that queue as C(restore_queue) - per client its next deadline, when it was restored, and a LATE or NOT
    RESTORED warning when a deadline is missed or at risk (plugin_utils/filing.py).
  - Lists the databases the incident restored (a host's C(restore_database_results), the restore role's entry point
    C(databases)) as C(databases), per database its engine, the dump snapshot used, the new database it was restored
    into, whether it was swapped in (the damaged one kept under its quarantine name) or stopped before the swap, and
    the table checks (each table's rows in the restore against the damaged database's). A failed database and one
    stopped before the swap are problems (the damaged database is still the one in service).
  - Carries the repository damage the incident's check found (a host's C(repository_damage), with the lost packs, what
    restic said, the snapshots that need them) as C(repository_damage), and C(summary.repository_damaged). Damage does
    not change the status (the clients restored from older intact snapshots are restored), but the repository needs
    repair before the next backup is trusted.
author: ledgerguard contributors (@ledgerguard)
positional: hosts, generated_at, evidence
options:
  _input:
    description: The incident record (incident.json).
    type: dict
    required: true
  hosts:
    description: Per host, C(restore_results), C(restore_database_results), C(freeze), C(thaw), C(state_snapshot),
      C(frozen_at), C(thawed_at), C(rescans) (the write_freeze rescan results, each with its C(label)).
    type: dict
    required: true
  generated_at:
    description: Report time (RFC 3339).
    type: str
  evidence:
    description: The incident's evidence folder on the controller.
    type: str
"""

EXAMPLES = r"""
- name: Build the report
  ansible.builtin.set_fact:
    report: "{{ incident_record | ledgerguard.recovery.incident_report(hosts, now(utc=true).isoformat(), evidence) }}"
"""

RETURN = r"""
_value:
  description: The report dictionary written as report.json.
  type: dict
"""

import datetime  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import hashlib  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import json  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import os  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.filter.incident import (  # noqa: E402
    incident_duration,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.cause import (  # noqa: E402
    client_cause,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import parse_time  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import filing  # noqa: E402

try:
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import verify_chain
except ImportError:  # pragma: no cover
    verify_chain = None

SKIP_EVIDENCE = ("SHA256SUMS", "SHA256SUMS.new", "report.json", "report.md", "report.html")


def _ts(text):
    if not text:
        return None
    try:
        return parse_time(str(text), naive_utc=True)
    except ValueError:
        return None


def _duration(seconds):
    return "unknown" if seconds is None else incident_duration(seconds)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _evidence_files(evidence):
    out = []
    if not evidence or not os.path.isdir(evidence):
        return out
    for dirpath, dirnames, filenames in os.walk(evidence):
        dirnames.sort()
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), evidence)
            if rel in SKIP_EVIDENCE or rel == "timeline.jsonl":
                continue
            full = os.path.join(dirpath, name)
            out.append({"path": rel, "sha256": _sha256(full), "size": os.path.getsize(full)})
    return out


def _timeline(evidence, limit=400):
    path = os.path.join(evidence or "", "timeline.jsonl")
    if not evidence or not os.path.exists(path):
        return {"path": path, "lines": 0, "verified": None, "events": []}
    check = verify_chain(path) if verify_chain else {"ok": None, "lines": 0, "last_sha256": None}
    events = []
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            try:
                item = json.loads(raw)
            except ValueError:
                continue
            if item.get("event") != "task" or item.get("status") == "skipped":
                continue
            events.append(
                {
                    k: item.get(k)
                    for k in ("seq", "time", "host", "task", "status", "changed", "duration", "msg")
                    if item.get(k) is not None
                }
            )
    return {
        "path": path,
        "lines": check.get("lines"),
        "verified": check.get("ok"),
        "first_bad_line": check.get("first_bad_line"),
        "sha256_at_report": check.get("last_sha256"),
        "events": events[-limit:],
        "events_truncated": len(events) > limit,
    }


def _within(path, parent):
    path, parent = str(path or ""), str(parent or "").rstrip("/")
    return bool(parent) and (path == parent or path.startswith(parent + "/"))


def _containment(host, data):
    """Every process the freeze and the rescans found on one host, once each, with what was done to it."""
    rows = {}
    sources = [("freeze", (data.get("freeze") or {}).get("writers") or [])]
    for scan in data.get("rescans") or []:
        if isinstance(scan, dict):
            sources.append((scan.get("label") or "rescan", scan.get("writers") or []))
    held = []
    for scan in [data.get("freeze") or {}, *(data.get("rescans") or [])]:
        if isinstance(scan, dict):
            held.extend(w.get("pid") for w in scan.get("held") or [] if isinstance(w, dict))
    still = {s.get("pid") for s in (data.get("thaw") or {}).get("stopped_processes") or [] if isinstance(s, dict)}
    for when, writers in sources:
        for w in writers:
            if not isinstance(w, dict):
                continue
            key = (w.get("pid"), w.get("start_ticks"))
            if key in rows:
                if w.get("action") in ("stopped", "killed"):
                    rows[key].update(action=w["action"], acted_at=w.get("acted_at", ""))
                continue
            rows[key] = {
                "host": host,
                "pid": w.get("pid"),
                "ppid": w.get("ppid"),
                "user": w.get("user"),
                "comm": w.get("comm"),
                "exe": w.get("exe"),
                "exe_sha256": w.get("exe_sha256"),
                "cmdline": w.get("cmdline"),
                "started": w.get("started"),
                "role": w.get("role"),
                "writing": bool(w.get("writing")),
                "action": w.get("action"),
                "found_at": w.get("found_at", ""),
                "found_by": when,
                "acted_at": w.get("acted_at", ""),
                "targets": w.get("targets") or [],
                "holds": [
                    "{} {}{}".format(h.get("kind"), f"{h['fd']} " if h.get("kind") == "fd" else "", h.get("path"))
                    + (f" ({h.get('mode')})" if h.get("kind") in ("fd", "map") else "")
                    for h in w.get("holds") or []
                    if isinstance(h, dict)
                ],
                "hold_paths": [h.get("path") for h in w.get("holds") or [] if isinstance(h, dict)],
            }
    out = []
    for row in rows.values():
        row["still_running"] = row["pid"] in held
        row["still_stopped_at_thaw"] = row["pid"] in still
        out.append(row)
    return out


def _touches(row, paths):
    return any(_within(h, p) or _within(p, h) for h in row.get("hold_paths") or [] for p in paths or [])


def _databases(host, results, cutoff, record):
    """The report's rows for one host's database restores (the restore role's restore_database_results), and the
    problems they raise: a failed restore, and one stopped before the swap (the damaged database still serves)."""
    rows, problems = [], []
    for r in results or []:
        if not isinstance(r, dict):
            continue
        name = "{}/{}".format(r.get("engine"), r.get("database"))
        tables, damaged = r.get("tables") or {}, r.get("damaged_tables")
        swapped = bool(r.get("swapped"))
        stopped = bool(r.get("ok")) and not swapped and r.get("state") == "restored"
        row = {
            "host": host,
            "engine": r.get("engine") or "",
            "database": r.get("database") or "",
            "ok": bool(r.get("ok")),
            "state": r.get("state") or "",
            "snapshot": {
                "id": r.get("snapshot_id") or "",
                "short_id": r.get("short_id") or "",
                "time": r.get("snapshot_time") or "",
            },
            "restored_into": r.get("target") or "",
            "swapped": swapped,
            "stopped_before_swap": stopped,
            "quarantine": (r.get("quarantine") or "") if swapped else "",
            "tables": [
                {
                    "table": t,
                    "rows": tables[t],
                    "damaged_rows": damaged.get(t) if isinstance(damaged, dict) else None,
                }
                for t in sorted(tables)
            ],
            "extra_damaged_tables": sorted(set(damaged or {}) - set(tables)) if isinstance(damaged, dict) else [],
            "damaged_readable": isinstance(damaged, dict),
            "total_rows": r.get("total_rows") or 0,
            "seconds": r.get("seconds") or 0,
            "actions": list(r.get("actions") or []),
            "msg": r.get("msg") or "",
        }
        taken = _ts(row["snapshot"]["time"])
        if taken and cutoff:
            window = (cutoff - taken).total_seconds()
            row["data_loss_window_seconds"] = round(window, 1)
            row["data_loss_window"] = _duration(window)
            row["data_loss_window_basis"] = "loss start" if record.get("loss_started") else "detection (start unknown)"
        if not row["ok"]:
            problems.append(f"{host}/database {name}: restore FAILED: {row['msg'] or 'see the failed step'}")
        elif stopped:
            problems.append(
                f"{host}/database {name}: restored from dump {row['snapshot']['short_id']} into "
                f"{row['restored_into']} and checked, but stopped before the swap (restore_database_swap=false): the "
                "damaged database is still the one in service; swap it in with playbooks/db_restore.yml "
                "(db_restore_swap=true, the same incident id)."
            )
        rows.append(row)
    return rows, problems


def incident_report(record, hosts, generated_at=None, evidence=None):
    """See DOCUMENTATION."""
    record = dict(record or {})
    generated = generated_at or datetime.datetime.now(datetime.UTC).isoformat()
    declared = _ts(record.get("declared_at"))
    cutoff_text = record.get("loss_started") or record.get("detected_at")
    cutoff = _ts(cutoff_text)
    clients = []
    host_rows = []
    review = []
    verified_at = None
    problems = []
    repository_damage = {}
    containment = []
    databases = []
    for host in sorted(hosts or {}):
        data = hosts[host] or {}
        db_rows, db_problems = _databases(host, data.get("restore_database_results"), cutoff, record)
        databases.extend(db_rows)
        problems.extend(db_problems)
        processes = _containment(host, data)
        containment.extend(processes)
        for row in processes:
            if row["still_running"] and row["role"] == "writer":
                problems.append(
                    f"{host}: writer pid {row['pid']} ({row['exe']}) still ran under {', '.join(row['targets'])} "
                    "after the freeze tried to stop it: nothing under those folders is reported verified."
                )
        if data.get("repository_damage") and not repository_damage:
            repository_damage = dict(data["repository_damage"])
        results = list(data.get("restore_results") or [])
        thaw = data.get("thaw") or {}
        freeze = data.get("freeze") or {}
        frozen = bool(freeze.get("targets")) and not freeze.get("failed", False)
        thaw_ok = bool(thaw) and not thaw.get("failed", False) and not thaw.get("skipped", False)
        host_rows.append(
            {
                "host": host,
                "frozen": frozen,
                "freeze_targets": [
                    t.get("name") or t.get("path") for t in freeze.get("targets", []) if isinstance(t, dict)
                ],
                "frozen_at": data.get("frozen_at") or "",
                "thawed": thaw_ok,
                "thawed_at": data.get("thawed_at") or "",
                "thaw_msg": thaw.get("msg", "") if thaw.get("failed") else "",
                "state_snapshot": data.get("state_snapshot") or {},
                "bundle": f"hosts/{host}/",
                "failed_step": data.get("failed_step") or "",
                "failed_msg": data.get("failed_msg") or "",
                "clients": [r.get("id") for r in results],
            }
        )
        if data.get("in_play") is False:
            # The host dropped out of the run (unreachable, or failed outside the recovery block): every selected
            # client without a result is listed as not done, so the report never reads as complete.
            done_ids = {r.get("id") for r in results}
            not_done = [c for c in data.get("selected") or [] if isinstance(c, dict) and c.get("id") not in done_ids]
            host_rows[-1]["not_done"] = [c.get("id") for c in not_done]
            problems.append(
                f"{host}: not done: the host dropped out of the run (unreachable, or failed before its clients were "
                f"restored); clients not restored: {', '.join(str(c.get('id')) for c in not_done) or 'none'}. "
                "Its write freeze is released by the host's watchdog; re-run the incident with the same id for it."
            )
            for c in not_done:
                results.append(
                    {
                        "id": c.get("id"),
                        "name": c.get("name", ""),
                        "priority": c.get("priority", 100),
                        "status": "not_done",
                        "msg": f"not done: host {host} dropped out of the run (unreachable or failed)",
                        "failed_task": "host dropped out of the run",
                        "paths": c.get("restore_paths") or c.get("paths") or [],
                        "snapshot": {},
                        "skipped": [],
                        "why": "",
                        "quarantine": "",
                        "quarantined": [],
                        "restored": [],
                        "replaced": [],
                    }
                )
        if data.get("failed_step"):
            problems.append("{}: {} failed: {}".format(host, data.get("failed_step"), data.get("failed_msg")))
        if frozen and not thaw_ok:
            problems.append(f"{host}: the thaw did not succeed; writes may still be frozen")
        for result in results:
            item = dict(result)
            item["host"] = host
            # Each client's own cause, from what its restore found; the incident's declared cause is the fallback.
            item["cause"] = client_cause(item, record.get("cause"))
            mine = [r for r in processes if r["role"] == "writer" and _touches(r, item.get("paths"))]
            item["cause"]["writers"] = [
                "pid {} ({}, user {}, {}) {} in the folder, found {} at {}: {}".format(
                    r["pid"],
                    r["comm"],
                    r["user"],
                    r["exe"],
                    "was writing" if r["writing"] else "held files",
                    "at the freeze" if r["found_by"] == "freeze" else f"by the {r['found_by']} rescan",
                    r["found_at"],
                    r["action"],
                )
                for r in mine
            ]
            item["containment"] = {"writers_stopped": [r["pid"] for r in mine if r["action"] in ("stopped", "killed")]}
            for r in mine:
                if r["found_by"] != "freeze":
                    problems.append(
                        f"{host}/{item.get('id')}: writer pid {r['pid']} ({r['exe']}) was found under its folder by "
                        f"the {r['found_by']} rescan (at {r['found_at']}) and {r['action']} then; files it could have "
                        "written before must be re-checked, they are not reported verified on trust."
                    )
            snap = item.get("snapshot") or {}
            snap_time = _ts(snap.get("time"))
            if snap_time and cutoff:
                window = (cutoff - snap_time).total_seconds()
                item["data_loss_window_seconds"] = round(window, 1)
                item["data_loss_window"] = _duration(window)
                item["data_loss_window_basis"] = (
                    "loss start" if record.get("loss_started") else "detection (start unknown)"
                )
            finished = _ts(item.get("finished"))
            if item.get("status") == "ok" and finished and (verified_at is None or finished > verified_at):
                verified_at = finished
            for entry in item.get("kept_changed") or []:
                review.append(dict(entry, client=item.get("id"), host=host, kind="changed after the snapshot"))
            for entry in item.get("kept_new") or []:
                review.append(dict(entry, client=item.get("id"), host=host, kind="created after the snapshot"))
            if item.get("status") != "ok":
                problems.append("{}/{}: {}".format(host, item.get("id"), item.get("msg", "failed")))
            clients.append(item)
    # The incident's one restore queue (nearest filing deadline, then priority, then id: plugin_utils/filing.py).
    clients.sort(key=filing.order_key)
    ok = [c for c in clients if c.get("status") == "ok"]
    if clients and len(ok) == len(clients) and not problems:
        status = "restored"
    elif ok:
        status = "partial"
    else:
        status = "failed"
    rto = (verified_at - declared).total_seconds() if (verified_at and declared and status == "restored") else None
    windows = [c["data_loss_window_seconds"] for c in clients if "data_loss_window_seconds" in c]
    summary = {
        "status": status,
        "clients_total": len(clients),
        "clients_restored": len(ok),
        "files_restored": sum(len(c.get("restored") or []) + len(c.get("replaced") or []) for c in ok),
        "files_quarantined": sum(len(c.get("quarantined") or []) for c in clients),
        "files_to_review": len(review),
        "rto_seconds": round(rto, 1) if rto is not None else None,
        "rto": _duration(rto) if rto is not None else "not reached",
        "verified_at": verified_at.isoformat().replace("+00:00", "Z") if verified_at else None,
        "max_data_loss_window_seconds": max(windows) if windows else None,
        "max_data_loss_window": _duration(max(windows)) if windows else "unknown",
        "all_thawed": all(h["thawed"] or not h["frozen"] for h in host_rows),
        "repository_damaged": bool(repository_damage),
        "databases_total": len(databases),
        "databases_swapped": sum(1 for d in databases if d["ok"] and d["swapped"]),
        "databases_stopped_before_swap": sum(1 for d in databases if d["stopped_before_swap"]),
        "databases_failed": sum(1 for d in databases if not d["ok"]),
        "containment": {
            "processes_found": len(containment),
            "writers_found": sum(1 for r in containment if r["role"] == "writer"),
            "stopped": sum(1 for r in containment if r["action"] == "stopped"),
            "killed": sum(1 for r in containment if r["action"] == "killed"),
            "readers": sum(1 for r in containment if r["role"] == "reader"),
            "allowed": sum(1 for r in containment if r["role"] == "allowed"),
            "still_running": sum(1 for r in containment if r["still_running"] and r["role"] == "writer"),
            "still_stopped_at_thaw": sum(1 for r in containment if r["still_stopped_at_thaw"]),
        },
    }
    if repository_damage:
        skipped_by_damage = {}
        for client in clients:
            for snap in client.get("skipped") or []:
                if isinstance(snap, dict) and snap.get("unusable"):
                    skipped_by_damage.setdefault(snap.get("short_id") or str(snap.get("id"))[:8], []).append(
                        "{}/{}".format(client.get("host"), client.get("id"))
                    )
        repository_damage["skipped_by_clients"] = skipped_by_damage
        # The incident's own pre-restore snapshot often needs the lost data too (restic deduplicates unchanged files).
        damaged = []
        for snap in repository_damage.get("damaged_snapshots") or []:
            snap = dict(snap)
            snap["pre_restore_of"] = [
                h["host"]
                for h in host_rows
                if snap.get("short_id") and (h.get("state_snapshot") or {}).get("short_id") == snap.get("short_id")
            ]
            damaged.append(snap)
        repository_damage["damaged_snapshots"] = damaged
    return {
        "report_version": 1,
        "generated_at": generated,
        "incident": record,
        "status": status,
        "summary": summary,
        "problems": problems,
        "repository_damage": repository_damage,
        "containment": containment,
        "hosts": host_rows,
        "clients": clients,
        "databases": databases,
        # Each client's next filing deadline against when it was restored (LATE / NOT RESTORED warnings).
        "restore_queue": filing.restore_queue(clients, [], generated),
        "files_to_review": review,
        "timeline": _timeline(evidence),
        "evidence": _evidence_files(evidence),
        "notes": [
            "Nothing was deleted: damaged files are in each client's quarantine folder, restored files are hard links "
            "to the staging folder (remove staging only after review).",
            "Customer notices in notices/ are drafts for a person to review and send; they are not legal advice.",
        ],
    }


class FilterModule:
    def filters(self):
        return {"incident_report": incident_report}
