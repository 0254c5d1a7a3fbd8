"""Issue 13 item 10 through the incident role: three controllers take the same host's lock at the same moment
(ansible-playbook runs of roles/incident/tasks/lock.yml); exactly one wins, the others are refused naming it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import role_tasks_playbook, write_inventory

REPO = Path(__file__).resolve().parents[2]


def test_three_concurrent_takers_exactly_one_wins(tmp_path):
    state = tmp_path / "state"
    playbook = role_tasks_playbook(tmp_path / "lock.yml", "incident", "lock", "Take the host lock")
    inventory = write_inventory(tmp_path / "hosts.json")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    procs = {}
    for i in range(3):
        incident = f"INC-20261126-00{i + 1}"
        extra = json.dumps({"ledgerguard_incident_id": incident, "ledgerguard_state_dir": str(state),
                            "__incident_operator": f"op{i}"})  # fmt: skip
        procs[incident] = subprocess.Popen(
            ["ansible-playbook", "-i", str(inventory), str(playbook), "-e", extra],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    results = {incident: (p.wait(timeout=300), p.stdout.read()) for incident, p in procs.items()}
    winners = [incident for incident, (rc, _out) in results.items() if rc == 0]
    assert len(winners) == 1, {k: v[1][-1500:] for k, v in results.items()}
    winner = winners[0]
    lock = json.loads((state / "incident.lock").read_text(encoding="utf-8"))
    assert lock["incident_id"] == winner
    for incident, (rc, out) in results.items():
        if incident != winner:
            flat = " ".join(out.split())
            assert rc != 0 and f"is locked by incident {winner}" in flat, out[-1500:]
            assert f"Nothing was changed by {incident} on this host" in flat
