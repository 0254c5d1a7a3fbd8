# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the ``drill`` role: snapshot choice, sandbox safety, targets, drill records, trend chart, metrics.

Thin wrappers over ``plugins/module_utils/drill.py`` (pure Python, unit tested there). Errors that an operator
must act on are raised as ``AnsibleFilterError`` with the message from the helper.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.ledgerguard.recovery.plugins.module_utils import drill as _drill
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import restore_clients as _restore_clients

# drill_ledger_checks options (deprecated) and the key of the client's ledger declaration each becomes.
_LEGACY_LEDGER_KEYS = {
    "csv": (("columns", "csv_columns"), ("encoding", "csv_encoding"), ("delimiter", "csv_delimiter")),
    "sqlite": (("table", "sqlite_table"), ("columns", "sqlite_columns"), ("amount_scale", "sqlite_amount_scale")),
}


def drill_pick_snapshot(
    snapshots: list[dict[str, Any]],
    mode: str = "latest",
    window_days: float = 30,
    now: Any = None,
    seed: Any = None,
    snapshot_id: str = "",
    own_host: str = "",
) -> dict[str, Any]:
    try:
        return _drill.pick_snapshot(
            snapshots,
            mode=mode,
            window_days=window_days,
            now=now,
            seed=seed,
            snapshot_id=snapshot_id,
            own_host=own_host,
        )
    except ValueError as exc:
        raise AnsibleFilterError(f"drill: {exc}") from exc


def drill_sandbox_problem(
    sandbox: str,
    clients: list[dict[str, Any]] | None = None,
    realpath: str | None = None,
    extra_forbidden: list[str] | None = None,
) -> str:
    """The reason the sandbox is unsafe, or an empty string."""
    return _drill.sandbox_problem(sandbox, clients, realpath=realpath or None, extra_forbidden=extra_forbidden) or ""


def drill_snapshot_age(snapshot_time: Any, now: Any) -> float:
    try:
        return _drill.snapshot_age_seconds(snapshot_time, now)
    except ValueError as exc:
        raise AnsibleFilterError(f"drill_snapshot_age: {exc}") from exc


def drill_merge_targets(*layers: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return _drill.merge_targets(*layers)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"drill targets must be numbers of seconds / bytes per second: {exc}") from exc


def drill_client_result(
    client: dict[str, Any],
    restore: dict[str, Any],
    restore_seconds: float,
    verify_seconds: float,
    rpo_seconds: float,
    checks: dict[str, Any],
    targets: dict[str, Any],
) -> dict[str, Any]:
    return _drill.client_result(
        client, restore or {}, restore_seconds, verify_seconds, rpo_seconds, checks or {}, targets
    )


def drill_record(
    base: dict[str, Any], clients: list[dict[str, Any]], errors: list[str] | None = None
) -> dict[str, Any]:
    return _drill.drill_record(base, clients or [], errors)


def drill_parse_history(text: str) -> list[dict[str, Any]]:
    return _drill.parse_history(text)


def drill_trend_svg(
    history: list[dict[str, Any]], metric: str = "rto_seconds", title: str = "RTO", target: Any = None, last: int = 30
) -> str:
    tgt = float(target) if target not in (None, "", 0) else None
    return _drill.trend_svg(history or [], metric=metric, title=title, target=tgt, last=int(last))


def drill_metric_families(record: dict[str, Any]) -> list[dict[str, Any]]:
    return _drill.metric_families(record)


def drill_summary(record: dict[str, Any]) -> dict[str, Any]:
    return _drill.summary(record)


