# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers of restic's output (JSON documents, JSON lines, ``restic check`` text) into plain data: snapshots,
listings, backup summaries, find results, check findings. Pure functions; unit tests feed them output captured from
real restic 0.14 and 0.18 (tests/unit/fixtures/restic/)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import (
    packs_named,
    shorten,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import (
    ResticResult,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import UTC, format_utc, parse_time

# restic check: "pack 3233b4dd...: does not exist", "pack 3233b4dd...: unexpected file size ...", and after a data read
# "Pack ID does not match, want 3233b4dd..., got ..." (a bit-flipped pack) / "pack 3233b4dd... contains 1 errors".
CHECK_PACK_RE = re.compile(
    r"Pack ID does not match, want (?P<want>[0-9a-f]{8,64})|\b[Pp]ack (?P<id>[0-9a-f]{8,64})\b:?\s*(?P<reason>.*)"
)


CHECK_TREE_RE = re.compile(r"^error for tree (?P<tree>[0-9a-f]{6,64}):\s*(?P<reason>.*)")


def lost_packs_from_check(errors: Iterable[str]) -> list[dict[str, Any]]:
    """The packs a ``restic check`` reported missing or damaged: [{id, reason, trees}], once each, in order.

    ``errors`` are parse_check's lines. A pack "not referenced in any index" holds no data a snapshot needs, so it is
    not counted. Trees restic could not load ("error for tree cc4b0684: ReadFull(<data/fbfe2e0a5f>) ...") are
    attached to their pack (the prefix restic printed is matched against the full IDs).
    """
    packs: dict[str, dict[str, Any]] = {}
    trees: list[tuple[str, str]] = []
    for line in errors:
        tree = CHECK_TREE_RE.match(line)
        if tree:
            for pack in packs_named(tree.group("reason")) or [""]:
                trees.append((tree.group("tree"), pack))
            continue
        match = CHECK_PACK_RE.search(line)
        if not match or "not referenced in any index" in line:
            continue
        pack = match.group("want") or match.group("id")
        entry = packs.setdefault(pack, {"id": pack, "reason": "", "trees": []})
        entry["reason"] = entry["reason"] or shorten(line.strip(), 300)
    for tree, prefix in trees:
        owner = next((p for p in packs.values() if prefix and p["id"].startswith(prefix)), None)
        if owner is None and prefix:
            owner = packs.setdefault(prefix, {"id": prefix, "reason": f"tree {tree} cannot be loaded", "trees": []})
        if owner is not None and tree not in owner["trees"]:
            owner["trees"].append(tree)
    return list(packs.values())


def parse_find_objects(text: str) -> dict[str, list[str]]:
    """``restic find --json --pack/--blob/--tree`` (a flat list of objects) -> {snapshot id: [paths]}."""
    data = parse_json_document(text, "find") if (text or "").strip() else []
    out: dict[str, list[str]] = {}
    for item in data or []:
        if not isinstance(item, dict) or not item.get("snapshot"):
            continue
        paths = out.setdefault(item["snapshot"], [])
        if item.get("path") and item["path"] not in paths:
            paths.append(item["path"])
    return out


LOCK_CREATED_RE = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:\s*(?:Z|[+-]\d\d:?\d\d))?")


def lock_age_seconds(created: str, now: datetime | None = None) -> float | None:
    """Seconds since restic's 'lock was created at 2026-11-26 18:40:01' (restic 0.14 and 0.18 print no zone: read as
    UTC; Go's '... +0000 UTC' form too); None when unreadable."""
    match = LOCK_CREATED_RE.search(created or "")
    if not match:
        return None
    try:
        when = parse_time(match.group(0), "lock time", naive_utc=True)
    except ValueError:
        return None
    return ((now or datetime.now(UTC)) - when).total_seconds()


GO_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")


GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration_seconds(text: str) -> float | None:
    """restic's lock age, a Go duration such as ``1h2m3.5s`` or ``250ms`` -> seconds; None when unreadable."""
    text = (text or "").strip()
    parts = GO_DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * GO_UNITS[u] for n, u in parts)


def iso_utc(moment: datetime) -> str:
    """A snapshot's time in UTC as the modules return it (``time_utc``): microseconds kept."""
    return format_utc(moment, precise=True)


