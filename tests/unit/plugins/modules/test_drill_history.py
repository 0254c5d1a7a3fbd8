"""drill_history (issue 19: the drill's history folder, append, read back and metrics in one module run): the line
written is the one the role's lineinfile wrote, the folders and files get their modes, a record already there is not
appended twice, check mode writes nothing."""

from __future__ import annotations

import base64
import json
import os
import stat

from ansible_collections.ledgerguard.recovery.plugins.modules import drill_history
from conftest import lose_mkdir_race, module_result

RECORD = {"drill_id": "drill-1", "host": "会计服务器", "passed": True, "rto_seconds": 12.5, "clients": [{"id": "c001"}]}


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    return module_result(drill_history.main, args, capsys, check_mode)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_appends_one_sorted_line_creates_folders_and_returns_the_history(tmp_path, capsys):
    history = tmp_path / "状态" / "drills" / "history.jsonl"
    planned = run({"path": str(history), "record": RECORD}, capsys, check_mode=True)
    assert planned["changed"] is True and planned["appended"] is True and not history.parent.exists()
    line = json.dumps(RECORD, ensure_ascii=False, sort_keys=True)
    assert base64.b64decode(planned["content"]).decode() == line + "\n"

    done = run({"path": str(history), "record": RECORD}, capsys)
    assert done["changed"] is True and done["appended"] is True
    assert history.read_text(encoding="utf-8") == line + "\n"
    assert "会计服务器" in history.read_text(encoding="utf-8")  # UTF-8 kept readable, as to_json(ensure_ascii=false)
    assert mode(history) == 0o640
    assert mode(history.parent) == 0o750 and mode(history.parent.parent) == 0o750
    assert base64.b64decode(done["content"]) == history.read_bytes()

    again = run({"path": str(history), "record": RECORD}, capsys)
    assert again["changed"] is False and again["appended"] is False
    assert history.read_text(encoding="utf-8") == line + "\n"


def test_a_last_line_without_newline_gets_one_and_modes_are_put_right(tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    history.write_bytes(b'{"drill_id": "old"}')
    os.chmod(history, 0o600)
    os.chmod(tmp_path, 0o755)
    second = {**RECORD, "drill_id": "drill-2"}
    out = run({"path": str(history), "record": second}, capsys)
    assert out["changed"] is True
    assert history.read_text(encoding="utf-8").splitlines() == [
        '{"drill_id": "old"}',
        json.dumps(second, ensure_ascii=False, sort_keys=True),
    ]
    assert mode(history) == 0o640 and mode(tmp_path) == 0o750


def test_writes_the_metrics_only_when_they_differ(tmp_path, capsys):
    history = tmp_path / "drills" / "history.jsonl"
    prom = tmp_path / "textfile" / "ledgerguard_drill.prom"
    args = {"path": str(history), "record": RECORD, "metrics_path": str(prom), "metrics": "drill_passed 1\n"}
    planned = run(args, capsys, check_mode=True)
    assert planned["metrics_changed"] is True and not prom.parent.exists()
    out = run(args, capsys)
    assert out["metrics_changed"] is True and prom.read_text() == "drill_passed 1\n"
    assert mode(prom) == 0o644 and mode(prom.parent) == 0o755
    assert run(args, capsys)["metrics_changed"] is False
    assert run({**args, "metrics": "drill_passed 0\n"}, capsys)["metrics_changed"] is True
    assert prom.read_text() == "drill_passed 0\n"


def test_a_history_that_is_not_a_file_is_refused_by_name(tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    history.mkdir()
    out = run({"path": str(history), "record": RECORD}, capsys)
    assert out["failed"] is True
    assert out["msg"] == (
        f"drill_history: {history} is not a regular file; the drill history must be one (move it aside)"
    )


def test_a_relative_path_is_refused(capsys):
    out = run({"path": "drills/history.jsonl", "record": RECORD}, capsys)
    assert out["failed"] is True and "path must be absolute" in out["msg"]


def test_a_parent_made_meanwhile_by_another_host_is_used(tmp_path, capsys, monkeypatch):
    """Hosts of one run may share the history's parent folder: the one that loses the race to create it goes on."""
    history = tmp_path / "state" / "relative" / "drills" / "history.jsonl"
    lose_mkdir_race(monkeypatch, tmp_path / "state")
    out = run({"path": str(history), "record": RECORD}, capsys)
    assert out.get("failed") is not True, out
    assert out["appended"] is True and history.is_file() and mode(tmp_path / "state") == 0o750
