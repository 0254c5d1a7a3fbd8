"""`make check`'s smoke incident: one small incident for one client through ansible-runner (issue 19, "a fast loop").

The edit loop's proof that the incident path still works end to end, in well under a minute: a client's books backed
up to restic on the moto S3 server, hit by ransomware (files encrypted and renamed, a ransom note), then
playbooks/incident_respond.yml restores them. The full incident tests (three clients, dry run, re-run, notices) are in
tests/integration/test_incident.py and run in `make test`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from ledgerguard import sampledata
from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

CLIENT, NAME = "c001", "杭州示例贸易有限公司"


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_one_client_incident_restores_the_books(
    tmp_path, s3_server, s3_bucket, restic_password_file, s3_credentials_file, restic_cmd
):
    books = tmp_path / "books"
    client = sampledata.make_client_tree(books, CLIENT, NAME, periods=("2026-10",), vouchers_per_period=4, pdfs=1)
    client = dict(client["client"], priority=10)
    repo = s3_server.restic_url(s3_bucket, "restic")
    env = s3_server.env()
    restic_cmd(repo, restic_password_file, "init", env=env)
    when = (dt.datetime.now() - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    restic_cmd(repo, restic_password_file, "backup", "--host", "localhost", "--time", when, str(books), env=env)
    clean = tree(books / CLIENT)

    # Ransomware: every file encrypted (random bytes) and renamed, and a note.
    for path in [p for p in (books / CLIENT).rglob("*") if p.is_file()]:
        path.write_bytes(os.urandom(max(path.stat().st_size, 256)))
        path.rename(path.with_name(path.name + ".locked"))
    (books / CLIENT / "HOW_TO_DECRYPT.txt").write_text("pay us\n")

    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ledgerguard_clients": [client],
    }
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": host}}}, ensure_ascii=False), encoding="utf-8")
    evidence = tmp_path / "evidence"
    extravars = {
        "ledgerguard_repository": repo,
        "ledgerguard_password_file": str(restic_password_file),
        "ledgerguard_s3_credentials_file": str(s3_credentials_file),
        "ledgerguard_state_dir": str(tmp_path / "state"),
        "ledgerguard_evidence_dir": str(evidence),
        "incident_operator": "pytest",
        "incident_cause": "ransomware",
        "incident_summary": "smoke: one client",
        "incident_detected_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "state_snapshot_journal_lines": 20,
    }
    run = PlaybookRun(
        playbook="incident_respond.yml",
        private_data_dir=tmp_path / "runner",
        inventory=str(inventory),
        extravars=extravars,
    )
    runner = run_playbook(run)
    failed = [
        str(ev["event_data"].get("res", {}).get("msg", ""))
        for ev in runner.events
        if ev.get("event") == "runner_on_failed" and not ev["event_data"].get("ignore_errors")
    ]
    assert runner.rc == 0, failed

    # Every file of the client is back byte for byte; the encrypted files and the note went to the quarantine.
    assert tree(books / CLIENT) == clean
    folders = sorted(evidence.glob("INC-*"))
    assert len(folders) == 1, folders
    report = json.loads((folders[0] / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "restored"
    assert [(c["id"], c["name"]) for c in report["clients"]] == [(CLIENT, NAME)]
