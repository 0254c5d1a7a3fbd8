"""The drill role's host-side scripts, run as ansible.builtin.script runs them: restore progress and SQLite checks."""

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


def test_progress_counts_restored_bytes_until_the_async_job_ends(tmp_path):
    target = tmp_path / "sandbox" / "c001"
    (target / "srv" / "books").mkdir(parents=True)
    (target / "srv" / "books" / "a.csv").write_bytes(b"x" * 1000)
    (target / "srv" / "books" / "b.pdf").write_bytes(b"y" * 24)
    (target / "srv" / "books" / "link").symlink_to("a.csv")  # links are not counted twice
    job = tmp_path / "async_job"
    job.write_text(json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j1"}))
    out = script("drill_progress.py", str(target), str(job), "2048", "restore c001")
    assert out == {
        "ledgerguard_progress": {"done": 1024, "total": 2048, "unit": "bytes", "label": "restore c001"},
        "finished": False,
    }
    job.write_text(json.dumps({"changed": True, "files": 2, "bytes": 1024}))  # the module's result: job ended
    out = script("drill_progress.py", str(target), str(job), "2048", "restore c001")
    assert out["finished"] is True and out["ledgerguard_progress"]["done"] == 2048
    assert script("drill_progress.py", str(tmp_path / "none"), str(tmp_path / "nojob"))["finished"] is False
    assert job.exists()  # without --collect the results file is async_status's


def test_progress_collects_the_ended_jobs_result_and_removes_its_results_file(tmp_path):
    target = tmp_path / "沙箱" / "c001"
    target.mkdir(parents=True)
    job = tmp_path / "async_job"
    job.write_text(json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j1"}))
    out = script("drill_progress.py", "--collect", str(target), str(job), "0", "restore c001")
    assert out["finished"] is False and "result" not in out and job.exists()
    failed = {"failed": True, "msg": "Snapshot 1a2b3c4d cannot be restored", "finished": 1}
    job.write_text(json.dumps(failed))
    out = script("drill_progress.py", "--collect", str(target), str(job), "0", "restore c001")
    assert out["finished"] is True and out["result"] == failed
    assert out["ledgerguard_progress"] == {"done": 0, "total": None, "unit": "bytes", "label": "restore c001"}
    assert not job.exists()


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
