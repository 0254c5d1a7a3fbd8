"""restore_clients' action, the finished clients of an earlier run (issue 19): the marker folder is created and its
markers read in ONE work_dir run (it was a file, a find and a slurp per marker); a folder work_dir refuses stops
every client with that step and message (a dry run plans on), with the module replaced by a stub that answers as
work_dir does."""

from __future__ import annotations

import json
from types import SimpleNamespace

from ansible_collections.ledgerguard.recovery.plugins.action.restore_clients import ActionModule
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restore_clients import Step

MARKERS = "/var/lib/ledgerguard/incidents/INC-1/restore"
DONE = {"id": "c001", "name": "杭州示例贸易有限公司", "status": "restored", "snapshot": {"id": "4b462203" * 8}}


class Stub(ActionModule):
    """The action with its module runs replaced: records each and answers with ``answer``."""

    def __init__(self, answer: dict, check: bool = False):  # noqa: D107 - no Ansible machinery needed
        self._task = SimpleNamespace(check_mode=check)
        self._args = {"marker_dir": MARKERS, "clients": [{"id": "c001"}, {"id": "c002"}]}
        self._vars = {}
        self._steps, self._changed, self._markers_failed = [], False, None
        self.answer = answer
        self.runs: list[tuple[str, dict]] = []

    def _execute_module(self, module_name=None, module_args=None, task_vars=None, **_kwargs):
        self.runs.append((module_name, dict(module_args)))
        return dict(self.answer)


def test_an_earlier_runs_markers_are_read_in_the_same_module_run_that_makes_their_folder():
    files = {"c001.done.json": json.dumps(DONE, ensure_ascii=False, indent=4) + "\n", "c009.done.json": "{}"}
    action = Stub({"changed": False, "path": MARKERS, "created": [], "files": files})
    assert action._earlier_results() == {"c001": DONE}  # c002 has no marker; c009 is not a client of this run
    assert action.runs == [
        ("ledgerguard.recovery.work_dir", {"path": MARKERS, "parents": True, "read": ["*.done.json"]})
    ]
    assert [(s["task"], s["clients"], s["status"]) for s in action._steps] == [(Step.MARKERS, ["c001", "c002"], "ok")]
    assert action._markers_failed is None and action._changed is False


def test_a_marker_folder_work_dir_refuses_stops_every_client_but_not_the_plan():
    msg = f"work_dir: {MARKERS} exists but is not ledgerguard's own folder: its mode is 0755, not 0700 (...)"
    action = Stub({"failed": True, "msg": msg})
    assert action._earlier_results() == {}
    assert (action._markers_failed.task, action._markers_failed.msg) == (Step.MARKERS, msg)
    assert action._steps[0]["status"] == "failed" and action._steps[0]["msg"] == msg
    dry = Stub({"failed": True, "msg": msg}, check=True)
    assert dry._earlier_results() == {} and dry._markers_failed is None


def test_a_first_run_creates_the_folder_and_finds_nothing():
    action = Stub({"changed": True, "path": MARKERS, "created": [MARKERS], "files": {}})
    assert action._earlier_results() == {} and action._changed is True
