# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.write_freeze: the module runs on the host as before; with ``evidence_dir`` the
plugin records the run in the incident's evidence folder on the controller in the same task (before, one more
evidence_file task per freeze, rescan and thaw). ``label`` names a rescan. ``rollback_of`` (a freeze's result, with
state=thawed) thaws only what that freeze froze, and records it in that freeze's record as ``rolled_back``;
``fail_msg`` then fails the task with that message (the role's rollback after a host failed to freeze). Without these
options it only runs the module. Every result that ran the module carries ``finished_at`` (UTC, the controller's clock).

Documentation: plugins/modules/write_freeze.py. The record is plugin_utils/freeze_record.py's, the writing
plugin_utils/evidence_files.py's (folder 0700, file 0600, atomic).
"""

from __future__ import annotations

import os
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import freeze_record as fr


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        evidence_dir = args.pop("evidence_dir", None)
        label = str(args.pop("label", None) or "rescan")
        rollback_of = args.pop("rollback_of", None)
        fail_msg = args.pop("fail_msg", None)
        state = str(args.get("state") or "frozen")
        if rollback_of is not None:
            if state != "thawed":
                result.update(failed=True, msg="write_freeze: rollback_of goes with state=thawed (the rollback).")
                return result
            args["targets"] = fr.frozen_by(rollback_of)
            if not args["targets"]:
                # An empty targets list would thaw everything the incident holds: a rollback thaws only this run's.
                result.update(changed=False, targets=[], msg="This host's freeze froze nothing to roll back.")
                return self._then_fail(result, fail_msg)
        problem = evidence_dir and ef.not_absolute("write_freeze", "evidence_dir", evidence_dir)
        if problem:
            result.update(failed=True, msg=problem)
            return result
        module_name = self._task.resolved_action or self._task.action
        result.update(self._execute_module(module_name=module_name, module_args=args, task_vars=task_vars))
        # When the host's state changed (or was found), on the controller's clock: the incident notes when writes
        # stopped from the freeze's, the report when they resumed from the thaw's (no task of their own).
        result["finished_at"] = fr.utc_now()
        if state == "rescan":
            result["label"] = label
        recorded, name = result, fr.record_name(state, label)
        if rollback_of is not None:
            recorded, name = {**rollback_of, "rolled_back": result.get("targets") or []}, fr.record_name("frozen")
            state = "frozen"
        if evidence_dir and not self._task.check_mode and fr.worth_recording(state, recorded):
            host = str(task_vars.get("inventory_hostname", ""))
            path = os.path.join(str(evidence_dir), name)
            try:
                ef.write_private(path, ef.nice_json(fr.record(host, str(args.get("incident", "")), recorded)))
            except OSError as exc:
                problem = f"its record {path} was not written on the controller: {exc}"
                if state == "thawed":
                    # The thaw happened: say so, never report it as not thawed because the evidence disk failed.
                    result.setdefault("warnings", []).append(f"The thaw worked, but {problem}.")
                else:
                    result.update(failed=True, msg=f"{result.get('msg') or 'write_freeze ran'}; {problem}.")
                return result
            result["record"] = path
        return self._then_fail(result, fail_msg)

    @staticmethod
    def _then_fail(result: dict[str, Any], fail_msg: str | None) -> dict[str, Any]:
        """fail_msg: the task fails with it once the module's work is done (a failure of that work keeps its own)."""
        if fail_msg and not result.get("failed"):
            result.update(failed=True, msg=str(fail_msg))
        return result
