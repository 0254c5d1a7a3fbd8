# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.notice_drafts: plan, render and index the customer notice drafts of an incident
in one task on the controller (one template module run per draft cost about 2 s each at every milestone).

The plan, the writing and the index are plugin_utils/notices.py's (``write_drafts``); the drafts are the report role's
templates (``notice.<lang>.md.j2`` for the confirmed notice, ``notice_<milestone>.<lang>.md.j2``), rendered with the
task's variables plus ``__notice`` (the draft) and ``__client`` (the client's result).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleError

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import notices as _n
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.controller_action import ControllerAction

SPEC: dict[str, Any] = {
    "clients": {"type": "list", "elements": "dict", "required": True},
    "configured": {"type": "list", "elements": "dict", "default": []},
    "languages": {"type": "list", "elements": "str", "default": []},
    "milestones": {"type": "list", "elements": "str", "default": []},
    "evidence_dir": {"type": "path", "required": True},
    "incident_id": {"type": "str", "required": True},
}


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = SPEC

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        try:
            return _n.write_drafts(
                args["evidence_dir"],
                args["incident_id"],
                args["clients"],
                args["configured"],
                args["languages"],
                args["milestones"],
                lambda name, notice, client: self.render(name, {**task_vars, "__notice": notice, "__client": client}),
                check=self._task.check_mode,
            )
        except (_n.NoticeError, AnsibleError, OSError, KeyError) as exc:
            return {"failed": True, "msg": f"notice_drafts: the drafts were not written: {exc}"}
