# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup-time manifests: record one next to a data snapshot, find it, and compare a restored tree with it.

A backup-time manifest is the sha256 manifest (module_utils/manifest.py, JSON lines format) of the paths a data
snapshot backed up, taken on the backed-up host right after the backup, and stored in the SAME restic repository as
a stdin snapshot:

    restic backup --stdin --stdin-filename ledgerguard-manifest-<short id>.jsonl --host <data snapshot host>
        --time <data snapshot time> --tag ledgerguard-manifest --tag ledgerguard-manifest-for=<data snapshot full id>

Paths in the manifest are the absolute paths as stored in the snapshot without the leading ``/`` (``srv/books/c001/
a.csv``), so after ``restic restore --target T`` a file lands at ``T/<manifest path>``.

Race safety. The files may change between the backup and the manifest. Every entry carries size and mtime_ns, and
restic restores both exactly, so at compare time a file whose sha256 differs AND whose size or mtime differs from
the entry changed between the backup and the manifest: it is counted as ``changed_since_manifest`` (not an error).
Only a file whose content differs while size and mtime are equal (``differing``), or a file the manifest holds that
the snapshot also holds but the restore lacks (``missing``), means the restored copy is not what was backed up.
A manifest entry the snapshot does not hold (created after the backup, or excluded from it) is also
``changed_since_manifest``; a restored file the manifest lacks (deleted after the backup) is ``not_in_manifest``.