def drill_ledger(client: dict[str, Any], legacy_checks: dict[str, Any] | None = None) -> dict[str, Any]:
    """The client's books as the drill's damage assessment reads them (:func:`drill_damage_clients`): C(ledger), its
    declaration (ledgerguard_clients[].ledger, or the deprecated drill_ledger_checks entry turned into one), and
    C(paths), its ledger files as the incident's restore finds them (plugin_utils/restore_clients.ledger_paths)."""
    client = dict(client or {})
    decl = client.get("ledger") or {}
    legacy = (legacy_checks or {}).get(client.get("id")) or {}
    if not decl and legacy:
        decl = {}
        for kind, keys in _LEGACY_LEDGER_KEYS.items():
            part = {"sources": legacy.get(kind) or []}
            part.update({key: legacy[option] for key, option in keys if option in legacy})
            decl[kind] = part
    paths = client.get("paths") or []
    if not paths:
        return {"ledger": decl, "paths": []}
    return {"ledger": decl, "paths": _restore_clients.ledger_paths({**client, "ledger": decl, "declared_paths": paths})}


def drill_snapshot_pin(client: dict[str, Any]) -> dict[str, str]:
    """The client's first path pinned to where its snapshots store it (ledgerguard_clients[].snapshot_path), as
    restic_restore's and snapshot_damage's C(snapshot_paths) take it; {} when it sets none or has no path."""
    client = client or {}
    paths = client.get("paths") or []
    pin = client.get("snapshot_path") or ""
    return {paths[0]: pin} if pin and paths else {}


def drill_damage_clients(
    clients: list[dict[str, Any]], legacy_checks: dict[str, Any] | None = None, snapshot: str = ""
) -> list[dict[str, Any]]:
    """snapshot_damage's O(clients) for the drilled clients that have paths, so that one run assesses them all: each
    one's id, paths, books (:func:`drill_ledger`), its pin (:func:`drill_snapshot_pin`) and ``snapshot``."""
    out = []
    for client in clients or []:
        paths = list(client.get("paths") or [])
        if not paths:
            continue
        books = drill_ledger(client, legacy_checks)
        entry = {
            "id": str(client["id"]),
            "paths": paths,
            "ledger": books["ledger"],
            "ledger_paths": books["paths"],
            "snapshot_paths": drill_snapshot_pin(client),
        }
        if snapshot:
            entry["snapshot"] = snapshot
        out.append(entry)
    return out


def drill_manifest_recorded(listed_tags: list[str] | None, snapshot_id: str) -> bool | None:
    """Whether the snapshot list a damage assessment read (snapshot_damage's RV(manifest_tags)) holds the backup-time
    manifest of ``snapshot_id``; None when no such list is known (``listed_tags`` None)."""
    if listed_tags is None:
        return None
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_manifest import manifest_tags

    try:
        return manifest_tags(snapshot_id)[1] in set(listed_tags)
    except ValueError as exc:
        raise AnsibleFilterError(f"drill_manifest_recorded: {exc}") from exc


def drill_action_supports_async(name: str) -> bool:
    """Whether the action plugin behind a module accepts `async` (the drill then polls the restore for progress)."""
    from ansible.plugins.loader import action_loader

    try:
        cls = action_loader.get(name, class_only=True)
    except Exception:  # noqa: BLE001 - any loader error means: not known to support async
        return False
    if cls is None:
        return True  # no action plugin of that name: the normal action, which supports async
    return bool(getattr(cls, "_supports_async", False))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "drill_pick_snapshot": drill_pick_snapshot,
            "drill_sandbox_problem": drill_sandbox_problem,
            "drill_snapshot_age": drill_snapshot_age,
            "drill_merge_targets": drill_merge_targets,
            "drill_client_result": drill_client_result,
            "drill_record": drill_record,
            "drill_parse_history": drill_parse_history,
            "drill_trend_svg": drill_trend_svg,
            "drill_metric_families": drill_metric_families,
            "drill_summary": drill_summary,
            "drill_action_supports_async": drill_action_supports_async,
            "drill_damage_clients": drill_damage_clients,
            "drill_manifest_recorded": drill_manifest_recorded,
            "drill_snapshot_pin": drill_snapshot_pin,
        }
