"""The backup role end to end: playbooks/backup.yml through ansible-runner, real restic on moto S3.

Per-client snapshots and manifests as the incident path expects them; a SQLite ledger written continuously during
the backup restores consistent at its own path; refusal under an incident lock and against a second run; retention
over a synthetic multi-year history; the off-site copy to a second bucket.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledgerguard import sampledata
from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="consistent SQLite captures use a mount namespace (root)")

NAMES = {"c001": "杭州示例贸易有限公司", "c002": "宁波海风餐饮管理有限公司"}
MANIFEST_TAG = "ledgerguard-manifest"


class Site:
    """A host's books (two clients; c001 declares its SQLite ledger), a repository, the controller's secret files."""

    def __init__(self, base: Path, s3_server, bucket: str):
        self.base = base
        self.books = base / "客户账套"
        self.state = base / "state"
        self.s3_env = s3_server.env()
        self.s3_server = s3_server
        self.password_file = self.secret("restic-password", secrets.token_hex(16) + "\n")
        self.credentials_file = self.secret(
            "s3-credentials",
            f"[default]\naws_access_key_id = {self.s3_env['AWS_ACCESS_KEY_ID']}\n"
            f"aws_secret_access_key = {self.s3_env['AWS_SECRET_ACCESS_KEY']}\n",
        )
        self.repo = s3_server.restic_url(bucket, "restic")
        self.restic("init")
        self.clients = []
        for n, cid in enumerate(NAMES, start=1):
            info = sampledata.make_client_tree(
                self.books, cid, NAMES[cid], periods=("2026-09", "2026-10"), vouchers_per_period=6, pdfs=1, seed=n
            )
            client = {k: info["client"][k] for k in ("id", "name", "paths")}
            if cid == "c001":
                client["sqlite"] = info["client"]["sqlite"]
                client["excludes"] = ["*.tmp"]
            self.clients.append(client)
        (self.books / "c001" / "scratch.tmp").write_text("excluded\n")

    def secret(self, name: str, text: str) -> Path:
        path = self.base / name
        path.write_text(text)
        path.chmod(0o600)
        return path

    def restic(self, *args: str, repo: str | None = None, password_file: Path | None = None):
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C", **self.s3_env}
        env.update({"RESTIC_REPOSITORY": repo or self.repo, "RESTIC_PASSWORD_FILE": str(password_file or self.password_file)})
        return subprocess.run(["restic", *args], env=env, capture_output=True, text=True, check=True)

    def snapshots(self, repo: str | None = None, password_file: Path | None = None) -> list[dict]:
        return json.loads(self.restic("snapshots", "--json", repo=repo, password_file=password_file).stdout) or []

    def run(self, check: bool = False, **extravars):
        inv = {
            "all": {
                "hosts": {
                    "localhost": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        "ledgerguard_clients": self.clients,
                    }
                }
            }
        }
        path = self.base / "inventory.json"
        path.write_text(json.dumps(inv, ensure_ascii=False), encoding="utf-8")
        base = {
            "ledgerguard_repository": self.repo,
            "ledgerguard_password_file": str(self.password_file),
            "ledgerguard_s3_credentials_file": str(self.credentials_file),
            "ledgerguard_state_dir": str(self.state),
        }
        base.update(extravars)
        run = PlaybookRun(
            playbook="backup.yml",
            private_data_dir=self.base / "runner",
            inventory=str(path),
            extravars=base,
            check=check,
        )
        return run_playbook(run)


def failed_msgs(runner) -> list[str]:
    return [
        str(ev["event_data"].get("res", {}).get("msg", ""))
        for ev in runner.events
        if ev.get("event") == "runner_on_failed" and not ev["event_data"].get("ignore_errors")
    ]


def facts(runner, name: str):
    """The last value a set_fact task gave ``name``."""
    found = None
    for ev in runner.events:
        res = ev.get("event_data", {}).get("res", {})
        if ev.get("event") == "runner_on_ok" and name in res.get("ansible_facts", {}):
            found = res["ansible_facts"][name]
    return found


def data_snapshots(site: Site, **kw) -> list[dict]:
    return [s for s in site.snapshots(**kw) if MANIFEST_TAG not in (s.get("tags") or [])]


@pytest.fixture
def site(tmp_path, s3_server):
    bucket = "lg-bk-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    return Site(tmp_path, s3_server, bucket)


# ------------------------------------------------------------------------------------------------ per client


def test_per_client_snapshots_with_manifests_as_the_incident_expects(site):
    checked = site.run(check=True)
    assert checked.rc == 0, failed_msgs(checked)
    assert site.snapshots() == []  # check mode made nothing

    runner = site.run()
    assert runner.rc == 0, failed_msgs(runner)
    results = {r["client"]: r for r in facts(runner, "backup_results")}
    snaps = {s["id"]: s for s in site.snapshots()}
    for client in site.clients:
        cid = client["id"]
        res = results[cid]
        snap = snaps[res["snapshot_id"]]
        # what the incident path filters on: host = inventory hostname, the client's declared paths; tagged by client
        assert snap["hostname"] == "localhost"
        assert snap["paths"] == client["paths"]
        assert snap["tags"] == [cid, "ledgerguard-backup"]
        manifest = snaps[res["manifest_snapshot_id"]]
        assert manifest["tags"] == [MANIFEST_TAG, f"ledgerguard-manifest-for={res['snapshot_id']}"]
        assert res["line"].startswith(f"{cid} ({NAMES[cid]}): ")
        assert f"snapshot {res['snapshot_id'][:8]}" in res["line"] and f"manifest {res['manifest_snapshot_id'][:8]}"
        assert int(res["files_new"]) > 0 and int(res["bytes_added"]) > 0
    assert results["c001"]["ledgers"][0]["check"] == "ok"
    assert "1 SQLite ledger(s) captured consistently" in results["c001"]["line"]
    # the per-client excludes apply
    listing = site.restic("ls", results["c001"]["snapshot_id"]).stdout
    assert "scratch.tmp" not in listing and "ledger.sqlite" in listing
    # the lock is free again, and its copies folder is empty
    assert not [p for p in (site.state / "backup-work").iterdir()]
    fd = os.open(site.state / "backup.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


# ------------------------------------------------------------------------------------------------ consistent SQLite

WRITER = r"""
import sqlite3, sys, time, os
db, mode, flag = sys.argv[1], sys.argv[2], sys.argv[3]
conn = sqlite3.connect(db, timeout=60, isolation_level=None)
conn.execute(f"PRAGMA journal_mode={mode}")
conn.execute("CREATE TABLE IF NOT EXISTS pytest_writes (id INTEGER PRIMARY KEY, batch INTEGER, payload BLOB)")
batch = 0
while not os.path.exists(flag):
    batch += 1
    conn.execute("BEGIN IMMEDIATE")
    for _ in range(40):
        conn.execute("INSERT INTO pytest_writes (batch, payload) VALUES (?, randomblob(2048))", (batch,))
    conn.execute("UPDATE pytest_writes SET payload = randomblob(1024) WHERE id % 97 = ?", (batch % 97,))
    conn.execute("COMMIT")
