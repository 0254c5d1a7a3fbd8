# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the compliance checklist, used by the report role and its templates.

Thin wrappers over ``plugins/plugin_utils/compliance.py`` (pure Python, unit tested there). Input errors are raised
as ``AnsibleFilterError`` carrying the helper's message, which names the variable and the expected form.

- ``compliance_checklist(data)``: the checklist (see ``build_checklist``); ``data.now`` defaults to the current time.
- ``compliance_status_label(status, lang)``, ``compliance_lang(value)``.
- ``compliance_jsonl(text, source)``: JSON Lines text (e.g. ``lookup('file', 'drills/history.jsonl')``) to records.
- ``compliance_client_view(checklist, client)``: the checklist as one client may see it (no other client named).
- ``compliance_verify_records(document)``: a backup-verify result document flattened into per-repository records.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance as _c


def _now(value: Any) -> Any:
    if value in (None, ""):
        return _dt.datetime.now(_dt.timezone.utc)  # noqa: UP017 - same spelling as module_utils
    return value


def _plain(value: Any) -> Any:
    """Ansible's lazy containers and tagged strings to plain Python (JSON-like) values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def compliance_checklist(data: dict[str, Any]) -> dict[str, Any]:
    data = _plain(data)
    if not isinstance(data, dict):
        raise AnsibleFilterError("compliance_checklist: the input must be a mapping (mode, now, policy, ...)")
    data["now"] = _now(data.get("now"))
    try:
        return _c.build_checklist(data)
    except _c.ComplianceInputError as exc:
        raise AnsibleFilterError(f"compliance_checklist: {exc}") from exc


def compliance_status_label(status: str, lang: str = "en") -> str:
    return _c.status_label(str(status), str(lang))


def compliance_lang(value: Any, default: str = "zh-CN") -> str:
    """Normalise a client's language to ``zh-CN`` or ``en`` (``zh``, ``zh_CN``, ``cn`` -> ``zh-CN``)."""
    text = str(value or default).strip().lower().replace("_", "-")
    if text in ("zh", "zh-cn", "zh-hans", "cn", "chinese"):
        return "zh-CN"
    if text.startswith("en"):
        return "en"
    raise AnsibleFilterError(f"compliance_lang: language '{value}' is not supported; use zh-CN or en")


def compliance_jsonl(text: str, source: str = "history") -> list[dict[str, Any]]:
    try:
        return _c.parse_jsonl(str(text or ""), str(source))
    except _c.ComplianceInputError as exc:
        raise AnsibleFilterError(f"compliance_jsonl: {exc}") from exc


def compliance_client_view(checklist: dict[str, Any], client: dict[str, Any]) -> dict[str, Any]:
    try:
        return _c.client_view(_plain(checklist), _plain(client))
    except _c.ComplianceInputError as exc:
        raise AnsibleFilterError(f"compliance_client_view: {exc}") from exc


def compliance_verify_records(document: Any) -> list[dict[str, Any]]:
    return _c.verify_records(_plain(document))


class FilterModule:
    """Compliance checklist filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "compliance_checklist": compliance_checklist,
            "compliance_status_label": compliance_status_label,
            "compliance_lang": compliance_lang,
            "compliance_jsonl": compliance_jsonl,
            "compliance_verify_records": compliance_verify_records,
            "compliance_client_view": compliance_client_view,
        }
