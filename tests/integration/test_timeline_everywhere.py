"""Issue 13 item 14: the runbook's own command, plain `ansible-playbook playbooks/incident_respond.yml` from the
checkout (no ledgerguard CLI, no ANSIBLE_CALLBACKS_ENABLED), writes the hash-chained timeline; a run where the
timeline callback is not enabled (an installed collection under someone else's ansible.cfg, AWX without the
setting) refuses to start at the declaration, says how to enable it, and touches nothing (no lock, no evidence).

Small real incident: one client under a Chinese folder name, a local restic repository, its folder deleted."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from ledgerguard import sampledata

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import verify_chain  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path works as root")


@pytest.fixture
def site(tmp_path):
    books = tmp_path / "客户账套"
    info = sampledata.make_client_tree(books, "c001", "杭州示例贸易有限公司", periods=("2026-10",),
                                       vouchers_per_period=4, pdfs=1, seed=3)  # fmt: skip
    password = tmp_path / "restic-password"
    password.write_text(secrets.token_hex(16) + "\n")
    password.chmod(0o600)
    repo = tmp_path / "repo"
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "RESTIC_REPOSITORY": str(repo),
           "RESTIC_PASSWORD_FILE": str(password), "LC_ALL": "C"}  # fmt: skip
    subprocess.run(["restic", "init"], env=env, check=True, capture_output=True)
    when = (dt.datetime.now() - dt.timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S")  # noqa: DTZ005 - restic's local
    subprocess.run(["restic", "backup", "--host", "localhost", "--time", when, str(books)], env=env, check=True,
                   capture_output=True)  # fmt: skip
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "ledgerguard_clients": [info["client"]]}}}}, ensure_ascii=False), encoding="utf-8")  # fmt: skip
    varsfile = tmp_path / "vars.json"
    varsfile.write_text(json.dumps({
        "ledgerguard_repository": str(repo), "ledgerguard_password_file": str(password),
        "ledgerguard_state_dir": str(tmp_path / "state"), "ledgerguard_evidence_dir": str(tmp_path / "evidence"),
        "incident_operator": "pytest", "incident_cause": "deleted", "incident_clients": ["c001"],
        "incident_freeze_enabled": False, "state_snapshot_journal_lines": 20,
    }), encoding="utf-8")  # fmt: skip
    return {"base": tmp_path, "client": books / "c001", "inventory": inventory, "vars": varsfile}


def ansible_playbook(site, incident_id, **env_more):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_HOME=str(REPO / ".cache" / "ansible-home"), ANSIBLE_FORCE_COLOR="0", **env_more)
    cmd = ["ansible-playbook", "playbooks/incident_respond.yml", "-i", str(site["inventory"]),
           "-e", f"@{site['vars']}", "-e", f"ledgerguard_incident_id={incident_id}"]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_without_the_callback_the_incident_refuses_to_start(site):
    # As under an installed collection with the operator's own ansible.cfg, or AWX without the setting.
    out = ansible_playbook(site, "INC-20261126-101", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer")
    flat = " ".join((out.stdout + out.stderr).split())
    assert out.returncode != 0
    assert "Incident INC-20261126-101 refused to start, nothing was touched" in flat, flat[-3000:]
    assert "callbacks_enabled = ledgerguard.recovery.timeline" in flat
    assert not (site["base"] / "evidence" / "INC-20261126-101" / "timeline.jsonl").exists()
    assert not (site["base"] / "state" / "incident.lock").exists()


def test_runbook_command_writes_the_timeline(site):
    shutil_rmtree(site["client"])  # the client's folder was deleted
    # Another program on the host runs with a secret on its command line (item 17): the state bundle masks it.
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "--password=BundleSecret17x",
                               "https://sync:BundleSecret17y@files.example/"])  # fmt: skip
    try:
        out = ansible_playbook(site, "INC-20261126-102")
    finally:
        victim.kill()
        victim.wait()
    evidence = site["base"] / "evidence" / "INC-20261126-102"
    processes = (evidence / "hosts" / "localhost" / "processes.txt").read_text(encoding="utf-8")
    assert "--password=***" in processes and "https://sync:***@files.example/" in processes
    leaks = [p for p in evidence.rglob("*") if p.is_file() and b"BundleSecret17" in p.read_bytes()]
    assert leaks == []
    timeline = site["base"] / "evidence" / "INC-20261126-102" / "timeline.jsonl"
    assert timeline.is_file(), (out.stdout + out.stderr)[-4000:]
    chain = verify_chain(str(timeline))
    assert chain["ok"] and chain["lines"] > 20
    lines = [json.loads(line) for line in timeline.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["event"] == "run_start" and lines[0]["run"]
    assert any(rec.get("task", "") and "Check that the tamper-evident timeline" in rec["task"] for rec in lines)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert (site["client"]).is_dir()


def shutil_rmtree(path):
    import shutil

    shutil.rmtree(path)