def iter_json_lines(text: str) -> Iterator[dict[str, Any]]:
    """restic's line-delimited JSON (backup, ls), one object at a time; non-JSON lines are skipped.

    The parsed objects are never all held at once: ``restic ls --json`` of 20,000 files is 20,000 dicts of a dozen
    fields each (about 2 KiB apiece), which a list keeps alive together (about 40 MiB). Lines end at "\\n" only:
    restic writes one object per line, and a file name may hold U+0085 (NEL), which restic's JSON leaves unescaped
    and ``str.splitlines`` would split at.
    """
    text = text or ""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        if stop < 0:
            stop = end
        line = text[start:stop].strip()
        start = stop + 1
        if not line.startswith("{"):
            continue
        try:
            yield json.loads(line)
        except ValueError:
            continue


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    """restic's line-delimited JSON (backup, ls) as a list; non-JSON lines are skipped (long output: iterate over
    ``iter_json_lines`` instead)."""
    return list(iter_json_lines(text))


def parse_json_document(text: str, what: str) -> Any:
    """One JSON document (snapshots, find, stats, cat config); leading non-JSON lines are skipped."""
    stripped = (text or "").strip()
    start = min([i for i in (stripped.find("["), stripped.find("{")) if i >= 0], default=-1)
    if start < 0:
        raise ValueError(f"restic {what} gave no JSON output: {stripped[:200]!r}")
    return json.loads(stripped[start:])


# Backup-time manifests (module_utils/backup_manifest.py) live in the same repository as stdin snapshots carrying
# MANIFEST_TAG and MANIFEST_FOR_TAG_PREFIX + <data snapshot id>. This is the one test of "is this a manifest snapshot";
# every listing that chooses restore points, checks freshness / coverage, assesses damage or drills uses it.
MANIFEST_TAG = "ledgerguard-manifest"


MANIFEST_FOR_TAG_PREFIX = "ledgerguard-manifest-for="


def is_manifest_snapshot(tags: Iterable[str] | None) -> bool:
    """True for a backup-time manifest snapshot (by its tags), which is never a restore point."""
    return any(t == MANIFEST_TAG or str(t).startswith(MANIFEST_FOR_TAG_PREFIX) for t in tags or ())


# Database dumps (module_utils/dbcapture.py dump_path) are stdin snapshots whose only path lies under this folder: a
# restore point for db_restore, never one for a client's files (a drill of files does not pick them).
DUMP_ROOT = "ledgerguard-db"


def is_database_dump_snapshot(paths: Iterable[str] | None) -> bool:
    """True for a database dump's snapshot (by its paths)."""
    listed = [str(p) for p in paths or ()]
    return bool(listed) and all(p.startswith(f"/{DUMP_ROOT}/") for p in listed)


@dataclass
class Snapshot:
    id: str
    short_id: str
    time: datetime
    hostname: str
    username: str
    paths: list[str]
    tags: list[str]
    tree: str
    parent: str = ""
    raw_time: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "short_id": self.short_id,
            "time": self.raw_time,
            "time_utc": iso_utc(self.time),
            "hostname": self.hostname,
            "username": self.username,
            "paths": list(self.paths),
            "tags": list(self.tags),
            "tree": self.tree,
            "parent": self.parent,
        }


def snapshot_from_json(item: Mapping[str, Any]) -> Snapshot:
    return Snapshot(
        id=item["id"],
        short_id=item.get("short_id") or item["id"][:8],
        time=parse_time(item["time"], "snapshot time"),
        hostname=item.get("hostname", ""),
        username=item.get("username", ""),
        paths=list(item.get("paths") or []),
        tags=list(item.get("tags") or []),
        tree=item.get("tree", ""),
        parent=item.get("parent", "") or "",
        raw_time=item["time"],
    )


def parse_snapshots(text: str) -> list[Snapshot]:
    """``restic snapshots --json`` -> snapshots sorted oldest first."""
    data = parse_json_document(text, "snapshots")
    if data is None:
        return []
    if isinstance(data, dict):  # restic >= 0.15 with --group-by prints groups; we never ask for it, but be kind
        data = [data]
    snaps: list[Snapshot] = []
    for item in data:
        if "snapshots" in item:
            snaps.extend(snapshot_from_json(s) for s in item["snapshots"])
        else:
            snaps.append(snapshot_from_json(item))
    return sorted(snaps, key=lambda s: (s.time, s.id))


