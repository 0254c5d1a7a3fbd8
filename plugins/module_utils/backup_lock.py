# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's backup lock: an ``flock`` on ``<state dir>/backup.lock``, so that no two backup, retention or prune runs
overlap and none starts while an incident owns the host (its incident lock exists). The file names the run holding
it (JSON: ``run_id``, ``purpose``, ``host``, ``pid``, ``started``).

It is held one of two ways:

- across the tasks of a whole run: a small detached process keeps the flock (:func:`hold_detached`) until the run
  releases it (SIGTERM to that process, :func:`release`), ``max_hold`` seconds pass, or the process is killed. The
  module ``backup_lock`` takes it so, and ``restic_backup`` when later steps of the run need it (its ``lock`` option
  with ``hold_after``);
- for one module run only (``restic_backup``'s ``lock`` without ``hold_after``: a backup that nothing follows): the
  module's own descriptor keeps it, so it ends with the module's process, even a killed one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.incident_lock import read_lock
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import pid_alive

LOCK_OPTIONS: dict[str, dict[str, Any]] = {
    "path": {"type": "path", "default": "/var/lib/ledgerguard/backup.lock"},
    "incident_lock": {"type": "path", "default": "/var/lib/ledgerguard/incident.lock"},
    "run_id": {"type": "str", "required": True},
    "purpose": {"type": "str", "default": "backup"},
    "max_hold": {"type": "int", "default": 43200},
    "wait": {"type": "int", "default": 0},
}


class LockRefused(Exception):
    """The run must not go on: an incident owns the host, or another run holds the lock. ``holder``: that run's
    record (``{}`` for an incident); ``waited``: seconds spent waiting for it."""

    def __init__(self, message: str, holder: dict[str, Any], waited: float) -> None:
        super().__init__(message)
        self.message, self.holder, self.waited = message, holder, waited


def read_holder(path: str) -> dict[str, Any]:
    """What the lock file says about its holder ({} when empty or unreadable)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read().strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def try_flock(path: str) -> int | None:
    """Open ``path`` (0600) and take an exclusive non-blocking flock; the fd, or None when another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


def lock_is_free(path: str) -> bool:
    if not os.path.exists(path):
        return True
    fd = try_flock(path)
    if fd is None:
        return False
    os.close(fd)
    return True


def hold_detached(fd: int, max_seconds: int) -> int:
    """Fork a detached process that keeps ``fd``'s flock for at most ``max_seconds`` (until SIGTERM); return its
    PID. The caller closes its own copy of ``fd`` afterwards: the lock stays with the holder."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # first child: new session, fork again, report the grandchild's pid
        try:
            os.setsid()
            grandchild = os.fork()
            if grandchild:
                os.write(write_end, str(grandchild).encode())
                os._exit(0)
            os.chdir("/")
            null = os.open(os.devnull, os.O_RDWR)
            for std in (0, 1, 2):
                os.dup2(null, std)
            keep = {0, 1, 2, fd}
            for other in range(3, 1024):
                if other not in keep:
                    try:
                        os.close(other)
                    except OSError:
                        pass
            os.set_inheritable(fd, False)
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            deadline = time.monotonic() + max_seconds
            while time.monotonic() < deadline:
                time.sleep(min(30.0, max(0.1, deadline - time.monotonic())))
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    data = b""
    while True:
        chunk = os.read(read_end, 64)
        if not chunk:
            break
        data += chunk
    os.close(read_end)
    return int(data or b"0")


def write_holder(fd: int, info: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(info, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    os.fsync(fd)


def holder_info(run_id: str, max_seconds: int) -> dict[str, Any]:
    now = time.time()
    return {
        "run_id": run_id,
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "started_epoch": int(now),
        "expires_epoch": int(now) + max_seconds,
    }


def incident_message(incident_lock: str, what: str) -> str | None:
    """Why a run of ``what`` must not start (an incident owns the host), or None. A lock that cannot be read (a link,
    a FIFO, not JSON) still refuses: nobody can tell that no incident owns the host."""
    holder = read_lock(incident_lock)
    if holder is None:
        return None
    if "error" in holder:
        owner = f"An incident lock that cannot be read holds this host ({holder['error']})"
    else:
        owner = (
            f"Incident {holder.get('incident_id', '?')} holds this host (operator "
            f"{holder.get('operator') or 'unknown'}, since {holder.get('created', '?')}; lock {incident_lock})"
        )
    return (
        f"{owner}. No {what} runs while an incident owns the host: nothing was backed up, forgotten or pruned. Run it "
        "again after the incident is released."
    )


def held_message(path: str, holder: dict[str, Any], waited: float) -> str:
    pid = holder.get("pid")
    alive = isinstance(pid, int) and pid > 0 and pid_alive(pid)
    return (
        f"Another {holder.get('purpose', 'backup')} run holds {path} (run {holder.get('run_id', '?')}, started "
        f"{holder.get('started', '?')} on {holder.get('host', '?')}, holder PID {pid or '?'}"
        f"{'' if alive else ', not running here'}); this run exits without doing anything"
        f"{f' after waiting {int(waited)} s' if waited else ''}. Wait for it to finish; if that run is dead, its lock "
        f"ends with PID {pid or '?'} (kill {pid or '?'})."
    )


def acquire(
    options: dict[str, Any], check_mode: bool, detach: bool = True, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Take the lock described by ``options`` (LOCK_OPTIONS' keys): ``holder`` (the record written), ``waited``
    (seconds), ``taken`` (False when this ``run_id`` held it already) and ``fd``. Refused (LockRefused) while the
    incident lock exists, before and after the flock, or while another run holds it after ``wait`` seconds.
    ``detach``: a detached process keeps it (``fd`` None); else ``fd`` keeps it, and closing it releases the lock.
    Check mode only tests it (taken and given back at once, ``fd`` None) and creates nothing: without a lock file
    nobody holds it."""
    path, purpose = options["path"], options["purpose"]
    refused = incident_message(options["incident_lock"], purpose)
    if refused:
        raise LockRefused(refused, {}, 0.0)
    if check_mode and not os.path.lexists(path):
        info = dict(holder_info(options["run_id"], options["max_hold"]), purpose=purpose)
        return {"holder": info, "waited": 0.0, "taken": True, "fd": None}
    os.makedirs(os.path.dirname(path) or "/", mode=0o700, exist_ok=True)
    started = time.monotonic()
    fd = try_flock(path)
    while fd is None and time.monotonic() - started < options["wait"]:
        sleep(1.0)
        fd = try_flock(path)
    waited = round(time.monotonic() - started, 1) if options["wait"] else 0.0
    if fd is None:
        holder = read_holder(path)
        if holder.get("run_id") == options["run_id"]:
            return {"holder": holder, "waited": waited, "taken": False, "fd": None}
        raise LockRefused(held_message(path, holder, waited), holder, waited)
    keep = False
    try:
        refused = incident_message(options["incident_lock"], purpose)  # an incident that started meanwhile
        if refused:
            raise LockRefused(refused, {}, waited)
        info = dict(holder_info(options["run_id"], options["max_hold"]), purpose=purpose)
        if check_mode:
            return {"holder": info, "waited": waited, "taken": True, "fd": None}
        if detach:
            write_holder(fd, dict(info, pid=0))
            info["pid"] = hold_detached(fd, options["max_hold"])
        else:
            info.update(pid=os.getpid(), held_by="module")
            keep = True
        write_holder(fd, info)
        return {"holder": info, "waited": waited, "taken": True, "fd": fd if keep else None}
    finally:
        if not keep:
            os.close(fd)


def release(path: str, run_id: str, check_mode: bool) -> tuple[bool, dict[str, Any], str]:
    """Stop the detached holder of ``run_id``'s lock (never another run's, never a module run that holds it itself:
    that lock ends with the module): ``(changed, holder left, warning)``."""
    holder = read_holder(path)
    if lock_is_free(path):
        return False, {}, ""
    if holder.get("run_id") != run_id:
        return False, holder, f"{path} is held by run {holder.get('run_id', '?')}, not by {run_id}: left alone"
    if holder.get("held_by") == "module":
        return (
            False,
            holder,
            (
                f"{path} is held by this run's module process (PID {holder.get('pid', '?')}), which is still running: "
                "left alone; the lock ends with that process"
            ),
        )
    if check_mode:
        return True, {}, ""
    pid = int(holder.get("pid") or 0)
    if pid > 0 and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while not lock_is_free(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not lock_is_free(path):
        raise OSError(f"the holder of {path} (PID {pid}) did not end within 15 s; kill {pid} by hand")
    return True, {}, ""
