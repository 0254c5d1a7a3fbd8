# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.incident_report: the incident report in one task on the controller.

It reads every host's published results itself (the report role's declared options, from hostvars), builds the report
(plugins/filter/incident_report.py, which also hashes the evidence files and checks the timeline), writes report.json,
the customer notice drafts (plugin_utils/notices.py), the compliance checklist (plugin_utils/compliance_evidence.py,
which reads the drill histories, verify results, evidence packs and notice records), report.<format> from the role's
templates and SHA256SUMS (plugin_utils/evidence_pack.py), and publishes the outcome as job artifacts. Before, the
report role did this in 15 tasks. Documentation: plugins/modules/incident_report.py.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleError

from ansible_collections.ledgerguard.recovery.plugins.filter.incident_report import incident_report
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import format_utc
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance as _c
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance_evidence as ce
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as ep
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import notices as _n
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.controller_action import ControllerAction
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.report_inputs import host_results

SPEC: dict[str, Any] = {
    "record": {"type": "dict", "required": True},
    "write": {"type": "bool", "default": True},
    "formats": {"type": "list", "elements": "str", "choices": ["md", "html"], "default": ["md", "html"]},
    "notices": {"type": "bool", "default": False},
    "notice_languages": {"type": "list", "elements": "str", "default": []},
    "compliance_from": {"type": "str"},
}

SUMS_EXCLUDE = ["timeline.jsonl", "oncall.jsonl"]  # the timeline and the on-call record have their own hash chains


def report_file(formats: list[str]) -> str:
    """The report as a person reads it, among those written: the HTML one, else the first format, else report.json
    (always written)."""
    return "report." + ("html" if "html" in formats else (formats or ["json"])[0])


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = SPEC
    REQUIRED_IF = [("write", True, ("compliance_from",))]

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        record = args["record"]
        folder = str(record.get("evidence_dir") or "")
        if not os.path.isabs(folder):
            return {"failed": True, "msg": f"incident_report: record.evidence_dir {folder!r} is not an absolute path."}
        hosts = host_results(
            task_vars.get("hostvars") or {},
            list(task_vars.get("ansible_play_hosts_all") or []),
            list(task_vars.get("ansible_play_hosts") or []),
        )
        report = incident_report(record, hosts, format_utc(), folder)
        if not args["write"]:
            return {"changed": False, "report": report}
        check = self._task.check_mode
        try:
            return self._write(args, task_vars, report, folder, check)
        except (OSError, ep.EvidenceError, AnsibleError) as exc:
            return {"failed": True, "msg": f"incident_report: the report in {folder} was not written: {exc}"}

    def _write(self, args: dict[str, Any], task_vars: dict[str, Any], report: dict, folder: str, check: bool) -> dict:
        out: dict[str, Any] = {"status": report["status"], "summary": report["summary"], "warnings": []}
        changed = ef.write_private(os.path.join(folder, "report.json"), ef.nice_json(report), check)
        configured = [c for v in self.play_hosts_vars(task_vars, "ledgerguard_clients").values() for c in v or []]
        if args["notices"] and not check:
            # Before the checklist, whose notice rows read notices/index.json. A bad contact must not lose the report.
            try:
                drafts = _n.write_drafts(
                    folder,
                    record_id(report),
                    report["clients"],
                    configured,
                    args["notice_languages"],
                    [],
                    lambda name, notice, client: self.render(
                        name, {**task_vars, "__report": report, "__notice": notice, "__client": client}
                    ),
                )
                changed |= drafts["changed"]
                out["notices"] = drafts
            except (_n.NoticeError, AnsibleError, OSError, KeyError) as exc:
                tail = _n.not_written_tail(exc, "a re-run of the incident with the same id writes every draft again")
                out["warnings"].append(f"customer notice drafts not written: {exc}. {tail}")
        variables = {**task_vars, "__report": report}
        try:
            checklist = ce.checklist(ce.plain(self.variable(args["compliance_from"])), configured, folder)
            variables["report_compliance"] = checklist
            out["compliance"] = {"mode": checklist["mode"], "overall": checklist.get("overall")}
            if checklist["mode"] == "incident":
                changed |= ef.write_private(os.path.join(folder, "compliance.json"), ef.nice_json(checklist), check)
        except (_c.ComplianceInputError, ep.EvidenceError, OSError, ValueError, AnsibleError) as exc:
            # The report runs in the playbook's always section: a bad compliance input must not lose the report.
            variables.update(report_compliance={}, report_compliance_error=ce.error_text(exc))
            out["compliance"] = {"error": variables["report_compliance_error"]}
        for fmt in args["formats"]:
            text = self.render(f"report.{fmt}.j2", variables)
            changed |= ef.write_private(os.path.join(folder, f"report.{fmt}"), text, check)
        sums = ep.write_sums(folder, SUMS_EXCLUDE, check_mode=check)
        out.update(changed=changed or sums["changed"], sums=sums["path"], path=os.path.join(folder, "report.json"))
        if not out["warnings"]:
            del out["warnings"]
        out["ansible_stats"] = {
            "data": {
                "ledgerguard_incident_id": record_id(report),
                "ledgerguard_report": os.path.join(folder, report_file(args["formats"])),
                "ledgerguard_incident_status": report["status"],
                "ledgerguard_clients_failed": [c.get("id") for c in report["clients"] if c.get("status") != "ok"],
            },
            "per_host": False,
            "aggregate": True,
        }
        return out


def record_id(report: dict[str, Any]) -> str:
    return str((report.get("incident") or {}).get("incident_id") or "")
