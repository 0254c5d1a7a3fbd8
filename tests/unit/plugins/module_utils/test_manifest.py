"""Unit tests for module_utils/manifest.py: path escaping, walk order, parallel hashing, formats, merge compare."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import manifest as mf


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"plain/name.csv", "plain/name.csv"),
        ("凭证/2024-03.csv".encode(), "凭证/2024-03.csv"),
        (b"latin1-\xe9t\xe9", "latin1-\\xe9t\\xe9"),
        (b"back\\slash", "back\\\\slash"),
        (b"lit\\x41", "lit\\\\x41"),
        (b"new\nline", "new\\x0aline"),
        (b"nbsp\xc2\xa0x", "nbsp\\xc2\\xa0x"),
        (b"\xed\xa0\x80", "\\xed\\xa0\\x80"),
    ],
)
def test_escape_roundtrip(raw, text):
    assert mf.escape_path(raw) == text
    assert mf.unescape_path(text) == raw


def test_sort_key_is_component_order():
    names = [b"a-c", b"a/b", b"a", b"a/b/c", b"ab"]
    assert sorted(names, key=mf.sort_key) == [b"a", b"a/b", b"a/b/c", b"a-c", b"ab"]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.csv").write_bytes(b"1,2\n")
    (root / "a-c").write_bytes(b"")
    (root / "b.bin").write_bytes(os.urandom(3 * mf.CHUNK + 17))
    os.symlink("a/x.csv", root / "link")
    (root / os.fsdecode(b"bad\xff")).write_bytes(b"q")
    (root / "凭证").mkdir()
    for i in range(600):  # more than BATCH_FILES, so several batches are in flight
        (root / "凭证" / f"{i:04d}.csv").write_bytes(str(i).encode())
    return root


def test_walk_order_and_types(tree):
    recs = list(mf.walk(os.fsencode(tree)))
    paths = [r["path"] for r in recs]
    assert paths[:5] == [b"a", b"a/x.csv", b"a-c", b"b.bin", b"bad\xff"]
    assert paths == sorted(paths, key=mf.sort_key)
    by = {r["path"]: r for r in recs}
    assert by[b"link"]["type"] == "symlink" and by[b"link"]["target"] == "a/x.csv"
    assert by[b"a"]["type"] == "dir" and "mtime_ns" not in by[b"a"]
    assert by[b"a/x.csv"]["size"] == 4 and by[b"a/x.csv"]["mode"] == "0644"


@pytest.mark.parametrize("parallel", ["process", "thread", "none"])
def test_hashes_match_hashlib(tree, parallel):
    recs = list(mf.hashed_entries(os.fsencode(tree), parallel=parallel, workers=2, window=2))
    files = [r for r in recs if r["type"] == "file"]
    assert len(files) == 604
    for r in files:
        expected = hashlib.sha256((tree / os.fsdecode(r["path"])).read_bytes()).hexdigest()
        assert r["sha256"] == expected
    assert [r["path"] for r in recs] == [r["path"] for r in mf.walk(os.fsencode(tree))]


def test_hash_file_errors_are_returned(tree):
    assert mf.hash_file(os.fsencode(tree / "gone")) == (None, "No such file or directory (errno 2)")
    # lstat first (and O_NOFOLLOW behind it): a symlink swapped in for a file is not followed.
    assert mf.hash_file(os.fsencode(tree / "link")) == (None, "not a regular file (symlink): not opened")


def test_vanished_file_is_recorded_not_fatal(tree, monkeypatch):
    real_walk = mf.walk

    def walk_then_delete(*args, **kw):
        for r in real_walk(*args, **kw):
            if r["path"] == b"a/x.csv":
                (tree / "a" / "x.csv").unlink()
            yield r

    monkeypatch.setattr(mf, "walk", walk_then_delete)
    recs = {r["path"]: r for r in mf.hashed_entries(os.fsencode(tree), parallel="thread", workers=2)}
    assert recs[b"a/x.csv"]["error"] == "No such file or directory (errno 2)"
    assert "sha256" not in recs[b"a/x.csv"]
    assert recs[b"a-c"]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_exclude_and_skip(tree):
    recs = list(mf.walk(os.fsencode(tree), exclude=["凭证", "*.bin"], skip=[os.fsencode(tree / "a-c")]))
    paths = {r["path"] for r in recs}
    assert b"b.bin" not in paths and b"a-c" not in paths
    assert not any(p.startswith("凭证".encode()) for p in paths)


def test_sha256sum_format_is_accepted_by_coreutils(tree, tmp_path):
    (tree / "we\\ird").write_bytes(b"w")
    (tree / "new\nline").write_bytes(b"n")
    out = tmp_path / "SUMS"
    out.write_bytes(b"".join(mf.serialize(mf.hashed_entries(os.fsencode(tree), workers=2), "sha256sum")))
    proc = subprocess.run(["sha256sum", "--strict", "-c", str(out)], cwd=tree, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(b": OK") == 606
    back = {r["path"]: r["sha256"] for r in mf.read_manifest(str(out))}
    assert back[b"new\nline"] == hashlib.sha256(b"n").hexdigest()
    assert back[b"we\\ird"] == hashlib.sha256(b"w").hexdigest()


def test_json_roundtrip(tree, tmp_path):
    out = tmp_path / "m.jsonl"
    out.write_bytes(b"".join(mf.serialize(mf.hashed_entries(os.fsencode(tree), workers=2), "json")))
    lines = out.read_bytes().splitlines()
    assert json.loads(lines[0]) == {"ledgerguard_manifest": 1, "format": "json", "order": "components"}
    assert json.loads(lines[5]) == {
        "path": "bad\\xff",
        "type": "file",
        "size": 1,
        "mode": "0644",
        "uid": os.getuid(),
        "gid": os.getgid(),
        "mtime_ns": os.lstat(tree / os.fsdecode(b"bad\xff")).st_mtime_ns,
        "sha256": hashlib.sha256(b"q").hexdigest(),
    }
    back = list(mf.read_manifest(str(out)))
    assert [r["path"] for r in back] == [r["path"] for r in mf.walk(os.fsencode(tree))]


def test_digest_writer_idempotent_and_check_mode(tmp_path):
    dest = tmp_path / "m"
    w = mf.DigestWriter(str(dest), check_mode=False)
    w.write(b"abc")
    assert w.finish() is True and dest.read_bytes() == b"abc"
    w = mf.DigestWriter(str(dest), check_mode=False)
    w.write(b"abc")
    assert w.finish() is False
    w = mf.DigestWriter(str(dest), check_mode=True)
    w.write(b"abcd")
    assert w.finish() is True and dest.read_bytes() == b"abc"
    assert sorted(os.listdir(tmp_path)) == ["m"]


def rec(path, **kw):
    return {"path": path, "type": "file", **kw}


def test_merge_compare():
    ref = [rec(b"a", sha256="1"), rec(b"b", sha256="2"), rec(b"c/d", sha256="3", size=1), rec(b"e", sha256="5")]
    cand = [rec(b"b", sha256="2"), rec(b"c/d", sha256="3", size=2), rec(b"c/e", sha256="4"), rec(b"e", sha256="6")]
    out = [(s, r["path"], f) for s, r, f in mf.merge_compare(ref, cand, ["size", "sha256"])]
    assert out == [
        ("missing", b"a", []),
        ("changed", b"c/d", ["size"]),
        ("extra", b"c/e", []),
        ("changed", b"e", ["sha256"]),
    ]


def test_ordered_rejects_unsorted():
    with pytest.raises(ValueError, match="not in manifest order at 'a'"):
        list(mf.ordered([rec(b"b"), rec(b"a")], "reference"))


def test_external_sort_bounded_runs(tmp_path):
    paths = [f"d{i % 7}/f{(i * 7919) % 1000:04d}".encode() for i in range(1000)]
    out = list(mf.external_sort((rec(p) for p in paths), str(tmp_path), run_size=64))
    assert [r["path"] for r in out] == sorted(paths, key=mf.sort_key)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "record",
    [
        {"path": b"a", "type": "dir", "size": 0, "mode": "0755", "uid": 0, "gid": 0},
        {
            "path": '凭证/"q".csv'.encode(),
            "type": "file",
            "size": 3,
            "mode": "0644",
            "uid": 1000,
            "gid": 1000,
            "mtime_ns": 1700000000123456789,
            "sha256": "ab" * 32,
        },
        {"path": b"l\xff", "type": "symlink", "size": 5, "target": "../x\\y", "mtime_ns": 1},
        {"path": b"e", "type": "other", "error": "Permission denied (errno 13)"},
    ],
)
def test_json_line_equals_json_dumps(record):
    expected = {"path": mf.escape_path(record["path"])}
    expected.update({k: record[k] for k in mf.ENTRY_FIELDS[1:] if k in record})
    assert mf.json_line(record) == json.dumps(expected, ensure_ascii=False, separators=(",", ":")) + "\n"
