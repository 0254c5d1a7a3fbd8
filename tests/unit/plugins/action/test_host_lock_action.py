"""host_lock's action plugin (issue 19: the incident's lock and its freeze targets in one task, its release and its
verdict in one task): what it publishes, when the module runs, and how the task ends, with the module replaced by a
stub that answers as the real one does."""

from __future__ import annotations

import pytest
from conftest import ModuleActionStub

from ansible_collections.ledgerguard.recovery.plugins.action.host_lock import ActionModule

LOCK = {"path": "/var/lib/ledgerguard/incident.lock", "incident_id": "INC-1"}
SELECTED = {"clients": [{"id": "c001"}], "client_ids": ["c001"], "paths": ["/srv/账套/c001"]}


class Stub(ModuleActionStub, ActionModule):
    """The action with the module run replaced: records the arguments it would send to the host."""

    FQCN = "ledgerguard.recovery.host_lock"

    def go(self) -> dict:
        return self.run(task_vars={"inventory_hostname": "会计服务器", "incident_result": SELECTED})


pytestmark = pytest.mark.usefixtures("no_action_base_run")


def test_the_lock_publishes_readonly_bind_on_each_existing_folder_when_no_targets_are_given():
    folders = ["/srv/账套/c001", "/srv/账套/c002"]
    action = Stub(
        {**LOCK, "folders": [*folders, "/srv/gone"], "freeze_targets": []}, {"acquired": True, "folders": folders}
    )
    out = action.go()
    assert action.sent == [{**LOCK, "folders": [*folders, "/srv/gone"]}]  # the controller option stays here
    assert out["ansible_facts"] == {
        "incident_result": {
            **SELECTED,
            "freeze_targets": [{"path": f, "method": "readonly_bind"} for f in folders],
        }
    }


def test_the_lock_publishes_the_targets_given_and_nothing_when_refused_or_not_asked():
    given = [{"method": "remount_ro", "path": "/srv"}]
    out = Stub({**LOCK, "freeze_targets": given}, {"acquired": True, "folders": []}).go()
    assert out["ansible_facts"]["incident_result"]["freeze_targets"] == given
    refused = Stub({**LOCK, "freeze_targets": []}, {"failed": True, "msg": "held by INC-0"}).go()
    assert refused["failed"] is True and "ansible_facts" not in refused
    assert "ansible_facts" not in Stub(dict(LOCK), {"acquired": True, "folders": ["/srv/a"]}).go()


def test_a_host_that_is_done_gives_the_lock_back_and_says_its_verdict():
    args = {**LOCK, "state": "absent", "outcome": {"done": True, "msg": "every client restored"}, "release": True}
    action = Stub(args, {"changed": True, "acquired": True})
    out = action.go()
    assert action.sent == [{**LOCK, "state": "absent"}]
    assert (out.get("failed"), out["changed"], out["msg"]) == (None, True, "every client restored")


def test_a_host_not_done_keeps_its_lock_and_fails_with_its_verdict():
    verdict = "Incident INC-1 on 会计服务器 is not fully restored: client c001 failed: no snapshot."
    action = Stub({**LOCK, "state": "absent", "outcome": {"done": False, "msg": verdict}, "release": True}, {})
    out = action.go()
    assert action.sent == []  # the module never ran: the lock and no closed marker stay
    assert (out["failed"], out["changed"], out["msg"]) == (True, False, verdict)


def test_a_dry_run_or_release_false_runs_nothing_and_still_says_the_verdict():
    action = Stub({**LOCK, "state": "absent", "outcome": {"done": True, "msg": "plan ok"}, "release": False}, {})
    out = action.go()
    assert action.sent == [] and out["msg"] == "plan ok" and not out.get("failed")


def test_a_release_that_fails_keeps_the_modules_failure():
    args = {**LOCK, "state": "absent", "outcome": {"done": True, "msg": "ok"}}
    out = Stub(args, {"failed": True, "msg": "Writing closed.json failed"}).go()
    assert (out["failed"], out["msg"]) == (True, "Writing closed.json failed")


def test_an_outcome_that_is_not_a_verdict_is_refused():
    out = Stub({**LOCK, "state": "absent", "outcome": {"msg": "?"}}, {}).go()
    assert out["failed"] is True and out["msg"].startswith("host_lock: outcome must be the host's verdict {done, msg}")
