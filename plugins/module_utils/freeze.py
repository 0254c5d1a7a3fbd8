# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Freeze and thaw writes on a host: the registry, the methods and the watchdog.

This file imports only the Python standard library on purpose: the watchdog installs a copy of it on the managed
host (``<state_dir>/freeze/ledgerguard_freeze.py``) and runs it as a script to thaw by itself when no thaw comes.
Everything that touches the host goes through a ``Host`` object, which takes ``run`` (argv list -> (rc, out, err))
so unit tests can feed captured output.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

RunCommand = Callable[[list[str]], tuple[int, str, str]]
# (registry or None, phase, path targets, service units, check_mode) -> {"new": [...], "held": [...], "error": str}
ContainHook = Callable[[Any, str, list, list, bool], dict]

REGISTRY_VERSION = 1
DEFAULT_STATE_DIR = "/var/lib/ledgerguard"
DEFAULT_MAX_DURATION = 4 * 3600
DEFAULT_FSFREEZE_MAX_DURATION = 60
WATCHDOG_RETRY_SECONDS = 60
SCRIPT_NAME = "ledgerguard_freeze.py"

METHODS = ("service", "remount_ro", "readonly_bind", "fsfreeze", "postgresql", "mariadb")
PATH_METHODS = ("remount_ro", "readonly_bind", "fsfreeze")
# Methods whose target must be the mount point of a filesystem (the whole filesystem is affected).
MOUNT_METHODS = ("remount_ro", "fsfreeze")

# linux/fs.h: _IOWR('X', 119, int) and _IOWR('X', 120, int)
FIFREEZE = 0xC0045877
FITHAW = 0xC0045878

METHOD_FIELDS = {
    "service": ("unit",),
    "remount_ro": ("path",),
    "readonly_bind": ("path",),
    "fsfreeze": ("path",),
    "postgresql": ("port", "socket_dir", "database", "os_user"),
    "mariadb": ("socket", "defaults_file", "login_user"),
}

INCIDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
UNIT_RE = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")

PROBE_PREFIX = ".ledgerguard-freeze-probe-"


class FreezeError(Exception):
    """A refusal or a failure, with a message meant for the operator (and the partial result, when there is one)."""

    def __init__(self, msg: str, result: dict | None = None) -> None:
        super().__init__(msg)
        self.result = result or {}


# --------------------------------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------------------------------


def validate_incident(incident: str) -> str:
    if not isinstance(incident, str) or not INCIDENT_RE.match(incident):
        raise FreezeError(
            f"incident {incident!r} is not a valid incident id: expected 1 to 128 characters, letters, digits, '_', "
            "'.' or '-', starting with a letter or digit (it names the registry file and the watchdog unit). "
            "Use the id the incident role declared (ledgerguard_incident_id)."
        )
    return incident


def registry_dir(state_dir: str) -> str:
    return os.path.join(state_dir, "freeze")


def registry_path(state_dir: str, incident: str) -> str:
    return os.path.join(registry_dir(state_dir), f"{validate_incident(incident)}.json")


def unescape_mount(value: bytes | str) -> str:
    """One field of /proc/self/mountinfo as a path: the kernel escapes space, tab, newline and backslash as octal
    (``\\040``) and leaves every other byte as it is, so the field is undone as bytes and then decoded the way the
    filesystem encodes names (``os.fsdecode``: UTF-8, with undecodable bytes such as a Latin-1 or GBK name kept as
    surrogates, so the result still names the same mount point)."""
    if isinstance(value, str):
        value = os.fsencode(value)
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8) & 0xFF]), value))


MOUNTINFO = "/proc/self/mountinfo"


def read_mounts(path: str = MOUNTINFO) -> list[Mount]:
    """The mount table, read as bytes (mount points need not be UTF-8). The one reader of the collection: the freeze,
    the watchdog and the swap all use it."""
    with open(path, "rb") as fh:
        return parse_mountinfo(fh.read())


@dataclass
class Mount:
    mount_id: int
    parent_id: int
    root: str
    mountpoint: str
    options: list[str]
    fstype: str
    source: str
    super_options: list[str] = field(default_factory=list)

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


def parse_mountinfo(text: bytes | str) -> list[Mount]:
    """Parse the mount table; ``text`` is best given as bytes (``read_mounts``)."""
    if isinstance(text, str):
        text = os.fsencode(text)
    mounts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        left, _sep, right = line.partition(b" - ")
        lf = left.split()
        rf = right.split()
        if len(lf) < 6 or len(rf) < 2:
            continue
        mounts.append(
            Mount(
                mount_id=int(lf[0]),
                parent_id=int(lf[1]),
                root=unescape_mount(lf[3]),
                mountpoint=unescape_mount(lf[4]),
                options=os.fsdecode(lf[5]).split(","),
                fstype=os.fsdecode(rf[0]),
                source=unescape_mount(rf[1]),
                super_options=os.fsdecode(rf[2]).split(",") if len(rf) > 2 else [],
            )
        )
    return mounts


