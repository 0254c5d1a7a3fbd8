"""The drill role's host-side script, run as ansible.builtin.script runs it: the SQLite checks (the restore's
progress is job_progress's, tests/unit/plugins/modules/test_job_progress.py)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

FILES = Path(__file__).resolve().parents[2] / "roles" / "drill" / "files"


def script(name: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, str(FILES / name), *args], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_sqlite_integrity_ok_and_damaged(tmp_path):
    good = tmp_path / "账簿.sqlite"
    db = sqlite3.connect(good)
    db.execute("CREATE TABLE t (a TEXT)")
    db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,) for _row in range(200)])
    db.commit()
    db.close()
    bad = tmp_path / "bad.db"
    raw = bytearray(good.read_bytes())
    raw[4096 : 4096 + 64] = b"\xff" * 64
    bad.write_bytes(bytes(raw))
    text = tmp_path / "notes.db"
    text.write_text("not a database")
    out = script("sqlite_integrity.py", str(good), str(bad), str(text))
    assert out["ok"] is False
    by = {Path(f["path"]).name: f for f in out["files"]}
    assert by["账簿.sqlite"] == {"path": str(good), "ok": True, "result": "ok"}
    assert by["bad.db"]["ok"] is False and by["bad.db"]["result"]
    assert by["notes.db"] == {"path": str(text), "ok": False, "result": "cannot check: file is not a database"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db", "notes.db", "账簿.sqlite"]  # no journal files
