# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.compliance_checklist: the compliance checklist in one task on the controller.

It reads the evidence itself (plugin_utils/compliance_evidence.py: drill histories, backup-verify results, evidence
packs verified with the firm's public key, the incident's notice records) and every host's ledgerguard_clients, and
returns the checklist (``checklist``; ``error`` says why when it cannot be computed), which the report role keeps
as the fact report_compliance for its templates. Before, the report role did this in 6 tasks (two finds, the pack
check, a set_fact holding the Jinja that read the files, the copy); now in 2 (this and the set_fact).
Documentation: plugins/modules/compliance_checklist.py.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleError

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance as _c
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance_evidence as ce
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as ep
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.controller_action import ControllerAction

SPEC: dict[str, Any] = {
    "inputs_from": {"type": "str", "required": True},
    "evidence_dir": {"type": "str", "default": ""},
    "fail_on_error": {"type": "bool", "default": False},
}


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = SPEC

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        folder = args["evidence_dir"]
        configured = [c for v in self.play_hosts_vars(task_vars, "ledgerguard_clients").values() for c in v or []]
        try:
            inputs = ce.plain(self.variable(args["inputs_from"]))
            checklist = ce.checklist(inputs, configured, folder)
        except (_c.ComplianceInputError, ep.EvidenceError, OSError, AnsibleError) as exc:
            error = ce.error_text(exc)
            if args["fail_on_error"]:
                return {"failed": True, "msg": f"The compliance checklist could not be computed: {error}"}
            return {"changed": False, "checklist": {}, "error": error}
        changed = False
        if checklist["mode"] == "incident" and folder:
            # Kept with the incident's evidence.
            changed = ef.write_private(
                os.path.join(folder, "compliance.json"), ef.nice_json(checklist), self._task.check_mode
            )
        return {
            "changed": changed,
            "checklist": checklist,
            "error": "",
        }