def is_within(path: str, parent: str) -> bool:
    """True when path is parent or below it (both absolute, normalised)."""
    if parent == "/":
        return True
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def mount_for(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount that holds path: the longest mount point containing it, the last (topmost) one in file order."""
    best: Mount | None = None
    for m in mounts:
        if is_within(path, m.mountpoint) and (best is None or len(m.mountpoint) >= len(best.mountpoint)):
            best = m
    return best


def mounts_at(path: str, mounts: list[Mount]) -> list[Mount]:
    return [m for m in mounts if m.mountpoint == path]


def existing_ancestor(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return os.path.realpath(path)


def target_label(target: dict) -> str:
    if target.get("name"):
        return str(target["name"])
    method = target.get("method")
    if method == "service":
        return f"service {target.get('unit')}"
    if method in PATH_METHODS:
        return f"{method} {target.get('path')}"
    if method == "postgresql":
        return f"postgresql port {target.get('port') or 5432}"
    if method == "mariadb":
        return f"mariadb {target.get('socket') or 'default socket'}"
    return str(method)


def target_key(target: dict) -> str:
    """A stable identity for a target, used to find it in registries (ours and other incidents')."""
    method = target["method"]
    if method == "service":
        return f"service:{target['unit']}"
    if method in PATH_METHODS:
        return f"path:{target['path']}"
    if method == "postgresql":
        return f"postgresql:{target.get('socket_dir') or ''}:{target.get('port') or 5432}"
    if method == "mariadb":
        return f"mariadb:{target.get('socket') or ''}:{target.get('defaults_file') or ''}"
    raise FreezeError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")


def keys_overlap(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith("path:") and b.startswith("path:"):
        pa, pb = a[5:], b[5:]
        return is_within(pa, pb) or is_within(pb, pa)
    return False


def deadline_for(method: str, now: float, max_duration: int, fsfreeze_max_duration: int) -> float:
    if method == "fsfreeze":
        return now + min(max_duration, fsfreeze_max_duration)
    return now + max_duration


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def unit_exists(load_state: str) -> bool:
    return load_state.strip() not in ("", "not-found", "bad-setting", "error", "masked")


def pg_bool(value: str) -> bool:
    return value.strip().lower() in ("on", "true", "1", "yes")


def mariadb_read_only_on(value: str) -> bool:
    return value.strip().upper() not in ("0", "OFF", "")


def watchdog_unit_name(incident: str, generation: int) -> str:
    return f"ledgerguard-thaw-{validate_incident(incident)}-{generation}"


def next_deadline(registry: dict) -> float | None:
    deadlines = [t["deadline"] for t in registry.get("targets", []) if t.get("deadline")]
    return min(deadlines) if deadlines else None


def boot_id() -> str | None:
    """This boot's id: a registry made in an earlier boot describes a freeze the reboot partly undid."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def new_registry(incident: str, now: float) -> dict:
    return {
        "version": REGISTRY_VERSION,
        "incident": incident,
        "created": iso(now),
        "targets": [],
        "released": [],
        "watchdog": None,
        "history": [],
    }


# --------------------------------------------------------------------------------------------------------------------
# Registry on disk
# --------------------------------------------------------------------------------------------------------------------


def ensure_registry_dir(state_dir: str) -> str:
    d = registry_dir(state_dir)
    os.makedirs(d, mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def load_registry(state_dir: str, incident: str) -> dict | None:
    path = registry_path(state_dir, incident)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FreezeError(
            f"cannot read the freeze registry {path}: {exc}. It records how to undo the freeze; repair or move it "
            "aside by hand only after checking what it holds."
        ) from exc
    if not isinstance(data, dict) or data.get("incident") != incident:
        raise FreezeError(f"the freeze registry {path} does not belong to incident {incident!r}; check it by hand.")
    return data


def save_registry(state_dir: str, registry: dict) -> str:
    d = ensure_registry_dir(state_dir)
    path = registry_path(state_dir, registry["incident"])
    tmp = os.path.join(d, f".{registry['incident']}.json.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            text = json.dumps(registry, indent=2, sort_keys=True, ensure_ascii=False)
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A path that is not UTF-8 (a Latin-1 or GBK mount point, kept by os.fsdecode as surrogates): JSON's
            # \udcXX escapes keep it exact, and json.load gives the same path back.
            text = json.dumps(registry, indent=2, sort_keys=True, ensure_ascii=True)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def other_registries(state_dir: str, incident: str) -> list[dict]:
    d = registry_dir(state_dir)
    out = []
    if not os.path.isdir(d):
        return out
    for name in sorted(os.listdir(d)):
        if not name.endswith(".json") or name.startswith("."):
            continue
        other = name[: -len(".json")]
        if other == incident or not INCIDENT_RE.match(other):
            continue
        reg = load_registry(state_dir, other)
        if reg:
            out.append(reg)
    return out


@contextlib.contextmanager
def registry_lock(state_dir: str) -> Iterator[None]:
    """Serialise the module and the watchdog on one host."""
    d = ensure_registry_dir(state_dir)
    fd = os.open(os.path.join(d, ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --------------------------------------------------------------------------------------------------------------------
# The host: every side effect goes through here
# --------------------------------------------------------------------------------------------------------------------


def subprocess_run(argv: list[str]) -> tuple[int, str, str]:
    env = dict(os.environ)
    env.update({"LC_ALL": "C", "LANG": "C"})
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


class Host:
    def __init__(
        self,
        run: RunCommand,
        state_dir: str = DEFAULT_STATE_DIR,
        which: Callable[[str], str | None] | None = None,
        now: Callable[[], float] = time.time,
        python: str | None = None,
    ) -> None:
        self.run = run
        self.state_dir = state_dir
        self.which = which or _which
        self.now = now
        self.python = python or sys.executable or "/usr/bin/python3"

    # -- commands ------------------------------------------------------------------------------------------------
    def bin(self, name: str, *alternatives: str) -> str:
        for candidate in (name, *alternatives):
            path = self.which(candidate)
            if path:
                return path
        names = " or ".join((name, *alternatives))
        raise FreezeError(f"the command {names} was not found on the host; install it or choose another method.")

    def must(self, argv: list[str], what: str) -> str:
        rc, out, err = self.run(argv)
        if rc != 0:
            raise FreezeError(f"{what} failed: `{' '.join(argv)}` exited {rc}: {(err or out).strip()}")
        return out

    # -- mounts ----------------------------------------------------------------------------------------------------
    def mounts(self) -> list[Mount]:
        return read_mounts()

    def systemd_running(self) -> bool:
        return os.path.isdir("/run/systemd/system")


def _which(name: str) -> str | None:
    for d in (os.environ.get("PATH") or "").split(os.pathsep) + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]:
        candidate = os.path.join(d, name)
        if d and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


# --------------------------------------------------------------------------------------------------------------------
# Methods. Each has: check(host, target) -> refusal or None (raises), inspect(host, target) -> previous state,
# is_frozen(host, record) -> bool, freeze(host, record) -> dict, verify(host, record) -> proof, thaw(host, record).
# --------------------------------------------------------------------------------------------------------------------


def normalise_target(target: dict, index: int) -> dict:
    """Validate a target's fields and return a clean copy with canonical path and key."""
    method = target.get("method")
    allowed = ("method", "name", *METHOD_FIELDS.get(method, ()))
    t = {k: v for k, v in target.items() if v is not None and k in allowed}
    where = f"target {index + 1} ({target_label(t)})"
    if method not in METHODS:
        raise FreezeError(f"{where}: method {method!r} is not one of {', '.join(METHODS)}.")
    if method == "service":
        unit = t.get("unit")
        if not unit:
            raise FreezeError(f"{where}: method service needs 'unit' (a systemd unit such as smbd.service).")
        if not UNIT_RE.match(unit):
            raise FreezeError(f"{where}: unit {unit!r} is not a valid systemd unit name.")
        if "." not in unit:
            t["unit"] = unit + ".service"
    elif method in PATH_METHODS:
        path = t.get("path")
        if not path or not os.path.isabs(path):
            raise FreezeError(f"{where}: method {method} needs 'path', an absolute path (got {path!r}).")
        if os.path.normpath(path) == "/":
            raise FreezeError(
                f"{where}: refusing to freeze '/': a read-only or frozen root filesystem stops the host itself and "
                "the watchdog that would thaw it. Freeze the data filesystem (remount_ro on its mount point) or the "
                "client folder (readonly_bind) instead."
            )
        if not os.path.exists(path):
            raise FreezeError(
                f"{where}: path {path} does not exist on this host. Check the host's write_freeze_targets in the "
                "inventory (a typo, or a filesystem that is not mounted)."
            )
        t["path"] = os.path.realpath(path)
    t["key"] = target_key(t)
    t["label"] = target_label(t)
    return t


def _state_dir_mount(host: Host, mounts: list[Mount]) -> tuple[str, Mount | None]:
    sd = existing_ancestor(host.state_dir)
    return sd, mount_for(sd, mounts)


def check_target(host: Host, t: dict, mounts: list[Mount]) -> None:
    """Refusals that depend on the host. Raises FreezeError."""
    method = t["method"]
    where = f"target {t['label']}"
    if method in PATH_METHODS:
        path = t["path"]
        if path == "/":
            raise FreezeError(
                f"{where}: refusing to freeze '/' (the root filesystem): the host and the watchdog need it. "
                "Freeze the data filesystem or the client folder instead."
            )
        sd, sd_mount = _state_dir_mount(host, mounts)
        if method in MOUNT_METHODS:
            if not os.path.isdir(path) or not mounts_at(path, mounts):
                raise FreezeError(
                    f"{where}: {path} is not a mount point; {method} works on a whole filesystem. Give its mount "
                    "point, or use readonly_bind to make just this directory read-only."
                )
            if path == "/" or mount_for(path, mounts) is None or mount_for(path, mounts).mountpoint == "/":
                raise FreezeError(f"{where}: refusing to freeze the root filesystem.")
            if sd_mount is not None and sd_mount.mountpoint == path:
                raise FreezeError(
                    f"{where}: refusing to freeze {path}: it is the filesystem that holds the state directory "
                    f"{host.state_dir}, where the freeze registry and the watchdog live (thaw would be impossible). "
                    "Move ledgerguard_state_dir to another filesystem, or freeze the data directories with "
                    "readonly_bind."
                )
        else:
            if not os.path.isdir(path):
                raise FreezeError(f"{where}: {path} is not a directory; readonly_bind freezes a directory tree.")
            if is_within(sd, path):
                raise FreezeError(
                    f"{where}: refusing to freeze {path}: it holds the state directory {host.state_dir}, where the "
                    "freeze registry and the watchdog live (thaw would be impossible). Freeze a narrower directory."
                )
    elif method == "service":
        systemctl = host.bin("systemctl")
        rc, out, err = host.run([systemctl, "show", "--property=LoadState", "--value", t["unit"]])
        if rc != 0:
            raise FreezeError(
                f"{where}: cannot ask systemd about {t['unit']}: `systemctl show` exited {rc}: "
                f"{(err or out).strip()}. The service method needs systemd running on the host."
            )
        if not unit_exists(out):
            raise FreezeError(
                f"{where}: the systemd unit {t['unit']} does not exist on this host (LoadState="
                f"{(out or err).strip() or 'unknown'}). Check the unit name with `systemctl list-units`."
            )
    elif method == "postgresql":
        host.bin("psql")
        if os.geteuid() == 0:
            host.bin("runuser")
    elif method == "mariadb":
        host.bin("mariadb", "mysql")


# -- service ---------------------------------------------------------------------------------------------------------


def service_active_state(host: Host, unit: str) -> str:
    out = host.must([host.bin("systemctl"), "show", "--property=ActiveState", "--value", unit], f"reading {unit}")
    return out.strip()


def service_inspect(host: Host, t: dict) -> dict:
    state = service_active_state(host, t["unit"])
    return {"active_state": state, "was_running": state in ("active", "activating", "reloading")}


def service_is_frozen(host: Host, rec: dict) -> bool:
    return service_active_state(host, rec["unit"]) in ("inactive", "failed")


def service_freeze(host: Host, rec: dict) -> None:
    host.must([host.bin("systemctl"), "stop", rec["unit"]], f"stopping {rec['unit']}")


def service_verify(host: Host, rec: dict) -> dict:
    state = service_active_state(host, rec["unit"])
    if state not in ("inactive", "failed"):
        raise FreezeError(f"{rec['unit']} is still {state} after `systemctl stop`; it may be restarted by a socket.")
    return {"kind": "service_stopped", "detail": f"{rec['unit']} ActiveState={state}"}


def service_thaw(host: Host, rec: dict) -> None:
    if rec["previous"].get("was_running"):
        host.must([host.bin("systemctl"), "start", rec["unit"]], f"starting {rec['unit']}")


# -- remount_ro ------------------------------------------------------------------------------------------------------


def _top_mount(host: Host, path: str) -> Mount:
    here = mounts_at(path, host.mounts())
    if not here:
        raise FreezeError(f"{path} is no longer a mount point.")
    return here[-1]


def remount_inspect(host: Host, t: dict) -> dict:
    m = _top_mount(host, t["path"])
    return {"options": ",".join(m.options), "read_only": m.read_only, "fstype": m.fstype, "source": m.source}


def remount_is_frozen(host: Host, rec: dict) -> bool:
    return _top_mount(host, rec["path"]).read_only


def remount_freeze(host: Host, rec: dict) -> None:
    rc, out, err = host.run([host.bin("mount"), "-o", "remount,ro", rec["path"]])
    if rc != 0:
        hint = ""
        if "busy" in (err + out).lower():
            hint = (
                " A process holds a file open for writing: stop the writers first (put a `service` target before "
                "this one), or use readonly_bind. A process stopped by containment still holds its files open: "
                "use write_freeze_containment: kill for a filesystem that must be remounted read-only."
            )
        raise FreezeError(f"remounting {rec['path']} read-only failed (rc={rc}): {(err or out).strip()}.{hint}")


def remount_thaw(host: Host, rec: dict) -> None:
    previous = rec["previous"]
    if previous.get("read_only"):
        return
    if not mounts_at(rec["path"], host.mounts()):
        rec["vanished"] = True
        return  # the filesystem was unmounted since: nothing of the freeze is left to undo
    host.must([host.bin("mount"), "-o", "remount," + previous["options"], rec["path"]], f"remounting {rec['path']}")
    now = ",".join(_top_mount(host, rec["path"]).options)
    if now != previous["options"]:
        raise FreezeError(
            f"{rec['path']} was remounted but its options are {now}, not the previous {previous['options']}."
        )


# -- readonly_bind ---------------------------------------------------------------------------------------------------


def bind_inspect(host: Host, t: dict) -> dict:
    mounts = host.mounts()
    holding = mount_for(t["path"], mounts)
    return {
        "read_only": bool(holding and holding.read_only),
        "mount_point": bool(mounts_at(t["path"], mounts)),
        "holding_mount": holding.mountpoint if holding else None,
    }


def bind_is_frozen(host: Host, rec: dict) -> bool:
    mine = rec.get("bind_mount_id")
    return any(m.mount_id == mine and m.read_only for m in mounts_at(rec["path"], host.mounts()))


def bind_freeze(host: Host, rec: dict) -> None:
    mount = host.bin("mount")
    path = rec["path"]
    host.must([mount, "--bind", path, path], f"bind-mounting {path} over itself")
    top = mounts_at(path, host.mounts())
    rec["bind_mount_id"] = top[-1].mount_id if top else None
    rc, out, err = host.run([mount, "-o", "remount,bind,ro", path])
    if rc != 0:
        host.run([host.bin("umount"), path])
        raise FreezeError(f"making the bind mount on {path} read-only failed (rc={rc}): {(err or out).strip()}")


def bind_thaw(host: Host, rec: dict) -> None:
    mine = rec.get("bind_mount_id")
    here = mounts_at(rec["path"], host.mounts())
    if not any(m.mount_id == mine for m in here):
        rec["vanished"] = not os.path.exists(rec["path"]) or None
        return  # already gone
    if here[-1].mount_id != mine:
        raise FreezeError(
            f"{rec['path']} has another mount on top of the read-only bind mount this incident made; unmount that "
            "one first, then thaw again."
        )
    umount = host.bin("umount")
    rc, out, err = host.run([umount, rec["path"]])
    if rc != 0 and "busy" in (err + out).lower():
        # A process holds something through the bind mount (a working directory taken after the freeze, e.g. a
        # suspect the rescan stopped there). Detach it lazily: new lookups see the writable folder at once; the
        # holders keep the read-only view until they let go (a stopped suspect stays harmless).
        rc, out, err = host.run([umount, "--lazy", rec["path"]])
        rec["lazy_unmount"] = True
    if rc != 0:
        raise FreezeError(
            f"unmounting the read-only bind mount on {rec['path']} failed: `umount` exited {rc}: {(err or out).strip()}"
        )


# -- fsfreeze --------------------------------------------------------------------------------------------------------


def _fs_ioctl(path: str, request: int) -> int:
    """Return 0 on success or the errno."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, request, 0)
        return 0
    except OSError as exc:
        return exc.errno or errno.EIO
    finally:
        os.close(fd)


def fsfreeze_inspect(host: Host, t: dict) -> dict:
    m = _top_mount(host, t["path"])
    # A frozen state cannot be read without trying to freeze; freeze() records it (EBUSY = frozen before).
    return {"frozen": None, "fstype": m.fstype, "read_only": m.read_only}


def fsfreeze_is_frozen(host: Host, rec: dict) -> bool:
    # The kernel has no read-only query for the frozen state (only FIFREEZE answering EBUSY, which freezes an
    # unfrozen filesystem: not acceptable in check mode). Trust the registry.
    return rec.get("status") == "frozen"


def fsfreeze_freeze(host: Host, rec: dict) -> None:
    code = _fs_ioctl(rec["path"], FIFREEZE)
    if code == errno.EBUSY:
        rec["previous"]["frozen"] = True
        return
    if code != 0:
        raise FreezeError(f"FIFREEZE on {rec['path']} failed: {os.strerror(code)} ({errno.errorcode.get(code)}).")
    rec["previous"]["frozen"] = False


def fsfreeze_verify(host: Host, rec: dict) -> dict:
    code = _fs_ioctl(rec["path"], FIFREEZE)
    if code == 0:
        _fs_ioctl(rec["path"], FITHAW)
        raise FreezeError(f"{rec['path']} was not frozen (a second FIFREEZE succeeded).")
    if code != errno.EBUSY:
        raise FreezeError(f"cannot verify the freeze of {rec['path']}: FIFREEZE answered {os.strerror(code)}.")
    return {
        "kind": "fifreeze_ebusy",
        "errno": "EBUSY",
        "detail": f"a second FIFREEZE on {rec['path']} answered EBUSY: the filesystem is frozen; writers block.",
    }


def fsfreeze_thaw(host: Host, rec: dict) -> None:
    if rec["previous"].get("frozen"):
        return
    if not mounts_at(rec["path"], host.mounts()):
        rec["vanished"] = True
        return  # unmounted since (a frozen filesystem cannot be unmounted, so it was thawed first)
    code = _fs_ioctl(rec["path"], FITHAW)
    if code not in (0, errno.EINVAL):  # EINVAL: not frozen (already thawed)
        raise FreezeError(f"FITHAW on {rec['path']} failed: {os.strerror(code)}.")


# -- write probe for read-only paths ---------------------------------------------------------------------------------


def probe_write(path: str, incident: str) -> dict:
    probe = os.path.join(path, f"{PROBE_PREFIX}{incident}-{secrets.token_hex(4)}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EPERM, errno.EACCES):
            return {
                "kind": "write_refused",
                "probe": probe,
                "errno": errno.errorcode.get(exc.errno, str(exc.errno)),
                "detail": f"creating {probe} failed: {exc.strerror}",
            }
        raise FreezeError(f"the write probe {probe} failed with an unexpected error: {exc}") from exc
    os.close(fd)
    os.unlink(probe)
    raise FreezeError(f"a write into {path} still succeeds ({probe} could be created): the freeze did not take.")


# -- postgresql ------------------------------------------------------------------------------------------------------

PG_STATE_SQL = (
    "SELECT current_setting('default_transaction_read_only') || '|' || coalesce((SELECT setting FROM pg_file_settings "
    "WHERE name = 'default_transaction_read_only' AND sourcefile LIKE '%postgresql.auto.conf' "
    "ORDER BY seqno DESC LIMIT 1), '')"
)
PG_TERMINATE_SQL = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
)
PG_PROBE_SQL = "BEGIN; CREATE TABLE ledgerguard_freeze_probe (x int); ROLLBACK;"


def psql_argv(host: Host, rec: dict, *sql: str) -> list[str]:
    argv = []
    if os.geteuid() == 0:
        argv += [host.bin("runuser"), "-u", rec.get("os_user") or "postgres", "--"]
    argv += [host.bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", rec.get("database") or "postgres"]
    if rec.get("port"):
        argv += ["-p", str(rec["port"])]
    if rec.get("socket_dir"):
        argv += ["-h", rec["socket_dir"]]
    for statement in sql:
        argv += ["-c", statement]
    return argv


def pg_state(host: Host, rec: dict) -> tuple[str, str]:
    out = host.must(psql_argv(host, rec, PG_STATE_SQL), "reading default_transaction_read_only")
    current, _sep, auto = out.strip().partition("|")
    return current.strip(), auto.strip()


def pg_wait(host: Host, rec: dict, want_on: bool, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while True:
        current = pg_state(host, rec)[0]
        if pg_bool(current) == want_on:
            return
        if time.monotonic() > end:
            raise FreezeError(f"PostgreSQL still reports default_transaction_read_only={current} after reload.")
        time.sleep(0.2)


def pg_inspect(host: Host, t: dict) -> dict:
    current, auto = pg_state(host, t)
    return {"setting": current, "auto_conf": auto, "read_only": pg_bool(current)}


def pg_is_frozen(host: Host, rec: dict) -> bool:
    return pg_bool(pg_state(host, rec)[0])


def pg_freeze(host: Host, rec: dict) -> None:
    host.must(
        psql_argv(host, rec, "ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_reload_conf()"),
        "setting default_transaction_read_only",
    )
    pg_wait(host, rec, True)
    out = host.must(psql_argv(host, rec, PG_TERMINATE_SQL), "ending sessions that hold write transactions")
    rec["terminated_sessions"] = int(out.strip() or 0)


def pg_verify(host: Host, rec: dict) -> dict:
    rc, out, err = host.run(psql_argv(host, rec, PG_PROBE_SQL))
    text = (err or out).strip()
    if rc == 0:
        raise FreezeError("a write transaction still succeeds on PostgreSQL: the freeze did not take.")
    if "read-only transaction" not in text:
        raise FreezeError(f"the PostgreSQL write probe failed for another reason: {text}")
    return {"kind": "read_only_transaction", "sqlstate": "25006", "detail": text.splitlines()[-1]}


def pg_thaw(host: Host, rec: dict) -> None:
    previous = rec["previous"]
    if previous.get("read_only"):
        return
    auto = previous.get("auto_conf") or ""
    if auto:
        statement = "ALTER SYSTEM SET default_transaction_read_only = '" + auto.replace("'", "''") + "'"
    else:
        statement = "ALTER SYSTEM RESET default_transaction_read_only"
    host.must(psql_argv(host, rec, statement, "SELECT pg_reload_conf()"), "restoring default_transaction_read_only")
    pg_wait(host, rec, pg_bool(previous["setting"]))


# -- mariadb ---------------------------------------------------------------------------------------------------------


def mariadb_argv(host: Host, rec: dict, sql: str) -> list[str]:
    argv = [host.bin("mariadb", "mysql")]
    if rec.get("defaults_file"):
        argv.append(f"--defaults-file={rec['defaults_file']}")
    argv += ["--batch", "--skip-column-names"]
    if rec.get("socket"):
        argv.append(f"--socket={rec['socket']}")
    if rec.get("login_user"):
        argv.append(f"--user={rec['login_user']}")
    argv += ["-e", sql]
    return argv


def mariadb_read_only(host: Host, rec: dict) -> str:
    return host.must(mariadb_argv(host, rec, "SELECT @@GLOBAL.read_only"), "reading MariaDB read_only").strip()


def mariadb_inspect(host: Host, t: dict) -> dict:
    value = mariadb_read_only(host, t)
    return {"read_only_value": value, "read_only": mariadb_read_only_on(value)}


def mariadb_is_frozen(host: Host, rec: dict) -> bool:
    return mariadb_read_only_on(mariadb_read_only(host, rec))


def mariadb_freeze(host: Host, rec: dict) -> None:
    host.must(mariadb_argv(host, rec, "SET GLOBAL read_only = ON"), "setting MariaDB read_only")


def mariadb_verify(host: Host, rec: dict) -> dict:
    value = mariadb_read_only(host, rec)
    if not mariadb_read_only_on(value):
        raise FreezeError(f"MariaDB still reports read_only={value} after SET GLOBAL read_only = ON.")
    return {
        "kind": "read_only_variable",
        "detail": f"@@GLOBAL.read_only={value}: writes by accounts without READ_ONLY ADMIN fail with ER_OPTION_"
        "PREVENTS_STATEMENT (1290)",
    }


def mariadb_thaw(host: Host, rec: dict) -> None:
    previous = rec["previous"]
    if previous.get("read_only"):
        return
    value = previous.get("read_only_value", "0")
    restore = {"0": "OFF", "1": "ON"}.get(value, value)
    if not re.match(r"^[A-Za-z_]+$", restore):
        raise FreezeError(f"refusing to restore an unexpected MariaDB read_only value {value!r}.")
    host.must(mariadb_argv(host, rec, f"SET GLOBAL read_only = {restore}"), "restoring MariaDB read_only")


@dataclass(frozen=True)
class Method:
    inspect: Callable[[Host, dict], dict]
    is_frozen: Callable[[Host, dict], bool]
    freeze: Callable[[Host, dict], None]
    verify: Callable[[Host, dict], dict]
    thaw: Callable[[Host, dict], None]
    # True when the target counts as "already frozen before us" (we then leave it alone, now and at thaw).
    previously_frozen: Callable[[dict], bool]


def _path_verify(host: Host, rec: dict) -> dict:
    return probe_write(rec["path"], rec.get("incident", "x"))


METHOD_TABLE: dict[str, Method] = {
    "service": Method(
        service_inspect,
        service_is_frozen,
        service_freeze,
        service_verify,
        service_thaw,
        lambda p: not p.get("was_running"),
    ),
    "remount_ro": Method(
        remount_inspect, remount_is_frozen, remount_freeze, _path_verify, remount_thaw, lambda p: p.get("read_only")
    ),
    "readonly_bind": Method(
        bind_inspect, bind_is_frozen, bind_freeze, _path_verify, bind_thaw, lambda p: bool(p.get("read_only"))
    ),
    "fsfreeze": Method(
        fsfreeze_inspect,
        fsfreeze_is_frozen,
        fsfreeze_freeze,
        fsfreeze_verify,
        fsfreeze_thaw,
        lambda p: bool(p.get("frozen")),
    ),
    "postgresql": Method(pg_inspect, pg_is_frozen, pg_freeze, pg_verify, pg_thaw, lambda p: bool(p.get("read_only"))),
    "mariadb": Method(
        mariadb_inspect,
        mariadb_is_frozen,
        mariadb_freeze,
        mariadb_verify,
        mariadb_thaw,
        lambda p: bool(p.get("read_only")),
    ),
}


# --------------------------------------------------------------------------------------------------------------------
# Watchdog
# --------------------------------------------------------------------------------------------------------------------


def own_source() -> str:
    loader = globals().get("__loader__")
    get_source = getattr(loader, "get_source", None)
    if get_source is not None:
        with contextlib.suppress(ImportError, OSError):
            text = get_source(__name__)
            if text:
                return text
    with open(__file__, encoding="utf-8") as fh:
        return fh.read()


def install_script(state_dir: str) -> str:
    """Copy this file to <state_dir>/freeze/ledgerguard_freeze.py (only when it differs)."""
    d = ensure_registry_dir(state_dir)
    path = os.path.join(d, SCRIPT_NAME)
    source = own_source()
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == source:
                return path
    except FileNotFoundError:
        pass
    tmp = path + f".{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(source)
    os.chmod(tmp, 0o700)
    os.replace(tmp, path)
    return path


def _proc_start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _proc_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def watchdog_command(
    host: Host, script: str, incident: str, token: str, retry: int = WATCHDOG_RETRY_SECONDS
) -> list[str]:
    argv = [host.python, script, "watchdog", "--state-dir", host.state_dir, "--incident", incident, "--token", token]
    if retry != WATCHDOG_RETRY_SECONDS:
        argv += ["--retry-seconds", str(retry)]
    return argv


BOOT_UNIT_DIR = "/etc/systemd/system"


def boot_unit_name(state_dir: str) -> str:
    if os.path.normpath(state_dir) == DEFAULT_STATE_DIR:
        return "ledgerguard-freeze-boot.service"
    import hashlib  # noqa: PLC0415 - only here

    return f"ledgerguard-freeze-boot-{hashlib.sha256(os.fsencode(state_dir)).hexdigest()[:8]}.service"


def boot_unit_text(host: Host, script: str) -> str:
    return (
        "[Unit]\n"
        "Description=ledgerguard: undo at boot what a freeze of an earlier boot left (PostgreSQL ALTER SYSTEM)\n"
        "After=local-fs.target network.target postgresql.service mariadb.service\n"
        "ConditionPathExists=" + registry_dir(host.state_dir) + "\n\n"
        "[Service]\nType=oneshot\n"
        f"ExecStart={host.python} {script} boot --state-dir {host.state_dir}\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def install_boot_unit(host: Host, script: str) -> str | None:
    """A persistent unit that runs `ledgerguard_freeze.py boot` at start-up: an ALTER SYSTEM freeze survives a reboot,
    the transient watchdog timer does not."""
    if not (host.systemd_running() and os.path.isdir(BOOT_UNIT_DIR)):
        return None
    name = boot_unit_name(host.state_dir)
    path = os.path.join(BOOT_UNIT_DIR, name)
    text = boot_unit_text(host, script)
    try:
        with open(path, encoding="utf-8") as fh:
            current = fh.read()
    except OSError:
        current = None
    if current != text:
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(path + ".tmp", path)
        systemctl = host.which("systemctl")
        if systemctl:
            host.run([systemctl, "daemon-reload"])
            host.run([systemctl, "enable", name])
    return name


def remove_boot_unit_if_idle(host: Host) -> None:
    """Remove the boot unit once no registry of this state dir holds a target any more."""
    path = os.path.join(BOOT_UNIT_DIR, boot_unit_name(host.state_dir))
    if not os.path.exists(path):
        return
    d = registry_dir(host.state_dir)
    for name in os.listdir(d) if os.path.isdir(d) else []:
        if name.endswith(".json") and not name.startswith("."):
            try:
                with open(os.path.join(d, name), encoding="utf-8") as fh:
                    if json.load(fh).get("targets"):
                        return
            except (OSError, ValueError):
                return  # unreadable: keep the unit
    systemctl = host.which("systemctl")
    if systemctl:
        host.run([systemctl, "disable", os.path.basename(path)])
    with contextlib.suppress(OSError):
        os.unlink(path)


def arm_watchdog(host: Host, registry: dict, backend: str = "auto") -> dict | None:
    """(Re)arm the watchdog for the registry's earliest deadline. Mutates and returns registry['watchdog']."""
    disarm_watchdog(host, registry)
    fires_at = next_deadline(registry)
    if fires_at is None:
        return None
    incident = registry["incident"]
    script = install_script(host.state_dir)
    token = secrets.token_hex(8)
    delay = max(1, int(round(fires_at - host.now())))
    generation = int(registry.get("watchdog_generation", 0)) + 1
    registry["watchdog_generation"] = generation
    use_systemd = backend == "systemd" or (backend == "auto" and host.systemd_running() and host.which("systemd-run"))
    retry = int(registry.get("retry_seconds") or WATCHDOG_RETRY_SECONDS)
    if any(t.get("method") == "postgresql" and not t.get("left_alone") for t in registry.get("targets", [])):
        registry["boot_unit"] = install_boot_unit(host, script)
    if use_systemd:
        unit = watchdog_unit_name(incident, generation)
        host.must(
            [
                host.bin("systemd-run"),
                f"--unit={unit}",
                f"--on-active={delay}s",
                "--timer-property=AccuracySec=1s",
                f"--description=ledgerguard: thaw incident {incident} if no thaw comes",
                *watchdog_command(host, script, incident, token, retry),
            ],
            "arming the watchdog timer",
        )
        info = {"kind": "systemd", "unit": unit, "timer": f"{unit}.timer"}
    else:
        cmd = watchdog_command(host, script, incident, token, retry) + ["--delay", str(delay)]
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own script
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
            cwd="/",
        )
        info = {"kind": "process", "pid": proc.pid, "start_time": _proc_start_time(proc.pid)}
    info.update({"token": token, "fires_at": iso(fires_at), "fires_at_epoch": fires_at, "script": script})
    registry["watchdog"] = info
    return info


def disarm_watchdog(host: Host, registry: dict) -> bool:
    info = registry.get("watchdog")
    if not info:
        return False
    if info.get("kind") == "systemd":
        systemctl = host.which("systemctl")
        if systemctl:
            host.run([systemctl, "stop", info["timer"]])
            host.run([systemctl, "reset-failed", info["timer"], info["unit"] + ".service"])
    elif info.get("kind") == "process":
        pid = int(info.get("pid") or 0)
        # Only signal our own process: same start time and our token on its command line.
        if pid > 1 and _proc_start_time(pid) == info.get("start_time") and info.get("token") in _proc_cmdline(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    registry["watchdog"] = None
    return True


def watchdog_armed(host: Host, registry: dict) -> bool:
    info = registry.get("watchdog")
    if not info:
        return False
    if info.get("kind") == "systemd":
        systemctl = host.which("systemctl")
        if not systemctl:
            return False
        out = host.run([systemctl, "is-active", info["timer"]])[1]
        return out.strip() in ("active", "activating")
    pid = int(info.get("pid") or 0)
    return pid > 1 and _proc_start_time(pid) == info.get("start_time")


# --------------------------------------------------------------------------------------------------------------------
# Freeze / thaw engine
# --------------------------------------------------------------------------------------------------------------------


def _event(registry: dict, now: float, event: str, **data: Any) -> None:
    registry.setdefault("history", []).append({"at": iso(now), "event": event, **data})


def conflicts(host: Host, incident: str, targets: list[dict]) -> None:
    for other in other_registries(host.state_dir, incident):
        for held in other.get("targets", []):
            if held.get("left_alone"):
                continue  # that incident changed nothing there
            for t in targets:
                if keys_overlap(t["key"], held["key"]):
                    raise FreezeError(
                        f"target {t['label']}: incident {other['incident']} already holds "
                        f"{held['label']} (frozen {held.get('frozen_at')}); one incident at a time may freeze a "
                        f"target. Thaw incident {other['incident']} first, or continue the work under that incident."
                    )


def plan_freeze(host: Host, incident: str, targets: list[dict], registry: dict | None) -> list[dict]:
    """Validate every target and report what freezing would do. Raises FreezeError on a refusal; changes nothing."""
    validate_incident(incident)
    normal = [normalise_target(t, i) for i, t in enumerate(targets)]
    seen: dict[str, str] = {}
    for t in normal:
        if t["key"] in seen:
            raise FreezeError(f"target {t['label']} is listed twice (also as {seen[t['key']]}).")
        seen[t["key"]] = t["label"]
    mounts = host.mounts()
    for t in normal:
        check_target(host, t, mounts)
    conflicts(host, incident, normal)
    held = {r["key"]: r for r in (registry or {}).get("targets", [])}
    plan = []
    for t in normal:
        method = METHOD_TABLE[t["method"]]
        entry = {"name": t["label"], "key": t["key"], "method": t["method"]}
        if t["key"] in held:
            rec = held[t["key"]]
            entry["previous"] = rec["previous"]
            if rec.get("left_alone") or method.is_frozen(host, rec):
                entry["action"] = "already_frozen"
            else:
                entry["action"] = "refreeze"
        else:
            previous = method.inspect(host, t)
            entry["previous"] = previous
            entry["action"] = "left_alone" if method.previously_frozen(previous) else "freeze"
        entry["target"] = t
        plan.append(entry)
    return plan


def target_fields(rec: dict) -> dict:
    """The target as the module's `targets` option takes it (to thaw exactly this target later)."""
    keys = ("method", "name", *METHOD_FIELDS.get(rec["method"], ()))
    return {k: rec[k] for k in keys if rec.get(k) is not None}


def _public_rec(rec: dict, action: str) -> dict:
    return {
        "name": rec["label"],
        "key": rec["key"],
        "method": rec["method"],
        "action": action,
        "previous": rec["previous"],
        "deadline": iso(rec.get("deadline")),
        "target": target_fields(rec),
    }


def public(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "target"}


def apply_freeze(
    host: Host,
    incident: str,
    targets: list[dict],
    max_duration: int = DEFAULT_MAX_DURATION,
    fsfreeze_max_duration: int = DEFAULT_FSFREEZE_MAX_DURATION,
    verify: bool = True,
    extend: bool = False,
    check_mode: bool = False,
    watchdog_backend: str = "auto",
    contain: ContainHook | None = None,
    retry_seconds: int = WATCHDOG_RETRY_SECONDS,
) -> dict:
    """Freeze the targets. ``contain`` (see writers.py) finds and stops the processes that hold the path targets:
    called with phase ``precheck`` before anything changes, ``contain`` after the service targets stopped and before
    the first path target freezes, ``verify`` after everything froze; an ``error`` in its answer fails the freeze."""
    if max_duration < 1 or fsfreeze_max_duration < 1:
        raise FreezeError("max_duration and fsfreeze_max_duration must be at least 1 second.")
    with registry_lock(host.state_dir) if not check_mode else contextlib.nullcontext():
        registry = load_registry(host.state_dir, incident)
        plan = plan_freeze(host, incident, targets, registry)
        now = host.now()
        needs = [p for p in plan if p["action"] in ("freeze", "refreeze")]
        armed = bool(registry) and watchdog_armed(host, registry)
        result: dict[str, Any] = {"changed": False, "plan": [public(p) for p in plan], "targets": [], "proof": []}
        paths = [p["target"]["path"] for p in plan if p["method"] in PATH_METHODS]
        units = [p["target"]["unit"] for p in plan if p["method"] == "service"]
        writers: list[dict] = []

        def run_contain(reg: dict | None, phase: str) -> dict:
            if contain is None or not paths:
                return {}
            out = contain(reg, phase, paths, units, check_mode) or {}
            seen = {(w["pid"], w.get("start_ticks")) for w in writers}
            writers.extend(w for w in out.get("new", []) if (w["pid"], w.get("start_ticks")) not in seen)
            result["writers"] = writers
            return out

        pre = run_contain(registry, "precheck")
        if pre.get("error") and not check_mode:
            result["changed"] = False
            raise FreezeError(pre["error"] + " Nothing was frozen.", result)
        if check_mode:
            new_left_alone = any(p["action"] == "left_alone" for p in plan)
            result["changed"] = bool(needs) or extend or new_left_alone
            if registry and next_deadline(registry) is not None and not armed:
                result["changed"] = True
            result["targets"] = result["plan"]
            result["watchdog"] = registry.get("watchdog") if registry else None
            return result
        registry = registry or new_registry(incident, now)
        registry["boot_id"] = boot_id()  # the boot this freeze belongs to (the boot command thaws older ones)
        if retry_seconds != WATCHDOG_RETRY_SECONDS:
            registry["retry_seconds"] = retry_seconds
        by_key = {r["key"]: r for r in registry["targets"]}
        new_left_alone = False
        # Deadlines first, then the watchdog, then the freeze itself: a run that dies mid-way is still covered.
        for p in plan:
            t = p["target"]
            if p["action"] == "freeze":
                rec = dict(t)
                rec.update(
                    {
                        "incident": incident,
                        "previous": p["previous"],
                        "status": "freezing",
                        "frozen_at": iso(now),
                        "deadline": deadline_for(t["method"], now, max_duration, fsfreeze_max_duration),
                    }
                )
                registry["targets"].append(rec)
                by_key[t["key"]] = rec
            elif p["action"] == "left_alone" and t["key"] not in by_key:
                new_left_alone = True
                rec = dict(t, incident=incident, previous=p["previous"], status="left_alone", left_alone=True)
                rec["frozen_at"] = iso(now)
                rec["deadline"] = None
                registry["targets"].append(rec)
                by_key[t["key"]] = rec
            elif extend and by_key[t["key"]].get("deadline"):
                by_key[t["key"]]["deadline"] = deadline_for(t["method"], now, max_duration, fsfreeze_max_duration)
        changed = bool(needs) or extend or new_left_alone
        if needs or extend or not armed:
            if next_deadline(registry) is not None:
                arm_watchdog(host, registry, watchdog_backend)
                changed = True
        save_registry(host.state_dir, registry)
        handles = open_handles(plan) if verify else {}
        try:
            _freeze_targets(host, incident, plan, by_key, registry, result, verify, handles, run_contain)
        finally:
            for fd in handles.values():
                os.close(fd)
        if next_deadline(registry) is None and registry.get("watchdog"):
            disarm_watchdog(host, registry)
        if any(w.get("action") in ("stopped", "killed") for w in writers):
            changed = True
        save_registry(host.state_dir, registry)
        result["changed"] = changed
        result["watchdog"] = registry.get("watchdog")
        result["registry"] = registry_path(host.state_dir, incident)
        return result


def open_handles(plan: list[dict]) -> dict[str, int]:
    """A directory handle on each path target taken before it freezes: the position of a writer that already holds
    the folder (its working directory, or a directory it opened). The proof writes through it afterwards."""
    out = {}
    for p in plan:
        if p["method"] in ("readonly_bind", "remount_ro") and p["action"] in ("freeze", "refreeze"):
            with contextlib.suppress(OSError):
                out[p["key"]] = os.open(p["target"]["path"], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return out


def probe_handle(fd: int, incident: str) -> dict:
    """Try to create a file through a directory handle taken before the freeze (a writer's position)."""
    name = f"{PROBE_PREFIX}{incident}-handle-{secrets.token_hex(4)}"
    try:
        new = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd)
    except OSError as exc:
        return {
            "write_through_handle": "refused",
            "errno": errno.errorcode.get(exc.errno, str(exc.errno)),
            "detail": f"creating {name} through a directory handle taken before the freeze failed: {exc.strerror}",
        }
    os.close(new)
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=fd)
    return {
        "write_through_handle": "possible",
        "detail": f"{name} could be created (and was removed) through a directory handle taken before the freeze: "
        "this method stops new opens by path only; a process that already held the folder (working directory, "
        "open directory or file) could still write, so every such process must be stopped (containment).",
    }


def _freeze_targets(
    host: Host,
    incident: str,
    plan: list[dict],
    by_key: dict,
    registry: dict,
    result: dict,
    verify: bool,
    handles: dict[str, int],
    run_contain: Callable[[dict | None, str], dict],
) -> None:
    contained = False
    for p in plan:
        rec = by_key[p["key"]]
        if not contained and rec["method"] != "service":
            # The services that serve the folders stopped first; the processes still holding them are stopped now,
            # before a filesystem freeze could block them in the kernel (where SIGSTOP cannot reach them).
            _contained_or_fail(host, incident, registry, result, run_contain(registry, "contain"))
            contained = True
        if p["action"] in ("freeze", "refreeze"):
            try:
                METHOD_TABLE[rec["method"]].freeze(host, rec)
            except FreezeError as exc:
                rec["status"] = "failed"
                _event(registry, host.now(), "freeze_failed", target=rec["label"], error=str(exc))
                save_registry(host.state_dir, registry)
                result["targets"].append(_public_rec(rec, "failed"))
                result.update(changed=True, watchdog=registry.get("watchdog"))
                result["registry"] = registry_path(host.state_dir, incident)
                raise FreezeError(
                    f"freezing {rec['label']} failed: {exc} Targets frozen before it stay frozen and are recorded "
                    f"in {registry_path(host.state_dir, incident)}; thaw them with state=thawed (the watchdog "
                    "thaws them otherwise).",
                    result,
                ) from exc
            rec["status"] = "frozen"
            if METHOD_TABLE[rec["method"]].previously_frozen(rec["previous"]):
                # fsfreeze only learns at FIFREEZE time that the filesystem was frozen before us.
                rec["status"] = "left_alone"
                rec["left_alone"] = True
                rec["deadline"] = None
            _event(registry, host.now(), "frozen", target=rec["label"], method=rec["method"])
            save_registry(host.state_dir, registry)
        out = _public_rec(rec, p["action"] if rec.get("status") != "left_alone" else "left_alone")
        if rec.get("terminated_sessions") is not None:
            out["terminated_sessions"] = rec["terminated_sessions"]
        if verify and rec.get("status") == "frozen":
            try:
                proof = METHOD_TABLE[rec["method"]].verify(host, rec)
            except FreezeError as exc:
                out["action"] = "failed"
                result["targets"].append(out)
                result.update(changed=True, watchdog=registry.get("watchdog"))
                save_registry(host.state_dir, registry)
                raise FreezeError(
                    f"verifying the freeze of {rec['label']} failed: {exc} The target is recorded in the "
                    "registry; thaw with state=thawed.",
                    result,
                ) from exc
            if p["key"] in handles:
                proof["handle_probe"] = probe_handle(handles[p["key"]], incident)
            elif rec["method"] == "fsfreeze":
                proof["handle_probe"] = {
                    "write_through_handle": "blocks",
                    "detail": "a frozen filesystem blocks every write, by path or through a handle, until the thaw",
                }
            proof = {"target": rec["label"], "method": rec["method"], "at": iso(host.now()), **proof}
            rec["proof"] = proof
            out["proof"] = proof
            result["proof"].append(proof)
        result["targets"].append(out)
    if not contained:
        _contained_or_fail(host, incident, registry, result, run_contain(registry, "contain"))
    check = run_contain(registry, "verify")
    if check:
        held = check.get("held", [])
        for proof in result["proof"]:
            hp = proof.get("handle_probe")
            if hp is not None:
                hp["writers_stopped"] = sum(
                    1
                    for w in (registry.get("containment") or {}).get("processes", [])
                    if w.get("action") in ("stopped", "killed") and proof["target"] in _labels_of(registry, w)
                )
                hp["writers_running"] = len(held)
                hp["holds"] = not held
    save_registry(host.state_dir, registry)
    if check.get("warning"):
        result.setdefault("warnings", []).append(check["warning"])
        result["held"] = check.get("held", [])
    _contained_or_fail(host, incident, registry, result, check)


def _labels_of(registry: dict, writer: dict) -> set[str]:
    paths = set(writer.get("targets") or [])
    return {t["label"] for t in registry.get("targets", []) if t.get("path") in paths}


def _contained_or_fail(host: Host, incident: str, registry: dict, result: dict, out: dict) -> None:
    """Fail the freeze when containment says so; under the report policy, first thaw what this run froze."""
    if not out or not out.get("error"):
        return
    save_registry(host.state_dir, registry)
    undone = []
    if out.get("refused"):
        mine = [r for r in registry["targets"] if not r.get("left_alone")]
        frozen_now = {t["key"] for t in result.get("targets", []) if t.get("action") in ("freeze", "refreeze")}
        for rec in reversed([r for r in mine if r["key"] in frozen_now]):
            try:
                METHOD_TABLE[rec["method"]].thaw(host, rec)
            except (FreezeError, OSError) as exc:
                _event(registry, host.now(), "thaw_failed", target=rec["label"], error=str(exc), by="report_policy")
                continue
            registry["targets"].remove(rec)
            rec.update(thawed_at=iso(host.now()), thawed_by="report_policy")
            registry["released"].append(rec)
            undone.append(rec["label"])
        if not registry["targets"] and registry.get("watchdog"):
            disarm_watchdog(host, registry)
        save_registry(host.state_dir, registry)
        for t in result.get("targets", []):
            if t["name"] in undone:
                t["action"] = "thawed"
    result["changed"] = True
    result["watchdog"] = registry.get("watchdog")
    result["registry"] = registry_path(host.state_dir, incident)
    tail = f" What this run froze was thawed again: {', '.join(undone)}." if undone else ""
    raise FreezeError(out["error"] + tail, result)


def apply_thaw(
    host: Host,
    incident: str,
    targets: list[dict] | None = None,
    check_mode: bool = False,
    expired_only: bool = False,
    watchdog_backend: str = "auto",
    actor: str = "module",
) -> dict:
    validate_incident(incident)
    if not os.path.exists(registry_path(host.state_dir, incident)):
        return {"changed": False, "targets": [], "errors": [], "watchdog": None}  # nothing frozen: touch nothing
    with registry_lock(host.state_dir) if not check_mode else contextlib.nullcontext():
        registry = load_registry(host.state_dir, incident)
        result: dict[str, Any] = {"changed": False, "targets": [], "errors": []}
        if not registry:
            result["watchdog"] = None
            return result
        wanted: set[str] | None = None
        if targets:
            wanted = set()
            for i, t in enumerate(targets):
                t = {k: v for k, v in t.items() if v is not None}
                if t.get("path") and t.get("method") in PATH_METHODS:
                    t["path"] = os.path.realpath(t["path"])
                if t.get("method") == "service" and t.get("unit") and "." not in t["unit"]:
                    t["unit"] += ".service"
                try:
                    wanted.add(target_key(t))
                except KeyError as exc:
                    raise FreezeError(f"target {i + 1}: missing field {exc} to identify it.") from exc
        now = host.now()
        selected = [
            r
            for r in reversed(registry["targets"])
            if (wanted is None or r["key"] in wanted) and (not expired_only or (r.get("deadline") or 0) <= now + 1)
        ]
        if expired_only:
            # Left-alone entries have no deadline; release them once nothing else of the incident remains.
            rest = [r for r in registry["targets"] if r not in selected and not r.get("left_alone")]
            if not rest:
                selected = list(reversed(registry["targets"]))
        if check_mode:
            result["changed"] = bool(selected)
            result["targets"] = [
                {"name": r["label"], "method": r["method"], "action": "left_alone" if r.get("left_alone") else "thaw"}
                for r in selected
            ]
            result["watchdog"] = registry.get("watchdog")
            return result
        for rec in selected:
            entry = {"name": rec["label"], "key": rec["key"], "method": rec["method"]}
            if rec.get("left_alone"):
                entry["action"] = "left_alone"
            else:
                try:
                    METHOD_TABLE[rec["method"]].thaw(host, rec)
                except Exception as exc:  # noqa: BLE001 - one target's failure must not stop the others' thaw
                    entry["action"] = "failed"
                    entry["error"] = str(exc)
                    result["errors"].append(f"{rec['label']}: {exc}")
                    _event(registry, host.now(), "thaw_failed", target=rec["label"], error=str(exc), by=actor)
                    if expired_only:
                        rec["deadline"] = host.now() + int(registry.get("retry_seconds") or WATCHDOG_RETRY_SECONDS)
                    result["targets"].append(entry)
                    continue
                entry["action"] = "thawed"
            registry["targets"].remove(rec)
            rec["thawed_at"] = iso(host.now())
            rec["thawed_by"] = actor
            registry["released"].append(rec)
            _event(
                registry,
                host.now(),
                "thawed" if entry["action"] == "thawed" else "released",
                target=rec["label"],
                by=actor,
            )
            result["targets"].append(entry)
            result["changed"] = True
        if registry.get("targets"):
            if result["changed"] or expired_only or not watchdog_armed(host, registry):
                arm_watchdog(host, registry, watchdog_backend)
        elif registry.get("watchdog"):
            disarm_watchdog(host, registry)
            result["changed"] = True
        if result["changed"] or result["errors"]:
            save_registry(host.state_dir, registry)
        if not registry.get("targets"):
            remove_boot_unit_if_idle(host)
        result["watchdog"] = registry.get("watchdog")
        result["remaining"] = [r["label"] for r in registry["targets"]]
        result["registry"] = registry_path(host.state_dir, incident)
        return result


def apply_rescan(host: Host, incident: str, contain: ContainHook, check_mode: bool = False) -> dict:
    """Scan the incident's frozen folders again and stop the writers that appeared since (same policy). Run it right
    before the swap, right after it and before the thaw: a client is verified only after its last writer stopped."""
    validate_incident(incident)
    if not os.path.exists(registry_path(host.state_dir, incident)):
        return {
            "changed": False,
            "writers": [],
            "held": [],
            "paths": [],
            "msg": f"incident {incident} froze nothing here",
        }
    with registry_lock(host.state_dir) if not check_mode else contextlib.nullcontext():
        registry = load_registry(host.state_dir, incident) or new_registry(incident, host.now())
        held_targets = [r for r in registry.get("targets", []) if not r.get("left_alone")]
        paths = [r["path"] for r in held_targets if r["method"] in PATH_METHODS]
        units = [r["unit"] for r in held_targets if r["method"] == "service"]
        result: dict[str, Any] = {"changed": False, "writers": [], "held": [], "paths": paths}
        if not paths:
            result["msg"] = f"incident {incident} holds no frozen folder on this host: nothing to scan"
            return result
        out = contain(registry, "rescan", paths, units, check_mode) or {}
        result["writers"] = out.get("new", [])
        result["held"] = out.get("held", [])
        result["changed"] = any(w.get("action") in ("stopped", "killed") for w in result["writers"])
        if not check_mode:
            _event(registry, host.now(), "rescan", found=len(result["writers"]), held=len(result["held"]))
            save_registry(host.state_dir, registry)
        result["registry"] = registry_path(host.state_dir, incident)
        if out.get("error") and not check_mode:
            raise FreezeError(out["error"], result)
        return result


# --------------------------------------------------------------------------------------------------------------------
# Script entry point: `python3 ledgerguard_freeze.py watchdog --state-dir D --incident X [--delay N]`
# --------------------------------------------------------------------------------------------------------------------


def _log(state_dir: str, incident: str, entry: dict) -> None:
    """One JSON line in <incident>.watchdog.log (ASCII escapes: a non-UTF-8 path cannot break the log)."""
    with contextlib.suppress(OSError):
        path = os.path.join(registry_dir(state_dir), f"{incident}.watchdog.log")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"at": iso(time.time()), **entry}, ensure_ascii=True, default=str) + "\n")


