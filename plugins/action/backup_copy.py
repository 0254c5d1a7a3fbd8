# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for ledgerguard.recovery.backup_copy: both repositories' secrets resolved on the controller.

The first repository follows the collection's contract (ResticActionBase). The second one's password comes from
``to_password_controller_file`` and its backend credentials from ``to_s3_credentials_controller_file`` (both 0600
controller files, read here and passed on as no_log options; never written to the managed host's disk)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restic_action import (
    ResticActionBase,
    credentials_from_ini,
    read_private_file,
)


class ActionModule(ResticActionBase):
    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        args = self._task.args
        try:
            pw_file = args.pop("to_password_controller_file", None)
            if pw_file and args.get("to_password") is None and not args.get("to_password_file"):
                args["to_password"] = read_private_file(str(pw_file), "to_password_controller_file")
            ini = args.pop("to_s3_credentials_controller_file", None)
            if ini and not args.get("to_env"):
                args["to_env"] = credentials_from_ini(str(ini))
        except AnsibleActionFail as exc:
            return {"failed": True, "msg": exc.message}
        return super().run(tmp, task_vars)