Snapshot listings elsewhere leave these snapshots out through ``restic.is_manifest_snapshot``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils import manifest as mf
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import Restic
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import (
    ResticError,
    classify_error,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import (
    MANIFEST_FOR_TAG_PREFIX,
    MANIFEST_TAG,
    Snapshot,
    is_manifest_snapshot,
    parse_backup_summary,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import (
    FULL_SNAPSHOT_ID_RE,
    ResticResult,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import redact_repository
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import format_utc, parse_time

__all__ = [
    "MANIFEST_TAG",
    "MANIFEST_FOR_TAG_PREFIX",
    "is_manifest_snapshot",
    "manifest_tags",
    "manifest_for",
    "find_manifests",
    "record_manifest",
    "HashedTree",
    "store_manifest",
    "ManifestBatch",
    "compare_records",
    "compare_with_backup_manifest",
    "backup_args",
    "backup_env",
    "backup_status",
    "BackupOutput",
    "run_backup",
    "made_snapshot",
    "backup_dry_run",
    "backup_and_record",
]


def manifest_tags(snapshot_id: str) -> list[str]:
    """The tags of the manifest snapshot of data snapshot ``snapshot_id`` (a full ID; restic tags hold no comma)."""
    if not snapshot_id or "," in snapshot_id:
        raise ValueError(f"snapshot id {snapshot_id!r} cannot be used in a restic tag")
    return [MANIFEST_TAG, MANIFEST_FOR_TAG_PREFIX + snapshot_id]


def manifest_for(snap: Snapshot) -> str:
    """The data snapshot ID a manifest snapshot belongs to ('' when it is not a manifest snapshot)."""
    for tag in snap.tags:
        if tag.startswith(MANIFEST_FOR_TAG_PREFIX):
            return tag[len(MANIFEST_FOR_TAG_PREFIX) :]
    return ""


def find_manifests(snapshots: Iterable[Snapshot], snapshot_id: str) -> list[Snapshot]:
    """Manifest snapshots recorded for data snapshot ``snapshot_id``, oldest first (the last is the one to use)."""
    return [s for s in snapshots if is_manifest_snapshot(s.tags) and manifest_for(s) == snapshot_id]


def stdin_filename(snapshot_id: str) -> str:
    return f"ledgerguard-manifest-{snapshot_id[:8]}.jsonl"


# --------------------------------------------------------------------------------------------------- the trees


def roots(paths: Iterable[str]) -> list[bytes]:
    """Absolute paths as raw relative manifest paths (no leading /), in merge order, nested ones dropped."""
    rels = sorted({os.fsencode(os.path.normpath(p)).strip(b"/") for p in paths}, key=mf.sort_key)
    out: list[bytes] = []
    for rel in rels:
        if any(rel == o or rel.startswith(o + b"/") or not o for o in out):
            continue
        out.append(rel)
    return out


def tree_records(
    base: bytes,
    rels: list[bytes],
    exclude: Iterable[str] = (),
    parallel: str = "process",
    workers: int = 0,
    skip: Iterable[bytes] = (),
) -> Iterator[dict[str, Any]]:
    """Hashed records of ``base/<rel>`` for each rel (in merge order), paths prefixed with the rel.

    A rel that is a regular file gives one record; one that does not exist gives none.
    """
    exclude = list(exclude)
    for rel in rels:
        full = os.path.join(base, rel) if rel else base
        if os.path.islink(full) or not os.path.exists(full):
            continue
        if os.path.isdir(full):
            for rec in mf.hashed_entries(full, exclude, skip, parallel, workers):
                rec["path"] = rel + b"/" + rec["path"] if rel else rec["path"]
                yield rec
        else:
            got = mf.hash_file(full)
            rec: dict[str, Any] = {"path": rel, "type": "file"}
            if got[0] is None:
                rec.update(size=0, error=got[1])
            else:
                rec["sha256"] = got[0]
                rec["size"], rec["mode"], rec["uid"], rec["gid"], rec["mtime_ns"] = got[1:]
            yield rec


def mapped_tree_records(
    base: bytes,
    stored: Mapping[bytes, bytes],
    exclude: Iterable[str] = (),
    parallel: str = "process",
    workers: int = 0,
) -> Iterator[dict[str, Any]]:
    """``tree_records`` of a restored tree whose layout differs from the live one: for each live rel (in merge
    order), the records of ``base/<stored[rel]>`` named under the live rel, so they line up with a manifest recorded
    on the live host."""
    for live, inside in stored.items():
        if inside == live:
            yield from tree_records(base, [live], exclude, parallel, workers)
            continue
        for rec in tree_records(os.path.join(base, inside) if inside else base, [b""], exclude, parallel, workers):
            rec["path"] = live + b"/" + rec["path"] if rec["path"] else live
            yield rec


def manifest_records(rels: list[bytes], manifests: Mapping[bytes, str]) -> Iterator[dict[str, Any]]:
    """Records of manifests already written of ``base/<rel>`` (file_manifest operation=create, one per rel), paths
    prefixed with the rel as ``tree_records`` does: the same stream without hashing the tree a second time."""
    for rel in rels:
        for rec in mf.ordered(mf.read_manifest(manifests[rel]), manifests[rel]):
            rec["path"] = rel + b"/" + rec["path"] if rel and rec["path"] else rel or rec["path"]
            yield rec


def _header(snap: Snapshot, paths: list[str]) -> bytes:
    head = {
        "ledgerguard_manifest": mf.MANIFEST_VERSION,
        "format": "json",
        "order": "components",
        "kind": "backup",
        "snapshot": snap.id,
        "hostname": snap.hostname,
        "snapshot_time": snap.raw_time,
        "paths": paths,
        "recorded_at": format_utc(),
    }
    return (json.dumps(head, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def write_manifest(header: bytes, body: IO[bytes], handle: IO[bytes]) -> str:
    """A manifest into ``handle``: ``header``, then the records already written to ``body`` (``HashedTree``, read
    from its start); the sha256 of the bytes written."""
    import hashlib

    digest = hashlib.sha256(header)
    handle.write(header)
    body.seek(0)
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
        handle.write(chunk)
    return digest.hexdigest()


def write_records(records: Iterable[dict[str, Any]], handle: IO[bytes]) -> dict[str, Any]:
    """One JSON line per record into ``handle``; counts files, bytes, errors and the bytes written."""
    stats = {"files": 0, "bytes": 0, "errors": 0, "manifest_bytes": 0}
    for rec in records:
        line = mf.json_line(rec).encode("utf-8", "surrogateescape")
        handle.write(line)
        stats["manifest_bytes"] += len(line)
        if rec.get("type") == "file":
            stats["files"] += 1
            stats["bytes"] += int(rec.get("size") or 0)
        if "error" in rec:
            stats["errors"] += 1
    return stats


def _restic_time(snap: Snapshot) -> str:
    """The data snapshot's time in restic's --time layout, in this host's local time (restic parses it so)."""
    return snap.time.astimezone().strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------------------------------- recording


class HashedTree:
    """The records of a backup-time manifest of ``paths``, hashed on this host now, in a temporary file, before the
    data snapshot's record (the manifest's header) is known: with restic < 0.17 a run of several clients hashes each
    client right after its backup and stores every manifest after one listing at the end (``ManifestBatch``).
    ``close`` removes the file."""

    def __init__(
        self,
        paths: Iterable[str],
        exclude: Iterable[str] = (),
        parallel: str = "process",
        workers: int = 0,
        tmpdir: str | None = None,
    ):
        started = time.monotonic()
        self.rels = roots(paths)
        self.body = tempfile.TemporaryFile(dir=tmpdir)
        try:
            self.stats = write_records(tree_records(b"/", self.rels, exclude, parallel, workers), self.body)
        except BaseException:
            self.body.close()
            raise
        self.seconds = time.monotonic() - started

    def close(self) -> None:
        self.body.close()


def store_manifest(restic: Restic, snap: Snapshot, hashed: HashedTree, tmpdir: str | None = None) -> dict[str, Any]:
    """Store ``hashed`` (hashed from ``snap``'s paths) as the manifest snapshot of ``snap``: its header names the
    snapshot as ``snap`` holds it (ID, host, time, paths, as restic lists them), then the records; ``restic backup
    --stdin`` with the snapshot's host and time and the manifest tags. Raises ResticError when restic fails."""
    started = time.monotonic()
    header = _header(snap, list(snap.paths))
    with tempfile.TemporaryFile(dir=tmpdir) as handle:
        digest = write_manifest(header, hashed.body, handle)
        handle.flush()
        handle.seek(0)
        args = ["backup", "--json", "--stdin", "--stdin-filename", stdin_filename(snap.id), "--host", snap.hostname]
        args += ["--time", _restic_time(snap)]
        for tag in manifest_tags(snap.id):
            args += ["--tag", tag]
        since = time.time() - 2
        res = restic.run(*args, stdin=handle, env=backup_env(None))
    action = f"store the backup-time manifest of snapshot {snap.short_id}"
    if res.rc != 0 or res.timed_out:
        raise classify_error(res, restic.repository, restic.features, action=action)
    try:
        short = parse_backup_summary(res.stdout + "\n" + res.stderr).get("snapshot_id", "")
    except ValueError:
        raise classify_error(res, restic.repository, restic.features, action=action) from None
    full = restic.new_snapshot_id(short, since)
    return {
        "changed": True,
        "snapshot_id": snap.id,
        "manifest_snapshot_id": full,
        "manifest_short_id": full[:8],
        "existing": False,
        "files": hashed.stats["files"],
        "bytes": hashed.stats["bytes"],
        "errors": hashed.stats["errors"],
        "manifest_bytes": len(header) + hashed.stats["manifest_bytes"],
        "digest": digest,
        "seconds": round(hashed.seconds + time.monotonic() - started, 3),
    }


def record_manifest(
    restic: Restic,
    snap: Snapshot,
    exclude: Iterable[str] = (),
    parallel: str = "process",
    workers: int = 0,
    tmpdir: str | None = None,
    force: bool = False,
    listing: list[Snapshot] | None = None,
) -> dict[str, Any]:
    """Hash the paths ``snap`` backed up (on this host, now) and store the manifest as a stdin snapshot.

    Idempotent: when a manifest snapshot for ``snap`` exists already, nothing is recorded (``changed`` false)
    unless ``force``. ``listing``: the repository's snapshots (manifests included) when the caller listed them after
    ``snap`` was made (saves a listing). Raises ValueError when a backed-up path is not on this host, ResticError
    when restic fails.
    """
    if is_manifest_snapshot(snap.tags):
        raise ValueError(f"snapshot {snap.short_id} is itself a manifest snapshot; give the data snapshot's ID")
    existing = find_manifests(restic.snapshots(manifests=True) if listing is None else listing, snap.id)
    if existing and not force:
        last = existing[-1]
        return {
            "changed": False,
            "snapshot_id": snap.id,
            "manifest_snapshot_id": last.id,
            "manifest_short_id": last.short_id,
            "existing": True,
        }
    check_on_host(snap)
    hashed = HashedTree(snap.paths, exclude, parallel, workers, tmpdir)
    try:
        return store_manifest(restic, snap, hashed, tmpdir)
    finally:
        hashed.close()


def check_on_host(snap: Snapshot) -> None:
    """Raise ValueError when a path ``snap`` backed up does not exist on this host (a manifest is recorded there)."""
    absent = [p for p in snap.paths if not os.path.lexists(p)]
    if absent:
        raise ValueError(
            f"snapshot {snap.short_id} backed up {', '.join(absent)}, which does not exist on this host; record the "
            "manifest on the host that was backed up, right after the backup"
        )


class ManifestBatch:
    """The backup-time manifests of one run of several clients whose new snapshots restic's summary does not fully
    describe (restic < 0.17: an 8-digit ID, no time; ``made_snapshot`` is None).

    Each client's tree is hashed right after its backup (``add``: the manifest's records, as ``record_manifest``
    would hash them then); after the last client, ONE ``restic snapshots --json`` (filtered on the run's host and
    each waiting client's tags) gives every new snapshot's full ID, host, time and paths as restic lists them, and
    each manifest is stored with that header (``finish``). Before: one listing per client, each opening the
    repository (a key derivation). A listing that does not hold a client's snapshot fails that client as
    ``backup_and_record`` did."""

    def __init__(self, restic: Restic, tmpdir: str | None = None):
        self.restic, self.tmpdir = restic, tmpdir
        self.waiting: list[dict[str, Any]] = []

    def add(self, result: dict[str, Any], short: str, hashed: HashedTree, exclude: list[str]) -> None:
        """``result`` (backup_and_record's, completed in place by ``finish``) waits for its manifest."""
        self.waiting.append({"result": result, "short": short, "hashed": hashed, "exclude": exclude})

    def finish(self) -> dict[int, tuple[ResticError | ValueError | None, float]]:
        """List once, store each waiting manifest, in order: {id(result): (the error that failed it or None, the
        seconds spent on it here)}. Every hashed file is removed."""
        waiting, self.waiting = self.waiting, []
        outcome: dict[int, tuple[ResticError | ValueError | None, float]] = {}
        if not waiting:
            return outcome
        started = time.monotonic()
        hosts = sorted({w["result"]["host"] for w in waiting})
        filters = {"hosts": hosts if all(hosts) else [], "tags": [",".join(w["result"]["tags"]) for w in waiting]}
        try:
            listing: list[Snapshot] | ResticError = self.restic.snapshots(manifests=True, **filters)
        except ResticError as exc:
            listing = exc
        shared = (time.monotonic() - started) / len(waiting)
        for item in waiting:
            began = time.monotonic()
            try:
                outcome[id(item["result"])] = (self._store(item, listing), shared + time.monotonic() - began)
            finally:
                item["hashed"].close()
        return outcome

    def _store(self, item: dict[str, Any], listing: list[Snapshot] | ResticError) -> ResticError | ValueError | None:
        if isinstance(listing, ResticError):
            return listing
        result, short = item["result"], item["short"]
        full = result["snapshot_id"]
        made = next((s for s in listing if s.id == full or (short and s.id.startswith(short))), None)
        if made is None:
            return ResticError(
                "failed",
                f"Snapshot {short} was made in {self.restic.repository} but restic does not list it, so its "
                "backup-time manifest was not recorded; list the snapshots and record it with 'ledgerguard manifest "
                "record'.",
                {"snapshot_id": full},
            )
        try:
            hashed = item["hashed"]
            if hashed.rels != roots(made.paths):  # restic stored other paths than were hashed: hash those
                check_on_host(made)
                hashed.close()
                hashed = item["hashed"] = HashedTree(made.paths, item["exclude"], tmpdir=self.tmpdir)
            recorded = store_manifest(self.restic, made, hashed, self.tmpdir)
        except (ResticError, ValueError) as exc:
            return exc
        result.update(snapshot_id=made.id, short_id=made.short_id)
        note_manifest(result, recorded)
        return None


def note_manifest(result: dict[str, Any], recorded: Mapping[str, Any]) -> None:
    """A backup's result gets its recorded manifest (``manifest``, ``manifest_snapshot_id``)."""
    keys = ("manifest_snapshot_id", "manifest_short_id", "files", "bytes", "errors", "manifest_bytes")
    result["manifest"] = {"recorded": recorded["changed"], **{k: recorded.get(k) for k in keys}}
    result["manifest"].update(digest=recorded.get("digest", ""), seconds=recorded.get("seconds", 0.0))
    result["manifest_snapshot_id"] = recorded["manifest_snapshot_id"]


# --------------------------------------------------------------------------------------------------- comparing


def _shown(path: bytes) -> str:
    """A manifest path as the operator knows it: absolute, as stored in the snapshot (escaped when not UTF-8)."""
    return "/" + mf.escape_path(path)


def _under(path: bytes, prefixes: list[bytes]) -> bool:
    return any(not p or path == p or path.startswith(p + b"/") for p in prefixes)


def compare_records(
    reference: Iterable[dict[str, Any]],
    candidate: Iterable[dict[str, Any]],
    in_snapshot: Callable[[list[bytes]], set[bytes]] | None = None,
    max_list: int = 20,
) -> dict[str, Any]:
    """Classify every regular file of the manifest (``reference``) against the restored tree (``candidate``).

    Both streams must be in merge order. ``in_snapshot(paths)`` returns the paths (of those given) that the data
    snapshot holds; manifest files missing from the restore that it does not hold were created after the backup.
    Result: counts ``files`` (manifest files), ``identical``, ``changed_since_manifest``, ``missing``,
    ``differing``, ``not_in_manifest``, and bounded escaped path lists ``*_paths``; ``identical_all`` is true when
    nothing is ``missing`` or ``differing``.
    """
    counts = dict.fromkeys(
        ("files", "identical", "changed_since_manifest", "missing", "differing", "not_in_manifest"), 0
    )
    lists: dict[str, list[Any]] = {k: [] for k in ("changed_since_manifest", "missing", "differing", "not_in_manifest")}
    absent: list[bytes] = []

    def note(kind: str, value: Any) -> None:
        counts[kind] += 1
        if len(lists[kind]) < max_list:
            lists[kind].append(value)

    ref_it = (r for r in reference if r.get("type") == "file" and "sha256" in r)
    cand_it = (c for c in candidate if c.get("type") != "dir")
    ref, cand = next(ref_it, None), next(cand_it, None)
    while ref is not None or cand is not None:
        if cand is None or (ref is not None and mf.sort_key(ref["path"]) < mf.sort_key(cand["path"])):
            counts["files"] += 1
            absent.append(ref["path"])
            ref = next(ref_it, None)
            continue
        if ref is None or mf.sort_key(cand["path"]) < mf.sort_key(ref["path"]):
            if cand.get("type") == "file":
                note("not_in_manifest", _shown(cand["path"]))
            cand = next(cand_it, None)
            continue
        counts["files"] += 1
        path = _shown(ref["path"])
        if cand.get("type") != "file" or "error" in cand or "sha256" not in cand:
            why = cand.get("error") or f"restored as a {cand.get('type')}, backed up as a file"
            note("differing", {"path": path, "why": why})
        elif cand["sha256"] == ref.get("sha256"):
            counts["identical"] += 1
        elif cand.get("size") != ref.get("size") or cand.get("mtime_ns") != ref.get("mtime_ns"):
            moved = [f for f in ("size", "mtime_ns") if cand.get(f) != ref.get(f)]
            note("changed_since_manifest", {"path": path, "why": f"{' and '.join(moved)} differ from the manifest"})
        else:
            note("differing", {"path": path, "why": "sha256 differs while size and mtime are equal"})
        ref, cand = next(ref_it, None), next(cand_it, None)
    return _finish(counts, lists, absent, in_snapshot, max_list)


def _finish(
    counts: dict[str, int],
    lists: dict[str, list[Any]],
    absent: list[bytes],
    in_snapshot: Callable[[list[bytes]], set[bytes]] | None,
    max_list: int,
) -> dict[str, Any]:
    held = in_snapshot(absent) if (absent and in_snapshot is not None) else set(absent)
    for path in absent:
        kind = "missing" if path in held else "changed_since_manifest"
        counts[kind] += 1
        if len(lists[kind]) < max_list:
            text = _shown(path)
            lists[kind].append(
                text if kind == "missing" else {"path": text, "why": "in the manifest but not in the snapshot"}
            )
    out: dict[str, Any] = dict(counts)
    for kind, values in lists.items():
        out[f"{kind}_paths"] = values
    out["identical_all"] = counts["missing"] == 0 and counts["differing"] == 0
    return out


def problem_text(result: dict[str, Any], target: str) -> str:
    """One sentence naming what disagrees (for a failure message); '' when nothing is missing or differing."""
    if not result.get("compared") or result.get("identical_all"):
        return ""
    shown = [d["path"] + f" ({d['why']})" for d in result["differing_paths"]]
    shown += [f"{p} (missing)" for p in result["missing_paths"]]
    more = result["differing"] + result["missing"] - len(shown)
    return (
        f"the files restored from snapshot {result['snapshot'][:8]} into {target} disagree with the snapshot's "
        f"backup-time manifest {result['manifest_short_id']}: {result['differing']} file(s) differ in content "
        f"although size and mtime are equal and {result['missing']} file(s) the snapshot holds are missing - "
        f"{', '.join(shown)}{f' and {more} more' if more > 0 else ''}. The restored copy is not what was backed up."
    )


def dump_manifest(restic: Restic, manifest: Snapshot, dest: IO[bytes]) -> None:
    """Stream the manifest file stored in ``manifest`` (a stdin snapshot) into ``dest`` with restic dump."""
    if not manifest.paths:
        raise ValueError(f"manifest snapshot {manifest.short_id} holds no file")
    _value, res = restic.stream(
        "dump", "--", manifest.id, manifest.paths[0], consume=lambda out: shutil.copyfileobj(out, dest, 1 << 20)
    )
    if res.rc != 0 or res.timed_out:
        raise classify_error(
            res, restic.repository, restic.features, snapshot=manifest.id, action="read the backup-time manifest"
        )


def compare_with_backup_manifest(
    restic: Restic,
    snapshot_id: str,
    target: str,
    include_paths: Iterable[str] = (),
    exclude: Iterable[str] = (),
    parallel: str = "process",
    workers: int = 0,
    tmpdir: str | None = None,
    max_list: int = 20,
    candidate_manifests: Iterable[str] = (),
) -> dict[str, Any]:
    """Compare the tree restored from ``snapshot_id`` into ``target`` with the snapshot's backup-time manifest.

    Only the manifest entries under ``include_paths`` (absolute, as stored in the snapshot; default: every path the
    manifest covers) are compared. Returns ``found`` false (and ``compared`` false) when no manifest was recorded.
    ``candidate_manifests``: manifests already written of ``target/<include path>``, one per ``include_paths``
    entry in the same order; the restored files are then read from them instead of being hashed again.
    """
    include_paths, candidate_manifests = list(include_paths), list(candidate_manifests)
    if candidate_manifests and len(candidate_manifests) != len(include_paths):
        raise ValueError(
            f"candidates holds {len(candidate_manifests)} manifests for {len(include_paths)} include_paths; "
            "give one manifest of the restored tree per include_paths entry, in the same order"
        )
    given = {
        os.fsencode(os.path.normpath(include_paths[i])).strip(b"/"): candidate_manifests[i]
        for i in range(len(candidate_manifests))
    }
    every = restic.snapshots(manifests=True)
    data = [s for s in every if s.id == snapshot_id or (len(snapshot_id) >= 8 and s.id.startswith(snapshot_id))]
    if len(data) != 1 or is_manifest_snapshot(data[0].tags):
        raise ResticError(
            "snapshot_not_found",
            f"Data snapshot '{snapshot_id}' was not found in restic repository {redact_repository(restic.repository)}"
            f" ({len(every)} snapshots there); give the full ID of the snapshot that was restored.",
            {"snapshot": snapshot_id},
        )
    snap = data[0]
    found = find_manifests(every, snap.id)
    base: dict[str, Any] = {"found": bool(found), "snapshot": snap.id, "compared": False}
    if not found:
        return base
    manifest = found[-1]
    base.update(manifest_snapshot=manifest.id, manifest_short_id=manifest.short_id, manifest_time=manifest.raw_time)
    wanted = roots(include_paths) if include_paths else roots(snap.paths)
    # The manifest names files by their live paths (as hashed on the backed-up host); the restore put them where the
    # snapshot's tree stores them (relative backups: /ledgers/C001 for /srv/ledgers/C001). Restic.map_path says where.
    inside = {w: os.fsencode(restic.map_path(snap, "/" + os.fsdecode(w))).strip(b"/") for w in wanted}
    # restic_restore landing: snapshot puts them at <target>/<inside>, landing: live at <target>/<live>: read where
    # they are
    base_dir = os.fsencode(os.path.abspath(target))
    stored = {}
    for w, i in inside.items():
        at_live = os.path.lexists(os.path.join(base_dir, w))
        stored[w] = w if at_live and (not i or not os.path.lexists(os.path.join(base_dir, i))) else i
    started = time.monotonic()
    with tempfile.NamedTemporaryFile(dir=tmpdir, suffix=".jsonl") as handle:
        dump_manifest(restic, manifest, handle)
        handle.flush()
        handle.seek(0)
        first = handle.readline()
        if not (first.startswith(b"{") and b"ledgerguard_manifest" in first):
            raise ValueError(
                f"manifest snapshot {manifest.short_id} does not hold a ledgerguard manifest (first line "
                f"{first[:80]!r}); record it again with ledgerguard manifest record or restic_backup manifest=true"
            )
        name = f"manifest snapshot {manifest.short_id}"
        reference = (r for r in mf.ordered(mf.read_manifest(handle.name), name) if _under(r["path"], wanted))
        if given and all(rel in given for rel in wanted):
            candidate = manifest_records(wanted, given)
        else:
            candidate = mapped_tree_records(os.fsencode(os.path.abspath(target)), stored, exclude, parallel, workers)

        def in_snapshot(paths: list[bytes]) -> set[bytes]:
            listing = restic.ls(snap.id, ["/" + os.fsdecode(inside[w]) for w in wanted])
            held = set()
            for node in listing.files:
                path = os.fsencode(node.path).strip(b"/")
                for live, inside_rel in inside.items():
                    if not inside_rel or path == inside_rel or path.startswith(inside_rel + b"/"):
                        held.add(live + path[len(inside_rel) :] if inside_rel else live + b"/" + path)
                        break
            return {p for p in paths if p in held}

        result = compare_records(reference, candidate, in_snapshot, max_list)
    base.update(result, compared=True, seconds=round(time.monotonic() - started, 3))
    return base


def backup_args(host: str | None, tags: Iterable[str], excludes: Iterable[str]) -> list[str]:
    """The ``restic backup`` arguments every backup module builds the same way (paths go after ``--``)."""
    args = ["backup", "--json"]
    if host:
        args += ["--host", host]
    for tag in tags:
        args += ["--tag", tag]
    for pattern in excludes:
        args += ["--exclude", pattern]
    return args


# ``restic backup --json`` prints a status line up to 60 times a second when RESTIC_PROGRESS_FPS is not set (restic
# 0.14 to 0.18: 34 status lines for a one-second backup of 100 MiB; plain ``restic backup`` whose stdout is not a
# terminal prints none). Both parse the variable as a float (strconv.ParseFloat; a value <= 0 counts as not set), so
# one status per N seconds is 1/N. QUIET_FPS is one status per 11.6 days: effectively none (restic 0.14 still prints
# one when the backup starts). Set for the backup run only (Restic.run/stream ``env``): with it, ``restic check``,
# ``prune`` and ``restore`` print progress counters into output that is parsed.
QUIET_FPS = "0.000001"
STATUS_PREFIX = b'{"message_type":"status"'
# What a progress display may show of a status line: numbers only. current_files (names of the client's files) and
# anything else restic adds are left out.
STATUS_FIELDS = (
    "percent_done",
    "bytes_done",
    "total_bytes",
    "files_done",
    "total_files",
    "seconds_elapsed",
    "seconds_remaining",
    "error_count",
)


def backup_env(interval: float | None) -> dict[str, str]:
    """The variables a ``restic backup`` run adds to the engine's environment: one status line per ``interval``
    seconds, or (None) effectively none."""
    if interval is None:
        return {"RESTIC_PROGRESS_FPS": QUIET_FPS}
    if not interval > 0:
        raise ValueError(f"progress_interval {interval!r} is not above 0; give the seconds between two updates, e.g. 5")
    return {"RESTIC_PROGRESS_FPS": f"{max(1 / float(interval), float(QUIET_FPS)):.6f}"}


def backup_status(line: bytes) -> dict[str, float] | None:
    """The numbers of one status line of ``restic backup --json`` (STATUS_FIELDS; restic omits a zero, which is
    then 0); None when the line is not a status message."""
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("message_type") != "status":
        return None
    out = {}
    for key in STATUS_FIELDS:
        value = msg.get(key, 0)
        out[key] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
    return out


class BackupOutput:
    """The stdout of ``restic backup --json``, read line by line while restic runs (``Restic.stream``).

    Status lines go to ``on_status`` as ``backup_status`` reads them (parsed only when there is an ``on_status``) and
    are not kept; every other line is kept, in order, in ``text``: parse_backup_summary and the error classification
    read it as they read the whole output before (they skip status lines), so they find the same summary and errors.
    """

    def __init__(self, on_status: Callable[[dict[str, float]], None] | None = None):
        self.on_status = on_status
        self.text = ""
        self.statuses = 0

    def __call__(self, stream: IO[bytes]) -> str:
        kept, self.statuses = [], 0  # a second run (after a stale lock was removed) starts afresh
        for line in stream:
            if line.startswith(STATUS_PREFIX):
                self.statuses += 1
                status = backup_status(line) if self.on_status is not None else None
                if status is not None:
                    self.on_status(status)
                continue
            kept.append(line)
        self.text = b"".join(kept).decode("utf-8", "replace")
        return self.text


def run_backup(
    restic: Restic,
    args: list[str],
    paths: list[str],
    on_status: Callable[[dict[str, float]], None] | None = None,
    interval: float | None = None,
) -> ResticResult:
    """One ``restic backup --json`` of ``paths``, its stdout read while it runs: with ``on_status``, one status line
    per ``interval`` seconds handed to it; without, (effectively) none printed. The result's stdout holds every line
    but the status lines."""
    reader = BackupOutput(on_status)
    env = backup_env(interval if on_status is not None else None)
    _value, res = restic.stream(*args, "--", *paths, consume=reader, env=env)
    res.stdout = reader.text
    return res


def backup_base(restic: Restic, host: str | None, paths: list[str], tags: list[str], manifest: bool) -> dict[str, Any]:
    """The fields every backup module's result starts with (restic_backup, sqlite_backup), before the backup runs."""
    base: dict[str, Any] = {
        "paths": paths,
        "tags": tags,
        "host": host or "",
        "restic_version": restic.features.version_string,
        "manifest_snapshot_id": "",
    }
    if manifest:
        base["manifest"] = {"recorded": False}
    return base


def made_snapshot(summary: Mapping[str, Any], base: Mapping[str, Any]) -> Snapshot | None:
    """The data snapshot a ``restic backup --json`` run just made, known without listing the repository (another
    restic process: a key derivation and a listing, most of a small client's manifest cost). restic >= 0.17's
    summary names it by its full ID and gives its time (``backup_start``: the snapshot's own time, as restic writes
    it), and the run fixed its host (``--host``), paths (restic stores them made absolute, cleaned and sorted) and
    tags. None when that is not all known: restic 0.14's summary has an 8-digit ID and no time, and without
    ``--host`` restic chooses the host name."""
    full, start, host = summary.get("snapshot_id"), summary.get("backup_start"), base.get("host")
    if not (isinstance(full, str) and FULL_SNAPSHOT_ID_RE.match(full) and isinstance(start, str) and host):
        return None
    try:
        when = parse_time(start, "backup_start")
    except ValueError:
        return None
    paths = []
    for path in base["paths"]:
        clean = os.path.abspath(path)
        paths.append("/" + clean.lstrip("/"))  # Go's filepath.Clean keeps no leading "//"
    return Snapshot(
        id=full,
        short_id=full[:8],
        time=when,
        hostname=host,
        username="",
        paths=sorted(paths),
        tags=list(base["tags"]),
        tree="",
        raw_time=start,
    )


def backup_dry_run(restic: Restic, args: list[str], paths: list[str], base: dict[str, Any]) -> dict[str, Any]:
    """Check mode of a backup: restic's own ``--dry-run`` where it has one, else prove the repository opens."""
    empty = {"changed": True, "snapshot_id": "", "short_id": ""}
    if not restic.features.backup_dry_run:
        restic.config()
        return dict(base, **empty, summary={}, seconds=0.0)
    res = run_backup(restic, [*args, "--dry-run"], paths)
    if res.rc != 0 or res.timed_out:
        raise classify_error(res, restic.repository, restic.features, action="dry-run a backup")
    summary = parse_backup_summary(res.stdout + "\n" + res.stderr)
    return dict(base, **empty, summary=summary, seconds=round(res.seconds, 3))


def backup_and_record(
    restic: Restic,
    args: list[str],
    paths: list[str],
    base: dict[str, Any],
    *,
    fail_on_unreadable: bool,
    manifest: bool,
    manifest_exclude: list[str],
    warn: Callable[[str], None],
    tmpdir: str | None = None,
    on_status: Callable[[dict[str, float]], None] | None = None,
    progress_interval: float | None = None,
    batch: ManifestBatch | None = None,
) -> dict[str, Any]:
    """Run one ``restic backup`` of ``paths`` and, when asked, record its backup-time manifest: the one place the
    backup modules (restic_backup, sqlite_backup) turn restic's answer into a result. ``on_status`` gets restic's
    progress while it runs, one status per ``progress_interval`` seconds (``run_backup``). With ``batch``, a manifest
    that needs a listing (restic < 0.17) is hashed now and waits in the batch (the result's ``manifest`` is filled in
    by ``batch.finish``)."""
    action = "back up " + ", ".join(paths)
    since = time.time() - 2  # file-system timestamps may be coarse; the cache folder is touched after this
    res = run_backup(restic, args, paths, on_status, progress_interval)
    if res.rc not in (0, 3) or res.timed_out:
        raise classify_error(res, restic.repository, restic.features, action=action)
    try:
        summary = parse_backup_summary(res.stdout + "\n" + res.stderr)
    except ValueError:
        raise classify_error(res, restic.repository, restic.features, action=action) from None
    short = summary.get("snapshot_id", "")
    # Without a manifest only the full ID is needed: restic >= 0.15 prints it, 0.14's is read from restic's cache; no
    # second repository open. With one, the snapshot's record too: from restic >= 0.17's summary (a snapshot made a
    # moment ago has no manifest yet, so nothing to list for the "recorded already?" check), else one listing serves
    # the record and that check.
    made = made_snapshot(summary, base) if manifest else None
    if made is not None:
        listing, full = [], made.id
    elif manifest and batch is not None:
        listing, full = None, restic.new_snapshot_id(short, since, listing=False)
    elif manifest:
        listing = restic.snapshots(manifests=True)
        made = next((s for s in listing if short and s.id.startswith(short)), None)
        full = made.id if made else short
    else:
        listing, full = None, restic.new_snapshot_id(short, since)
    if res.rc == 3:
        unreadable = summary.get("errors") or ["(restic did not list them)"]
        if fail_on_unreadable:
            raise ResticError(
                "unreadable_source",
                f"Snapshot {short} was made in {restic.repository} but some files could not be read: "
                f"{'; '.join(unreadable[:10])}. Fix their permissions or exclude them and back up again.",
                {"snapshot_id": full},
                res,
            )
        for line in unreadable[:20]:
            warn(f"restic could not read: {line}")
    result = dict(
        base, changed=True, snapshot_id=full, short_id=full[:8], summary=summary, seconds=round(res.seconds, 3)
    )
    if manifest and made is None and batch is not None:
        batch.add(result, short, HashedTree(paths, manifest_exclude, tmpdir=tmpdir), manifest_exclude)
        return result
    if manifest:
        if made is None:
            raise ResticError(
                "failed",
                f"Snapshot {short} was made in {restic.repository} but restic does not list it, so its backup-time "
                "manifest was not recorded; list the snapshots and record it with 'ledgerguard manifest record'.",
                {"snapshot_id": full},
                res,
            )
        note_manifest(result, record_manifest(restic, made, manifest_exclude, tmpdir=tmpdir, listing=listing))
    return result
