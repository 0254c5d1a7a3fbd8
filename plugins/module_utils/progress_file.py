# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The progress file of an async job: written by restic_backup (``progress_file``), read by job_progress, which turns
it into the one-line label the ledgerguard CLI and AWX show.

The file is one JSON object, replaced atomically (a temporary file in the same folder, then a rename; mode 0600):

    {"done": 2, "total": 10, "current": "c003", "finished": [{"id": "c001", "status": "ok"}, ...],
     "client": {"id": "c003", "name": "示例客户03有限公司", "percent_done": 0.45, "bytes_done": ..., "total_bytes": ...,
                "files_done": ..., "total_files": ..., "seconds_elapsed": ..., "seconds_remaining": ...,
                "error_count": ...}}

``client`` is the client being backed up (absent at the end): its ID and name, and restic's figures once restic has
printed a status for it (restic's own names; ``seconds_remaining`` 0 while restic has no estimate). Client IDs,
names, statuses and numbers only: never a secret, never a file name.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.units import human_eta, human_size

NAME_CHARS = 16  # a longer client name is cut, with "…"


def write_state(path: str, state: dict[str, Any]) -> None:
    """Replace ``path`` atomically with ``state`` (mode 0600; its folder must exist)."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".progress-", dir=folder)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_json(path: str) -> dict | None:
    """The JSON object in ``path``; None while it is missing, being written or not an object."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def client_name(entry: dict[str, Any]) -> str:
    """A client as a progress line names it: its ID, and its name (cut at NAME_CHARS) when it has another one."""
    cid = str(entry.get("id") or "")
    name = str(entry.get("name") or "")
    if not name or name == cid:
        return cid
    return f"{cid} ({name if len(name) <= NAME_CHARS else name[:NAME_CHARS] + '…'})"


def client_progress(state: dict[str, Any]) -> tuple[str, float | None]:
    """The client being backed up as one line, and the part of it done (0 to 1):
    ``c003 (示例客户03有限公司): 45 % of 1.2 GiB, about 3 min left``; ``c003 (示例客户03有限公司)`` and 0 before
    restic's first status; the bare ``current`` and None when the file describes no client (an older writer); '' and
    None when nothing runs."""
    current = str(state.get("current") or "")
    client = state.get("client")
    if not current or not isinstance(client, dict) or str(client.get("id") or "") != current:
        return current, None
    text = client_name(client)
    total = number(client.get("total_bytes")) or 0
    if total <= 0:
        return text, 0.0
    part = min(max(float(number(client.get("percent_done")) or 0.0), 0.0), 1.0)
    text += f": {int(part * 100)} % of {human_size(total)}"
    left = number(client.get("seconds_remaining")) or 0
    if left > 0 and part < 1:
        text += f", about {human_eta(left)} left"
    return text, part