def filter_snapshots(
    snaps: Iterable[Snapshot],
    hosts: Iterable[str] = (),
    tags: Iterable[str] = (),
    paths: Iterable[str] = (),
    before: datetime | None = None,
    after: datetime | None = None,
) -> list[Snapshot]:
    """Snapshots of any of ``hosts``, carrying every tag in ``tags``, holding every path in ``paths``,
    taken at or after ``after`` and strictly before ``before``."""
    hosts, tags, paths = set(hosts), set(tags), {p.rstrip("/") or "/" for p in paths}
    out = []
    for snap in snaps:
        if hosts and snap.hostname not in hosts:
            continue
        if tags and not tags.issubset(snap.tags):
            continue
        if paths and not paths.issubset({p.rstrip("/") or "/" for p in snap.paths}):
            continue
        if before is not None and not snap.time < before:
            continue
        if after is not None and not snap.time >= after:
            continue
        out.append(snap)
    return out


def parse_backup_summary(text: str) -> dict[str, Any]:
    """The summary message of ``restic backup --json`` (status lines are skipped)."""
    summary = None
    errors = []
    for msg in parse_json_lines(text):
        kind = msg.get("message_type")
        if kind == "summary":
            summary = msg
        elif kind == "error":
            err = msg.get("error")
            if isinstance(err, dict):
                # restic 0.14 serialises Go's *PathError: {"Op": "open", "Path": ..., "Err": errno}
                text = err.get("message") or f"{err.get('Op', '')} {err.get('Path', '')}: errno {err.get('Err', '?')}"
            else:
                text = str(err)
            errors.append(f"{text.strip()} ({msg.get('item', '')})")
    if summary is None:
        raise ValueError("restic backup --json printed no summary message")
    summary = {k: v for k, v in summary.items() if k != "message_type"}
    summary["errors"] = errors
    return summary


@dataclass
class TreeNode:
    path: str
    type: str
    size: int = 0
    mode: int = 0
    mtime: str = ""
    linktarget: str = ""


@dataclass
class Listing:
    """``restic ls --json`` of one snapshot: the snapshot and its nodes (optionally under some paths)."""

    snapshot: Snapshot | None
    nodes: list[TreeNode] = field(default_factory=list)

    @property
    def files(self) -> list[TreeNode]:
        return [n for n in self.nodes if n.type == "file"]


def parse_ls(text: str) -> Listing:
    snapshot = None
    nodes = []
    for item in iter_json_lines(text):  # one parsed object at a time: only the TreeNodes stay
        kind = item.get("struct_type")
        if kind == "snapshot" or (kind is None and "tree" in item and "paths" in item):
            snapshot = snapshot_from_json(item)
        elif kind == "node" or "path" in item:
            nodes.append(
                TreeNode(
                    path=item["path"],
                    type=item.get("type", ""),
                    size=int(item.get("size") or 0),
                    mode=int(item.get("mode") or 0),
                    mtime=item.get("mtime", ""),
                    linktarget=item.get("linktarget", ""),
                )
            )
    return Listing(snapshot, nodes)


def parse_find(text: str) -> dict[str, list[str]]:
    """``restic find --json`` -> {snapshot id: [matching paths]}."""
    data = parse_json_document(text, "find") if (text or "").strip() else []
    out: dict[str, list[str]] = {}
    for item in data or []:
        out.setdefault(item["snapshot"], []).extend(m["path"] for m in item.get("matches") or [])
    return out


def parse_config(text: str) -> dict[str, Any]:
    """``restic cat config`` -> id, version, chunker polynomial."""
    data = parse_json_document(text, "cat config")
    return {"id": data["id"], "version": int(data["version"])}


# "pack <id>: unexpected file size: got 0, expected 2974" is restic's (0.14 and 0.18) report of a truncated pack
CHECK_ERROR_RE = re.compile(
    r"error|fatal|fail|invalid|damaged|missing|does not exist|does not match|not referenced|unused|mismatch|corrupt"
    r"|unexpected file size",
    re.I,
)


