"""Issue 17 through playbooks/incident_respond.yml: the firm's nightly job backs up relative to the parent folder
(``cd <parent> && restic backup books``), so the snapshot stores ``/books/c001/...`` while the client's live path is
``<parent>/books/c001``. The incident still finds the client in the snapshot, restores it into staging at its live
path (restic_restore ``landing: live``) and swaps it back byte-identical.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_incident import Site, evidence_dir, failed_msgs, tree  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")


def relative_backup(site: Site, when: dt.datetime) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C", **site.s3_env}
    env.update({"RESTIC_REPOSITORY": site.repo, "RESTIC_PASSWORD_FILE": str(site.password_file)})
    out = subprocess.run(  # noqa: S603
        ["restic", "backup", "--json", "--host", "localhost", "--time", when.strftime("%Y-%m-%d %H:%M:%S")]
        + [site.books.name],
        env=env,
        cwd=site.books.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if '"summary"' in line][-1]["snapshot_id"]


def test_incident_restores_a_relative_backup_byte_identical(tmp_path, s3_server):
    bucket = "lg-relative-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path, s3_server, bucket)
    site.restic("init")
    snap = relative_backup(site, dt.datetime.now() - dt.timedelta(days=1))
    # restic stores the tree from the relative root: /books/c001/..., not the live path
    listing = site.restic("ls", "--json", snap).stdout.splitlines()
    stored = {json.loads(line).get("path") for line in listing[1:]}
    assert f"/{site.books.name}/c001" in stored and f"{site.books}/c001" not in stored
    clean = tree(site.root("c001"))
    shutil.rmtree(site.root("c001") / "凭证")  # the loss
    (site.root("c001") / "账簿" / "ledger.sqlite").unlink()
    runner = site.run(incident_clients=["c001"], incident_cause="deleted", incident_summary="pytest: relative backup")
    assert runner.rc == 0, failed_msgs(runner)
    assert tree(site.root("c001")) == clean
    report = json.loads((evidence_dir(site) / "report.json").read_text(encoding="utf-8"))
    (c001,) = report["clients"]
    assert c001["status"] == "ok" and c001["snapshot"]["id"].startswith(snap[:8]), c001
    assert c001["verified"] is True, c001
