# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.state_capture: the module runs on the host as before; with ``evidence_dir``
the plugin then brings the packed bundle (``archive``) to the controller and files it in the incident's evidence
folder in the same task: the folder made 0700, ``state-bundle.tar.gz`` and every file of it written 0600, then the
folder's ``SHA256SUMS``. Before, that was four more tasks (a folder task, fetch, unarchive, evidence_sums) and, in a
dry run, a message task. The bundle's bytes come back in the module's own result (return_archive, issue 19: no
second module run, a slurp, to read it) and are kept out of the task's result.

Documentation: plugins/modules/state_capture.py. The run and the filing are plugin_utils/evidence_files.py's
(``capture_state``, which the pre_restore_snapshot action runs too when it collects the bundle).
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef

BUNDLE_NAME = ef.BUNDLE_NAME


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        evidence_dir = args.pop("evidence_dir", None)
        module_name = self._task.resolved_action or self._task.action

        def execute(module_args: dict[str, Any]) -> dict[str, Any]:
            return self._execute_module(module_name=module_name, module_args=module_args, task_vars=task_vars)

        result.update(ef.capture_state(execute, args, evidence_dir, self._task.check_mode))
        return result
