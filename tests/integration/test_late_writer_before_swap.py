"""Issue 14: the restore role re-scans the frozen folders right before each client's swap (label ``before_swap``).

A process that starts holding c001's folder after the freeze (while c001 restores into staging) is found by that
rescan, stopped, and c001 is not reported verified (its result names the late writer); c002, which it never touched,
is verified. The process is killed in finally.
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

from test_incident import Site, evidence_dir, failed_msgs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")


def test_writer_appearing_before_the_swap_is_stopped_and_its_client_not_verified(tmp_path, s3_server):
    bucket = "lg-late-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path, s3_server, bucket)
    site.restic("init")
    site.backup(dt.datetime.now() - dt.timedelta(days=1))
    for cid in ("c001", "c002"):
        (site.root(cid) / "凭证" / "2026-09.csv").unlink()  # the loss
    folder = site.root("c001") / "凭证"
    late: list[subprocess.Popen] = []

    def start_writer_during_restore(event: dict) -> bool:
        task = event.get("event_data", {}).get("task", "")
        if (
            not late
            and event.get("event") == "playbook_on_task_start"
            and task.startswith("Restore the chosen snapshot into staging")
        ):
            late.append(
                subprocess.Popen(  # noqa: S603
                    [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"],
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            time.sleep(0.3)
        return True

    try:
        runner = site.run(
            handler=start_writer_during_restore,
            incident_clients=["c001", "c002"],
            incident_cause="deleted",
            incident_summary="pytest: a writer appears during the restore",
        )
        assert late, "the restore task never started"
        pid = late[0].pid
        assert wr.proc_state(pid) == "T", failed_msgs(runner)  # stopped by the before_swap rescan
        report = json.loads((evidence_dir(site) / "report.json").read_text(encoding="utf-8"))
        by_id = {c["id"]: c for c in report["clients"]}
        c001, c002 = by_id["c001"], by_id["c002"]
        assert c001["status"] == "ok", c001
        assert c001["verified"] is False, c001
        assert [w["pid"] for w in c001["late_writers"]] == [pid], c001["late_writers"]
        assert any(str(folder) == p or p.startswith(str(folder)) for p in c001["late_writers"][0]["paths"])
        assert c002["verified"] is True and c002["late_writers"] == [], c002
        rows = [p for p in report["containment"] if p["pid"] == pid]
        assert rows and rows[0]["found_by"] == "before_swap", report["containment"]
        # the rescan that found it is in the evidence as write_freeze records its rescans: folder 0700, file 0600
        record_path = evidence_dir(site) / "hosts" / "localhost" / "rescan-before_swap.json"
        record = json.loads(record_path.read_text(encoding="utf-8"))
        assert (record["host"], record["failed"]) == ("localhost", False), record
        assert record["incident"] == evidence_dir(site).name
        assert pid in [w["pid"] for w in record["writers"]], record["writers"]
        assert (record_path.stat().st_mode & 0o777, record_path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
        assert (site.root("c001") / "凭证" / "2026-09.csv").is_file()
    finally:
        for proc in late:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
