"""pre_restore_snapshot reuses an earlier run's snapshot of the incident only for the paths it holds: a client added
to the incident later gets its damaged state backed up (before, the earlier snapshot was reused and the new client's
state was reported kept while it was in no snapshot)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import restic

PLAYBOOKS = Path(__file__).parent / "playbooks"


def task_result(runner, name: str) -> dict:
    return next(
        ev["event_data"]["res"]
        for ev in runner.events
        if ev.get("event") == "runner_on_ok" and ev["event_data"].get("task") == name
    )


def test_a_client_added_later_gets_its_damaged_state_kept(
    tmp_path, playbook, localhost_inventory, local_repo, restic_password_file
):
    first = tmp_path / "账套" / "c001"
    second = tmp_path / "账套" / "c002"
    for folder, text in ((first, "被加密的凭证"), (second, "被篡改的总账")):
        folder.mkdir(parents=True)
        (folder / "凭证.csv.locked").write_text(text, encoding="utf-8")
    hostvars = {"ledgerguard_repository": local_repo, "ledgerguard_password_file": str(restic_password_file),
                "first": str(first), "second": str(second)}  # fmt: skip
    runner = playbook(str(PLAYBOOKS / "pre_restore_reuse.yml"), inventory=localhost_inventory(hostvars))
    assert runner.status == "successful"
    one = task_result(runner, "Keep the damaged state of the first client")
    both = task_result(runner, "Keep the damaged state of both clients")
    again = task_result(runner, "Keep it a third time (nothing new)")
    assert one["changed"] is True and one["reused"] is False and one["paths"] == [str(first)]
    assert both["changed"] is True and both["reused"] is False and both["short_id"] != one["short_id"]
    assert both["paths"] == [str(first), str(second)]
    assert both["paths_in_earlier"] == {str(first): one["short_id"]}
    assert again["changed"] is False and again["reused"] is True and again["short_id"] == both["short_id"]
    snaps = json.loads(restic(local_repo, restic_password_file, "snapshots", "--json").stdout)
    kept = sorted((s["paths"], s["short_id"]) for s in snaps if "INC-20261207-009" in s["tags"])
    assert kept == sorted([([str(first)], one["short_id"]), ([str(second)], both["short_id"])])
