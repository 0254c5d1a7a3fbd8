# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the per-client restore (ledgerguard.recovery.restore_clients), kept pure so they are unit-tested.

The action plugin (plugins/action/restore_clients.py) runs the modules; everything it decides from their results is
here: which ledger files a client declares, the step names (a failed client's C(failed_task) keeps the names the
YAML tasks had, the report and the runbook quote them), the failure messages, which clients restore together from
one snapshot, which late writers touched a client, and the per-client result entries of C(restore_results).
"""

from __future__ import annotations

import base64
import json
import os
import posixpath
from typing import Any

# The fields of a chosen snapshot a result keeps.
SNAPSHOT_FIELDS = ("id", "short_id", "time", "hostname", "stats", "reasons", "clean")
# snapshot_damage's thresholds when damage detection is off: no snapshot counts as damaged.
NO_DAMAGE_THRESHOLDS = {"max_file_drop": 1.1, "max_bytes_drop": 1.1, "max_modified_ratio": 1.1, "entropy_ratio": 1.1}


class StepFailed(Exception):
    """A client's step failed: ``task`` is the step's name (the result's failed_task), ``msg`` what went wrong."""

    def __init__(self, task: str, msg: str) -> None:
        super().__init__(msg)
        self.task = task
        self.msg = msg


class Step:
    """The step names, as the YAML tasks of roles/restore were named (failed_task values, timeline entries)."""

    MARKERS = "Create the folder of this incident's restore markers (root only), read an earlier run's finished clients"
    ASSESS = "Assess the snapshots for damage, client {cid}"
    CHOOSE = "Choose the restore point"
    NO_POINT = "Stop this client when no clean snapshot exists"
    WORK_DIR = "Create the incident's work folder and this run's fresh staging folder (root only)"
    WORK_DIR_PLAN = "Check the incident's work folder (dry run), client {cid}"
    RESTORE = "Restore the chosen snapshot into staging, {short}"
    RESTORE_FAILED = "Restore the chosen snapshot into staging failed (not a repository data loss)"
    ASSESS_OLDER = "Assess the snapshots older than the unusable one, {short}"
    NO_OLDER = "Stop when no older clean snapshot exists"
    CLEAR_STAGING = "Clear the failed attempt from staging (only restored copies live there)"
    WORK_DIR_OLDER = "Create a fresh staging folder for the older snapshot (root only)"
    RESTORE_OLDER = "Restore the older snapshot into staging, {short}"
    MANIFESTS = "Find the backup-time manifests of the restore points"
    HASH = "Hash the restored tree"
    LISTING = "Compare the restored tree with the snapshot's listing"
    BACKUP_MANIFEST = "Compare the restored tree with the snapshot's backup-time manifest, {cid}"
    BACKUP_MANIFEST_STOP = (
        "Stop this client before the swap when the restored files disagree with the backup-time manifest"
    )
    LEDGER_STAGING = "Check the restored books in staging before the swap, client {cid}"
    LEDGER_STAGING_STOP = "Stop this client before the swap when the restored books have findings"
    RESCAN = "Re-scan the frozen folders for writers"
    RESCAN_STOP = "Fail when a writer still runs under the frozen folders"
    SWAP = "Swap the restored files into place, damaged files to quarantine"
    SWAPPED = "Record that the client was swapped, {cid}"
    LEDGER = "Check the restored books (vouchers balance, no gaps)"
    DONE = "Mark the client as restored so a re-run keeps this result, {cid}"


def ledger_paths(client: dict[str, Any]) -> list[str]:
    """The client's declared ledger files (csv / sqlite entries, absolute or relative to its root; globs left out)."""
    decl = client.get("ledger") or {}
    base = client.get("root") or client["declared_paths"][0]
    out = []
    for kind in ("sqlite", "csv"):
        part = decl.get(kind) if isinstance(decl, dict) else None
        if isinstance(part, dict) and "sources" in part:
            entries = [part["sources"]] if isinstance(part["sources"], str) else part["sources"]
        elif isinstance(part, str):
            entries = [part]
        elif isinstance(part, list | tuple):
            entries = part
        else:
            entries = client.get(kind) or []
            entries = [entries] if isinstance(entries, str) else entries
        for entry in entries or []:
            entry = str(entry)
            if any(c in entry for c in "*?["):
                continue
            out.append(entry if entry.startswith("/") else f"{base}/{entry}")
    return out


def has_ledger(client: dict[str, Any]) -> bool:
    """The client declares books ledger_verify can read: csv / sqlite sources, or its ledger declaration."""
    return bool(client.get("csv") or client.get("sqlite") or client.get("ledger"))


def work_folder(client: dict[str, Any], work_name: str) -> str:
    """The incident's work folder next to the client's first path (same filesystem as the live files)."""
    return f"{posixpath.dirname(client['declared_paths'][0])}/{work_name}"


def snapshot_pins(client: dict[str, Any]) -> dict[str, str]:
    """Where the snapshots hold the client's first path, if the inventory says (ledgerguard_clients[].snapshot_path)."""
    return {client["declared_paths"][0]: client["snapshot_path"]} if client.get("snapshot_path") else {}


def batch_key(client: dict[str, Any], point: dict[str, Any], work_name: str, pinned: bool) -> tuple:
    """Clients with the same key restore with one restic restore: same snapshot, same work folder, no per-client pin
    of the snapshot's layout (snapshot_path), no operator pin (a pinned client keeps its own restore and fallback)."""
    if pinned or client.get("snapshot_path"):
        return ("single", client["id"])
    return ("batch", point["chosen"]["id"], work_folder(client, work_name))


def staging_name(ids: list[str]) -> str:
    """The staging folder's name under <work>/staging: the client id, or the ids of the clients restored together."""
    if len(ids) == 1:
        return ids[0]
    if len(ids) <= 3:
        return "+".join(ids)
    return f"{ids[0]}+{len(ids) - 1}-more"


def snapshot_brief(chosen: dict[str, Any]) -> dict[str, Any]:
    return {k: chosen[k] for k in SNAPSHOT_FIELDS if k in chosen}


def no_point_msg(client: dict[str, Any], host: str, point: dict[str, Any]) -> str:
    skipped = "".join(
        f"Skipped {s.get('short_id')} ({s.get('time')}): {'; '.join(s.get('reasons') or [])}. "
        for s in point.get("skipped") or []
    )
    return (
        f"No restore point for client {client['id']} ({client['name']}) on {host}: {point.get('why')}. {skipped}"
        "Pin a snapshot with incident_pinned_snapshots if one of them is acceptable."
    )


def no_older_msg(client: dict[str, Any], host: str, unusable: dict[str, Any], point: dict[str, Any]) -> str:
    return (
        f"No restore point for client {client['id']} ({client['name']}) on {host}: {unusable['reasons'][0]} "
        f"No older clean snapshot exists ({point.get('why')})."
    )


def fallback_point(point: dict[str, Any], older: dict[str, Any], unusable: dict[str, Any]) -> dict[str, Any]:
    """The restore point moved to the newest older clean snapshot after the chosen one proved unusable."""
    out = dict(older)
    out["skipped"] = (
        list(point.get("skipped") or [])
        + [unusable]
        + [s for s in older.get("skipped") or [] if s.get("id") != unusable["id"]]
    )
    out["why"] = f"{older.get('why')}; {unusable['short_id']} was skipped: the repository lost data it needs"
    return out


def listing_problem(client: dict[str, Any], staging: str, chosen: dict[str, Any], manifests: list[dict]) -> str:
    """The failure message when the restored tree disagrees with the snapshot's listing ('' when it agrees)."""
    stats = chosen.get("stats") or {}
    want_files, want_bytes = int(stats.get("files") or 0), int(stats.get("bytes") or 0)
    got_files = sum(int(m.get("files") or 0) for m in manifests)
    got_bytes = sum(int(m.get("total_bytes") or 0) for m in manifests)
    if (got_files, got_bytes) == (want_files, want_bytes):
        return ""
    return (
        f"The restored tree of client {client['id']} in {staging} holds {got_files} files / {got_bytes} bytes but "
        f"snapshot {chosen.get('short_id')} lists {want_files} files / {want_bytes} bytes; nothing was swapped. "
        "Check the staging folder and re-run."
    )


def backup_manifest_msg(client: dict[str, Any], host: str, problem: str, staging: str) -> str:
    return (
        f"Client {client['id']} ({client['name']}) on {host}: {problem} Nothing was swapped: the originals in "
        f"{', '.join(client['restore_paths'])} are untouched and the restored copy stays in {staging} for "
        "inspection. Run 'restic check --read-data' on the repository, then pin an older snapshot with "
        "incident_pinned_snapshots and re-run (or set restore_backup_manifest=false only after checking the "
        "differing files by hand)."
    )


def ledger_staging_msg(client: dict[str, Any], host: str, short_id: str, staging: str, entry: dict[str, Any]) -> str:
    details = "; ".join(str(f.get("detail", "")) for f in entry.get("findings") or [])
    return (
        f"Client {client['id']} ({client['name']}) on {host}: the books restored from snapshot {short_id} into "
        f"{staging} have {entry.get('findings_count')} finding(s): {entry.get('summary', '')}: {details}. Nothing was "
        "swapped: the live files are untouched. Pin another snapshot with incident_pinned_snapshots, or set "
        "restore_ledger_check_before_swap=false after checking the books by hand."
    )


def _under(path: Any, root: str) -> bool:
    return isinstance(path, str) and (path == root or path.startswith(root.rstrip("/") + "/"))


def late_writers(rescans: list[dict[str, Any]], restore_paths: list[str]) -> list[dict[str, Any]]:
    """The writers any before_swap rescan of this run found holding or targeting the client's folders."""
    out = []
    for scan in rescans:
        if not isinstance(scan, dict) or scan.get("label") != "before_swap":
            continue
        for w in scan.get("writers") or []:
            touched: list[str] = []
            paths = [h.get("path") for h in w.get("holds") or [] if isinstance(h, dict)] + list(w.get("targets") or [])
            for p in paths:
                if p not in touched and any(_under(p, root) for root in restore_paths):
                    touched.append(p)
            if touched:
                out.append(
                    {
                        "pid": w.get("pid"),
                        "comm": w.get("comm", ""),
                        "exe": w.get("exe", ""),
                        "action": w.get("action", ""),
                        "paths": touched,
                    }
                )
    return out


def base_entry(client: dict[str, Any], host: str) -> dict[str, Any]:
    return {
        "id": client["id"],
        "name": client["name"],
        "priority": client.get("priority"),
        "host": host,
        # The restore order's inputs (plugin_utils/filing.py): the plan and the report build the incident's queue.
        "filings": client.get("filings") or [],
        "next_deadline": client.get("next_deadline"),
        "filing_warnings": client.get("filing_warnings") or [],
    }


def ok_entry(client: dict[str, Any], host: str, state: dict[str, Any], finished: str, now: float) -> dict[str, Any]:
    """A restored client's entry of restore_results (the fields the report reads)."""
    point, restic, swap = state["point"], state.get("restic") or {}, state.get("swap") or {}
    ledger = state.get("ledger")
    return {
        **base_entry(client, host),
        "status": "ok",
        "paths": client["restore_paths"],
        "snapshot": snapshot_brief(point["chosen"]),
        "why": point.get("why"),
        "warnings": point.get("warnings") or [],
        "skipped": point.get("skipped") or [],
        "files": restic.get("files", 0),
        "bytes": restic.get("bytes", 0),
        "restore_seconds": restic.get("seconds", 0),
        # Not verified when a writer that appeared after the freeze touched the client's folders.
        "verified": bool(restic.get("verified", False))
        and bool(swap.get("verified", True))
        and not state.get("late_writers"),
        "late_writers": state.get("late_writers") or [],
        "manifests": [m.get("digest") for m in state.get("manifests") or []],
        "backup_manifest": state.get("backup_manifest") or {"found": False, "compared": False},
        "staging": state["staging"],
        "quarantine": state["quarantine"],
        "restored": swap.get("restored", []),
        "replaced": swap.get("replaced", []),
        # With the files an earlier, interrupted run moved (read back from the quarantine journal).
        "quarantined": list(swap.get("quarantined_earlier") or []) + list(swap.get("quarantined") or []),
        "kept_changed": swap.get("kept_changed", []),
        "kept_new": swap.get("kept_new", []),
        "unchanged": swap.get("unchanged", 0),
        "detached_mounts": swap.get("detached_mounts", []),
        "ledger": {"ok": ledger["ok"], "findings": ledger["findings_count"]} if ledger else {},
        "started": state["started"],
        "finished": finished,
        "seconds": round(now - state["started_epoch"], 1),
    }


def failed_entry(client: dict[str, Any], host: str, state: dict[str, Any], exc: StepFailed, finished: str):
    point, swap = state.get("point") or {}, state.get("swap") or {}
    return {
        **base_entry(client, host),
        "status": "failed",
        "paths": client["restore_paths"],
        "failed_task": exc.task,
        "msg": exc.msg,
        "snapshot": point.get("chosen") or {},
        "skipped": point.get("skipped") or [],
        "why": point.get("why") or "",
        "staging": state.get("staging", ""),
        "quarantine": state["quarantine"],
        "quarantined": list(swap.get("quarantined_earlier") or []) + list(swap.get("quarantined") or []),
        "backup_manifest": state.get("backup_manifest") or {"found": False, "compared": False},
        "started": state.get("started", ""),
        "finished": finished,
    }


def plan_entry(client: dict[str, Any], host: str, work: str, quarantine: str, **fields: Any) -> dict[str, Any]:
    """A dry run's entry (status planned or failed): what a real run would do, nothing done."""
    return {
        **base_entry(client, host),
        "paths": client["restore_paths"],
        "staging": f"{work}/staging/{client['id']}/<run id>",
        "quarantine": quarantine,
        **fields,
    }


def planned_from_point(client, host, work, quarantine, point) -> dict[str, Any]:
    found = bool(point.get("found"))
    chosen = point.get("chosen") or {}
    return plan_entry(
        client,
        host,
        work,
        quarantine,
        status="planned" if found else "failed",
        action=f"restore {chosen.get('short_id')} into staging, verify, swap into place"
        if found
        else "none: no restore point",
        msg="" if found else f"no restore point: {point.get('why')}",
        failed_task="" if found else Step.CHOOSE,
        snapshot=snapshot_brief(chosen),
        why=point.get("why"),
        warnings=point.get("warnings") or [],
        skipped=point.get("skipped") or [],
    )


def markers_script() -> str:
    """The shell that writes the markers from its stdin (one '<base64 path> <base64 JSON>' line each), atomically,
    mode 0600 (a marker is replaced by rename, never written in place)."""
    return (
        "umask 077; set -e; "
        'while read -r p data; do [ -n "$p" ] || continue; path=$(printf %s "$p" | base64 -d); '
        'printf %s "$data" | base64 -d > "$path.tmp"; chmod 600 "$path.tmp"; mv -f "$path.tmp" "$path"; done'
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def markers_stdin(markers: dict[str, dict[str, Any]]) -> str:
    """The markers to write, for markers_script's stdin: path and pretty JSON (UTF-8, as to_nice_json wrote them)."""
    return (
        "\n".join(
            f"{_b64(path)} {_b64(json.dumps(record, ensure_ascii=False, indent=4) + chr(10))}"
            for path, record in markers.items()
        )
        + "\n"
    )


def marker_path(marker_dir: str, cid: str, kind: str) -> str:
    return os.path.join(marker_dir, f"{cid}.{kind}.json")
