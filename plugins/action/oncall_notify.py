# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.oncall_notify: tell the incident's on-call people, from the controller.

Documentation: plugins/modules/oncall_notify.py. The messages, the sending and the record are
plugin_utils/oncall.py. The task never fails because a channel is down: each delivery is recorded (oncall.jsonl and,
through ``ledgerguard_steps``, the timeline) and the play goes on.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import oncall
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.controller_action import ControllerAction

_CHANNEL = {
    "kind": {"type": "str", "required": True, "choices": list(oncall.KINDS)},
    "url": {"type": "str", "no_log": True},
    "secret": {"type": "str", "no_log": True},
    "host": {"type": "str"},
    "port": {"type": "int", "default": 25},
    "from": {"type": "str"},
    "to": {"type": "list", "elements": "str"},
    "secure": {"type": "str", "choices": ["never", "try", "starttls", "ssl"], "default": "try"},
    "username": {"type": "str"},
    "password_file": {"type": "path"},
    "password_env": {"type": "str"},
}
SPEC: dict[str, Any] = {
    "milestone": {"type": "str", "required": True, "choices": list(oncall.MILESTONES)},
    "people": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "name": {"type": "str", "required": True},
            "role": {"type": "str", "default": "oncall"},
            "language": {"type": "str", "choices": list(oncall.LANGUAGES), "default": "zh-CN"},
            "channels": {"type": "list", "elements": "dict", "default": [], "options": _CHANNEL},
        },
    },
    "incident": {"type": "dict", "required": True},
    "hosts": {"type": "dict", "default": {}},
    "timeout": {"type": "int", "default": oncall.DEFAULT_TIMEOUT},
}


def _report(evidence_dir: str) -> dict[str, Any]:
    """report.json's status, summary and problems (empty when the report was not written, e.g. a dry run)."""
    try:
        with open(os.path.join(evidence_dir, "report.json"), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return {k: data.get(k) for k in ("status", "summary", "problems")} if isinstance(data, dict) else {}


def _step(record: dict[str, Any]) -> dict[str, Any]:
    """The timeline line of one delivery (the callback writes ledgerguard_steps after the task's own line)."""
    step = {
        "task": f"On-call {record['milestone']}: {record['person']} ({record['role']}) via {record['channel']} "
        f"{record['target']}",
        "status": "failed" if record["status"] == "failed" else "ok",
        "changed": False,
    }
    if record["status"] == "failed":
        step["msg"] = record["reason"]
    return step


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = SPEC

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        incident = args["incident"]
        milestone = args["milestone"]
        check_mode = bool(self._task.check_mode)
        evidence_dir = str(incident.get("evidence_dir") or "")
        facts = {
            "incident_id": incident.get("incident_id"),
            "cause": incident.get("cause"),
            "summary": incident.get("summary"),
            "operator": incident.get("operator"),
            "detected_at": incident.get("detected_at"),
            "lead": oncall.lead_of(args["people"], str(incident.get("operator") or "")),
            "report_path": os.path.join(evidence_dir, "report.html") if evidence_dir else "",
            "hosts": args["hosts"],
            "report": _report(evidence_dir) if milestone == "end" and evidence_dir and not check_mode else {},
        }
        if milestone == "failure" and not oncall.needs_a_person(args["hosts"]):
            result.update(changed=False, skipped=True, deliveries=[], msg="no step failed: nothing to tell")
            return result
        # A database named for the incident that was not restored does not fail the run's recovery block (the incident
        # is partial): the clients milestone, told right after the databases, is followed by the failure message
        # naming each such database.
        milestones = [milestone]
        if milestone == "clients" and any(oncall.failed_databases(h) for h in args["hosts"].values()):
            milestones.append("failure")
        record_path = os.path.join(evidence_dir, oncall.RECORD_NAME) if evidence_dir and not check_mode else None
        if record_path and not os.path.isdir(evidence_dir):
            record_path = None
            result.setdefault("warnings", []).append(
                f"the evidence folder {evidence_dir} does not exist: the on-call deliveries are not recorded there"
            )
        records = [
            record
            for told in milestones
            for record in oncall.deliver(
                args["people"], told, facts, timeout=args["timeout"], check_mode=check_mode, record_path=record_path
            )
        ]
        failed = [r for r in records if r["status"] == "failed"]
        said = " and ".join(milestones)
        if check_mode:
            msg = f"{said}: would send {len(records)} message(s) (check mode, nothing sent)"
        else:
            msg = f"{said}: {len(records) - len(failed)} of {len(records)} message(s) delivered"
        if failed:
            msg += "; not delivered (recorded, the incident goes on): " + "; ".join(
                f"{r['person']} {r['channel']} {r['target']}: {r['reason']}" for r in failed
            )
            result.setdefault("warnings", []).append(msg)
        unrecorded = [r for r in records if r.get("record_error")]
        if unrecorded:
            result.setdefault("warnings", []).append(
                f"{len(unrecorded)} delivery record(s) {unrecorded[0]['record_error']} (the messages went out as "
                "reported; the incident goes on)"
            )
        result.update(
            changed=False,
            deliveries=records,
            record=record_path or "",
            msg=msg,
            ledgerguard_steps=[_step(r) for r in records],
        )
        return result
