# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every host's published results as the incident report takes them (the report role's declared options, read from
hostvars on the controller): the report's action (plugins/action/incident_report.py) and the customer notice drafts
of the ``restored`` milestone (plugins/action/notice_drafts.py) read them through ``host_results``."""

from __future__ import annotations

from typing import Any

# Each host's published results as the report reads them: (key in the report's host data, variable, default).
RESULTS = (
    ("restore_results", "restore_results", []),
    ("restore_database_results", "restore_database_results", []),
    ("freeze", "write_freeze_result", {}),
    ("thaw", "write_freeze_thaw_result", {}),
    ("rescans", "write_freeze_rescans", []),
    ("rescan", "write_freeze_rescan_result", {}),
    ("state_snapshot", "state_snapshot_result", {}),
)
# From each host's incident_result.
INCIDENT_FIELDS = (
    ("frozen_at", "frozen_at", ""),
    ("thawed_at", "thawed_at", ""),
    ("failed_step", "failed_step", ""),
    ("failed_msg", "failed_msg", ""),
    ("repository_damage", "repository_damage", {}),
    ("selected", "clients", []),
)


def host_results(hostvars: Any, play_hosts_all: list[str], play_hosts: list[str]) -> dict[str, dict[str, Any]]:
    """Every host's published results, as plugins/filter/incident_report.py takes them (``hosts``)."""
    out = {}
    for host in play_hosts_all:
        variables = hostvars[host]

        def value(name: str, default: Any, variables: Any = variables) -> Any:
            return variables[name] if name in variables else default

        incident = value("incident_result", {}) or {}
        data = {key: value(name, default) for key, name, default in RESULTS}
        data.update({key: incident.get(name, default) for key, name, default in INCIDENT_FIELDS})
        data["in_play"] = host in play_hosts
        data["state_snapshot"] = snapshot_fields(data["state_snapshot"])
        out[host] = after_thaw(after_rescan(data))
    return out


# The state_snapshot role's result as the report keeps it (the role registers its task's result, which has these at
# its top beside the task's own keys).
SNAPSHOT_FIELDS = ("snapshot_id", "short_id", "reused", "paths", "missing_paths", "repository", "tags")


def snapshot_fields(result: Any) -> dict[str, Any]:
    """The pre-restore snapshot's fields of ``state_snapshot_result`` (none when the backup did not run)."""
    return {k: result[k] for k in SNAPSHOT_FIELDS if k in result} if isinstance(result, dict) else {}


def after_rescan(data: dict[str, Any]) -> dict[str, Any]:
    """The write_freeze ``rescan`` entry point's result (``rescan``: after the swap in the incident), added to
    ``rescans`` after the restore's when it found a process (``writers``, ``held``) or failed."""
    rescan = data.pop("rescan", None)
    if isinstance(rescan, dict) and (rescan.get("failed") or rescan.get("writers") or rescan.get("held")):
        data["rescans"] = [*(data.get("rescans") or []), rescan]
    return data


def after_thaw(data: dict[str, Any]) -> dict[str, Any]:
    """What the thaw's own result says, read here instead of by tasks after the thaw: when writes resumed
    (``thawed_at``: the thaw's ``finished_at``, for a host that froze and a thaw that worked) and the rescan right
    before the thaw (added to ``rescans`` with the label ``before_thaw`` when it found a writer or failed)."""
    thaw = data.get("thaw") if isinstance(data.get("thaw"), dict) else {}
    worked = bool(thaw) and not thaw.get("failed", False) and not thaw.get("skipped", False)
    if not data.get("thawed_at") and data.get("frozen_at") and worked and thaw.get("finished_at"):
        data["thawed_at"] = thaw["finished_at"]
    rescan = thaw.get("rescan")
    if isinstance(rescan, dict) and (rescan.get("writers") or "msg" in rescan):
        data["rescans"] = [*(data.get("rescans") or []), {**rescan, "label": "before_thaw"}]
    return data
