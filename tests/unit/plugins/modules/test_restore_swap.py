"""restore_swap run in-process on real trees: check mode, swap, quarantine, kept files, idempotence."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import restore_swap
from conftest import module_result

SNAPSHOT_TIME = "2026-11-25T02:00:00.123456789Z"


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    return module_result(restore_swap.main, args, capsys, check_mode)


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def old(path):
    """Give a file an mtime before the snapshot."""
    ts = time.mktime(time.strptime("2026-11-24", "%Y-%m-%d"))
    os.utime(path, (ts, ts))


@pytest.fixture
def site(tmp_path):
    live = tmp_path / "books" / "c001"
    (live / "凭证").mkdir(parents=True)
    (live / "账簿").mkdir()
    (live / "凭证" / "2026-09.csv").write_text("期间,凭证号\n2026-09,1\n" * 20, encoding="utf-8")
    (live / "凭证" / "2026-10.csv").write_text("期间,凭证号\n2026-10,1\n" * 20, encoding="utf-8")
    (live / "账簿" / "ledger.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x01" * 500)
    (live / "notes.txt").write_text("to do\n")
    os.chmod(live / "notes.txt", 0o640)
    staging = tmp_path / "books" / ".lg" / "staging" / "c001"
    shutil.copytree(live, staging / str(live).lstrip("/"), symlinks=True)
    for path in live.rglob("*"):
        old(path)
    # The damage and the later work.
    (live / "凭证" / "2026-09.csv").rename(live / "凭证" / "2026-09.csv.locked")
    (live / "README_DECRYPT.txt").write_text("pay\n")
    (live / "账簿" / "ledger.sqlite").write_bytes(os.urandom(516))
    (live / "凭证" / "2026-10.csv").write_text("期间,凭证号\n2026-10,1\n" * 21, encoding="utf-8")  # legit edit
    (live / "凭证" / "2026-11.csv").write_text("期间,凭证号\n2026-11,1\n", encoding="utf-8")  # new work
    quarantine = tmp_path / "books" / ".lg" / "quarantine" / "c001"
    return {
        "live": live,
        "snap": staging / str(live).lstrip("/"),
        "args": {
            "paths": [str(live)],
            "staging": str(staging),
            "quarantine": str(quarantine),
            "snapshot_time": SNAPSHOT_TIME,
        },
        "quarantine": quarantine,
    }


def test_check_mode_plans_and_changes_nothing(site, capsys):
    before = sorted(str(p) for p in site["live"].rglob("*"))
    result = run(site["args"], capsys, check_mode=True)
    assert result["changed"] is True
    assert result["restored"] == [str(site["live"] / "凭证" / "2026-09.csv")]
    assert sorted(str(p) for p in site["live"].rglob("*")) == before
    assert not site["quarantine"].exists()


def test_swap_quarantines_damage_keeps_work_and_is_idempotent(site, capsys):
    live, snap = site["live"], site["snap"]
    locked_sha = sha(live / "凭证" / "2026-09.csv.locked")
    corrupt_sha = sha(live / "账簿" / "ledger.sqlite")
    result = run(site["args"], capsys)
    assert result["changed"] is True and result["verified"] is True
    assert result["restored"] == [str(live / "凭证" / "2026-09.csv")]
    assert result["replaced"] == [str(live / "账簿" / "ledger.sqlite")]
    reasons = {os.path.basename(q["path"]): q["reason"] for q in result["quarantined"]}
    assert reasons == {
        "2026-09.csv.locked": "ransomware extension .locked",
        "README_DECRYPT.txt": "ransom note name",
        "ledger.sqlite": "file header is not sqlite any more",
    }
    for rel in ("凭证/2026-09.csv", "账簿/ledger.sqlite", "notes.txt"):
        assert sha(live / rel) == sha(snap / rel)
    assert oct(os.stat(live / "notes.txt").st_mode & 0o777) == "0o640"
    q = site["quarantine"] / str(live).lstrip("/")
    assert sha(q / "凭证" / "2026-09.csv.locked") == locked_sha
    assert sha(q / "账簿" / "ledger.sqlite") == corrupt_sha
    assert [k["path"] for k in result["kept_changed"]] == [str(live / "凭证" / "2026-10.csv")]
    assert [k["path"] for k in result["kept_new"]] == [str(live / "凭证" / "2026-11.csv")]
    assert (live / "凭证" / "2026-10.csv").read_text(encoding="utf-8") == "期间,凭证号\n2026-10,1\n" * 21
    again = run(site["args"], capsys)
    assert again["changed"] is False
    assert again["restored"] == again["replaced"] == again["quarantined"] == []


def test_silent_corruption_with_old_mtime_is_replaced(site, capsys):
    live = site["live"]
    target = live / "notes.txt"
    target.write_text("to dO\n")
    old(target)
    result = run(site["args"], capsys)
    assert str(target) in result["replaced"]
    reason = next(q["reason"] for q in result["quarantined"] if q["path"] == str(target))
    assert reason.startswith("content differs from the snapshot but the file was not modified after it")


def test_deleted_client_folder_is_recreated(site, capsys):
    shutil.rmtree(site["live"])
    result = run(site["args"], capsys)
    assert len(result["restored"]) == 4
    assert sha(site["live"] / "账簿" / "ledger.sqlite") == sha(site["snap"] / "账簿" / "ledger.sqlite")


def test_missing_staging_is_a_clear_error(site, capsys, tmp_path):
    args = {**site["args"], "staging": str(tmp_path / "nowhere")}
    result = run(args, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith(f"restore_swap: {site['live']} was not found in staging")


def test_bad_snapshot_time(site, capsys):
    result = run({**site["args"], "snapshot_time": "yesterday"}, capsys)
    assert result["msg"].startswith("restore_swap: snapshot_time 'yesterday' is not an RFC 3339 time")


def test_marker_written_right_after_the_swap_not_in_check_mode_nor_when_it_cannot_be(site, capsys, tmp_path):
    """The swap record (restore_clients' <client>.swapped.json) comes from the swap's own run: the caller's fields,
    the time and the counts, pretty UTF-8 JSON, mode 0600, by rename. A marker that cannot be written leaves the swap
    reported (its files are in place) with marker_failed; check mode and a failed swap write nothing."""
    markers = tmp_path / "状态" / "restore"
    markers.mkdir(parents=True)
    path = markers / "c001.swapped.json"
    record = {"id": "c001", "run": "20261126T093000Z-00abcd", "snapshot": "e5c57c8f" * 8, "staging": "/s/客户"}
    args = {**site["args"], "marker": {"path": str(path), "record": record}}
    planned = run(args, capsys, check_mode=True)
    assert "marker" not in planned and not path.exists()
    failed = run({**args, "staging": str(tmp_path / "nowhere")}, capsys)
    assert failed["failed"] is True and not path.exists()
    result = run(args, capsys)
    assert result["marker"] == str(path) and "marker_failed" not in result
    written = json.loads(path.read_text(encoding="utf-8"))
    assert list(written) == [*record, "swapped_at", "restored", "replaced", "quarantined"]
    assert {k: written[k] for k in record} == record
    assert (written["restored"], written["replaced"], written["quarantined"]) == (1, 1, 3)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", written["swapped_at"])
    assert path.read_text(encoding="utf-8") == json.dumps(written, ensure_ascii=False, indent=4) + "\n"
    assert oct(path.stat().st_mode & 0o777) == "0o600" and sorted(os.listdir(markers)) == ["c001.swapped.json"]
    gone = {**args, "marker": {"path": str(tmp_path / "没有" / "c001.swapped.json"), "record": record}}
    again = run(gone, capsys)
    assert not again.get("failed") and again["changed"] is False and "marker" not in again
    assert again["marker_failed"].startswith(f"restore_swap: the swap record {tmp_path}/没有/c001.swapped.json could")
