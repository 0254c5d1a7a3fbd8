# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the ``backup`` role: per-client status after a run (failed, late) and its Prometheus metrics; for the
database dumps it makes, their tag and (the restore role) the published results of their restores.

Thin wrappers over ``plugins/module_utils/backup_policy.py``, ``dbcapture.py`` and ``dbrestore.py`` (pure Python, unit
tested there); docs in the sidecar files ``backup_client_status.yml``, ``backup_metric_families.yml``,
``db_dump_tag.yml``, ``db_restore_results.yml`` and ``retention_policy.yml``.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.ledgerguard.recovery.plugins.module_utils import backup_policy as _policy
from ansible_collections.ledgerguard.recovery.plugins.module_utils import retention as _retention
from ansible_collections.ledgerguard.recovery.plugins.module_utils.dbcapture import dump_tag as _dump_tag
from ansible_collections.ledgerguard.recovery.plugins.module_utils.dbrestore import published_results as _published

_display = Display()


def backup_client_status(
    results: list[dict[str, Any]],
    client_ids: list[str],
    snapshots: list[dict[str, Any]],
    host: str,
    failed: bool = False,
    now: float = 0.0,
    max_age_hours: float = 26,
) -> list[dict[str, Any]]:
    try:
        return _policy.client_status(
            list(results or []),
            list(client_ids),
            list(snapshots or []),
            host,
            bool(failed),
            float(now),
            float(max_age_hours) * 3600,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"backup_client_status: {exc.__class__.__name__}: {exc}") from exc


def backup_metric_families(status: list[dict[str, Any]], now: float = 0.0) -> list[dict[str, Any]]:
    return _policy.metric_families(list(status or []), float(now))


def db_dump_tag(database: dict[str, Any]) -> str:
    try:
        return _dump_tag(str(database["engine"]), str(database["database"]))
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(
            "db_dump_tag: expected a database entry with engine and database (as in backup_databases), got "
            f"{database!r}"
        ) from exc


def db_restore_results(runs: Any) -> list[dict[str, Any]]:
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise AnsibleFilterError(
            f"db_restore_results: expected the results of a db_restore loop (a registered loop's results), got {runs!r}"
        )
    return _published(runs)


def retention_policy(backup_policy: Any, forget: bool = False, **aliases: Any) -> Any:
    """The retention policy in force (module_utils/retention.py resolve_retention), with a deprecation warning for
    each deprecated alias that is set; ``forget=True``: as the restic forget policy (None = nothing is forgotten)."""
    try:
        found = _retention.resolve_retention(backup_policy, aliases)
        for name in found["deprecated"]:
            _display.deprecated(
                _retention.alias_notice(name, used=found["source"] == name),
                version="0.3.0",
                collection_name="ledgerguard.recovery",
            )
        if forget:
            return _retention.forget_policy(found["retention"], found["source"] or _retention.RETENTION_VARIABLE)
        return found["retention"]
    except _retention.RetentionPolicyError as exc:
        raise AnsibleFilterError(f"retention_policy: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "backup_client_status": backup_client_status,
            "backup_metric_families": backup_metric_families,
            "db_dump_tag": db_dump_tag,
            "db_restore_results": db_restore_results,
            "retention_policy": retention_policy,
        }
