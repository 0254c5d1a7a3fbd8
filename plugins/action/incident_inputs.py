# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.incident_inputs: check the incident's inputs for one host, select its clients.

The checks are the incident filters' (plugins/filter/incident.py); ``refusal`` words the one message and ``selection``
makes the host's incident_result. With ``closed_path`` the host's closed marker is read (ansible.builtin.slurp).
Documentation: plugins/modules/incident_inputs.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.ledgerguard.recovery.plugins.filter.incident import (
    incident_host_errors,
    incident_input_errors,
    incident_select_clients,
    incident_time_errors,
)

ARGUMENT_SPEC = {
    "clients": {"type": "raw", "default": []},
    "selected": {"type": "raw", "default": []},
    "paths": {"type": "raw", "default": []},
    "host": {"type": "str", "required": True},
    "incident_id": {"type": "str", "default": ""},
    "cause": {"type": "str", "default": "unknown"},
    "repository": {"type": "str", "default": ""},
    "pins": {"type": "raw", "default": {}},
    "hosts": {"type": "raw", "default": []},
    "inventory_hosts": {"type": "list", "elements": "str", "default": []},
    "detected_at": {"type": "str", "default": ""},
    "loss_started": {"type": "str", "default": ""},
    "closed_path": {"type": "str", "default": ""},
}


def refusal(args: dict[str, Any]) -> str | None:
    """The message that refuses the incident on this host, or None when its inputs are sound. Hosts that the inventory
    does not hold come first (as the `hosts` entry point refuses them); then this host's clients, paths, id, cause,
    repository URL, pins and times."""
    host_errors = incident_host_errors(args["hosts"], args["inventory_hosts"])
    if host_errors:
        return "Incident input refused, nothing was touched: " + "; ".join(host_errors)
    errors = incident_input_errors(
        args["clients"] or [],
        args["selected"],
        args["paths"],
        args["host"],
        args["incident_id"],
        args["cause"],
        repository=args["repository"],
        pins=args["pins"],
        hosts=args["inventory_hosts"],
    ) + incident_time_errors(args["detected_at"], args["loss_started"])
    if errors:
        return f"Incident input refused on {args['host']}, nothing was touched: " + "; ".join(errors)
    return None


def selection(clients: Any, selected: Any, paths: Any) -> dict[str, Any]:
    """The host's incident_result: the selected clients in restore order, their ids and the affected paths (each
    once, in that order)."""
    chosen = incident_select_clients(clients, selected, paths)
    affected: list[str] = []
    for client in chosen:
        affected.extend(p for p in client["restore_paths"] if p not in affected)
    return {"clients": chosen, "client_ids": [c["id"] for c in chosen], "paths": affected}


def closed_record(path: str, slurped: dict[str, Any]) -> dict[str, Any] | None:
    """The closed marker read by ansible.builtin.slurp: None when there is none; its object otherwise."""
    if slurped.get("failed"):
        msg = str(slurped.get("msg", ""))
        if "not found" in msg:
            return None
        raise AnsibleActionFail(f"Reading this incident's closed marker {path} failed: {msg}")
    try:
        record = json.loads(base64.b64decode(slurped.get("content", "")).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AnsibleActionFail(
            f"This incident's closed marker {path} is not JSON ({exc}); check it, and move it away to run the "
            "incident again on this host"
        ) from exc
    if not isinstance(record, dict):
        raise AnsibleActionFail(f"This incident's closed marker {path} holds no JSON object; check it")
    return record


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        problem = refusal(args)
        if problem:
            result.update(failed=True, msg=problem)
            return result
        result.update(
            changed=False,
            ansible_facts={"incident_result": selection(args["clients"], args["selected"], args["paths"])},
        )
        if args["incident_id"] and args["closed_path"]:
            slurped = self._execute_module(
                module_name="ansible.legacy.slurp", module_args={"src": args["closed_path"]}, task_vars=task_vars
            )
            closed = closed_record(args["closed_path"], slurped)
            if closed is not None:
                result["closed"] = closed
        return result