CHECK_PROGRESS = (
    "using temporary cache",
    "create exclusive lock",
    "load indexes",
    "check all packs",
    "check snapshots, trees and blobs",
    "read all data",
    "read group #",
    "Fatal: repository contains errors",
    "no errors were found",
)


def parse_check(result: ResticResult) -> dict[str, Any]:
    """Text output of ``restic check`` -> ok, errors (the lines that report problems), packs read.

    Retry noise ("Load(...) returned error, retrying after ...") is dropped; an indented detail line is joined to the
    error line above it.
    """
    text = result.stdout + "\n" + result.stderr
    errors: list[str] = []
    warnings = [m.group(0).strip() for m in CHECK_CACHE_WARNING_RE.finditer(text)]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("[") or line.startswith(CHECK_PROGRESS) or "retrying after" in line:
            continue
        if CHECK_CACHE_WARNING_RE.search(line) or line.startswith(CHECK_NOTICES) or CHECK_ADDITIONAL_RE.search(line):
            continue
        if raw.startswith((" ", "\t")) and errors:
            errors[-1] = f"{errors[-1]} {line}"
        elif CHECK_ERROR_RE.search(line):
            errors.append(line)
    ok = result.rc == 0 and "no errors were found" in text
    group = re.search(r"read group #(\d+) of (\d+) data packs \(out of total (\d+) packs in (\d+) groups\)", text)
    subset = re.search(r"read (\d+) of (\d+) data packs", text)
    read = {}
    if group:
        read = {"packs_read": int(group.group(2)), "packs_total": int(group.group(3))}
    elif subset:
        read = {"packs_read": int(subset.group(1)), "packs_total": int(subset.group(2))}
    return {"ok": ok, "errors": errors if not ok else [], "warnings": warnings, **read}


# restic check's notices that are not repository errors: the cache it could not create (a local TMPDIR problem),
# restic >= 0.17's pointer to its troubleshooting guide, and the "additional files" hint (classified below).
CHECK_CACHE_WARNING_RE = re.compile(r"unable to create temporary directory for cache[^\n]*", re.I)


CHECK_NOTICES = (
    "The repository is damaged and must be repaired",
    "This is non-critical, you can run `restic prune`",
)


CHECK_ADDITIONAL_RE = re.compile(r"(\d+) additional files were found in the repo")


CHECK_UNINDEXED_RE = re.compile(r"pack ([0-9a-f]{8,64}):? not referenced in any index")


# a tree or blob restic could not find through the index, no pack named: "error for tree d4f037aa: id d4f0... not
# found in repository" (0.14 and 0.18), "blob ... not found in index"
CHECK_UNFOUND_RE = re.compile(r"(?:error for tree (?P<tree>[0-9a-f]{6,64}):.*)?\bnot found in (?:repository|index)")


def index_repair_command(version: tuple[int, int, int]) -> list[str]:
    """``restic repair index`` (0.16+) or ``restic rebuild-index`` (older): rebuilds the index from the packs."""
    return ["repair", "index"] if version >= (0, 16, 0) else ["rebuild-index"]


