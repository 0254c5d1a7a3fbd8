# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's incident lock (``/var/lib/ledgerguard/incident.lock``): the one reader and the one exclusive create.

``host_lock`` takes and gives it back; ``backup_lock`` (and anything else that must not run while an incident owns the
host) reads it with :func:`read_lock`, which never follows a link nor opens a FIFO or a device
(``safe_fs.open_regular``) and reports a file it cannot trust instead of ignoring it.
"""

from __future__ import annotations

import errno
import json
import os

from ansible_collections.ledgerguard.recovery.plugins.module_utils.safe_fs import NotRegularFile, open_regular
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import duration_text

MAX_LOCK_BYTES = 64 * 1024


def read_lock(path: str) -> dict | None:
    """The lock's content; None when there is no lock; ``{"error": ...}`` when it cannot be trusted."""
    try:
        fd, _st = open_regular(path)
    except FileNotFoundError:
        return None
    except NotRegularFile:
        return {"error": f"{path} is not a regular file"}
    except OSError as exc:
        return {"error": f"cannot open {path}: {exc.strerror}"}
    try:
        data = os.read(fd, MAX_LOCK_BYTES)
    finally:
        os.close(fd)
    try:
        holder = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {"error": f"{path} is not a ledgerguard lock (not JSON)"}
    if not isinstance(holder, dict) or not holder.get("incident_id"):
        return {"error": f"{path} names no incident"}
    return holder


def refusal(host: str, path: str, incident_id: str, holder: dict, now: float) -> str:
    """Why ``incident_id`` may not work on ``host``: the lock ``path`` cannot be trusted (``holder['error']``) or
    another incident holds it (named with its operator, age and controller, and what to do)."""
    if "error" in holder:
        head = (
            f"Host {host}: the incident lock {path} cannot be trusted ({holder['error']}); check it and remove it if "
            "no incident is running."
        )
    else:
        try:
            created = float(holder.get("created_epoch", 0) or 0)
        except (TypeError, ValueError):
            created = 0.0
        other = holder.get("incident_id", "?")
        head = (
            f"Host {host} is locked by incident {other} (operator {holder.get('operator', 'unknown')}, since "
            f"{holder.get('created', '?')}, {duration_text(now - created)} ago, controller "
            f"{holder.get('controller', '?')}). Finish that incident first (re-run it with "
            f"ledgerguard_incident_id={other}), or if it is abandoned, remove {path} after checking."
        )
    return f"{head} Nothing was changed by {incident_id} on this host."


def take(path: str, content: dict) -> bool:
    """Create ``path`` with ``content`` exclusively; False when it already exists."""
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{content['token']}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, (json.dumps(content, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # No hard links on this filesystem: an exclusive create (the content may be read half-written for a
            # moment; read_lock then reports it as unreadable and nobody takes it over).
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                return False
            with open(tmp, "rb") as src:
                os.write(out, src.read())
            os.fsync(out)
            os.close(out)
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
