"""The timeline callback: a no-op until an incident is named, then every event chained into timeline.jsonl."""

from __future__ import annotations

import json
from types import SimpleNamespace

from ansible_collections.ledgerguard.recovery.plugins.callback.timeline import CallbackModule
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import verify_chain


class Task:
    def __init__(self, name, action="ansible.builtin.debug"):
        self._uuid = name
        self.action = action
        self._name = name

    def get_name(self):
        return self._name


class Host:
    def get_name(self):
        return "books01"


def result(task, res):
    return SimpleNamespace(_host=Host(), _task=task, _result=res, _task_fields={})


def play(name="Respond"):
    return SimpleNamespace(get_name=lambda: name)


def test_no_incident_means_no_file(tmp_path):
    cb = CallbackModule()
    cb.v2_playbook_on_play_start(play())
    cb.v2_runner_on_ok(result(Task("a"), {"changed": False}))
    cb.v2_playbook_on_stats(SimpleNamespace(processed={}, summarize=lambda h: {}))
    assert list(tmp_path.iterdir()) == []


def test_buffered_events_are_written_once_the_incident_is_named(tmp_path):
    path = tmp_path / "INC-20261126-001" / "timeline.jsonl"
    cb = CallbackModule()
    cb.v2_playbook_on_play_start(play())
    first = Task("Validate")
    cb.v2_runner_on_start(Host(), first)
    cb.v2_runner_on_ok(result(first, {"changed": False}))
    fact = {"ledgerguard_timeline": {"path": str(path), "incident_id": "INC-20261126-001", "operator": "王会计"}}
    cb.v2_runner_on_ok(result(Task("Name the incident"), {"changed": False, "ansible_facts": fact}))
    cb.v2_runner_on_failed(result(Task("Restore"), {"msg": "Cannot reach the backend", "password": "x"}))
    cb.v2_runner_on_failed(result(Task("Secret"), {"msg": "leak", "_ansible_no_log": True}))
    cb.v2_playbook_on_stats(SimpleNamespace(processed={"books01": 1}, summarize=lambda h: {"ok": 2, "failures": 2}))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["event"], r.get("task")) for r in lines] == [
        ("run_start", None),
        ("play_start", None),
        ("task", "Validate"),
        ("task", "Name the incident"),
        ("task", "Restore"),
        ("task", "Secret"),
        ("run_end", None),
    ]
    assert all(r["incident_id"] == "INC-20261126-001" and r["operator"] == "王会计" for r in lines)
    assert lines[2]["duration"] is not None and lines[2]["host"] == "books01"
    assert lines[4]["status"] == "failed" and lines[4]["msg"] == "Cannot reach the backend"
    assert "password" not in path.read_text(encoding="utf-8")
    assert lines[5]["msg"] == "(hidden: no_log task)"
    assert verify_chain(str(path))["ok"]
