# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the customer notice drafts of the report role (docs in notice_plan.yml, notice_index.yml).

Thin wrappers over ``plugins/plugin_utils/notices.py`` (pure Python, unit tested there).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.ledgerguard.recovery.plugins.filter.compliance import _plain  # one converter for both filters
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import notices as _n


def notice_plan(clients: Any, configured: Any, languages: Any = None, existing: Any = None) -> list[dict[str, Any]]:
    try:
        return _n.plan(_plain(clients) or [], _plain(configured) or [], _plain(languages) or [], _plain(existing))
    except _n.NoticeError as exc:
        raise AnsibleFilterError(f"notice_plan: {exc}") from exc


def notice_index(entries: Any, incident_id: str, evidence_dir: str, generated_at: str) -> dict[str, Any]:
    try:
        return _n.build_index(str(incident_id), _plain(entries) or [], str(evidence_dir), str(generated_at))
    except OSError as exc:
        raise AnsibleFilterError(
            f"notice_index: cannot read the draft {exc.filename} ({exc.strerror}); re-run the report"
        ) from exc


class FilterModule:
    """Customer notice filters."""

    def filters(self) -> dict[str, Any]:
        return {"notice_plan": notice_plan, "notice_index": notice_index}
