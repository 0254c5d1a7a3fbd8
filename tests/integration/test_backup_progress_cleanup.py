"""Issue 15: the backup role's cleanup after its one restic_backup run removes the progress file AND the finished
clients' file beside it (<progress file>.finished), which job_progress removes only on a poll that sees the job end:
a run whose polling failed left it in the state folder. Runs the role's cleanup (roles/backup/tasks/
progress_cleanup.yml, imported by clients.yml's always block) through ansible-playbook, twice."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import role_tasks_playbook

REPO = Path(__file__).resolve().parents[2]


def test_the_cleanup_removes_the_progress_file_and_the_finished_clients_file_only(tmp_path, localhost_inventory):
    state = tmp_path / "状态"
    state.mkdir()
    progress = state / "backup-progress-r1.json"
    progress.write_text(json.dumps({"done": 1, "total": 2, "current": "c002", "finished": []}), encoding="utf-8")
    finished = state / "backup-progress-r1.json.finished"
    finished.write_text(json.dumps({"id": "c001", "name": "杭州示例贸易有限公司", "status": "ok"}) + "\n", "utf-8")
    others = [state / "backup-progress-r2.json.finished", state / "backup.lock", state / "incident.lock"]
    for path in others:  # another run's file, the locks: not this run's to remove
        path.write_text("x\n", encoding="utf-8")
    playbook = role_tasks_playbook(
        tmp_path / "cleanup.yml", "backup", "progress_cleanup", "The backup role's progress cleanup"
    )
    inventory = localhost_inventory()
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    extra = json.dumps({"ledgerguard_state_dir": str(state), "__backup_run_id": "r1"}, ensure_ascii=False)
    argv = ["ansible-playbook", "-i", str(inventory), str(playbook), "-e", extra]
    for run in (1, 2):  # the second run finds nothing to remove and changes nothing
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"run {run}: " + done.stdout[-3000:] + done.stderr[-2000:]
        assert not progress.exists() and not finished.exists()
        assert all(path.exists() for path in others)
        assert "changed=0" in done.stdout and "failed=0" in done.stdout, done.stdout[-2000:]
