# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hash-chained incident timeline (``evidence/<id>/timeline.jsonl``).

Each line is one JSON object written with sorted keys and no spaces. It carries:

* ``prev_sha256``: the sha256 of the previous line's bytes (without its newline), or 64 zeros on the first line;
* ``sha256``: the sha256 of the line's own canonical JSON *without* the ``sha256`` key.

An edit to line *n* is found either on the line itself (its ``sha256`` no longer matches) or, when the editor also
recomputed that hash, on line *n + 1* (its ``prev_sha256`` no longer matches line *n*). Either way the first line that
was altered is named. Deleting or reordering lines breaks the chain at the same place. The last line's hash is
returned by :func:`verify_chain` so a report can anchor it (an attacker who rewrites the last line and recomputes its
own hash is caught by comparing with that anchor).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

GENESIS = "0" * 64


def canonical(record: dict[str, Any]) -> str:
    """The canonical JSON text of a record (sorted keys, compact, UTF-8 kept readable)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal(record: dict[str, Any], prev_sha256: str) -> str:
    """Return the line (without newline) for ``record`` chained after a line whose sha256 is ``prev_sha256``."""
    body = {k: v for k, v in record.items() if k not in ("sha256", "prev_sha256")}
    body["prev_sha256"] = prev_sha256
    body["sha256"] = sha256_text(canonical(body))
    return canonical(body)


def last_line_hash(path: str) -> tuple[str, int]:
    """The sha256 of the last non-empty line of ``path`` and the number of lines (GENESIS, 0 when absent/empty)."""
    if not os.path.exists(path):
        return GENESIS, 0
    last = None
    count = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line:
                last = line
                count += 1
    if last is None:
        return GENESIS, 0
    return sha256_text(last), count


def append(path: str, record: dict[str, Any]) -> str:
    """Append ``record`` to the chain at ``path`` (created 0600 if needed); returns the line written."""
    prev, count = last_line_hash(path)
    record = dict(record)
    record.setdefault("seq", count + 1)
    line = seal(record, prev)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return line


def verify_lines(lines: list[str], anchor: str | None = None) -> dict[str, Any]:
    """Verify a list of timeline lines. See :func:`verify_chain` for the result."""
    prev_line_hash = GENESIS
    for index, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        try:
            record = json.loads(line)
        except ValueError:
            return _bad(index, len(lines), f"line {index} is not valid JSON")
        if not isinstance(record, dict) or "sha256" not in record or "prev_sha256" not in record:
            return _bad(index, len(lines), f"line {index} has no sha256/prev_sha256 fields")
        if record["prev_sha256"] != prev_line_hash:
            # This line says the previous one had another hash: the previous line (or the order) was altered.
            culprit = index - 1 if index > 1 else 1
            return _bad(
                culprit,
                len(lines),
                f"line {index}: prev_sha256 does not match the sha256 of line {index - 1}: line {culprit} was "
                "altered, removed or reordered",
            )
        body = {k: v for k, v in record.items() if k != "sha256"}
        if sha256_text(canonical(body)) != record["sha256"]:
            return _bad(index, len(lines), f"line {index}: its content does not match its own sha256")
        prev_line_hash = sha256_text(line)
    if anchor and anchor != prev_line_hash:
        return _bad(
            len(lines),
            len(lines),
            f"line {len(lines)}: the last line's sha256 {prev_line_hash} differs from the anchor {anchor} recorded "
            "in the report",
        )
    return {"ok": True, "lines": len(lines), "first_bad_line": None, "reason": "", "last_sha256": prev_line_hash}


def _bad(line: int, total: int, reason: str) -> dict[str, Any]:
    return {"ok": False, "lines": total, "first_bad_line": line, "reason": reason, "last_sha256": None}


def verify_chain(path: str, anchor: str | None = None) -> dict[str, Any]:
    """Verify the timeline at ``path``.

    Returns ``{ok, lines, first_bad_line, reason, last_sha256}``; ``first_bad_line`` (1-based) names the first line
    that was altered, ``last_sha256`` is the hash of the last line when the chain holds. ``anchor`` is an optional
    expected last-line hash (from ``report.json``).
    """
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle.read().split("\n") if line]
    return verify_lines(lines, anchor=anchor)
