# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Listings kept on the host from one module run for the next (issue 19): what ``restic ls`` showed of a snapshot
named by its FULL 64-hex ID never changes (the ID is the hash of the snapshot, whose tree is content-addressed), so
snapshot_damage's listing of the chosen snapshot serves restic_restore's landing check and counts without a second
repository open (each costs restic's key derivation).

A kept listing lives in a folder only root uses (``safe_fs.private_dir``: a folder, not a link, owned by the
effective uid, mode 0700), one file per repository and snapshot (``<sha256 of the repository>-<snapshot id>.json``,
0600, written under a temporary name and renamed). It is read back only from such a folder, only as a regular file
of ours that no one else may write, and only when it names the same repository and snapshot; anything else is
ignored and the snapshot is listed again, so a kept listing can save a restic run but never change an answer."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils import safe_fs
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import FULL_SNAPSHOT_ID_RE as FULL_ID

FORMAT = 1
# Larger kept files are not read back (the listing is made again): about 400 characters per file of the tree.
MAX_BYTES = 256 * 1024 * 1024


def file_name(repository: str, snapshot_id: str) -> str:
    return f"{hashlib.sha256(repository.encode('utf-8')).hexdigest()}-{snapshot_id}.json"


def save(folder: str, repository: str, snapshot_id: str, data: dict[str, Any]) -> str:
    """Write ``data`` (JSON) as the kept listing of ``snapshot_id`` (a full ID) in ``repository``; returns its path.
    Raises OSError (``safe_fs.NotPrivate`` when the folder is not root's alone) or ValueError (not a full ID)."""
    if not FULL_ID.match(snapshot_id):
        raise ValueError(f"snapshot {snapshot_id!r} is not a full 64-hex ID; only such a listing never changes")
    fd, _created = safe_fs.private_dir(folder)
    name = file_name(repository, snapshot_id)
    tmp = f".{name}.{secrets.token_hex(6)}.tmp"
    body = json.dumps({"format": FORMAT, "repository": name.split("-", maxsplit=1)[0], "snapshot": snapshot_id, **data})
    try:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd)
        try:
            with os.fdopen(out, "w", encoding="utf-8") as handle:
                out = -1
                handle.write(body)
        finally:
            if out >= 0:
                os.close(out)
        os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=fd)
        except OSError:
            pass
        raise
    finally:
        os.close(fd)
    return os.path.join(folder, name)


def load(folder: str, repository: str, snapshot_id: str) -> dict[str, Any] | None:
    """The kept listing of ``snapshot_id`` in ``repository``, or None when there is none that can be trusted (see
    the module's docstring)."""
    if not FULL_ID.match(snapshot_id) or not folder or not os.path.isabs(folder):
        return None
    try:
        fd, _created = safe_fs.private_dir(folder, create=False)
    except OSError:
        return None
    if fd is None:
        return None
    name = file_name(repository, snapshot_id)
    try:
        try:
            file_fd, st = safe_fs.open_regular(name, dir_fd=fd)
        except OSError:
            return None
        with os.fdopen(file_fd, "rb") as handle:
            if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077 or st.st_size > MAX_BYTES:
                return None
            data = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or data.get("snapshot") != snapshot_id
        or data.get("repository") != name.split("-", maxsplit=1)[0]
    ):
        return None
    return data