def diagnose_check(
    parsed: Mapping[str, Any],
    text: str,
    located: Iterable[Mapping[str, Any]] | None = None,
    version: tuple[int, int, int] = (0, 14, 0),
    unlocated: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """What a failed ``restic check`` means and what to do, one finding per kind:

    - ``data_lost`` (critical): packs missing or damaged that snapshots need (``located``: restic_check's
      damaged_snapshots), packs whose snapshots could not be searched (``unlocated``: never called unused), or trees
      restic cannot load from a named pack;
    - ``index_incomplete`` (repairable): trees/blobs not found through the index while pack files no index names are
      present: the data is there, ``restic rebuild-index`` (0.14) / ``restic repair index`` (0.16+) rebuilds it;
    - ``unused_data_missing`` (harmless): missing packs no snapshot needs (data of forgotten snapshots);
    - ``unindexed_data`` (harmless): extra pack files no index names and no snapshot misses (duplicate data);
    - ``cache_warning`` (harmless): restic could not create its temporary cache; not a repository problem.
    """
    repair = "restic " + " ".join(index_repair_command(version))
    findings: list[dict[str, Any]] = []
    errors = list(parsed.get("errors") or [])
    located = list(located or [])
    lost = lost_packs_from_check(errors)
    missing = [p for p in lost if not p.get("trees")]
    needed_packs = {pk for snap in located for pk in snap.get("packs") or []}
    unindexed = list(dict.fromkeys(CHECK_UNINDEXED_RE.findall(text or "")))
    additional = CHECK_ADDITIONAL_RE.search(text or "")
    extra_files = max(len(unindexed), int(additional.group(1)) if additional else 0)
    unfound = [e for e in errors if CHECK_UNFOUND_RE.search(e) and not packs_named(e)]
    tree_packs = [p for p in lost if p.get("trees")]
    unsearched = set(unlocated)
    data = [
        p
        for p in missing
        if p["id"] in unsearched or any(q.startswith(p["id"]) or p["id"].startswith(q) for q in needed_packs)
    ]
    data += tree_packs
    unused = [p for p in missing if p not in data]
    if unfound and not extra_files:
        # a tree or blob that is in no index and in no unindexed pack: lost, not merely unindexed
        data.append({"id": "", "reason": "; ".join(unfound[:3]), "trees": []})
    if data:
        findings.append(
            {
                "kind": "data_lost",
                "severity": "critical",
                "harmless": False,
                "repairable": False,
                "packs": [p["id"] for p in data if p["id"]],
                "snapshots": [
                    {"id": s.get("id"), "short_id": s.get("short_id"), "paths": list(s.get("paths") or [])[:20]}
                    for s in located
                ],
                "summary": f"{len(data)} pack(s) or tree(s) that snapshots need are lost or damaged"
                + (
                    f"; snapshots needing them: {', '.join(str(s.get('short_id')) for s in located)}" if located else ""
                ),
                "what_to_do": "Do not prune or forget. Restore from snapshots that do not need the lost packs (the "
                "incident path skips the others by itself); run 'restic check --read-data' to see the full extent; "
                "if another copy of the repository (off-site restic copy) holds the packs, copy them back. Back up "
                "the affected clients again as soon as possible.",
            }
        )
    if unfound and extra_files:
        trees = [m.group("tree") for e in unfound for m in [CHECK_UNFOUND_RE.search(e)] if m and m.group("tree")]
        findings.append(
            {
                "kind": "index_incomplete",
                "severity": "error",
                "harmless": False,
                "repairable": True,
                "repair_command": repair,
                "trees": trees,
                "unindexed_packs": unindexed or [],
                "extra_files": extra_files,
                "summary": f"the index is incomplete: {len(unfound)} tree(s)/blob(s) are not found through it while "
                f"{extra_files} pack file(s) no index names are present; the data is most likely all there",
                "what_to_do": f"Rebuild the index from the pack files with '{repair}' (nothing is deleted; run "
                "restic_check with repair_index: true and index_backup_dir to do it with a copy of the index taken "
                "first), then check again. Until then restores that need those trees fail.",
            }
        )
    if unused:
        findings.append(
            {
                "kind": "unused_data_missing",
                "severity": "harmless",
                "harmless": True,
                "repairable": True,
                "repair_command": repair,
                "packs": [p["id"] for p in unused],
                "summary": f"{len(unused)} pack file(s) are missing that no snapshot needs (data of forgotten "
                "snapshots)",
                "what_to_do": f"No snapshot is affected. '{repair}' (repair_index: true) removes them from the index; "
                "find out why pack files disappear (storage lifecycle rules, manual deletion).",
            }
        )
    if extra_files and not unfound:
        findings.append(
            {
                "kind": "unindexed_data",
                "severity": "harmless",
                "harmless": True,
                "repairable": False,
                "unindexed_packs": unindexed,
                "extra_files": extra_files,
                "summary": f"{extra_files} pack file(s) no index names (restic: likely duplicate data)",
                "what_to_do": "Nothing is lost. 'restic prune' removes them at the next maintenance window.",
            }
        )
    for warning in parsed.get("warnings") or []:
        findings.append(
            {
                "kind": "cache_warning",
                "severity": "harmless",
                "harmless": True,
                "repairable": False,
                "summary": warning,
                "what_to_do": "Not a repository problem: restic could not create its temporary cache (TMPDIR not "
                "writable or missing); the check ran without it. Set TMPDIR or cache_dir to a writable folder.",
            }
        )
    return findings
