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

Beside it, ``<progress file>.finished`` (``finished_path``) holds one JSON line per client finished since the poller
last read it (``finished_record``: the client's one-line result, numbers and IDs only): the writer appends a line
when a client ends (``append_finished``), the poller takes every line and empties the file (``take_finished``), both
under an exclusive ``flock`` of the file, so a client that starts and ends between two polls still gets its line,
exactly once, in order. The writer empties it when its run starts; the poller removes it once the job has ended.
"""

from __future__ import annotations

import fcntl
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


FINISHED_SUFFIX = ".finished"
# what a finished client's record may hold (restic_backup's result of that client, numbers and IDs only)
FINISHED_FIELDS = ("id", "name", "status", "files_new", "files_changed", "data_added", "seconds", "snapshot",
                   "manifest", "error_kind")  # fmt: skip


def finished_path(path: str) -> str:
    """The finished-clients file of progress file ``path``."""
    return path + FINISHED_SUFFIX


def start_finished(path: str) -> None:
    """Empty (or create, mode 0600) the finished-clients file of progress file ``path`` as a run starts."""
    fd = os.open(finished_path(path), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.fchmod(fd, 0o600)  # a file left by an earlier run keeps no other mode
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def append_finished(path: str, record: dict[str, Any]) -> None:
    """Append one finished client's record (``finished_record``) to the finished-clients file of ``path``."""
    line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(finished_path(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)


def take_finished(path: str, remove: bool = False) -> list[dict[str, Any]]:
    """The records appended to the finished-clients file of ``path`` since the last take, in order; the file is
    emptied (``remove``: removed, once the job has ended). None there yet (or a line that is not a record): []."""
    name = finished_path(path)
    try:
        fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        if remove:
            os.unlink(name)
        else:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    records = []
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("id"):
            records.append(record)
    return records


def finished_record(entry: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A client's entry of restic_backup's ``clients`` result as its finished record: ID, name, status, and for a
    backed-up client restic's counts, the data added, the client's duration (``seconds``, manifest included) and the
    short IDs of its snapshot and manifest; for a failed one the kind of failure (never the message: it may name
    files)."""
    summary = entry.get("summary") or {}
    record: dict[str, Any] = {"id": entry["id"], "name": entry.get("name") or "", "status": entry["status"]}
    if entry["status"] == "ok":
        record.update({k: number(summary.get(k)) or 0 for k in ("files_new", "files_changed", "data_added")})
        record.update(seconds=round(seconds, 1), snapshot=entry.get("short_id") or "")
        record["manifest"] = str(entry.get("manifest_snapshot_id") or "")[:8]
    elif entry.get("error_kind"):
        record["error_kind"] = entry["error_kind"]
    return {k: record[k] for k in FINISHED_FIELDS if k in record}


def finished_line(record: dict[str, Any]) -> str:
    """A finished record as the one line the operator sees: ``c001 (客户甲): 3 new, 1 changed, 1.2 KiB added in
    0.4 s, snapshot 1a2b3c4d, manifest 5e6f7a8b``; ``c002 (客户乙): failed (locked)``;
    ``c003: not run``."""
    who = client_name(record)
    status = str(record.get("status") or "")
    if status != "ok":
        kind = str(record.get("error_kind") or "")
        return f"{who}: {status.replace('_', ' ')}" + (f" ({kind})" if kind else "")
    text = (
        f"{who}: {int(number(record.get('files_new')) or 0)} new, {int(number(record.get('files_changed')) or 0)} "
        f"changed, {human_size(number(record.get('data_added')) or 0)} added in "
        f"{number(record.get('seconds')) or 0:.1f} s, snapshot {record.get('snapshot') or '?'}"
    )
    return text + (f", manifest {record['manifest']}" if record.get("manifest") else "")


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
