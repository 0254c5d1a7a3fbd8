# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.notice_drafts: plan, render and index the customer notice drafts of an incident
in one task on the controller (one template module run per draft cost about 2 s each at every milestone).

The plan and the index are plugin_utils/notices.py's (``plan``, ``build_index``, ``save_index``); the drafts are the
report role's templates (``notice.<lang>.md.j2`` for the confirmed notice, ``notice_<milestone>.<lang>.md.j2``),
rendered with the task's variables plus ``__notice`` (the draft) and ``__client`` (the client's result).
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleError
from ansible.template import trust_as_template

from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import format_utc
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import notices as _n
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.controller_action import ControllerAction
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.evidence_files import write_private

SPEC: dict[str, Any] = {
    "clients": {"type": "list", "elements": "dict", "required": True},
    "configured": {"type": "list", "elements": "dict", "default": []},
    "languages": {"type": "list", "elements": "str", "default": []},
    "milestones": {"type": "list", "elements": "str", "default": []},
    "evidence_dir": {"type": "path", "required": True},
    "incident_id": {"type": "str", "required": True},
}


def template_name(notice: dict[str, Any]) -> str:
    prefix = "notice." if notice["milestone"] == "confirmed" else f"notice_{notice['milestone']}."
    return f"{prefix}{notice['language']}.md.j2"


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = SPEC

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        folder = args["evidence_dir"]
        try:
            try:
                existing = _n.load_index(folder)
            except _n.NoticeError:
                existing = {}
            planned = _n.plan(args["clients"], args["configured"], args["languages"], existing, args["milestones"])
            written = [n for n in planned if not n.get("keep")]
            if self._task.check_mode:
                return {"changed": bool(written), "written": [n["path"] for n in written]}
            changed = False
            for notice in written:
                client = next(c for c in args["clients"] if c["id"] == notice["client"] and c["host"] == notice["host"])
                text = self._render(template_name(notice), {**task_vars, "__notice": notice, "__client": client})
                changed |= write_private(os.path.join(folder, notice["path"]), text)
            index = _n.build_index(args["incident_id"], planned, folder, format_utc())
            before = existing.get("notices") if existing else None
            if changed or before != index["notices"]:
                _n.save_index(folder, index)
                changed = True
        except (_n.NoticeError, AnsibleError, OSError, KeyError, StopIteration) as exc:
            return {"failed": True, "msg": f"notice_drafts: the drafts were not written: {exc}"}
        return {
            "changed": changed,
            "written": [n["path"] for n in written],
            "kept": [n["path"] for n in planned if n.get("keep")],
            "index": _n.index_path(folder),
        }

    def _render(self, name: str, variables: dict[str, Any]) -> str:
        source = self._find_needle("templates", name)
        data = trust_as_template(self._loader.get_text_file_contents(source))
        templar = self._templar.copy_with_new_env(searchpath=[os.path.dirname(source)], available_variables=variables)
        text = templar.template(data, escape_backslashes=False)
        return "" if text is None else str(text)
