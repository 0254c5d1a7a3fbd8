"""Verifier for the incident scenario (testinfra, podman backend): restored bytes, quarantine, thaw, lock, evidence,
and the ransomware still running at the start of the incident (stopped, named in the report, the restore holds)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

INCIDENT = "INC-20261126-901"
WORK = f"/srv/books/.ledgerguard-{INCIDENT}"
# prepare.yml starts the encryptor (molecule/_shared/tasks/encryptor.yml) on books-a with this working directory.
ENCRYPTOR_HOST = "ledgerguard-incident-a"
VOUCHERS = "/srv/books/c001/凭证"


def evidence() -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "evidence" / INCIDENT


def test_clean_snapshot_back_byte_identical(host):
    result = host.run("cd / && sha256sum --quiet -c /root/clean.sha256")
    assert result.rc == 0, result.stdout + result.stderr


def test_damaged_files_in_quarantine(host):
    name = host.backend.get_hostname()
    if name.endswith("-a"):
        found = host.run(f"find {WORK}/quarantine/c001 -type f -name '*.locked' | wc -l").stdout.strip()
        assert int(found) == 5  # 2 CSV, the SQLite ledger, 2 scans
        assert host.file(f"{WORK}/quarantine/c001/srv/books/c001/HOW_TO_DECRYPT.txt").exists
        assert not host.file("/srv/books/c001/HOW_TO_DECRYPT.txt").exists
    else:
        assert host.file("/srv/books/c101/账簿/ledger.sqlite").exists


def test_thawed_and_unlocked(host):
    assert "/srv/books" not in host.file("/proc/self/mountinfo").content_string
    assert not host.file("/var/lib/ledgerguard/incident.lock").exists
    assert host.run("touch /srv/books/probe && rm /srv/books/probe").rc == 0


def test_report_covers_both_hosts():
    report = json.loads((evidence() / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "restored"
    assert [(c["host"], c["id"]) for c in report["clients"]] == [
        ("ledgerguard-incident-b", "c101"),
        ("ledgerguard-incident-a", "c001"),
        ("ledgerguard-incident-a", "c002"),
    ]
    skipped = {c["id"]: c["skipped"] for c in report["clients"]}
    assert any("ransom note" in r for r in skipped["c001"][0]["reasons"])
    assert any("vanished" in r for r in skipped["c101"][0]["reasons"])
    assert skipped["c002"] == []
    for host in ("ledgerguard-incident-a", "ledgerguard-incident-b"):
        assert (evidence() / "hosts" / host / "SHA256SUMS").is_file()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_notices_and_timeline(lang):
    assert (evidence() / "notices" / f"c101.{lang}.md").is_file()
    lines = (evidence() / "timeline.jsonl").read_text(encoding="utf-8").splitlines()
    hosts = {json.loads(line).get("host") for line in lines}
    assert {"ledgerguard-incident-a", "ledgerguard-incident-b"} <= hosts


def test_incident_recorded_as_closed(host):
    marker = host.file(f"/var/lib/ledgerguard/incidents/{INCIDENT}/closed.json")
    assert marker.exists and marker.mode == 0o600
    closed = json.loads(marker.content_string)
    assert closed["incident_id"] == INCIDENT and closed["host"] == host.backend.get_hostname()
    assert all(c["status"] == "ok" for c in closed["clients"])


def test_closed_rerun_left_one_run_in_the_record():
    # The idempotence step re-ran the closed incident: it ended before declaring, so the record lists one run.
    record = json.loads((evidence() / "incident.json").read_text(encoding="utf-8"))
    assert len(record["runs"]) == 1


def test_running_writer_stopped_named_and_the_restore_holds(host, encryptor):
    name = host.backend.get_hostname()
    report = json.loads((evidence() / "report.json").read_text(encoding="utf-8"))
    writers = [r for r in report["containment"] if r["host"] == name and r["role"] == "writer"]
    if name != ENCRYPTOR_HOST:
        assert writers == []  # nothing ran in books-b's folders
        return
    pid = encryptor.pid
    assert pid > 0 and encryptor.state() == "T"  # stopped at the freeze and still stopped after the thaw
    (row,) = writers
    assert (row["pid"], row["role"], row["action"], row["found_by"], row["still_stopped_at_thaw"]) == (
        pid,
        "writer",
        "stopped",
        "freeze",
        True,
    )
    assert (row["exe"], row["holds"]) == ("/usr/bin/python3.11", [f"cwd {VOUCHERS}"])
    by_id = {c["id"]: c for c in report["clients"]}
    assert by_id["c001"]["cause"]["writers"][0].startswith(f"pid {pid} (python")
    assert by_id["c001"]["containment"]["writers_stopped"] == [pid]
    assert by_id["c002"]["cause"]["writers"] == []
    # The swap put c001's files back into the folder the encryptor works in: every one is the snapshot's, and stays so.
    check = "grep -F '  /srv/books/c001/' /root/clean.sha256 | sha256sum --strict -c"
    first = host.run(check)
    assert first.rc == 0 and first.stdout.count(": OK") == 5, first.stdout + first.stderr
    time.sleep(1)  # the encryptor rewrites every file in its folder 20 times a second when it runs
    assert host.run(check).stdout == first.stdout
