# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for ledgerguard.recovery.file_manifest.

Only operation=compare_backup talks to restic (it reads the backup-time manifest with restic dump): for it the
repository, password and backend credentials are resolved on the controller exactly as for the restic_* modules.
The other operations run the module as is and need no connection.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restic_action import ResticActionBase


class ActionModule(ResticActionBase):
    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._task.args.get("operation") == "compare_backup":
            return super().run(tmp, task_vars)
        task_vars = task_vars or {}
        result = ActionBase.run(self, tmp, task_vars)
        module_name = self._task.resolved_action or self._task.action
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result.update(
            self._execute_module(
                module_name=module_name, module_args=dict(self._task.args), task_vars=task_vars, wrap_async=wrap_async
            )
        )
        return result
