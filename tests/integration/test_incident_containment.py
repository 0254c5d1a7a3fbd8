"""Issue 14, end to end: ransomware that is still running when the incident starts.

An encryptor whose working directory is inside a client folder keeps rewriting every file it finds there by relative
path during the whole incident. playbooks/incident_respond.yml (default readonly_bind freeze, default containment
`stop`) must find it, stop it before anything is restored, restore the client byte-identical, keep it stopped through
the thaw, and name it in the report's Containment section and the client's cause. The process is killed in finally.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import writers as wr

from test_incident import Site, attack, evidence_dir, failed_msgs, tree

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

ENCRYPTOR = r"""
import os, time
n = 0
while True:
    n += 1
    for name in sorted(os.listdir(".")):
        try:
            with open(name, "r+b") as fh:
                fh.write(b"LOCKED-%d " % n)
        except OSError:
            pass
    time.sleep(0.01)
"""


def test_running_encryptor_is_stopped_and_named_and_the_restore_holds(tmp_path, s3_server):
    bucket = "lg-incc-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path, s3_server, bucket)
    site.restic("init")
    now = dt.datetime.now()
    site.backup(now - dt.timedelta(days=1))
    clean = tree(site.root("c001"))
    attack(site)
    site.backup(now - dt.timedelta(minutes=30))
    vouchers = site.root("c001") / "凭证"
    encryptor = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", ENCRYPTOR, "--key=hunter2"],
        cwd=vouchers,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(0.5)
        assert wr.proc_state(encryptor.pid) in ("R", "S")
        runner = site.run(incident_cause="ransomware", incident_summary="pytest: an encryptor still running")
        assert runner.rc == 0, failed_msgs(runner)
        # Stopped at the freeze and still stopped after the thaw (resuming it is a person's decision).
        assert wr.proc_state(encryptor.pid) == "T"
        assert tree(site.root("c001")) == clean
        time.sleep(0.5)
        assert tree(site.root("c001")) == clean, "the restored files must stay byte-identical after the thaw"

        ev = evidence_dir(site)
        report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
        assert report["status"] == "restored"
        (row,) = [p for p in report["containment"] if p["pid"] == encryptor.pid]
        assert (row["role"], row["action"], row["found_by"], row["still_stopped_at_thaw"]) == (
            "writer",
            "stopped",
            "freeze",
            True,
        )
        assert row["holds"] == [f"cwd {vouchers}"]
        assert "hunter2" not in (ev / "report.json").read_text(encoding="utf-8")
        by_id = {c["id"]: c for c in report["clients"]}
        assert by_id["c001"]["cause"]["writers"][0].startswith(f"pid {encryptor.pid} (python")
        assert by_id["c002"]["cause"]["writers"] == []
        md = (ev / "report.md").read_text(encoding="utf-8")
        assert "## Containment" in md and f"| {encryptor.pid} |" in md and "kill -CONT" in md
        notice = (ev / "notices" / "c001.en.md").read_text(encoding="utf-8")
        assert "Found the program that was still changing files in your records folder and stopped it" in notice
        assert "发现仍在改动贵司账务资料文件夹中文件的程序" in (ev / "notices" / "c001.zh-CN.md").read_text("utf-8")
        assert "Checked that no program was still changing files" in (ev / "notices" / "c002.en.md").read_text()
        thaw = json.loads((ev / "hosts" / "localhost" / "thaw.json").read_text(encoding="utf-8"))
        assert [p["pid"] for p in thaw["stopped_processes"]] == [encryptor.pid]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(encryptor.pid, signal.SIGCONT)
            os.kill(encryptor.pid, signal.SIGKILL)
        encryptor.wait(timeout=10)
