# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.host_lock: the module runs on the host as before. Two controller-side options
let the incident role take one task where it took two (each task costs the controller its templating and a worker):

- ``freeze_targets`` (with state=present): once the lock is taken, publish the host's freeze targets as
  ``incident_result.freeze_targets``: the targets given, or, when none are given, ``readonly_bind`` on each of
  ``folders`` that exists on the host (the module's ``folders``).
- ``outcome`` (the host's verdict ``{done, msg}``, filter incident_outcome; with state=absent): the module runs (the
  closed marker, then the lock given back) only when the host is done and ``release`` is true; the task then fails
  with the verdict's message when the host is not done, and says it when it is.

Without these options it only runs the module. Documentation: plugins/modules/host_lock.py.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


def freeze_targets(given: list[Any], folders: list[str]) -> list[Any]:
    """The targets given, else readonly_bind on each existing folder (in the order the module found them)."""
    return list(given) if given else [{"path": folder, "method": "readonly_bind"} for folder in folders]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        targets = args.pop("freeze_targets", None)
        outcome = args.pop("outcome", None)
        release = boolean(args.pop("release", True), strict=True)
        module_name = self._task.resolved_action or self._task.action
        if outcome is not None:
            if not isinstance(outcome, dict) or "done" not in outcome:
                result.update(
                    failed=True, msg=f"host_lock: outcome must be the host's verdict {{done, msg}}: {outcome!r}."
                )
                return result
            done = boolean(outcome["done"], strict=True)
            if done and release:
                result.update(self._execute_module(module_name=module_name, module_args=args, task_vars=task_vars))
                if result.get("failed"):
                    return result
            else:
                result["changed"] = False
            result["msg"] = str(outcome.get("msg") or "")
            if not done:
                result["failed"] = True
            return result
        if targets is not None and not isinstance(targets, list):
            result.update(failed=True, msg=f"host_lock: freeze_targets must be a list of targets, got {targets!r}.")
            return result
        result.update(self._execute_module(module_name=module_name, module_args=args, task_vars=task_vars))
        if targets is not None and not result.get("failed"):
            incident = self._templar.template(task_vars.get("incident_result") or {})
            result["ansible_facts"] = {
                "incident_result": {
                    **(incident if isinstance(incident, dict) else {}),
                    "freeze_targets": freeze_targets(targets, result.get("folders") or []),
                }
            }
        return result
