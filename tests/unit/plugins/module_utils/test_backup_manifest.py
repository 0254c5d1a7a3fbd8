"""Backup-time manifests: the compare classification, the tree walk, tags, and the one manifest-snapshot test."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import backup_manifest as bm
from ansible_collections.ledgerguard.recovery.plugins.module_utils import manifest as mf
from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic as r
from ansible_collections.ledgerguard.recovery.plugins.module_utils.drill import pick_snapshot

DATA_ID = "4b462203bba49091e68a796c59bc6c5c026126be85248b956227f37dc3e765a8"


def rec(path: str, content: bytes, mtime_ns: int = 1_700_000_000_000_000_000, kind: str = "file") -> dict:
    return {
        "path": path.encode(),
        "type": kind,
        "size": len(content),
        "mtime_ns": mtime_ns,
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def test_identical_files_are_identical():
    ref = [rec("srv/b/c001/a.csv", b"1,2\n"), rec("srv/b/c001/z.pdf", b"%PDF")]
    got = bm.compare_records(ref, [dict(x) for x in ref])
    assert got["files"] == 2 and got["identical"] == 2 and got["identical_all"] is True
    assert got["differing"] == got["missing"] == got["changed_since_manifest"] == got["not_in_manifest"] == 0


def test_same_size_and_mtime_but_other_content_is_differing():
    ref = [rec("srv/b/c001/a.csv", b"1,2\n"), rec("srv/b/c001/b.csv", b"3,4\n")]
    cand = [rec("srv/b/c001/a.csv", b"1,2\n"), rec("srv/b/c001/b.csv", b"3,5\n")]
    got = bm.compare_records(ref, cand)
    assert got["identical"] == 1 and got["differing"] == 1 and got["identical_all"] is False
    assert got["differing_paths"] == [
        {"path": "/srv/b/c001/b.csv", "why": "sha256 differs while size and mtime are equal"}
    ]


def test_other_content_with_moved_mtime_or_size_changed_since_manifest():
    ref = [rec("d/a", b"new content", mtime_ns=2), rec("d/b", b"grown!!", mtime_ns=5)]
    cand = [rec("d/a", b"old content", mtime_ns=1), rec("d/b", b"short", mtime_ns=5)]
    got = bm.compare_records(ref, cand)
    assert got["changed_since_manifest"] == 2 and got["differing"] == 0 and got["identical_all"] is True
    assert got["changed_since_manifest_paths"] == [
        {"path": "/d/a", "why": "mtime_ns differ from the manifest"},
        {"path": "/d/b", "why": "size differ from the manifest"},
    ]


def test_missing_file_is_missing_only_when_the_snapshot_holds_it():
    ref = [rec("d/held", b"x"), rec("d/late", b"y"), rec("d/ok", b"z")]
    cand = [rec("d/ok", b"z")]
    asked = []

    def in_snapshot(paths):
        asked.append(list(paths))
        return {b"d/held"}

    got = bm.compare_records(ref, cand, in_snapshot)
    assert asked == [[b"d/held", b"d/late"]]
    assert got["missing"] == 1 and got["missing_paths"] == ["/d/held"]
    assert got["changed_since_manifest"] == 1
    assert got["changed_since_manifest_paths"] == [
        {"path": "/d/late", "why": "in the manifest but not in the snapshot"}
    ]
    assert got["identical"] == 1 and got["files"] == 3 and got["identical_all"] is False


def test_extra_restored_file_and_type_change():
    ref = [rec("d/a", b"1"), rec("d/dir-now", b"2")]
    cand = [rec("d/a", b"1"), {"path": b"d/dir-now", "type": "symlink", "size": 3}, rec("d/gone-later", b"3")]
    got = bm.compare_records(ref, cand)
    assert got["not_in_manifest"] == 1 and got["not_in_manifest_paths"] == ["/d/gone-later"]
    assert got["differing"] == 1
    assert got["differing_paths"][0]["why"] == "restored as a symlink, backed up as a file"


def test_directories_and_unreadable_manifest_entries_are_not_compared():
    ref = [{"path": b"d", "type": "dir"}, {"path": b"d/locked", "type": "file", "size": 0, "error": "denied"}]
    got = bm.compare_records(ref, [{"path": b"d", "type": "dir"}])
    assert got["files"] == 0 and got["identical_all"] is True


def test_lists_are_bounded_counts_exact():
    ref = [rec(f"d/f{i:03d}", b"aaaa") for i in range(30)]
    cand = [rec(f"d/f{i:03d}", b"bbbb") for i in range(30)]
    got = bm.compare_records(ref, cand, max_list=5)
    assert got["differing"] == 30 and len(got["differing_paths"]) == 5
    text = bm.problem_text(dict(got, compared=True, snapshot=DATA_ID, manifest_short_id="7a1cebb4"), "/stage")
    assert text.startswith(
        "the files restored from snapshot 4b462203 into /stage disagree with the snapshot's backup-time manifest "
        "7a1cebb4: 30 file(s) differ in content although size and mtime are equal and 0 file(s) the snapshot holds "
        "are missing - /d/f000 (sha256 differs while size and mtime are equal), "
    )
    assert text.endswith(" and 25 more. The restored copy is not what was backed up.")


def test_roots_are_relative_sorted_and_not_nested():
    assert bm.roots(["/srv/b/c002", "/srv/b/c001/", "/srv/b/c001/sub", "/srv/b2"]) == [
        b"srv/b/c001",
        b"srv/b/c002",
        b"srv/b2",
    ]


def test_tree_records_match_a_real_tree(tmp_path):
    base = tmp_path / "stage"
    (base / "srv" / "b" / "c001" / "凭证").mkdir(parents=True)
    f = base / "srv" / "b" / "c001" / "凭证" / "2026-10.csv"
    f.write_bytes(b"voucher\n")
    os.utime(f, ns=(1, 1_234_567_891_123_456_789))
    (base / "srv" / "b" / "one.txt").write_bytes(b"1")
    out = list(bm.tree_records(os.fsencode(base), bm.roots(["/srv/b/c001", "/srv/b/one.txt", "/srv/none"]), (), "none"))
    files = [(x["path"].decode(), x["sha256"], x["mtime_ns"]) for x in out if x["type"] == "file"]
    assert files == [
        ("srv/b/c001/凭证/2026-10.csv", hashlib.sha256(b"voucher\n").hexdigest(), 1_234_567_891_123_456_789),
        ("srv/b/one.txt", hashlib.sha256(b"1").hexdigest(), out[-1]["mtime_ns"]),
    ]
    assert mf.is_sorted(out)


def test_manifest_records_read_the_same_stream_as_hashing_the_tree(tmp_path):
    """The restore role passes the manifests it already wrote (candidates) instead of hashing staging again."""
    base = tmp_path / "stage"
    for rel, data in (("srv/b/c001/凭证/2026-10.csv", b"v\n"), ("srv/b/c001/z.pdf", b"%PDF"), ("srv/b/c002/a", b"a")):
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    rels = bm.roots(["/srv/b/c002", "/srv/b/c001"])
    written = {}
    for rel in rels:
        dest = tmp_path / (rel.decode().replace("/", "_") + ".jsonl")
        records = mf.hashed_entries(os.fsencode(base) + b"/" + rel, parallel="none")
        dest.write_bytes(b"".join(mf.serialize(records, "json")))
        written[rel] = str(dest)
    hashed = [x for x in bm.tree_records(os.fsencode(base), rels, (), "none") if x["type"] == "file"]
    read = [x for x in bm.manifest_records(rels, written) if x["type"] == "file"]
    fields = ("path", "size", "mtime_ns", "sha256")
    assert [[x[f] for f in fields] for x in read] == [[x[f] for f in fields] for x in hashed]
    assert mf.is_sorted(read) and len(read) == 3
    assert {x["path"] for x in read} == {b"srv/b/c001/z.pdf", "srv/b/c001/凭证/2026-10.csv".encode(), b"srv/b/c002/a"}


def test_write_manifest_is_read_back_by_read_manifest(tmp_path):
    books = tmp_path / "账套"
    books.mkdir()
    (books / "凭证.csv").write_bytes(b"abc")
    snap = r.Snapshot(DATA_ID, DATA_ID[:8], datetime(2026, 11, 26, 2, tzinfo=UTC), "web01", "u", [str(books)], [], "t")
    snap.raw_time = "2026-11-26T02:00:00Z"
    path = tmp_path / "m.jsonl"
    hashed = bm.HashedTree(snap.paths, parallel="none")
    try:
        with open(path, "wb") as handle:
            digest = bm.write_manifest(bm._header(snap, snap.paths), hashed.body, handle)
    finally:
        hashed.close()
    head = json.loads(path.read_text().splitlines()[0])
    assert head["snapshot"] == DATA_ID and head["kind"] == "backup" and head["paths"] == [str(books)]
    assert hashed.stats["files"] == 1 and hashed.stats["bytes"] == 3
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    back = [x for x in mf.read_manifest(str(path)) if x["type"] == "file"]
    assert back[0]["path"] == os.fsencode(books / "凭证.csv").lstrip(b"/")
    assert back[0]["sha256"] == hashlib.sha256(b"abc").hexdigest()


# -- tags and the one test of "manifest snapshot" ---------------------------------------------------------------------


def test_manifest_tags_and_lookup():
    assert bm.manifest_tags(DATA_ID) == ["ledgerguard-manifest", "ledgerguard-manifest-for=" + DATA_ID]
    with pytest.raises(ValueError, match="cannot be used in a restic tag"):
        bm.manifest_tags("a,b")
    when = datetime(2026, 11, 26, 2, tzinfo=UTC)
    data = r.Snapshot(DATA_ID, DATA_ID[:8], when, "h", "u", ["/srv"], ["nightly"], "t")
    old = r.Snapshot("a" * 64, "aaaaaaaa", when, "h", "u", ["/m"], bm.manifest_tags(DATA_ID), "t")
    new = r.Snapshot("b" * 64, "bbbbbbbb", when, "h", "u", ["/m"], bm.manifest_tags(DATA_ID), "t")
    other = r.Snapshot("c" * 64, "cccccccc", when, "h", "u", ["/m"], bm.manifest_tags("f" * 64), "t")
    assert bm.find_manifests([data, old, other, new], DATA_ID) == [old, new]
    assert bm.manifest_for(new) == DATA_ID and bm.manifest_for(data) == ""
    assert r.is_manifest_snapshot(["x", "ledgerguard-manifest"]) and not r.is_manifest_snapshot(["nightly"])
    assert r.is_manifest_snapshot(["ledgerguard-manifest-for=" + DATA_ID]) and not r.is_manifest_snapshot(None)


def _snapshots_json(items):
    return json.dumps(
        [
            {"id": i, "short_id": i[:8], "time": t, "hostname": "web01", "paths": p, "tags": tags, "tree": "0" * 64}
            for i, t, p, tags in items
        ]
    )


def test_engine_listing_leaves_manifest_snapshots_out_unless_asked():
    text = _snapshots_json(
        [
            (DATA_ID, "2026-11-26T02:00:00.5Z", ["/srv/b"], ["nightly"]),
            ("9" * 64, "2026-11-26T02:00:00Z", ["/ledgerguard-manifest-4b462203.jsonl"], bm.manifest_tags(DATA_ID)),
        ]
    )

    def run(argv, env, timeout=None, cwd=None, **_):
        return r.ResticResult(list(argv), 0, text, "")

    engine = r.Restic("restic", "/repo", "/pw", run=run, base_env={})
    assert [s.id for s in engine.snapshots()] == [DATA_ID]
    assert [s.id for s in engine.snapshots(manifests=True)] == ["9" * 64, DATA_ID]
    assert engine.resolve_snapshot("latest").id == DATA_ID


def test_drill_never_picks_a_manifest_snapshot():
    snaps = [
        {"id": DATA_ID, "time": "2026-11-25T02:00:00Z", "tags": ["nightly"]},
        {"id": "9" * 64, "time": "2026-11-26T02:00:00Z", "tags": bm.manifest_tags(DATA_ID)},
    ]
    assert pick_snapshot(snaps, "latest")["id"] == DATA_ID
    with pytest.raises(ValueError, match="no snapshot matching"):
        pick_snapshot(snaps[1:], "latest")


def test_restore_point_and_backup_verify_filters_ignore_manifest_snapshots():
    from ansible_collections.ledgerguard.recovery.plugins.filter.backup_verify import host_snapshots
    from ansible_collections.ledgerguard.recovery.plugins.filter.restore_point import clean_restore_point

    data = {"id": DATA_ID, "short_id": DATA_ID[:8], "time": "2026-11-25T02:00:00Z", "hostname": "web01"}
    data.update(tags=["nightly"], clean=True, assessed=True, reasons=[], stats={})
    manifest = dict(data, id="9" * 64, short_id="99999999", time="2026-11-26T02:00:00Z", tags=bm.manifest_tags(DATA_ID))
    point = clean_restore_point([data, manifest])
    assert point["found"] and point["chosen"]["id"] == DATA_ID
    assert [s["id"] for s in host_snapshots([data, manifest], "web01")] == [DATA_ID]
