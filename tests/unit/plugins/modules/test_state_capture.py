"""state_capture (issue 13 item 17): a real process started with secrets in its argv; the bundle's process list
shows it with the secrets masked, and no bundle file holds them. Journal-style lines are masked with the same rules."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import redact
from ansible_collections.ledgerguard.recovery.plugins.modules import state_capture
from conftest import module_result

SECRETS = ["TopSecretOpt1", "TopSecretSep2", "TopSecretEnv3", "TopSecretUrl4", "TopSecretTok5", "TopSecretMy6"]


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    return module_result(state_capture.main, args, capsys, check_mode)


@pytest.fixture
def victim():
    argv = [
        sys.executable, "-c", "import time; time.sleep(60)",
        "--password=TopSecretOpt1", "--db-password", "TopSecretSep2", "PGPASSWORD=TopSecretEnv3",
        "postgres://ledger:TopSecretUrl4@db.example:5432/books", "token=TopSecretTok5",
        "--password-file=/run/keep-this-path",
    ]  # fmt: skip
    proc = subprocess.Popen(argv)
    # A MySQL client as ps shows it (argv[0] "mysql"), with the password glued to -p.
    mysql = subprocess.Popen(
        ["mysql", "-c", "import time; time.sleep(60)", "-uroot", "-pTopSecretMy6"], executable=sys.executable
    )
    yield proc
    for p in (proc, mysql):
        p.kill()
        p.wait()


def test_process_secrets_are_masked_in_the_bundle(tmp_path, capsys, victim):
    planned = run({"dest": str(tmp_path), "journal_lines": 5}, capsys, check_mode=True)
    assert planned["changed"] is True and os.listdir(tmp_path) == []
    out = run({"dest": str(tmp_path), "journal_lines": 5}, capsys)
    assert out["changed"] is True and sorted(os.listdir(tmp_path)) == sorted(state_capture.FILES)
    for name in state_capture.FILES:
        path = tmp_path / name
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        data = path.read_bytes()
        assert not [s for s in SECRETS if s.encode() in data], name
    lines = [ln for ln in (tmp_path / "processes.txt").read_text().splitlines() if f" {victim.pid} " in f" {ln} "]
    line = next(ln for ln in lines if ln.split()[0] == str(victim.pid))
    assert "--password=***" in line and "--db-password '***'" in line and "PGPASSWORD=***" in line
    assert "postgres://ledger:***@db.example:5432/books" in line and "token=***" in line
    assert "--password-file=/run/keep-this-path" in line  # a path to a secret is not a secret
    assert out["masked_lines"]["processes.txt"] >= 2
    assert " mysql -c 'import time; time.sleep(60)' -uroot '-p***'" in (tmp_path / "processes.txt").read_text()


def test_journal_lines_are_masked_with_the_same_rules():
    journal = (
        "2026-11-26T08:00:01+0800 host app[12]: connecting with password: TopSecretOpt1\n"
        "2026-11-26T08:00:02+0800 host cron[13]: (root) CMD (PGPASSWORD=TopSecretEnv3 pg_dump books)\n"
        '2026-11-26T08:00:03+0800 host api[14]: {"token": "TopSecretTok5", "user": "王会计"}\n'
        "2026-11-26T08:00:04+0800 host sync[15]: GET https://sync:TopSecretUrl4@files.example/x\n"
        "2026-11-26T08:00:05+0800 host sshd[16]: Accepted publickey for root\n"
    )
    text, count = state_capture.masked_text(journal)
    assert count == 4 and not [s for s in SECRETS if s in text]
    assert "王会计" in text and "Accepted publickey for root" in text
    assert redact.mask_secrets("mysqldump -pTopSecretMy6 books") == "mysqldump -p*** books"


def test_bundle_hashes_each_folder_notes_the_snapshot_and_packs_everything(tmp_path, capsys):
    books = tmp_path / "账套" / "杭州示例贸易有限公司"
    (books / "凭证").mkdir(parents=True)
    (books / "凭证" / "2026年11月.csv").write_bytes("日期,科目,借方\n2026-11-01,库存现金,100.00\n".encode())
    gbk = os.fsencode(books / "凭证") + b"/" + "总账.xls".encode("gbk")
    with open(gbk, "wb") as handle:
        handle.write(b"GBK-named workbook")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    dest = tmp_path / "state" / "INC-20261126-001" / "state"
    args = {
        "dest": str(dest),
        "journal_lines": 3,
        "manifest_paths": [str(books), str(tmp_path / "gone"), str(tmp_path / "link")],
        "record": {"snapshot_id": "4b462203" * 8, "paths": [str(books)]},
        "archive": f"{dest}.tar.gz",
    }
    assert run(args, capsys, check_mode=True)["changed"] is True and not dest.exists()
    out = run(args, capsys)
    name = "manifest-0" + str(books).replace("/", "_") + ".jsonl"
    assert oct(dest.stat().st_mode & 0o777) == "0o700"
    assert [m["name"] for m in out["manifests"]] == [name] and out["manifests"][0]["files"] == 2
    assert out["manifest_skipped"] == [
        {"path": str(tmp_path / "gone"), "reason": "missing"},
        {"path": str(tmp_path / "link"), "reason": "a symlink"},
    ]
    entries = [json.loads(line) for line in (dest / name).read_text(encoding="utf-8").splitlines()[1:]]
    files = {e["path"]: e["sha256"] for e in entries if e["type"] == "file"}
    assert files["凭证/2026年11月.csv"] == hashlib.sha256((books / "凭证" / "2026年11月.csv").read_bytes()).hexdigest()
    assert files["凭证/\\xd7\\xdc\\xd5\\xcb.xls"] == hashlib.sha256(b"GBK-named workbook").hexdigest()
    assert json.loads((dest / "pre-restore-snapshot.json").read_text(encoding="utf-8"))["paths"] == [str(books)]
    with tarfile.open(f"{dest}.tar.gz") as tar:
        packed = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert sorted(packed) == sorted([*state_capture.FILES, "pre-restore-snapshot.json", name])
    assert packed[name] == (dest / name).read_bytes()
    assert oct(os.stat(f"{dest}.tar.gz").st_mode & 0o777) == "0o600"
    assert "archive_content" not in out
    # Issue 19: for the action plugin the archive's bytes come back in the same run (no slurp); never in check mode.
    assert "archive_content" not in run({**args, "return_archive": True}, capsys, check_mode=True)
    again = run({**args, "return_archive": True}, capsys)
    assert base64.b64decode(again["archive_content"]) == (dest.parent / "state.tar.gz").read_bytes()
    # a file an earlier run (or anyone) left in dest is not this run's evidence: never packed
    (dest / "manifest-1_srv_old.jsonl").write_text("{}\n", encoding="utf-8")
    run(args, capsys)
    with tarfile.open(f"{dest}.tar.gz") as tar:
        assert sorted(tar.getnames()) == sorted([*state_capture.FILES, "pre-restore-snapshot.json", name])


def test_a_dest_others_can_write_is_refused(tmp_path, capsys):
    dest = tmp_path / "状态"
    dest.mkdir()
    os.chmod(dest, 0o777)
    out = run({"dest": str(dest)}, capsys)
    assert out["failed"] is True and os.listdir(dest) == []
    assert out["msg"] == (
        f"dest {dest} is not this user's private folder (owner uid {os.geteuid()}, mode 0777): others could change "
        "the bundle; 'chown' and 'chmod 700' it, or give another dest."
    )


def test_a_symlink_as_dest_is_refused(tmp_path, capsys):
    (tmp_path / "target").mkdir()
    (tmp_path / "state").symlink_to(tmp_path / "target")
    out = run({"dest": str(tmp_path / "state")}, capsys)
    assert out["failed"] is True
    assert out["msg"] == f"dest {tmp_path / 'state'} is not a folder (or is a symlink): move it away and run again."
    assert os.listdir(tmp_path / "target") == []
