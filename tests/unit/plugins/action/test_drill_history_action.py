"""drill_history's action plugin (issue 19): the history the module read back is parsed for the report and copied
to the controller's evidence folder in the same task, its bytes kept out of the task's result."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from conftest import ModuleActionStub

from ansible_collections.ledgerguard.recovery.plugins.action.drill_history import ActionModule

HISTORY = '{"drill_id": "d1", "host": "会计服务器"}\nnot json\n{"drill_id": "d2", "host": "会计服务器"}\n'.encode()
ARGS = {"path": "/var/lib/ledgerguard/drills/history.jsonl", "record": {"drill_id": "d2"}}
ANSWER = {"changed": True, "appended": True, "metrics_changed": False, "content": base64.b64encode(HISTORY).decode()}


class Stub(ModuleActionStub, ActionModule):
    FQCN = "ledgerguard.recovery.drill_history"


pytestmark = pytest.mark.usefixtures("no_action_base_run")


def test_parses_the_history_and_copies_its_bytes_to_the_evidence_folder(tmp_path):
    copy = tmp_path / "evidence" / "d2" / "hosts" / "会计服务器" / "history.jsonl"
    action = Stub({**ARGS, "copy_to": str(copy)}, ANSWER)
    out = action.run(task_vars={})
    assert action.sent == [ARGS]  # copy_to stays on the controller
    assert "content" not in out
    assert out["history"] == [{"drill_id": "d1", "host": "会计服务器"}, {"drill_id": "d2", "host": "会计服务器"}]
    assert out["copied"] is True and out["changed"] is True
    assert copy.read_bytes() == HISTORY
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o640
    for folder in (copy.parent, copy.parent.parent, copy.parent.parent.parent):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o750

    again = Stub({**ARGS, "copy_to": str(copy)}, {**ANSWER, "changed": False}).run(task_vars={})
    assert again["copied"] is False and again["changed"] is False


def test_check_mode_copies_nothing(tmp_path):
    copy = tmp_path / "evidence" / "history.jsonl"
    out = Stub({**ARGS, "copy_to": str(copy)}, ANSWER, check=True).run(task_vars={})
    assert out["copied"] is True and not copy.parent.exists()


def test_a_failed_module_run_is_returned_as_it_is(tmp_path):
    failed = {"failed": True, "msg": "drill_history: cannot read /x: Permission denied"}
    out = Stub({**ARGS, "copy_to": str(tmp_path / "h.jsonl")}, failed).run(task_vars={})
    assert out["failed"] is True and out["msg"] == failed["msg"]
    assert not (tmp_path / "h.jsonl").exists()


def test_a_relative_copy_to_is_refused_before_the_module_runs():
    action = Stub({**ARGS, "copy_to": "evidence/history.jsonl"}, ANSWER)
    out = action.run(task_vars={})
    assert out["failed"] is True and action.sent == []
    assert out["msg"].startswith("drill_history: copy_to must be an absolute path on the controller")


def test_an_unwritable_evidence_folder_names_the_path(tmp_path):
    blocker = tmp_path / "evidence"
    blocker.write_text("a file, not a folder")
    out = Stub({**ARGS, "copy_to": str(blocker / "hosts" / "h1" / "history.jsonl")}, ANSWER).run(task_vars={})
    assert out["failed"] is True
    assert out["msg"].startswith(f"drill_history: cannot copy the host's history to {blocker}/hosts/h1/history.jsonl")
