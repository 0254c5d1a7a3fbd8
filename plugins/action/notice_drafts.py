# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.notice_drafts: plan, render and index the customer notice drafts of an incident
in one task on the controller (one template module run per draft cost about 2 s each at every milestone).

With ``milestone`` it is the whole milestone of the report role (tasks/milestone.yml) in that one task, where it took
up to nine tasks per run and an include per host (issue 19): the clients are read from every host of the play
(``confirmed``, ``restoring``: each host's selected clients, ``incident_result.clients``, pending; ``restored``: the
report's view of every host's published results, plugin_utils/report_inputs.py and the incident_report filter, as the
report computes them); ``restoring`` adds each client's ETA from the incident's one restore queue across the hosts
(the drills' measured throughput: every ``history.jsonl`` up to four levels under ``drills_root``;
plugin_utils/filing.py) and returns the queue's lines (``queue_lines``) for the role to show. A milestone never fails
the incident: a problem is a warning, and the report at the end writes every draft again.

The plan, the writing and the index are plugin_utils/notices.py's (``write_drafts``); the drafts are the report role's
templates (``notice.<lang>.md.j2`` for the confirmed notice, ``notice_<milestone>.<lang>.md.j2``), rendered with the
task's variables plus ``__report`` (the milestone's ``{incident, hosts, clients}``), ``__notice`` (the draft) and
``__client`` (the client's result).
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleError

from ansible_collections.ledgerguard.recovery.plugins.filter.drill import drill_parse_history
from ansible_collections.ledgerguard.recovery.plugins.filter.filing_restore_queue import filing_restore_queue
from ansible_collections.ledgerguard.recovery.plugins.filter.incident_report import incident_report
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import format_utc
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import notices as _n
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.controller_action import ControllerAction
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.report_inputs import host_results

SPEC: dict[str, Any] = {
    "clients": {"type": "list", "elements": "dict"},
    "milestone": {"type": "str", "choices": ["confirmed", "restoring", "restored"]},
    "record": {"type": "dict"},
    "drills_root": {"type": "path"},
    "calendar": {"type": "str", "default": ""},
    "configured": {"type": "list", "elements": "dict"},
    "languages": {"type": "list", "elements": "str", "default": []},
    "milestones": {"type": "list", "elements": "str", "default": []},
    "evidence_dir": {"type": "path"},
    "incident_id": {"type": "str"},
}
HISTORY_NAME = "history.jsonl"
HISTORY_DEPTH = 4  # levels below drills_root, as the find of the drill histories had it


def drill_history_files(root: str | None, depth: int = HISTORY_DEPTH) -> list[str]:
    """Every drill history (a regular file ``history.jsonl``) at most ``depth`` levels below ``root`` (a file in
    ``root`` itself is level 1; symlinks are not followed), sorted by path; none when ``root`` is not a folder."""
    if not root or not os.path.isdir(root):
        return []
    found = []
    for folder, dirs, files in os.walk(root):
        level = 0 if folder == root else os.path.relpath(folder, root).count(os.sep) + 1
        if level >= depth - 1:
            dirs[:] = []
        path = os.path.join(folder, HISTORY_NAME)
        if HISTORY_NAME in files and os.path.isfile(path) and not os.path.islink(path):
            found.append(path)
    return sorted(found)


def drill_history(root: str | None) -> list[dict[str, Any]]:
    """The drill records of every history under ``root`` (the drill role's lines, parsed), file by file."""
    out: list[dict[str, Any]] = []
    for path in drill_history_files(root):
        with open(path, encoding="utf-8") as handle:
            out.extend(drill_parse_history(handle.read().rstrip()))
    return out


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = SPEC
    REQUIRED_IF = [("milestone", m, ("record",)) for m in ("confirmed", "restoring", "restored")]

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        if args["milestone"]:
            return self._milestone(args, task_vars)
        missing = [name for name in ("clients", "evidence_dir", "incident_id") if args[name] is None]
        if missing:
            return {"failed": True, "msg": f"notice_drafts: {', '.join(missing)} required without milestone."}
        try:
            return self._write(args, task_vars, args["clients"], args["milestones"], {})
        except (_n.NoticeError, AnsibleError, OSError, KeyError) as exc:
            return {"failed": True, "msg": f"notice_drafts: the drafts were not written: {exc}"}

    def _write(
        self, args: dict[str, Any], task_vars: dict[str, Any], clients: list, milestones: list, extra: dict
    ) -> dict[str, Any]:
        configured = args["configured"]
        if configured is None:
            configured = [c for v in self.play_hosts_vars(task_vars, "ledgerguard_clients").values() for c in v or []]
        return _n.write_drafts(
            args["evidence_dir"],
            args["incident_id"],
            clients,
            configured,
            args["languages"],
            milestones,
            lambda name, notice, client: self.render(
                name, {**task_vars, **extra, "__notice": notice, "__client": client}
            ),
            check=self._task.check_mode,
        )

    def _milestone(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """The drafts of one milestone, written when it happens; a problem is a warning, never a failure."""
        milestone, record = args["milestone"], args["record"]
        args = {
            **args,
            "evidence_dir": args["evidence_dir"] or str(record.get("evidence_dir") or ""),
            "incident_id": args["incident_id"] or str(record.get("incident_id") or ""),
        }
        out: dict[str, Any] = {"changed": False, "milestone": milestone}
        step = "gathering the clients"
        try:
            if not os.path.isabs(args["evidence_dir"]):
                raise _n.NoticeError(f"the incident's evidence folder {args['evidence_dir']!r} is not an absolute path")
            hostvars = task_vars.get("hostvars") or {}
            play_hosts = list(task_vars.get("ansible_play_hosts") or [])
            if milestone == "restored":
                hosts = host_results(hostvars, list(task_vars.get("ansible_play_hosts_all") or []), play_hosts)
                report = incident_report(record, hosts, format_utc(), args["evidence_dir"])
            else:
                selected = {
                    h: list((hostvars[h].get("incident_result") or {}).get("clients") or []) for h in play_hosts
                }
                report = {"incident": record, "hosts": [], "clients": _n.pending_clients(selected)}
            if milestone == "restoring":
                step = "building the restore queue"
                queue = filing_restore_queue(
                    report["clients"],
                    drill_history(args["drills_root"]),
                    format_utc(),
                    args["calendar"],
                    str(record.get("detected_at") or ""),
                )
                out["queue_lines"] = queue["lines"]
                report = {**report, "clients": _n.with_etas(report["clients"], queue["queue"])}
            step = "writing the drafts"
            out.update(self._write(args, task_vars, report["clients"], [milestone], {"__report": report}))
        except (_n.NoticeError, AnsibleError, OSError, KeyError, TypeError, ValueError) as exc:
            tail = _n.not_written_tail(exc, "the report at its end writes every draft again")
            warning = f"customer notice drafts ({milestone}) not written ({step}): {exc}. {tail}"
            out.update(warnings=[warning], msg=f"WARNING: {warning}")
        return out
