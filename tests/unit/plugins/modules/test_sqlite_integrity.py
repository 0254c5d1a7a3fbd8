"""sqlite_integrity: PRAGMA integrity_check on every SQLite file of a restored tree (the drill's check), read-only,
through the module's own file descriptor (names in Chinese and in GBK bytes; links and FIFOs never opened)."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3

import pytest
from ansible.module_utils.testing import patch_module_args

NAME = "ansible_collections.ledgerguard.recovery.plugins.modules.sqlite_integrity"


def run(args: dict, capsys) -> dict:
    module = importlib.import_module(NAME)
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def ledger(path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE 凭证 (摘要 TEXT)")
    db.executemany("INSERT INTO 凭证 VALUES (?)", [("x" * 500,) for _row in range(200)])
    db.commit()
    db.close()


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "杭州记账" / "c001"
    books = root / "账簿"
    books.mkdir(parents=True)
    good = books / "总账.sqlite"
    ledger(good)
    raw = bytearray(good.read_bytes())
    raw[4096 : 4096 + 64] = b"\xff" * 64
    (root / "bad.db").write_bytes(bytes(raw))
    (root / "notes.db").write_text("not a database")
    (root / "readme.txt").write_text("not matched")
    gbk = os.path.join(os.fsencode(root), "明细账.db".encode("gbk"))
    ledger(gbk.decode("utf-8", "surrogateescape"))
    os.symlink(good, root / "link.db")
    os.mkfifo(root / "pipe.db")
    return root, good


def test_every_matching_regular_file_checked_read_only(tree, capsys):
    root, good = tree
    before = sorted(os.listdir(os.fsencode(root))) + sorted(os.listdir(good.parent))
    result = run({"path": str(root)}, capsys)
    assert result["changed"] is False and result["ok"] is False and result["unreadable"] == []
    by = {os.path.relpath(f["path"], root): f for f in result["files"]}
    # 明细账 in GBK is c3 f7 cf b8 d5 cb: cf b8 happens to be UTF-8 (ϸ), the other bytes are escaped
    gbk_name = "\\xc3\\xf7ϸ\\xd5\\xcb.db"
    assert sorted(by) == [gbk_name, "bad.db", "notes.db", "账簿/总账.sqlite"]
    assert result["matched"] == 4
    assert by["账簿/总账.sqlite"] == {"path": str(good), "ok": True, "result": "ok"}
    assert by[gbk_name]["ok"] is True and by[gbk_name]["result"] == "ok"
    assert by["bad.db"]["ok"] is False and by["bad.db"]["result"] and by["bad.db"]["result"] != "ok"
    not_db = "cannot check: file is not a database"
    assert by["notes.db"] == {"path": str(root / "notes.db"), "ok": False, "result": not_db}
    assert result["problems"] == [
        f"{root}/bad.db: {by['bad.db']['result']}",
        f"{root}/notes.db: {not_db}",
    ]
    # nothing written beside the databases (no journal, no WAL), the FIFO never opened (the run did not block)
    assert sorted(os.listdir(os.fsencode(root))) + sorted(os.listdir(good.parent)) == before


def test_check_mode_checks_the_same(tree, capsys):
    root, _good = tree
    real = run({"path": str(root)}, capsys)
    checked = run({"path": str(root), "_ansible_check_mode": True}, capsys)
    assert checked["files"] == real["files"] and checked["ok"] is False


def test_patterns_choose_the_files_and_no_match_is_ok(tree, capsys):
    root, good = tree
    only = run({"path": str(root), "patterns": ["*.sqlite"]}, capsys)
    assert only["ok"] is True and [f["path"] for f in only["files"]] == [str(good)]
    none = run({"path": str(root), "patterns": ["*.SQLITE"]}, capsys)  # case-sensitive, as find
    keys = ("changed", "ok", "matched", "files", "unreadable", "problems")
    assert {k: none[k] for k in keys} == {
        "changed": False, "ok": True, "matched": 0, "files": [], "unreadable": [], "problems": []
    }  # fmt: skip


def test_a_folder_that_cannot_be_listed_is_not_claimed_ok(tmp_path):
    module = importlib.import_module(NAME)
    gone = tmp_path / "已删除"
    result = module.scan(str(gone), ["*.db"])
    assert result["ok"] is False and result["matched"] == 0
    assert result["unreadable"] == [{"path": str(gone), "error": "No such file or directory"}]
    assert result["problems"] == [f"{gone}: cannot list this folder: No such file or directory"]


def test_a_link_as_the_folder_is_refused_with_the_reason(tree, tmp_path, capsys):
    root, _good = tree
    link = tmp_path / "链接"
    os.symlink(root, link)
    result = run({"path": str(link)}, capsys)
    assert result["failed"] is True
    assert result["msg"] == (
        f"sqlite_integrity: path {str(link)!r} is a symlink, not a folder (a symbolic link is not followed); give the "
        "folder itself"
    )
    gone = str(tmp_path / "无")
    missing = run({"path": gone}, capsys)
    assert missing["msg"] == f"sqlite_integrity: cannot read the folder {gone!r}: No such file or directory"


def test_a_ledger_cut_to_nothing_is_not_ok(tmp_path, capsys):
    """SQLite reads a 0-byte file as a valid empty database ("ok"); a ledger truncated to zero is damage."""
    root = tmp_path / "宁波记账" / "c002"
    root.mkdir(parents=True)
    ledger(root / "总账.sqlite")
    (root / "明细账.sqlite").write_bytes(b"")
    result = run({"path": str(root)}, capsys)
    assert result["ok"] is False and result["matched"] == 2
    by = {os.path.basename(f["path"]): f for f in result["files"]}
    assert by["总账.sqlite"]["ok"] is True
    assert by["明细账.sqlite"] == {
        "path": str(root / "明细账.sqlite"),
        "ok": False,
        "result": "empty file (0 bytes): no database in it",
    }
    assert result["problems"] == [f"{root}/明细账.sqlite: empty file (0 bytes): no database in it"]
