# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.evidence_file: write one file of an incident's evidence folder on the controller
(a role's record, e.g. write_freeze's freeze.json) in one task, its folder made private first (before, a file task
for the folder and a copy task for the file: two task results, two module runs).

Documentation: plugins/modules/evidence_file.py. The writing is plugin_utils/evidence_files.py's.
"""

from __future__ import annotations

import os
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.controller_action import ControllerAction

SPEC: dict[str, Any] = {
    "path": {"type": "path", "required": True},
    "data": {"type": "raw"},
    "content": {"type": "str"},
}


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = SPEC

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        path = args["path"]
        if (args["data"] is None) == (args["content"] is None):
            return {"failed": True, "msg": f"evidence_file: give exactly one of data and content for {path}."}
        problem = ef.not_absolute("evidence_file", "path", path)
        if problem:
            return {"failed": True, "msg": problem}
        check = self._task.check_mode
        try:
            text = ef.nice_json(args["data"]) if args["data"] is not None else args["content"]
            folder_changed = ef.private_folder(os.path.dirname(path), check)
            written = ef.write_private(path, text, check)
        except (OSError, TypeError, ValueError) as exc:
            return {"failed": True, "msg": f"evidence_file: {path} not written: {exc}. Check the folder and run again."}
        return {"changed": folder_changed or written, "path": path, "written": written}
