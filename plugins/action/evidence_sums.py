# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.evidence_sums: write an evidence folder's SHA256SUMS on the controller.

The evidence lives on the controller, so nothing is sent to the managed host; the work is
plugin_utils/evidence_pack.py's ``write_sums``.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as ep
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.controller_action import ControllerAction

SPEC: dict[str, Any] = {
    "path": {"type": "path", "required": True},
    "exclude": {"type": "list", "elements": "str", "default": []},
}


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = SPEC

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        try:
            return ep.write_sums(args["path"], args["exclude"], check_mode=self._task.check_mode)
        except (ep.EvidenceError, OSError) as exc:
            msg = f"evidence_sums: SHA256SUMS of {args['path']} not written: {exc}. Check the folder and run again."
            return {"failed": True, "msg": msg}
