# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for ledgerguard.recovery.s3_bucket_audit: resolves repository and S3 credentials on the controller.

Same resolution as the restic modules (plugin_utils/restic_action.py): repository from the task, then
``ledgerguard_repository``, then ``RESTIC_REPOSITORY``; credentials (``env``) from the task, then
``ledgerguard_s3_credentials_file``, then the controller's ``AWS_*`` environment. The audit needs no restic password,
so none is read or passed.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restic_action import (
    ResticActionBase,
    resolve_connection,
)


class ActionModule(ResticActionBase):
    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super(ResticActionBase, self).run(tmp, task_vars)
        del tmp
        variables = self._connection_variables(task_vars)
        args = dict(self._task.args)
        try:
            if args.get("bucket") and not args.get("repository") and not variables.get("ledgerguard_repository"):
                resolved = dict(args)
                if not resolved.get("env"):
                    # Only the credentials part of the contract applies when the bucket is named directly.
                    probe = resolve_connection(
                        {**args, "repository": "s3:placeholder/bucket", "password": ""}, variables, os.environ
                    )
                    if probe.get("env"):
                        resolved["env"] = probe["env"]
            else:
                # password "" marks the password as given, so the shared resolver does not look for one.
                resolved = resolve_connection({**args, "password": ""}, variables, os.environ)
                resolved.pop("password", None)
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=exc.message)
            return result
        module_name = self._task.resolved_action or self._task.action
        result.update(self._execute_module(module_name=module_name, module_args=resolved, task_vars=task_vars))
        return result
