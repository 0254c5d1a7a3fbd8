# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write every task event of an incident run to a hash-chained ``evidence/<id>/timeline.jsonl``."""

from __future__ import annotations

DOCUMENTATION = r"""
name: timeline
type: notification
short_description: Hash-chained incident timeline (evidence/<id>/timeline.jsonl)
description:
  - Records every task event of a run (time, host, task, status, changed, duration, operator) as one JSON line in
    C(<evidence>/<incident id>/timeline.jsonl).
  - Each line carries the sha256 of the previous line and of its own content, so an edit, deletion or reordering is
    found by C(ledgerguard timeline verify) (which names the first altered line).
  - The plugin is a no-op until the run names an incident. The C(ledgerguard.recovery.incident) role sets the fact
    C(ledgerguard_timeline) with C(path), C(incident_id), C(operator) and C(run) (a token this plugin writes into
    the C(run_start) line). Events seen before that are buffered and written first; events of runs that never name
    an incident are dropped.
  - The incident role then reads the file for the C(run) token and refuses to start the incident when it is not
    there, so an incident never runs without its timeline, however it is started.
  - Task results are never written (they may hold data); only a failed task's C(msg), unless the task is C(no_log).
author: ledgerguard contributors (@ledgerguard)
requirements:
  - "enable with C(callbacks_enabled = ledgerguard.recovery.timeline) in ansible.cfg (this project's ansible.cfg
    does) or C(ANSIBLE_CALLBACKS_ENABLED=ledgerguard.recovery.timeline) (the C(ledgerguard) runner does)"
"""

import datetime  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import os  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import time  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible.plugins.callback import CallbackBase  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

try:
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import append
except ImportError:  # pragma: no cover - only when the collection is not installed
    append = None

FACT = "ledgerguard_timeline"
MAX_MSG = 500


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "ledgerguard.recovery.timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = None
        self._incident = None
        self._operator = None
        self._buffer = []
        self._started = {}
        self._play = ""
        self._playbook = ""

    # -- writing -------------------------------------------------------------------------------------------------
    def _emit(self, record):
        record.setdefault("time", _now())
        record["play"] = self._play
        if self._path is None:
            if len(self._buffer) < 10000:
                self._buffer.append(record)
            return
        self._write(record)

    def _write(self, record):
        record["incident_id"] = self._incident
        record["operator"] = self._operator
        try:
            append(self._path, record)
        except OSError as exc:
            self._display.warning(f"ledgerguard timeline: cannot write {self._path}: {exc}")

    def _activate(self, info):
        if self._path is not None or append is None or not isinstance(info, dict):
            return
        path = info.get("path")
        if not path or not info.get("incident_id"):
            return
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        except OSError as exc:
            self._display.warning(f"ledgerguard timeline: cannot create {os.path.dirname(path)}: {exc}")
            return
        self._path = path
        self._incident = info.get("incident_id")
        self._operator = info.get("operator")
        start = {
            "time": _now(),
            "event": "run_start",
            "status": "start",
            "playbook": self._playbook,
            "play": self._play,
        }
        if info.get("run"):
            # The incident role looks for this token in the file to prove the timeline is being written.
            start["run"] = str(info["run"])
        self._write(start)
        for record in self._buffer:
            self._write(record)
        self._buffer = []

    # -- events --------------------------------------------------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        self._playbook = os.path.basename(getattr(playbook, "_file_name", "") or "")

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()
        self._emit({"event": "play_start", "status": "start", "host": None, "task": None})

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _result(self, result, status):
        host = result._host.get_name()
        task = result._task
        res = result._result if isinstance(result._result, dict) else {}
        facts = res.get("ansible_facts") or {}
        if FACT in facts:
            self._activate(facts[FACT])
        begun = self._started.pop((host, task._uuid), None)
        record = {
            "event": "task",
            "host": host,
            "task": task.get_name(),
            "action": task.action,
            "status": status,
            "changed": bool(res.get("changed", False)),
            "duration": round(time.monotonic() - begun, 3) if begun is not None else None,
        }
        delegated = res.get("_ansible_delegated_vars") or {}
        if delegated.get("ansible_host"):
            record["delegated_to"] = delegated.get("ansible_host")
        if status in ("failed", "unreachable"):
            if res.get("_ansible_no_log"):
                record["msg"] = "(hidden: no_log task)"
            else:
                record["msg"] = str(res.get("msg", ""))[:MAX_MSG]
            if status == "failed" and getattr(result, "_task_fields", {}).get("ignore_errors"):
                record["ignored"] = True
        self._emit(record)
        self._steps(host, task, res)

    def _steps(self, host, task, res):
        """One line per step of a task that runs several modules (restore_clients' ledgerguard_steps), after it."""
        steps = res.get("ledgerguard_steps")
        if not isinstance(steps, list) or res.get("_ansible_no_log"):
            return
        for step in steps:
            if not isinstance(step, dict):
                continue
            clients = [str(c) for c in step.get("clients") or []]
            record = {
                "event": "task",
                "host": host,
                "task": f"{step.get('task', '')} [{', '.join(clients)}]" if clients else str(step.get("task", "")),
                "action": task.action,
                "step_of": task.get_name(),
                "status": str(step.get("status", "ok")),
                "changed": bool(step.get("changed", False)),
                "duration": step.get("duration"),
            }
            if step.get("msg"):
                record["msg"] = str(step["msg"])[:MAX_MSG]
            self._emit(record)

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        summary = {host: stats.summarize(host) for host in sorted(stats.processed.keys())}
        self._emit({"event": "run_end", "status": "end", "host": None, "task": None, "stats": summary})
        self._buffer = []
