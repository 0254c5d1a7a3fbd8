"""file_manifest run in-process: check mode, idempotence, compare, error texts."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import file_manifest
from conftest import module_result


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    return module_result(file_manifest.main, args, capsys, check_mode)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "c001"
    (root / "凭证").mkdir(parents=True)
    (root / "凭证" / "2024-03.csv").write_text("期间,凭证号\n", encoding="utf-8-sig")
    (root / "ledger.sqlite").write_bytes(os.urandom(4096))
    os.symlink("凭证/2024-03.csv", root / "latest.csv")
    return root


def test_create_check_mode_then_apply_then_idempotent(tree, tmp_path, capsys):
    dest = tmp_path / "out" / "m.jsonl"
    dest.parent.mkdir()
    args = {"path": str(tree), "dest": str(dest)}
    checked = run(args, capsys, check_mode=True)
    assert checked["changed"] is True and not dest.exists()
    assert os.listdir(dest.parent) == []
    first = run(args, capsys)
    assert first["changed"] is True
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == first["digest"] == checked["digest"]
    assert (first["files"], first["dirs"], first["symlinks"], first["errors"]) == (2, 1, 1, 0)
    assert oct(dest.stat().st_mode & 0o777) == "0o640"
    again = run(args, capsys)
    assert again["changed"] is False and again["digest"] == first["digest"]
    assert run(args, capsys, check_mode=True)["changed"] is False


def test_dest_inside_tree_is_excluded_and_idempotent(tree, capsys):
    args = {"path": str(tree), "dest": str(tree / "MANIFEST.jsonl"), "format": "sha256sum"}
    assert run(args, capsys)["changed"] is True
    assert b"MANIFEST" not in (tree / "MANIFEST.jsonl").read_bytes()
    assert run(args, capsys)["changed"] is False


def test_entries_without_dest_are_bounded(tree, capsys):
    out = run({"path": str(tree), "max_list": 2}, capsys)
    assert out["entries_truncated"] is True
    assert [e["path"] for e in out["entries"]] == ["latest.csv", "ledger.sqlite"]
    assert out["entries"][0]["target"] == "凭证/2024-03.csv"


def test_compare_live_tree_and_report(tree, tmp_path, capsys):
    ref = tmp_path / "ref.jsonl"
    run({"path": str(tree), "dest": str(ref)}, capsys)
    (tree / "ledger.sqlite").write_bytes(b"damaged")
    (tree / "凭证" / "2024-03.csv").unlink()
    (tree / "README_DECRYPT.txt").write_text("pay")
    report = tmp_path / "diff.jsonl"
    args = {"operation": "compare", "reference": str(ref), "path": str(tree), "report": str(report), "max_list": 1}
    out = run(args, capsys)
    assert out["changed"] is True and out["matched"] is False
    assert out["counts"] == {"reference": 4, "candidate": 4, "missing": 1, "changed": 1, "extra": 1}
    assert out["differences"] == {
        "missing": ["凭证/2024-03.csv"],
        "changed": [{"path": "ledger.sqlite", "fields": ["size", "sha256"]}],
        "extra": ["README_DECRYPT.txt"],
    }
    lines = [json.loads(x) for x in report.read_text(encoding="utf-8").splitlines()]
    assert [x["status"] for x in lines] == ["extra", "changed", "missing"]
    assert run(args, capsys)["changed"] is False


def test_compare_fail_on_differences_message(tree, tmp_path, capsys):
    ref = tmp_path / "ref.sums"
    run({"path": str(tree), "dest": str(ref), "format": "sha256sum"}, capsys)
    (tree / "ledger.sqlite").write_bytes(b"x")
    args = {"operation": "compare", "reference": str(ref), "path": str(tree), "fail_on_differences": True}
    out = run(args, capsys)
    assert out["failed"] is True
    assert out["msg"] == f"0 missing, 1 changed, 0 extra entries compared with {ref}; see 'differences'"


def test_missing_path_message(tmp_path, capsys):
    out = run({"path": str(tmp_path / "nope")}, capsys)
    assert out["msg"] == f"path {str(tmp_path / 'nope')!r} is not a directory: give the root of the tree to hash."


def test_unsorted_json_reference_is_refused(tree, tmp_path, capsys):
    ref = tmp_path / "ref.jsonl"
    ref.write_text(
        '{"ledgerguard_manifest": 1, "format": "json", "order": "components"}\n'
        '{"path": "b", "type": "file"}\n{"path": "a", "type": "file"}\n'
    )
    out = run({"operation": "compare", "reference": str(ref), "candidate": str(ref)}, capsys)
    assert out["failed"] is True
    assert "is not in manifest order at 'a' (duplicate or unsorted)" in out["msg"]


def test_fifo_and_device_are_reported_never_opened(tree, tmp_path, capsys):
    """Issue 13 item 7: a FIFO (and a device node, as root) in the tree: the manifest finishes, lists them as
    special entries, hashes the rest, and the FIFO's blocked writer is never released (it was never opened)."""
    import stat
    import threading

    os.mkfifo(tree / "凭证" / "pipe")
    if os.geteuid() == 0:
        os.mknod(tree / "zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    opened = threading.Event()

    def writer():
        os.close(os.open(tree / "凭证" / "pipe", os.O_WRONLY))
        opened.set()

    threading.Thread(target=writer, daemon=True).start()
    try:
        out = run({"path": str(tree), "dest": str(tmp_path / "m.jsonl"), "parallel": "thread"}, capsys)
        kinds = {e["path"]: e["kind"] for e in out["special_paths"]}
        assert kinds["凭证/pipe"] == "fifo" and out["files"] == 2
        if os.geteuid() == 0:
            assert kinds["zero"] == "char device" and out["others"] == 2
        assert not opened.wait(0.3)
    finally:
        if not opened.is_set():
            os.close(os.open(tree / "凭证" / "pipe", os.O_RDONLY | os.O_NONBLOCK))


def test_trees_in_one_run_each_as_alone_one_failure_reported_alone(tree, tmp_path, capsys):
    """trees= (restore_clients hashes every restored client folder of a host in one run): each manifest byte-identical
    to a run for that tree alone; a tree that is no folder fails alone with the single run's message."""
    other = tmp_path / "客户乙"
    (other / "账簿").mkdir(parents=True)
    (other / "账簿" / "总账.csv").write_text("科目,借方\n管理费用,10.00\n", encoding="utf-8")
    out = tmp_path / "清单"
    out.mkdir()
    alone = [run({"path": str(t), "dest": str(out / f"alone-{i}.jsonl")}, capsys) for i, t in enumerate((tree, other))]
    trees = [
        {"path": str(tree), "dest": str(out / "0.jsonl")},
        {"path": str(tmp_path / "没有"), "dest": str(out / "1.jsonl")},
        {"path": str(other), "dest": str(out / "2.jsonl")},
    ]
    planned = run({"trees": trees, "file_mode": "0600"}, capsys, check_mode=True)
    assert planned["changed"] is True and sorted(os.listdir(out)) == ["alone-0.jsonl", "alone-1.jsonl"]
    result = run({"trees": trees, "file_mode": "0600"}, capsys)
    assert result["changed"] is True and [t["failed"] for t in result["trees"]] == [False, True, False]
    assert (
        result["trees"][1]["msg"]
        == f"path {str(tmp_path / '没有')!r} is not a directory: give the root of the tree to hash."
    )
    for got, single, batched, solo in (
        (result["trees"][0], alone[0], "0", "0"),
        (result["trees"][2], alone[1], "2", "1"),
    ):
        manifest = out / f"{batched}.jsonl"
        assert manifest.read_bytes() == (out / f"alone-{solo}.jsonl").read_bytes()
        assert [got[k] for k in ("digest", "files", "total_bytes")] == [
            single[k] for k in ("digest", "files", "total_bytes")
        ]
        assert got["dest"] == str(manifest) and oct(manifest.stat().st_mode & 0o777) == "0o600"
    again = run({"trees": [trees[0], trees[2]], "file_mode": "0600"}, capsys)
    assert again["changed"] is False
    # a dest where no file can be made fails its tree alone; the trees after it are still built
    (out / "2.jsonl").unlink()
    nowhere = dict(trees[0], dest="/proc/清单.jsonl")
    mixed = run({"trees": [nowhere, trees[2]], "file_mode": "0600"}, capsys)
    assert [t["failed"] for t in mixed["trees"]] == [True, False] and (out / "2.jsonl").is_file()
    assert mixed["trees"][0]["msg"] == (
        "dest '/proc/清单.jsonl': the manifest cannot be written there (No such file or directory); "
        "choose another folder."
    )
    wrong = run({"trees": trees, "operation": "compare"}, capsys)
    assert wrong["failed"] is True and wrong["msg"] == "trees is for operation=create, not compare: give path instead."


def test_create_compares_with_a_reference_when_it_exists(tree, tmp_path, capsys):
    """operation=create with reference: the manifest is written, then compared with the reference (the one task the
    drill runs per client instead of a stat and a compare); a reference that does not exist is no error."""
    ref = tmp_path / "c001.source.jsonl"
    dest = tmp_path / "c001.manifest.jsonl"
    args = {"path": str(tree), "dest": str(dest), "reference": str(ref), "max_list": 1}
    absent = run(args, capsys)
    assert absent["changed"] is True and dest.exists() and absent["files"] == 2
    assert absent["reference_compare"] == {"reference": str(ref), "found": False}
    ref.write_bytes(dest.read_bytes())
    same = run(args, capsys)
    assert same["changed"] is False and same["reference_compare"]["found"] is True
    assert same["reference_compare"]["matched"] is True
    assert same["reference_compare"]["counts"] == {"reference": 4, "candidate": 4, "missing": 0, "changed": 0,
                                                   "extra": 0}  # fmt: skip
    (tree / "ledger.sqlite").write_bytes(b"damaged")
    (tree / "凭证" / "2024-03.csv").unlink()
    (tree / "README_DECRYPT.txt").write_text("pay")
    for check_mode in (True, False):  # in check mode the tree is hashed again (no manifest written)
        out = run(args, capsys, check_mode=check_mode)
        compared = out["reference_compare"]
        assert out["changed"] is True and compared["matched"] is False, check_mode
        assert compared["counts"] == {"reference": 4, "candidate": 4, "missing": 1, "changed": 1, "extra": 1}
        changed = [{"path": "ledger.sqlite", "fields": ["size", "sha256"]}]
        assert compared["differences"] == {"missing": ["凭证/2024-03.csv"], "extra": ["README_DECRYPT.txt"],
                                           "changed": changed}  # fmt: skip
        assert compared["truncated"] is False and set(compared) == {
            "reference", "found", "matched", "counts", "differences", "truncated", "seconds"}  # fmt: skip
    failed = run(dict(args, fail_on_differences=True), capsys)
    assert failed["failed"] is True
    assert failed["msg"] == f"1 missing, 1 changed, 1 extra entries compared with {ref}; see 'differences'"
    # the manifest was written before the comparison failed: the result says so, beside the comparison
    assert failed["operation"] == "create" and failed["dest"] == str(dest) and failed["files"] == 2
    assert failed["digest"] == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert failed["reference_compare"]["matched"] is False and failed["reference_compare"]["counts"]["missing"] == 1
    trees = run({"trees": [{"path": str(tree), "dest": str(dest)}], "reference": str(ref)}, capsys)
    assert trees["msg"] == (
        "reference is for one tree (path) with operation=create, not for trees: compare each tree's manifest with "
        "operation=compare."
    )