def retry_later(state_dir: str, incident: str, token: str, delay: int, script: str | None = None) -> dict:
    """Arm a plain retry of the watchdog without reading the registry (which may be the thing that failed)."""
    script = script or os.path.abspath(__file__)
    cmd = [sys.executable or "/usr/bin/python3", script, "watchdog", "--state-dir", state_dir, "--incident", incident]
    cmd += ["--token", token, "--retry-seconds", str(delay)]
    systemd_run = _which("systemd-run") if os.path.isdir("/run/systemd/system") else None
    if systemd_run:
        unit = f"ledgerguard-thaw-{incident}-retry-{secrets.token_hex(3)}"
        rc, _out, err = subprocess_run([systemd_run, f"--unit={unit}", f"--on-active={delay}s", *cmd])
        if rc == 0:
            return {"kind": "systemd", "unit": unit, "in_seconds": delay}
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own script
        [*cmd, "--delay", str(delay)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,
        cwd="/",
    )
    return {"kind": "process", "pid": proc.pid, "in_seconds": delay}


def _watchdog_once(args: argparse.Namespace) -> dict:
    host = Host(subprocess_run, state_dir=args.state_dir, python=sys.executable)
    registry = load_registry(args.state_dir, args.incident)
    if registry and args.token and (registry.get("watchdog") or {}).get("token") not in (None, args.token):
        # A newer arm replaced this one (the registry names another token): that one is in charge.
        return {"superseded": True}
    if registry and (registry.get("watchdog") or {}).get("kind") == "process":
        registry["watchdog"] = None  # we are that process; don't signal ourselves when re-arming
        with registry_lock(args.state_dir):
            save_registry(args.state_dir, registry)
    return apply_thaw(host, args.incident, expired_only=True, actor="watchdog")


