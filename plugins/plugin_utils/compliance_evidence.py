# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compliance checklist from the evidence on the controller: the drill histories, the backup-verify results, the
signed evidence packs and an incident's notice records are read here, and the checklist is
plugin_utils/compliance.py's ``build_checklist``. Used by the controller actions compliance_checklist (the periodic
report) and incident_report (the incident report's checklist), so both read the same files the same way.

``inputs`` is the report role's ``__report_compliance_inputs`` (roles/report/vars/main.yml): ``mode``, ``now``,
``settings``, ``policy``, ``incident``, ``evidence_root``, ``public_key``, ``history_patterns``, ``extra_drills``,
``extra_verifies``, ``record_classes``.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import os
import re
import stat
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance as _c
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as _ep
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import notices as _n

DEFAULT_PATTERNS = ("history.jsonl", "result.json")
HISTORY_DEPTH = 4  # <root>/<kind>/<name>/<run>/<file>: drill histories and backup-verify results
PACK_DEPTH = 2  # <root>/<folder>/evidence-pack.json


def plain(value: Any) -> Any:
    """Ansible's lazy containers and tagged strings to plain Python (JSON-like) values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def find_files(root: str, patterns: list[str] | tuple[str, ...], depth: int) -> list[str]:
    """The regular files under ``root`` whose name matches one of ``patterns`` (shell globs), at most ``depth`` levels
    down (a file in ``root`` is level 1), names starting with a dot left out, links not followed: what
    ``ansible.builtin.find`` with ``recurse: true`` and that ``depth`` returns. Sorted; none when ``root`` is not a
    folder."""
    out: list[str] = []
    if not os.path.isdir(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        level = 0 if rel == os.curdir else rel.count(os.sep) + 1  # the folder's files are at level + 1
        if level + 1 >= depth:
            dirnames[:] = []
        if level + 1 > depth:
            continue
        for name in filenames:
            if name.startswith(".") or not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            path = os.path.normpath(os.path.join(dirpath, name))
            try:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    out.append(path)
            except OSError:
                continue
    return sorted(out)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise _c.ComplianceInputError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); restore it from the evidence pack"
        ) from None


def _union(items: list[Any], extra: list[Any]) -> list[Any]:
    """``items + extra`` without repeats, first occurrence kept (the ``union`` filter on lists of mappings)."""
    out: list[Any] = []
    for item in [*items, *extra]:
        if item not in out:
            out.append(item)
    return out


def read_histories(files: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The drill records of every ``history.jsonl`` and the verification records of every backup-verify
    ``result.json`` among ``files`` (a path holding ``backup_verify``), in path order."""
    drills: list[dict[str, Any]] = []
    verifies: list[dict[str, Any]] = []
    for path in files:
        if path.endswith("/history.jsonl"):
            drills.extend(_c.parse_jsonl(_read(path), path))
        elif path.endswith("/result.json") and "backup_verify" in path:
            try:
                document = json.loads(_read(path))
            except ValueError as exc:
                raise _c.ComplianceInputError(f"{path} is not valid JSON: {exc}") from exc
            verifies.extend(_c.verify_records(document))
    return drills, verifies


def verify_packs(root: str, public_key: str) -> list[dict[str, Any]]:
    """Each signed evidence pack under ``root`` (``<folder>/evidence-pack.json``) verified with the firm's public key;
    none without a key."""
    if not public_key:
        return []
    folders = sorted(os.path.dirname(p) for p in find_files(root, [_ep.MANIFEST_NAME], PACK_DEPTH))
    if not folders:
        return []
    trusted = _ep.load_public_key(public_key)
    return [_ep.verify(folder, trusted).as_dict() for folder in folders]


def read_notices(evidence_dir: str) -> list[dict[str, Any]] | None:
    """The entries of an incident's notices/index.json (their delivery records close the checklist's notice rows);
    None when the incident has no index."""
    path = _n.index_path(evidence_dir) if evidence_dir else ""
    if not path or not os.path.exists(path):
        return None
    try:
        return json.loads(_read(path)).get("notices") or []
    except (ValueError, AttributeError) as exc:
        raise _c.ComplianceInputError(f"{path} is not a notice index (a JSON object with 'notices'): {exc}") from exc


def unique_clients(configured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every host's ``ledgerguard_clients`` once per id, the first kept."""
    out: dict[Any, dict[str, Any]] = {}
    for client in configured:
        if isinstance(client, dict):
            out.setdefault(client.get("id"), client)
    return list(out.values())


def now_text(value: Any) -> str:
    """The report time: ``value``, or now in UTC (``YYYY-MM-DDTHH:MM:SS+00:00``)."""
    return str(value) if value else _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def checklist(inputs: dict[str, Any], configured: list[dict[str, Any]], evidence_dir: str = "") -> dict[str, Any]:
    """The checklist from ``inputs`` (see the module docstring), every host's clients ``configured`` and, in incident
    mode, the incident's evidence folder ``evidence_dir`` (its notice records). Raises ``ComplianceInputError`` with
    the reason."""
    inputs = plain(inputs)
    root = str(inputs.get("evidence_root") or "")
    files = find_files(root, inputs.get("history_patterns") or list(DEFAULT_PATTERNS), HISTORY_DEPTH)
    drills, verifies = read_histories(files)
    mode = inputs.get("mode") or "periodic"
    try:
        packs = verify_packs(root, str(inputs.get("public_key") or ""))
    except _ep.EvidenceError as exc:
        raise _c.ComplianceInputError(f"report_compliance_public_key: {exc}") from exc
    data = {
        "mode": mode,
        "now": now_text(inputs.get("now")),
        "settings": inputs.get("settings") or {},
        "policy": inputs.get("policy") or {},
        "clients": unique_clients(plain(configured)),
        "drills": _union(drills, inputs.get("extra_drills") or []),
        "verifies": _union(verifies, inputs.get("extra_verifies") or []),
        "evidence": packs,
        "incident": (inputs.get("incident") or {}) if mode == "incident" else {},
        "notices": read_notices(evidence_dir) if mode == "incident" else None,
        "record_classes": inputs.get("record_classes") or None,
    }
    return _c.build_checklist(data)


def error_text(exc: Exception) -> str:
    """The checklist's error as the report shows it: ``compliance_checklist: <reason>`` for a bad input, else the part
    of the message from a ``compliance_...: `` or ``retention_...: `` prefix on (a filter's error inside the inputs),
    else the whole message."""
    if isinstance(exc, _c.ComplianceInputError):
        return f"compliance_checklist: {exc}"
    found = re.search(r"(compliance|retention)_[a-z_]+: .*$", str(exc), re.S)
    return found.group(0) if found else str(exc)
