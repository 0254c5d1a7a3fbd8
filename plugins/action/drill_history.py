# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.drill_history: the module appends the drill record on the host and returns the
history's bytes; the plugin parses them into ``history`` (the drill report's trend) and, with ``copy_to``, writes them
on the controller (the drill's evidence folder) in the same task. The drill role took eight tasks per host for this
(history folder, lineinfile, slurp, a set_fact to parse it, the metrics folder and file, the evidence folder and a
copy; issue 19). The bytes are kept out of the task's result. The copy is written as the evidence files are
(plugin_utils/evidence_files), with the modes the role's file and copy tasks gave it (folders 0750, file 0640).

Documentation: plugins/modules/drill_history.py.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.ledgerguard.recovery.plugins.module_utils import drill as _drill
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        copy_to = args.pop("copy_to", None)
        if copy_to is not None and (not isinstance(copy_to, str) or not os.path.isabs(copy_to)):
            result.update(
                failed=True,
                msg=f"drill_history: copy_to must be an absolute path on the controller (the history's copy in the "
                f"evidence folder), got {copy_to!r}.",
            )
            return result
        module_name = self._task.resolved_action or self._task.action
        result.update(self._execute_module(module_name=module_name, module_args=args, task_vars=task_vars))
        encoded = result.pop("content", None)
        if result.get("failed"):
            return result
        try:
            data = base64.b64decode(encoded or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            result.update(failed=True, msg=f"drill_history: the module returned history that is not base64: {exc}")
            return result
        result["history"] = _drill.parse_history(data.decode("utf-8", errors="replace"))
        if copy_to is not None:
            try:
                # as ansible.builtin.file (folders 0750, also an existing one) and copy (0640, atomic) did
                check = bool(self._task.check_mode)
                folder_changed = ef.private_folder(os.path.dirname(copy_to), check, mode=0o750)
                copied = ef.write_private_bytes(copy_to, data, check, mode=0o640, folder_mode=0o750)
                result["copied"] = copied
            except OSError as exc:
                result.update(
                    failed=True,
                    msg=f"drill_history: cannot copy the host's history to {copy_to} on the controller: "
                    f"{exc.strerror or exc} ({exc.filename or copy_to}); check that the evidence folder is writable "
                    "by the user running the playbook",
                )
                return result
            result["changed"] = bool(result.get("changed")) or copied or folder_changed
        return result
