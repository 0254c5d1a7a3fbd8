# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the processes that hold anything under a folder, and stop them (containment of a write freeze).

``/proc`` is the source of truth, as for ``fuser -vm`` and ``lsof +D``: for every process, its working directory,
its root, every open file descriptor (with its open mode from ``/proc/PID/fdinfo``) and every memory-mapped file.
A handle is "under" a target when the target's directory (device and inode) is among its ancestors, walked with
``..`` from the handle itself: a process in another mount namespace, a chroot, or one that holds only a relative
path (its working directory) is found all the same. The resolved path is compared too (cheap first test).

Classification of a process that holds something under a target:

- ``writer``: its working directory or root is inside, or it holds a directory open inside (it can create and
  rewrite files by relative path: ransomware works that way), or a file open for writing (``O_WRONLY``/``O_RDWR``),
  or a shared writable memory map.
- ``reader``: only files open read-only and read-only or private maps. Recorded, not stopped.
- ``allowed``: matches the allow-list (executable path or ``comm``): the host's own agents. Recorded, not stopped.
- ``protected``: this process, its ancestors (ansible's python, the sshd session) and pid 1. Never signalled.
- ``service``: a process of a systemd unit the freeze stops itself (a ``service`` target). Left to systemd.

Standard library and freeze.py only; freeze.py does not import this file (it takes the scan as a hook), so the
watchdog's copy of freeze.py stays standalone.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shlex
import signal
import stat
import time
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.freeze import (
    FreezeError,
    Host,
    apply_rescan,
    read_mounts,
)

# The masking rules live in module_utils/redact (one set for argv and free text); mask_cmdline is used here.
from ansible_collections.ledgerguard.recovery.plugins.module_utils.redact import mask_cmdline
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import format_utc

POLICIES = ("stop", "kill", "report")
PROC = "/proc"
_O_PATH = getattr(os, "O_PATH", 0o10000000)
_HASH_LIMIT = 512 * 1024 * 1024


def display(text: str) -> str:
    """A string safe for JSON and reports: undecodable bytes of a file name (kept by os.fsdecode as surrogates) are
    shown as ``\\xe9``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def _strip_deleted(path: str) -> tuple[str, bool]:
    if path.endswith(" (deleted)"):
        return path[: -len(" (deleted)")], True
    return path, False


def is_within(path: str, parent: str) -> bool:
    if parent == "/":
        return path.startswith("/")
    return path == parent or path.startswith(parent.rstrip("/") + "/")


# --------------------------------------------------------------------------------------------------------------------
# One process, read from /proc
# --------------------------------------------------------------------------------------------------------------------


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def proc_stat(pid: int, proc: str = PROC) -> dict | None:
    """comm, state, ppid and start time (clock ticks since boot) from /proc/PID/stat."""
    raw = _read(f"{proc}/{pid}/stat")
    if not raw:
        return None
    head, _sep, tail = raw.rpartition(b")")
    fields = tail.split()
    try:
        return {
            "comm": os.fsdecode(head.partition(b"(")[2]),
            "state": fields[0].decode(),
            "ppid": int(fields[1]),
            "start_ticks": int(fields[19]),
            "flags": int(fields[6]),
        }
    except (IndexError, ValueError):
        return None


def proc_state(pid: int, proc: str = PROC) -> str | None:
    st = proc_stat(pid, proc)
    return st["state"] if st else None


_BOOT_TIME: list[float] = []


def boot_time(proc: str = PROC) -> float:
    if not _BOOT_TIME:
        for line in (_read(f"{proc}/stat") or b"").splitlines():
            if line.startswith(b"btime "):
                _BOOT_TIME.append(float(line.split()[1]))
                break
        else:
            _BOOT_TIME.append(0.0)
    return _BOOT_TIME[0]


def _uid(pid: int, proc: str) -> int | None:
    for line in (_read(f"{proc}/{pid}/status") or b"").splitlines():
        if line.startswith(b"Uid:"):
            return int(line.split()[1])
    return None


def _user(uid: int | None) -> str | None:
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


_SHA_CACHE: dict[tuple[int, int, int], str | None] = {}


def exe_sha256(pid: int, proc: str = PROC) -> str | None:
    """sha256 of the running executable, read through /proc/PID/exe (works for a deleted binary too)."""
    path = f"{proc}/{pid}/exe"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, int(st.st_mtime_ns))
        if key in _SHA_CACHE:
            return _SHA_CACHE[key]
        h = hashlib.sha256()
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > _HASH_LIMIT:
                _SHA_CACHE[key] = None
                return None
            h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
        return _SHA_CACHE[key]
    except OSError:
        return None
    finally:
        os.close(fd)


def ancestors(pid: int, proc: str = PROC) -> set[int]:
    """pid and its ancestors up to pid 1."""
    out = set()
    while pid > 0 and pid not in out:
        out.add(pid)
        st = proc_stat(pid, proc)
        if not st:
            break
        pid = st["ppid"]
    return out


# The controller's process name as /proc/PID/stat shows it (cut at 15 bytes).
CONTROLLER_COMMS = ("ansible-playboo",)


def controller_root(pid: int, proc: str = PROC) -> int | None:
    """The outermost ansible-playbook process above pid, or None. It exists only when the controller runs on this host
    (connection local, as in the fleet tests or a controller that is also a file server). Its other descendants are
    this run's own module processes for other hosts: their scans open other targets' folders for a moment (walking a
    handle's ancestry), and stopping them would stop the incident itself. Malware is never a descendant of it unless
    the playbook started it. The outermost, not the nearest: each host's tasks run under a worker that ansible-playbook
    forks (the same process name), so the nearest one covers only this host's own processes and another host's module
    process would be taken for a writer and stopped (seen with 20 local hosts: one host's freeze check stopped
    another's write_freeze run, which hung the incident)."""
    seen: set[int] = set()
    root = None
    while pid > 1 and pid not in seen:
        seen.add(pid)
        st = proc_stat(pid, proc)
        if not st:
            break
        if st["comm"] in CONTROLLER_COMMS:
            root = pid
        pid = st["ppid"]
    return root


# --------------------------------------------------------------------------------------------------------------------
# Targets and "is this handle under a target"
# --------------------------------------------------------------------------------------------------------------------


class Targets:
    """The target folders: their (device, inode), their resolved paths and the devices found below them.

    One instance serves one scan. It remembers, by (device, inode), the answer for every folder an ancestry walk
    passed through, so the folders that hold most files (a library folder mapped by every process, the tree above
    the targets) are walked once per scan, not once per file. The answer for a folder is what the walk found when it
    passed; a folder moved during the scan is seen as it was then, which is also all a walk without the memo sees."""

    def __init__(self, paths: Iterable[str], mounts: list | None = None) -> None:
        self.paths: list[str] = []
        self.same_ns = True
        self.idents: dict[tuple[int, int], str] = {}
        self.walked: dict[tuple[int, int], str | None] = {}
        self.devs: set[int] = set()
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                continue  # a vanished target holds nothing
            self.paths.append(p)
            self.idents[(st.st_dev, st.st_ino)] = p
            self.devs.add(st.st_dev)
        for m in mounts or []:
            mp = getattr(m, "mountpoint", None)
            if mp and any(is_within(mp, p) for p in self.paths):
                try:
                    self.devs.add(os.stat(mp).st_dev)
                except OSError:
                    pass

    def by_path(self, path: str) -> str | None:
        if not self.same_ns:
            return None  # a path seen in another mount namespace may name another folder: ancestry only
        for p in self.paths:
            if is_within(path, p):
                return p
        return None

    def by_ancestry(self, fd: int) -> str | None:
        """Walk '..' from a directory fd until the root (which is its own parent): the first target met. Every
        folder passed gets the answer in ``walked`` (a walk that failed on an error records nothing)."""
        cur = os.dup(fd)
        passed: set[tuple[int, int]] = set()
        found: str | None = None
        try:
            for _depth in range(4096):
                st = os.fstat(cur)
                key = (st.st_dev, st.st_ino)
                if key in self.idents:
                    found = self.idents[key]
                    break
                if key in self.walked:
                    found = self.walked[key]
                    break
                if key in passed:
                    break  # the root, its own parent: no target above
                passed.add(key)
                nxt = os.open("..", _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=cur)
                os.close(cur)
                cur = nxt
            else:
                return None  # deeper than any real tree: answer nothing, remember nothing
        except OSError:
            return None
        finally:
            os.close(cur)
        self.walked.update(dict.fromkeys(passed, found))
        return found

    def remembered(self, path: str, same_device: bool = False) -> tuple[bool, str | None]:
        """(True, the answer) when path names a folder that is a target or that a walk of this scan passed, found
        with one stat; (False, None) otherwise, for the caller to open it and walk. Most folders held or mapped are
        passed already (the library folders every process maps, the tree above the targets): opening one and
        starting a walk from it costs five system calls where the stat costs one. The answer is the one the walk
        would give at its first step (the same folder, looked up once instead of twice). With ``same_device``, a
        folder on a device of no target is answered None at once, as dir_under does."""
        try:
            st = os.stat(path)
        except OSError:
            return False, None
        if not stat.S_ISDIR(st.st_mode):
            return False, None
        key = (st.st_dev, st.st_ino)
        if key in self.idents:
            return True, self.idents[key]
        if key in self.walked:
            return True, self.walked[key]
        if same_device and st.st_dev not in self.devs:
            return True, None
        return False, None

    def dir_under(self, link: str, shown: str) -> str | None:
        """A directory held by a process (``/proc/PID/cwd``, ``root`` or ``fd/N``): by path, then by ancestry."""
        hit = self.by_path(shown)
        if hit:
            return hit
        known, answer = self.remembered(link, same_device=True)
        if known:
            return answer
        try:
            fd = os.open(link, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_dev not in self.devs:
                return None
            return self.by_ancestry(fd)
        finally:
            os.close(fd)

    def file_under(self, pid: int, shown: str, dev: int | None, proc: str = PROC) -> str | None:
        """A file held by a process, named by its path as /proc shows it: by path, then (same device only) by the
        ancestry of its folder resolved inside the process's own root (its mount namespace or chroot)."""
        path, _deleted = _strip_deleted(shown)
        hit = self.by_path(path)
        if hit or not path.startswith("/"):
            return hit
        if dev is not None and dev not in self.devs:
            return None
        folder = f"{proc}/{pid}/root{os.path.dirname(path)}"
        known, answer = self.remembered(folder)
        if known:
            return answer
        try:
            fd = os.open(folder, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return self.by_ancestry(fd)
        finally:
            os.close(fd)


def _fd_mode(pid: int, fd: str, proc: str) -> tuple[str, int]:
    """'r', 'w', 'rw' or 'path' from the flags line of /proc/PID/fdinfo/N, and the flags."""
    for line in (_read(f"{proc}/{pid}/fdinfo/{fd}") or b"").splitlines():
        if line.startswith(b"flags:"):
            flags = int(line.split()[1], 8)
            if flags & _O_PATH:
                return "path", flags
            return {0: "r", 1: "w", 2: "rw"}.get(flags & 3, "r"), flags
    return "r", 0


def holdings(pid: int, targets: Targets, proc: str = PROC) -> list[dict]:
    """What the process holds under the targets: cwd, root, fds, maps. Each with its path, mode and writing."""
    held: list[dict] = []
    base = f"{proc}/{pid}"
    try:
        targets.same_ns = os.readlink(f"{base}/ns/mnt") == os.readlink(f"{proc}/self/ns/mnt")
    except OSError:
        targets.same_ns = True
    for kind in ("cwd", "root"):
        try:
            shown = os.fsdecode(os.readlink(f"{base}/{kind}"))
        except OSError:
            continue
        hit = targets.dir_under(f"{base}/{kind}", shown)
        if hit:
            held.append({"kind": kind, "path": shown, "mode": "dir", "writing": True, "target": hit})
    # A thread that unshared its filesystem context (unshare(CLONE_FS)) has a working directory of its own.
    try:
        main_cwd = os.readlink(f"{base}/cwd")
        tids = [t for t in os.listdir(f"{base}/task") if t != str(pid)]
    except OSError:
        main_cwd, tids = None, []
    for tid in tids[:4096]:
        link = f"{base}/task/{tid}/cwd"
        try:
            own = os.readlink(link)
        except OSError:
            continue
        if own != main_cwd:
            shown = os.fsdecode(own)
            hit = targets.dir_under(link, shown)
            if hit:
                held.append(
                    {"kind": "cwd", "tid": int(tid), "path": shown, "mode": "dir", "writing": True, "target": hit}
                )
    try:
        fds = os.listdir(f"{base}/fd")
    except OSError:
        fds = []
    for fd in sorted(fds, key=lambda x: int(x) if x.isdigit() else 0):
        link = f"{base}/fd/{fd}"
        try:
            shown = os.fsdecode(os.readlink(link))
        except OSError:
            continue
        if not shown.startswith("/"):
            continue  # socket:, pipe:, anon_inode:
        try:
            st = os.stat(link)
        except OSError:
            st = None
        is_dir = st is not None and (st.st_mode & 0o170000) == 0o040000
        if is_dir:
            hit = targets.dir_under(link, shown)
        else:
            hit = targets.file_under(pid, shown, st.st_dev if st else None, proc)
        if not hit:
            continue
        mode, _flags = _fd_mode(pid, fd, proc)
        writing = mode in ("w", "rw") or is_dir  # a directory handle, even O_PATH, can create files (openat)
        held.append(
            {
                "kind": "fd",
                "fd": int(fd),
                "path": shown,
                "mode": "dir" if is_dir else mode,
                "writing": writing,
                "target": hit,
            }
        )
    seen_maps: set[tuple[str, bool]] = set()
    for line in (_read(f"{base}/maps") or b"").splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith(b"/"):
            continue
        perms = parts[1].decode()
        shown = os.fsdecode(parts[5])
        writing = "w" in perms and "s" in perms
        if (shown, writing) in seen_maps:
            continue
        seen_maps.add((shown, writing))
        try:
            major, minor = (int(x, 16) for x in parts[3].split(b":"))
            dev = os.makedev(major, minor)
        except ValueError:
            dev = None
        hit = targets.file_under(pid, shown, dev, proc)
        if hit:
            held.append({"kind": "map", "path": shown, "mode": perms, "writing": writing, "target": hit})
    return held


def _cgroup_units(pid: int, proc: str) -> list[str]:
    units = []
    for line in (_read(f"{proc}/{pid}/cgroup") or b"").splitlines():
        path = os.fsdecode(line.split(b":", 2)[-1])
        units.extend(part for part in path.split("/") if part.endswith((".service", ".scope", ".socket")))
    return units


def describe(pid: int, proc: str = PROC) -> dict | None:
    """The evidence for one process: pid, parent, user, executable and its sha256, masked command line, start."""
    st = proc_stat(pid, proc)
    if not st:
        return None
    try:
        exe = os.fsdecode(os.readlink(f"{proc}/{pid}/exe"))
    except OSError:
        exe = None
    argv = [os.fsdecode(a) for a in (_read(f"{proc}/{pid}/cmdline") or b"").split(b"\0") if a]
    uid = _uid(pid, proc)
    started = boot_time(proc) + st["start_ticks"] / os.sysconf("SC_CLK_TCK")
    return {
        "pid": pid,
        "ppid": st["ppid"],
        "uid": uid,
        "user": _user(uid),
        "comm": display(st["comm"]),
        "exe": display(exe) if exe else None,
        "exe_sha256": exe_sha256(pid, proc),
        "cmdline": display(shlex.join(mask_cmdline(argv))),
        "started": format_utc(started),
        "start_ticks": st["start_ticks"],
        "state": st["state"],
        "units": _cgroup_units(pid, proc),
    }


def _kernel_thread(pid: int, st: dict, proc: str) -> bool:
    return st["ppid"] == 2 or pid == 2 or bool(st["flags"] & 0x00200000)  # PF_KTHREAD


def scan(
    paths: Iterable[str],
    mounts: list | None = None,
    proc: str = PROC,
    skip: Iterable[int] = (),
) -> list[dict]:
    """Every process holding anything under paths, with what it holds (paths shown safely for JSON)."""
    targets = Targets(paths, mounts)
    if not targets.paths:
        return []
    skip = set(skip)
    found = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in skip:
            continue
        st = proc_stat(pid, proc)
        if not st or _kernel_thread(pid, st, proc):
            continue
        held = holdings(pid, targets, proc)
        if not held:
            continue
        rec = describe(pid, proc)
        if rec is None:
            continue
        for h in held:
            h["path"] = display(h["path"])
            h["target"] = display(h["target"])
        rec["holds"] = held
        rec["writing"] = any(h["writing"] for h in held)
        rec["targets"] = sorted({h["target"] for h in held})
        found.append(rec)
    return found


# --------------------------------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------------------------------


def allowed(rec: dict, allow: Iterable[str]) -> bool:
    """An allow-list entry with a '/' names an executable path, one without names a process (comm)."""
    for entry in allow:
        if "/" in entry:
            exe = _strip_deleted(rec.get("exe") or "")[0]
            if exe and (exe == entry or exe == os.path.realpath(entry)):
                return True
        elif entry and entry == rec.get("comm"):
            return True
    return False


def classify(rec: dict, allow: Iterable[str], protected: set[int], service_units: Iterable[str] = ()) -> str:
    if rec["pid"] in protected or rec["pid"] == 1:
        return "protected"
    if allowed(rec, allow):
        return "allowed"
    units = set(service_units)
    if units and units.intersection(rec.get("units") or ()):
        return "service"
    return "writer" if rec["writing"] else "reader"


def process_key(rec: dict) -> str:
    return f"{rec['pid']}:{rec['start_ticks']}"


def same_process(rec: dict, proc: str = PROC) -> bool:
    st = proc_stat(rec["pid"], proc)
    return bool(st) and st["start_ticks"] == rec["start_ticks"]


def _wait_state(
    pid: int, start_ticks: int, want: Callable[[str | None], bool], timeout: float, proc: str
) -> str | None:
    end = time.monotonic() + timeout
    while True:
        st = proc_stat(pid, proc)
        state = st["state"] if st and st["start_ticks"] == start_ticks else None
        if want(state) or time.monotonic() > end:
            return state
        time.sleep(0.02)


def stop(rec: dict, kill: bool = False, timeout: float = 3.0, proc: str = PROC) -> tuple[str, str | None]:
    """SIGSTOP (then SIGKILL with kill=True) one process, checked by its start time first (no pid reuse).
    Returns (action, state after): stopped / killed / gone / stop_failed."""
    pid, ticks = rec["pid"], rec["start_ticks"]
    if not same_process(rec, proc):
        return "gone", None
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return "gone", None
    state = _wait_state(pid, ticks, lambda s: s in (None, "T", "t", "Z", "X"), timeout, proc)
    if kill:
        if state not in (None, "Z", "X"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return "killed", None
            state = _wait_state(pid, ticks, lambda s: s in (None, "Z", "X"), timeout, proc)
        return ("killed" if state in (None, "Z", "X") else "stop_failed"), state
    if state in (None, "Z", "X"):
        return "gone", state
    return ("stopped" if state in ("T", "t") else "stop_failed"), state


def held_now(rec: dict, proc: str = PROC) -> bool:
    """True while a suspect could still write: it lives (same start time) and is not stopped or a zombie."""
    st = proc_stat(rec["pid"], proc)
    if not st or st["start_ticks"] != rec["start_ticks"]:
        return False
    return st["state"] not in ("T", "t", "Z", "X")


def resume_hint(rec: dict) -> str:
    return (
        f"stopped by ledgerguard, kept for forensics: resume with `kill -CONT {rec['pid']}` or end with "
        f"`kill -KILL {rec['pid']}` (a person's decision; check first that pid {rec['pid']} still started at "
        f"{rec['started']} and runs {rec.get('exe')})"
    )


def summary_line(rec: dict) -> str:
    holds = ", ".join(
        (f"fd {h['fd']} {h['path']} ({h['mode']})" if h["kind"] == "fd" else f"{h['kind']} {h['path']}")
        for h in rec.get("holds", [])[:4]
    )
    more = "" if len(rec.get("holds", [])) <= 4 else f" and {len(rec['holds']) - 4} more"
    return f"pid {rec['pid']} ({rec.get('comm')}, user {rec.get('user')}, {rec.get('exe')}): {holds}{more}"


class Containment:
    """Scan the targets, classify, act by policy and keep the records in the registry (``registry['containment']``).

    Phases: ``precheck`` (before anything changes: the ``report`` policy refuses here), ``contain`` (after the
    service targets stopped, before the paths freeze: suspects are stopped while nothing blocks them), ``verify``
    (after the freeze: new suspects stopped, then every suspect must be stopped or gone), ``rescan`` (any time
    later in the incident: the same as verify)."""

    def __init__(
        self,
        policy: str = "stop",
        allow: Iterable[str] = (),
        proc: str = PROC,
        now: Callable[[], float] = time.time,
        protected: Iterable[int] | None = None,
        stop_timeout: float = 3.0,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"containment policy {policy!r} is not one of {', '.join(POLICIES)}")
        self.policy = policy
        self.allow = [a for a in allow if a]
        self.proc = proc
        self.now = now
        self.protected = set(protected) if protected is not None else ancestors(os.getpid(), proc) | {1}
        self.run_root = controller_root(os.getpid(), proc) if protected is None else None
        self.stop_timeout = stop_timeout

    def _scan(self, paths: list[str], mounts: list | None) -> list[dict]:
        return scan(paths, mounts, proc=self.proc, skip={os.getpid()})

    def run(
        self,
        registry: dict | None,
        phase: str,
        paths: list[str],
        mounts: list | None = None,
        service_units: Iterable[str] = (),
        check_mode: bool = False,
    ) -> dict:
        """Scan and act. Returns {'found': [records seen now], 'new': [records acted on now], 'held': [suspects
        still able to write], 'refused': [writers the report policy refuses]}; records go to the registry."""
        found = self._scan(paths, mounts)
        if registry is not None:
            state = registry.setdefault("containment", {"policy": self.policy, "processes": []})
            state["policy"] = self.policy
            state["allow"] = sorted(set(state.get("allow") or []) | set(self.allow))
        else:
            state = {"processes": []}
        known = {process_key(r): r for r in state["processes"]}
        at = format_utc(self.now())
        new: list[dict] = []
        refused: list[dict] = []
        for rec in found:
            role = classify(rec, self.allow, self.protected, service_units)
            if role != "protected" and self.run_root and self.run_root in ancestors(rec["pid"], self.proc):
                role = "protected"  # a module process of this same run (another host played by this machine)
            old = known.get(process_key(rec))
            if old is not None:
                old["last_seen"] = at
                if role == "writer" and old.get("role") == "reader":
                    old.update(role="writer", holds=rec["holds"], writing=True, targets=rec["targets"])
                    old.pop("action", None)  # a reader that began to write: act on it now
                elif not (old.get("role") == "writer" and held_now(old, self.proc)):
                    continue  # already stopped, killed, gone, or a reader/agent/protected process seen before
                rec = old
            else:
                rec.update(role=role, found_at=at, found_by=phase)
                state["processes"].append(rec)
            if rec["role"] != "writer":
                rec["action"] = {"reader": "recorded", "allowed": "allowed", "protected": "protected"}.get(
                    rec["role"], "left_to_service"
                )
                new.append(rec)
                continue
            if check_mode:
                rec["action"] = {"stop": "would_stop", "kill": "would_kill", "report": "would_refuse"}[self.policy]
                new.append(rec)
                continue
            if self.policy == "report":
                rec["action"] = "refused"
                refused.append(rec)
                new.append(rec)
                continue
            action, after = stop(rec, kill=self.policy == "kill", timeout=self.stop_timeout, proc=self.proc)
            rec.update(action=action, state_after=after, acted_at=format_utc(self.now()), acted_in=phase)
            if action == "stopped":
                rec["resume"] = resume_hint(rec)
            new.append(rec)
        held = (
            []
            if check_mode
            else [r for r in state["processes"] if r.get("role") == "writer" and held_now(r, self.proc)]
        )
        return {"found": found, "new": new, "held": held, "refused": refused}


def stopped_processes(registry: dict, proc: str = PROC) -> list[dict]:
    """The suspects this incident stopped that are still stopped (for the thaw's result and the runbook)."""
    out = []
    for rec in (registry.get("containment") or {}).get("processes", []):
        if rec.get("action") != "stopped":
            continue
        st = proc_stat(rec["pid"], proc)
        if not st or st["start_ticks"] != rec["start_ticks"]:
            continue
        out.append(
            {
                "pid": rec["pid"],
                "comm": rec.get("comm"),
                "exe": rec.get("exe"),
                "cmdline": rec.get("cmdline"),
                "state": st["state"],
                "resume": f"kill -CONT {rec['pid']}",
                "end": f"kill -KILL {rec['pid']}",
                "note": resume_hint(rec),
            }
        )
    return out


def public(rec: dict) -> dict[str, Any]:
    """A process record as results and evidence carry it."""
    return {k: v for k, v in rec.items() if k not in ("units",) or v}


def _lines(records: list[dict]) -> str:
    return "; ".join(summary_line(r) for r in records)


def make_hook(
    policy: str = "stop", allow: Iterable[str] = (), proc: str = PROC, stop_timeout: float = 3.0
) -> Callable[[Any, str, list, list, bool], dict]:
    """The ``contain`` hook of freeze.apply_freeze / apply_rescan for a containment policy and allow-list."""
    engine = Containment(policy, allow, proc=proc, stop_timeout=stop_timeout)

    def contain(registry: dict | None, phase: str, paths: list, units: list, check_mode: bool) -> dict:
        if phase == "precheck" and policy != "report" and not check_mode:
            return {}
        try:
            mounts = read_mounts()
        except OSError:
            mounts = []
        out = engine.run(registry, phase, paths, mounts, service_units=units, check_mode=check_mode)
        if out["refused"]:
            out["error"] = (
                f"containment policy 'report': {len(out['refused'])} process(es) hold the folders being frozen and "
                f"can write there: {_lines(out['refused'])}. The freeze does not go on while they run. Decide, then "
                "freeze again: stop them (write_freeze_containment: stop, the default: SIGSTOP keeps them for "
                "forensics), kill them (kill), allow-list the host's own agents (write_freeze_allow), or end them "
                "by hand."
            )
        elif out["held"] and phase in ("verify", "rescan"):
            # At the freeze this is a warning (the freeze still holds against everything else, and the incident's
            # rescans fail while the writer runs); a rescan fails.
            out["warning" if phase == "verify" else "error"] = (
                f"{len(out['held'])} writer(s) still run under the frozen folders after SIGSTOP/SIGKILL: "
                f"{_lines(out['held'])}. The freeze does not hold against a process that already holds the folder "
                "(read-only mounts stop new opens only). Stop them by hand (kill -STOP or kill -KILL), then rescan."
            )
        return out

    return contain


# --------------------------------------------------------------------------------------------------------------------
# The rescan as a module runs it (write_freeze state=rescan, and restore_swap right before each client's swap)
# --------------------------------------------------------------------------------------------------------------------

NEEDS_ROOT = "write_freeze must run as root (mounts, systemd units, FIFREEZE and runuser need it): add become: true."


def containment_summary(result: dict, policy: str) -> None:
    """The result's ``containment``: the policy and the pids of its ``writers`` (and ``held``) by outcome."""
    writers = result.setdefault("writers", [])
    result["containment"] = {
        "policy": policy,
        "stopped": [w["pid"] for w in writers if w.get("action") == "stopped"],
        "killed": [w["pid"] for w in writers if w.get("action") == "killed"],
        "refused": [w["pid"] for w in writers if w.get("action") == "refused"],
        "readers": [w["pid"] for w in writers if w.get("role") == "reader"],
        "allowed": [w["pid"] for w in writers if w.get("role") == "allowed"],
        "held": [w["pid"] for w in result.get("held", [])],
    }


def rescan(
    incident: str,
    state_dir: str,
    policy: str,
    allow: Iterable[str],
    run: Callable[[list[str]], tuple[int, str, str]],
    which: Callable[[str], str | None] | None = None,
    check_mode: bool = False,
) -> dict[str, Any]:
    """write_freeze ``state=rescan``: the incident's frozen folders scanned again, new writers contained by
    ``policy``. Returns the module's result (``incident``, ``state``, ``writers``, ``held``, ``containment``, ...);
    when a writer still runs or the scan cannot be made, with ``failed`` and ``msg`` as the module fails. Warnings are
    in ``warnings``. ``run`` and ``which`` are the module's run_command and get_bin_path."""
    result: dict[str, Any] = {"incident": incident, "state": "rescan"}
    if os.geteuid() != 0 and not check_mode:
        return {**result, "failed": True, "msg": NEEDS_ROOT}
    host = Host(run, state_dir=state_dir, which=which)
    try:
        out = apply_rescan(host, incident, make_hook(policy, allow), check_mode=check_mode)
    except FreezeError as exc:
        result.update(exc.result)
        result.pop("errors", None)
        containment_summary(result, policy)
        return {**result, "failed": True, "msg": str(exc)}
    except OSError as exc:
        return {**result, "failed": True, "msg": f"write_freeze for incident {incident} failed on the host: {exc}"}
    result.update(out)
    containment_summary(result, policy)
    return result