"""


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_sqlite_written_during_the_backup_restores_consistent_at_its_path(site, tmp_path, journal):
    ledger = Path(site.clients[0]["sqlite"][0])
    flag = tmp_path / "stop-writer"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(ledger), journal, str(flag)])
    try:
        deadline = time.monotonic() + 30
        before = 0
        while before < 400 and time.monotonic() < deadline:  # the writer is well under way
            time.sleep(0.2)
            try:
                conn = sqlite3.connect(ledger, timeout=30)
                before = conn.execute("SELECT count(*) FROM pytest_writes").fetchone()[0]
                conn.close()
            except sqlite3.OperationalError:
                before = 0
        assert before >= 400
        runner = site.run(backup_client_ids=["c001"], backup_retention_enabled=False)
        conn = sqlite3.connect(ledger, timeout=30)
        after = conn.execute("SELECT count(*) FROM pytest_writes").fetchone()[0]
        conn.close()
    finally:
        flag.write_text("stop")
        writer.wait(timeout=60)
    assert runner.rc == 0, failed_msgs(runner)
    assert after > before  # the writer really wrote during the backup
    result = facts(runner, "backup_results")[0]
    target = tmp_path / "restored"
    site.restic("restore", result["snapshot_id"], "--target", str(target))
    restored = target / str(ledger).lstrip("/")
    assert restored.is_file()
    for suffix in ("-wal", "-shm", "-journal"):
        assert not Path(str(restored) + suffix).exists()  # the live ledger's companions stay out of the snapshot
    conn = sqlite3.connect(f"file:{restored}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        count, top = conn.execute("SELECT count(*), max(id) FROM pytest_writes").fetchone()
        batches = conn.execute("SELECT batch, count(*) FROM pytest_writes GROUP BY batch").fetchall()
        vouchers = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    finally:
        conn.close()
    assert count >= before and count == top  # every row committed before the backup started, no hole
    assert all(n == 40 for _, n in batches)  # whole transactions only
    assert vouchers >= 2  # the ledger's own tables came along
    # the live ledger itself was never touched by the capture (no bind mount leaked to the host)
    assert not any(str(ledger) in line for line in Path("/proc/self/mounts").read_text().splitlines())


# ------------------------------------------------------------------------------------------------ locks


def test_refused_while_an_incident_holds_the_host(site):
    site.state.mkdir(parents=True, exist_ok=True)
    lock = {"incident_id": "INC-20261204-0001", "operator": "张伟", "created": "2026-12-04T08:00:00Z"}
    (site.state / "incident.lock").write_text(json.dumps(lock, ensure_ascii=False))
    runner = site.run()
    assert runner.rc != 0
    msgs = failed_msgs(runner)
    assert any(
        "Incident INC-20261204-0001 holds this host (operator 张伟" in m and "nothing was backed up" in m for m in msgs
    ), msgs
    assert site.snapshots() == []


def test_a_second_run_exits_with_a_clear_message(site):
    site.state.mkdir(parents=True, exist_ok=True)
    path = site.state / "backup.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder = {"run_id": "first-run", "purpose": "backup", "host": "books-hz01", "pid": os.getpid(),
              "started": "2026-12-04T01:00:00Z"}  # fmt: skip
    os.write(fd, json.dumps(holder).encode())
    try:
        runner = site.run()
    finally:
        os.close(fd)
    assert runner.rc != 0
    msgs = failed_msgs(runner)
    assert any(
        f"Another backup run holds {path} (run first-run, started 2026-12-04T01:00:00Z on books-hz01, holder PID "
        f"{os.getpid()})" in m and "this run exits without doing anything" in m
        for m in msgs
    ), msgs
    assert site.snapshots() == []
    # the first run's lock was left alone
    assert json.loads(path.read_text())["run_id"] == "first-run"
