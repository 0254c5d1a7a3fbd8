# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``ledgerguard.recovery.prometheus_textfile``: render metrics in node_exporter's textfile format."""

from __future__ import annotations

import math
import re
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: prometheus_textfile
short_description: Render metrics in the Prometheus text exposition format for node_exporter's textfile collector
version_added: 0.1.0
description:
  - Takes a list of metric families and returns the text that node_exporter's textfile collector reads from a
    C(*.prom) file, that is C(# HELP) and C(# TYPE) lines, then one line per sample, ending with a newline.
  - A family is a mapping with C(name), C(help), C(type) (C(gauge) by default, or C(counter), C(untyped)) and
    C(samples), a list of mappings with C(labels) (a mapping of label names to values) and C(value) (a number).
    A mapping without C(samples) is one sample of its C(name) (with optional C(labels) and C(value)); samples of the
    same name are merged into one family, in input order.
  - Label values are escaped (backslash, double quote, newline), so Chinese client names and Windows paths are safe.
    Names that are not valid metric or label names fail with a message naming them.
  - Values may be numbers, booleans (1/0), C(None) (skipped) or the strings C(NaN), C(+Inf), C(-Inf).
  - Write the result with M(ansible.builtin.copy) (C(content)), which replaces the file atomically, so the
    collector never reads half a file.
options:
  _input:
    description: The metric families or samples.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Write the backup metrics for node_exporter
  ansible.builtin.copy:
    dest: /var/lib/node_exporter/textfile/ledgerguard.prom
    mode: "0644"
    content: "{{ families | ledgerguard.recovery.prometheus_textfile }}"
  vars:
    families:
      - name: ledgerguard_backup_snapshot_age_seconds
        help: Age of the newest snapshot
        samples:
          - labels: {host: web1, path: /srv/ledgers}
            value: 3600
"""

RETURN = r"""
_value:
  description: The textfile contents, ending with a newline (empty string for no samples).
  type: str
"""

_METRIC_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TYPES = ("gauge", "counter", "untyped")


def _escape_label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        if value in ("NaN", "+Inf", "-Inf"):
            return value
        try:
            value = float(value)
        except ValueError as exc:
            raise AnsibleFilterError(f"prometheus_textfile: metric '{name}' has value '{value}', not a number") from exc
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    raise AnsibleFilterError(f"prometheus_textfile: metric '{name}' has a {type(value).__name__} value, not a number")


def _families(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order: list[str] = []
    fams: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict) or "name" not in item:
            raise AnsibleFilterError(f"prometheus_textfile: each item needs a 'name', got {item!r}")
        name = str(item["name"])
        if not _METRIC_RE.match(name):
            raise AnsibleFilterError(
                f"prometheus_textfile: '{name}' is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
            )
        fam = fams.get(name)
        if fam is None:
            fam = {"name": name, "help": item.get("help") or name, "type": item.get("type") or "gauge", "samples": []}
            if fam["type"] not in _TYPES:
                raise AnsibleFilterError(
                    f"prometheus_textfile: metric '{name}' type '{fam['type']}' is not one of {_TYPES}"
                )
            fams[name] = fam
            order.append(name)
        if "samples" in item:
            fam["samples"].extend(item["samples"] or [])
        else:
            fam["samples"].append({"labels": item.get("labels") or {}, "value": item.get("value")})
    return [fams[n] for n in order]


def prometheus_textfile(items: list[dict[str, Any]]) -> str:
    """Render metric families (see DOCUMENTATION) as node_exporter textfile text."""
    if items is None:
        return ""
    if isinstance(items, dict):
        items = [items]
    lines: list[str] = []
    for fam in _families(list(items)):
        rendered: list[str] = []
        for sample in fam["samples"]:
            value = _format_value(fam["name"], sample.get("value"))
            if value is None:
                continue
            labels = sample.get("labels") or {}
            parts = []
            for key in labels:
                if not _LABEL_RE.match(str(key)) or str(key).startswith("__"):
                    raise AnsibleFilterError(
                        f"prometheus_textfile: '{key}' is not a valid label name on '{fam['name']}'"
                    )
                parts.append(f'{key}="{_escape_label(labels[key])}"')
            label_text = "{" + ",".join(parts) + "}" if parts else ""
            rendered.append(f"{fam['name']}{label_text} {value}")
        if not rendered:
            continue
        lines.append(f"# HELP {fam['name']} {_escape_help(fam['help'])}")
        lines.append(f"# TYPE {fam['name']} {fam['type']}")
        lines.extend(rendered)
    return "\n".join(lines) + "\n" if lines else ""


class FilterModule:
    """Prometheus textfile rendering."""

    def filters(self) -> dict[str, Any]:
        return {"prometheus_textfile": prometheus_textfile}