def boot_main(state_dir: str) -> int:
    """At start-up: every registry made in an earlier boot is thawed whole (a reboot already undid the mounts, the
    frozen filesystems and the stopped processes; a PostgreSQL ALTER SYSTEM is what survives it)."""
    d = registry_dir(state_dir)
    current = boot_id()
    status = 0
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        incident = name[: -len(".json")]
        if not name.endswith(".json") or name.startswith(".") or not INCIDENT_RE.match(incident):
            continue
        try:
            registry = load_registry(state_dir, incident)
            if not registry or not registry.get("targets") or registry.get("boot_id") in (None, current):
                continue
            result = apply_thaw(Host(subprocess_run, state_dir=state_dir), incident, actor="boot")
            _log(state_dir, incident, {"by": "boot", **result})
            status |= 1 if result.get("errors") else 0
        except Exception as exc:  # noqa: BLE001 - one incident must not stop the others
            _log(state_dir, incident, {"by": "boot", "errors": [f"{type(exc).__name__}: {exc}"]})
            status = 1
    return status


def watchdog_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SCRIPT_NAME, description="ledgerguard freeze watchdog")
    sub = parser.add_subparsers(dest="command", required=True)
    wd = sub.add_parser("watchdog", help="thaw the incident's expired targets (run by the watchdog timer)")
    wd.add_argument("--state-dir", required=True)
    wd.add_argument("--incident", required=True)
    wd.add_argument("--token", default="")
    wd.add_argument("--delay", type=int, default=0, help="sleep this many seconds first (no-systemd fallback)")
    wd.add_argument("--retry-seconds", type=int, default=WATCHDOG_RETRY_SECONDS)
    boot = sub.add_parser("boot", help="at start-up, thaw what a freeze of an earlier boot left behind")
    boot.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    if args.command == "boot":
        return boot_main(args.state_dir)
    if args.delay:
        time.sleep(args.delay)
    try:
        result = _watchdog_once(args)
    except Exception as exc:  # noqa: BLE001 - the watchdog must never die and leave the host frozen
        import traceback  # noqa: PLC0415

        result = {"errors": [str(exc) if isinstance(exc, FreezeError) else f"unexpected {type(exc).__name__}: {exc}"]}
        if not isinstance(exc, FreezeError):
            result["traceback"] = traceback.format_exc(limit=8)
        try:
            result["retry"] = retry_later(args.state_dir, args.incident, args.token, max(1, args.retry_seconds))
        except Exception as again:  # noqa: BLE001
            result["retry_error"] = f"{type(again).__name__}: {again}"
    if result.get("superseded"):
        return 0
    _log(args.state_dir, args.incident, result)
    return 1 if result.get("errors") else 0


if __name__ == "__main__":
    raise SystemExit(watchdog_main())
