# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restic engine: a small, private wrapper around the restic binary.

Everything here is a pure function or a small class that takes a *run* callable, so unit tests feed it output
captured from a real restic (tests/unit/fixtures/restic/). Secrets reach restic only through its environment or a
0600 password file that is removed afterwards; they never appear in argv, in a message or in a returned value.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# --------------------------------------------------------------------------------------------------------------------
# Shared argument spec (documented by the doc fragment ledgerguard.recovery.restic)
# --------------------------------------------------------------------------------------------------------------------


def restic_argument_spec() -> dict[str, Any]:
    """The options every restic module shares. Modules add their own with ``spec.update(...)``."""
    return {
        "repository": {"type": "str"},
        "password": {"type": "str", "no_log": True},
        "password_file": {"type": "path", "no_log": False},
        "env": {"type": "dict", "no_log": True, "default": {}},
        "restic_binary": {"type": "path"},
        "cache_dir": {"type": "path"},
        "timeout": {"type": "int", "default": 0},
        "stale_lock_age": {"type": "int", "default": 1800},
        "sftp_identity_file": {"type": "path"},
        "sftp_known_hosts_file": {"type": "path"},
    }


RESTIC_MUTUALLY_EXCLUSIVE = [("password", "password_file")]

# Environment the restic child inherits from the module's own environment (nothing that can carry a repository
# secret: RESTIC_PASSWORD*, AWS_* and friends come only from the module's options).
INHERITED_ENV = (
    "PATH",
    "HOME",
    "TMPDIR",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "XDG_CACHE_HOME",
)

# Names under which the caller's ``env`` option must not smuggle the password or the repository past us.
RESERVED_ENV = ("RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND", "RESTIC_REPOSITORY")

CREDENTIALS_IN_URL = re.compile(r"^(?P<scheme>[a-z0-9]+:)?(?P<proto>https?://)(?P<userinfo>[^/@\s]+:[^/@\s]*)@", re.I)


def url_embeds_credentials(repository: str) -> bool:
    """True when a repository URL carries ``user:secret@`` (e.g. ``s3:https://key:secret@host/bucket``)."""
    return bool(CREDENTIALS_IN_URL.match(repository or ""))


def redact_repository(repository: str) -> str:
    """The repository URL with any ``user:secret@`` replaced, safe to print."""
    return CREDENTIALS_IN_URL.sub(lambda m: (m.group("scheme") or "") + m.group("proto") + "***@", repository or "")


def backend_of(repository: str) -> str:
    """The restic backend type named by a repository string: local, s3, sftp, rest, b2, azure, gs, swift, rclone."""
    match = re.match(r"^([a-z0-9]+):", repository or "")
    if match and match.group(1) in ("s3", "sftp", "rest", "b2", "azure", "gs", "swift", "rclone"):
        return match.group(1)
    return "local"


# --------------------------------------------------------------------------------------------------------------------
# Running restic
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class ResticResult:
    """What one restic invocation returned."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float = 0.0
    timed_out: bool = False


RunFunc = Callable[..., ResticResult]


def plain_stderr(text: str) -> str:
    """restic's stderr with its JSON error lines (restic >= 0.17 with --json) turned back into the plain text that
    restic 0.14 prints: ``exit_error`` becomes ``Fatal: <message>``, ``error`` becomes ``error (<during>) for <item>:
    <message>``. Everything else is kept as it was, so one classifier reads every version."""
    if '"message_type"' not in (text or ""):
        return text
    lines = []
    for line in text.splitlines():
        record = None
        if line.startswith("{") and '"message_type"' in line:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
        if not isinstance(record, dict):
            lines.append(line)
        elif record.get("message_type") == "exit_error":
            lines.append(f"Fatal: {record.get('message', '')}")
        elif record.get("message_type") == "error":
            error = record.get("error")
            message = error.get("message", "") if isinstance(error, dict) else str(error or "")
            during = f" ({record['during']})" if record.get("during") else ""
            item = f" for {record['item']}" if record.get("item") else ""
            lines.append(f"error{during}{item}: {message}")
        else:
            lines.append(line)
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def subprocess_run(
    argv: list[str],
    env: Mapping[str, str],
    timeout: float | None = None,
    cwd: str | None = None,
    stdin: Any = None,
) -> ResticResult:
    """Run restic with a clean environment; on timeout the whole process group is stopped (TERM, then KILL).

    ``stdin`` is an open binary file restic reads (``backup --stdin``); default: no input.
    """
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout or None)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop_group(proc)
        out, err = proc.communicate()
    return ResticResult(
        argv=list(argv),
        rc=proc.returncode if not timed_out else -int(signal.SIGTERM),
        stdout=out.decode("utf-8", "replace"),
        stderr=plain_stderr(err.decode("utf-8", "replace")),
        seconds=time.monotonic() - start,
        timed_out=timed_out,
    )


def _stop_group(proc: subprocess.Popen) -> None:
    """TERM the process group (restic removes its lock on TERM), KILL it if it does not exit within 15 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return


def build_env(
    repository: str,
    password_file: str,
    extra: Mapping[str, Any] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The complete environment for a restic child: C locale, repository, password file, backend credentials."""
    source = os.environ if base is None else base
    env = {k: source[k] for k in INHERITED_ENV if k in source}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    for key, value in (extra or {}).items():
        if key in RESERVED_ENV:
            raise ValueError(
                f"env may not set {key}: pass the repository as 'repository' and the password as "
                "'password' or 'password_file'"
            )
        env[str(key)] = str(value)
    env.update({"LC_ALL": "C", "LANG": "C", "RESTIC_REPOSITORY": repository, "RESTIC_PASSWORD_FILE": password_file})
    return env


class PasswordFile:
    """A 0600 temporary file holding the password, removed on exit (context manager).

    When the caller already has a password file on this host, it is used as is and never removed.
    """

    def __init__(self, password: str | None = None, path: str | None = None, directory: str | None = None):
        if password is None and not path:
            raise ValueError("a restic password is needed: set password or password_file")
        self._password = password
        self._given = path
        self._directory = directory
        self.path = ""

    def __enter__(self) -> PasswordFile:
        if self._given:
            self.path = self._given
            return self
        fd, self.path = tempfile.mkstemp(prefix="lg-restic-", dir=self._directory)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (self._password or "").encode("utf-8"))
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._given and self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


# --------------------------------------------------------------------------------------------------------------------
# Arguments: snapshot IDs validated, positionals always after "--" (issue 13 item 9)
# --------------------------------------------------------------------------------------------------------------------

SNAPSHOT_ID_RE = re.compile(r"^(?:[0-9a-f]{8,64}|latest)$")


def validate_snapshot_id(value: Any, name: str = "snapshot") -> str:
    """A snapshot reference as given by a user: 8 to 64 lowercase hex characters of an ID, or ``latest``.

    Anything else (``--help``, ``-r/tmp/x``, a path, a name) is refused with a message naming the input, before
    restic runs: a value starting with ``-`` would otherwise be read by restic as an option, run as root."""
    text = str(value if value is not None else "").strip()
    if SNAPSHOT_ID_RE.match(text.lower() if re.match(r"^[0-9A-Fa-f]+$", text) else text):
        return text.lower()
    raise ValueError(
        f"{name} {text!r} is not a restic snapshot ID: give 8 to 64 hexadecimal characters of the ID (as "
        "ledgerguard.recovery.restic_snapshots lists them, e.g. 0f254756) or 'latest'. Nothing was run."
    )


# The restic options our code passes, and whether each takes a value. Anything else that looks like an option in front
# of the positional arguments is refused (it can only have come from input): Restic.argv puts every positional
# argument after "--" and writes value options as --name=value, so no input value can become a restic option.
RESTIC_FLAGS: dict[str, bool] = {
    # value options
    "--target": True,
    "--include": True,
    "--exclude": True,
    "--iinclude": True,
    "--iexclude": True,
    "--host": True,
    "--tag": True,
    "--path": True,
    "--archive": True,
    "--read-data-subset": True,
    "--stdin-filename": True,
    "--time": True,
    "--retry-lock": True,
    "--add": True,
    "--remove": True,
    "--set": True,
    "--parent": True,
    "--exclude-file": True,
    "--files-from": True,
    "--group-by": True,
    "--mode": True,
    "--compression": True,
    "--snapshot": True,
    "--keep-last": True,
    "--keep-hourly": True,
    "--keep-daily": True,
    "--keep-weekly": True,
    "--keep-monthly": True,
    "--keep-yearly": True,
    "--keep-within": True,
    "--keep-within-hourly": True,
    "--keep-within-daily": True,
    "--keep-within-weekly": True,
    "--keep-within-monthly": True,
    "--keep-within-yearly": True,
    "--keep-tag": True,
    "--max-unused": True,
    # switches
    "--json": False,
    "--verify": False,
    "--recursive": False,
    "--dry-run": False,
    "--stdin": False,
    "--quiet": False,
    "-q": False,
    "--read-data": False,
    "--no-lock": False,
    "--with-cache": False,
    "--long": False,
    "--force": False,
    "--prune": False,
    "--pack": False,
    "--blob": False,
    "--tree": False,
    "--read-all-packs": False,
    "--one-file-system": False,
    "--human-readable": False,
}


def safe_args(args: Iterable[str]) -> list[str]:
    """``[command, options..., "--", positionals...]`` from a command, its options and its positional arguments.

    Options may come in any order with the positionals (as callers write them: ``"restore", snapshot, "--target",
    target``); an explicit ``"--"`` marks everything after it as positional. Value options are joined into
    ``--name=value``. An argument in front of ``"--"`` that starts with ``-`` and is not one of RESTIC_FLAGS raises
    ValueError: it would have been read by restic as an option."""
    items = [str(a) for a in args]
    if not items:
        return []
    command, rest = items[0], items[1:]
    options: list[str] = []
    positionals: list[str] = []
    # "repair index", "key list", ...: a subcommand word right after the command stays in front of the options
    if command in ("repair", "key", "cache") and rest and not rest[0].startswith("-"):
        command, rest = f"{command} {rest[0]}", rest[1:]
    index = 0
    while index < len(rest):
        arg = rest[index]
        if arg == "--":
            positionals.extend(rest[index + 1 :])
            break
        if arg.startswith("-") and arg != "-":
            name, has_value, value = arg.partition("=")
            if name not in RESTIC_FLAGS:
                raise ValueError(
                    f"refusing to run 'restic {command}' with {arg!r} in front of its arguments: restic would read it "
                    "as an option. Snapshot IDs are 8 to 64 hexadecimal characters or 'latest'; paths are absolute."
                )
            if RESTIC_FLAGS[name]:
                if not has_value:
                    if index + 1 >= len(rest):
                        raise ValueError(f"restic option {name} needs a value")
                    index += 1
                    value = rest[index]
                options.append(f"{name}={value}")
            elif has_value:
                raise ValueError(f"restic option {name} takes no value (got {arg!r})")
            else:
                options.append(name)
        else:
            positionals.append(arg)
        index += 1
    return [*command.split(" "), *options, *(["--", *positionals] if positionals else [])]


# --------------------------------------------------------------------------------------------------------------------
# Version and feature detection
# --------------------------------------------------------------------------------------------------------------------

VERSION_RE = re.compile(r"restic\s+(\d+)\.(\d+)\.(\d+)")
FLAG_RE = re.compile(r"^\s+(?:-\w,\s+)?(--[a-z0-9][a-z0-9-]*)", re.M)


def parse_version(text: str) -> tuple[int, int, int]:
    """``restic 0.14.0 compiled with go1.19.8 on linux/amd64`` -> (0, 14, 0)."""
    match = VERSION_RE.search(text or "")
    if not match:
        raise ValueError(f"cannot read a restic version from {text.strip()[:200]!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def parse_help_flags(help_text: str) -> frozenset[str]:
    """Every long flag (``--verify``, ``--dry-run``, ...) a ``restic <command> --help`` output lists."""
    return frozenset(FLAG_RE.findall(help_text or ""))


@dataclass(frozen=True)
class ResticFeatures:
    """What this restic binary can do, detected from ``restic version`` and ``restic <cmd> --help``."""

    version: tuple[int, int, int]
    restore_flags: frozenset[str] = frozenset()
    check_flags: frozenset[str] = frozenset()
    backup_flags: frozenset[str] = frozenset()

    @property
    def version_string(self) -> str:
        return ".".join(str(p) for p in self.version)

    @property
    def distinct_exit_codes(self) -> bool:
        """restic 0.17.0 added exit codes 10 (no repository), 11 (lock failed), 12 (wrong password)."""
        return self.version >= (0, 17, 0)

    @property
    def restore_verify(self) -> bool:
        return "--verify" in self.restore_flags

    @property
    def restore_dry_run(self) -> bool:
        return "--dry-run" in self.restore_flags

    @property
    def check_read_data_subset(self) -> bool:
        return "--read-data-subset" in self.check_flags

    @property
    def backup_dry_run(self) -> bool:
        return "--dry-run" in self.backup_flags

    @property
    def retry_lock(self) -> bool:
        return "--retry-lock" in self.restore_flags


def detect_features(run: RunFunc, binary: str, env: Mapping[str, str], timeout: float = 30) -> ResticFeatures:
    """Ask the binary itself: its version and the flags of the commands we use."""
    res = run([binary, "version"], env=env, timeout=timeout)
    if res.rc != 0:
        raise ResticError(
            "binary",
            f"'{binary} version' failed with exit code {res.rc}: {(res.stderr or res.stdout).strip()[:300]}. "
            "Check restic_binary points at a working restic.",
        )
    version = parse_version(res.stdout)
    flags = {}
    for command in ("restore", "check", "backup"):
        out = run([binary, command, "--help"], env=env, timeout=timeout)
        flags[command] = parse_help_flags(out.stdout + out.stderr)
    return ResticFeatures(version, flags["restore"], flags["check"], flags["backup"])


# --------------------------------------------------------------------------------------------------------------------
# Errors: restic's output -> a message an operator under stress understands
# --------------------------------------------------------------------------------------------------------------------


class ResticError(Exception):
    """A classified restic failure. ``kind`` is stable (tests and roles match on it), ``message`` is for people."""

    def __init__(
        self, kind: str, message: str, details: dict[str, Any] | None = None, result: ResticResult | None = None
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details or {}
        self.result = result


LOCK_RE = re.compile(
    r"repository is already locked (?P<exclusive>exclusively )?by PID (?P<pid>\d+) on (?P<host>\S+) "
    r"by (?P<user>.+?) \(UID (?P<uid>\d+), GID (?P<gid>\d+)\)\s*\n\s*lock was created at (?P<created>[^(\n]+?)"
    r"\s*\((?P<age>[^)]*) ago\)(?:\s*\n\s*storage ID (?P<storage_id>[0-9a-f]+))?",
    re.M,
)
DIAL_RE = re.compile(r"dial tcp (?P<host>\[[^\]]+\]|[^\s:]+):(?P<port>\d+): (?P<reason>[^\n\"]+)")
LOOKUP_RE = re.compile(r"dial tcp: lookup (?P<host>[^\s:]+)(?: on [^:]+:\d+)?: (?P<reason>[^\n\"]+)")
URL_HOST_RE = re.compile(r"https?://(?P<host>\[[^\]]+\]|[^/:\s\"]+)(?::(?P<port>\d+))?")
NO_SNAPSHOT_RE = re.compile(
    r'(?:no matching ID found for prefix "(?P<id>[^"]+)"|no snapshot found|invalid id "(?P<id2>[^"]+)")'
)
NO_SPACE_RE = re.compile(r"(?P<line>[^\n]*no space left on device[^\n]*)", re.I)
DENIED_RE = re.compile(
    r"(?:(?:open|mkdir|write|lstat|stat|symlink|chmod|lchown|rename|create) (?P<path>/[^:\n]*): )?"
    r"(?P<reason>permission denied|operation not permitted|read-only file system)",
    re.I,
)
# restore: "ignoring error for /d/b: StreamPack: open .../data/64/6446...: no such file or directory",
# "ignoring error for /d/b: ciphertext verification failed" (a pack lost or damaged in the repository).
IGNORED_RE = re.compile(r"ignoring error for (?P<path>/[^\n]*?): (?P<reason>[^\n]+)")
DAMAGE_RE = re.compile(
    r"StreamPack|ciphertext verification failed|pack [0-9a-f]+ not found|not found in index|unexpected EOF|"
    r"invalid data returned|[Cc]hecksum|hash mismatch|specified key does not exist|NoSuchKey|Decrypt|"
    r"<data/[0-9a-f]+>|/data/[0-9a-f]{2}/[0-9a-f]{64}",
)
# A pack file restic named: "<data/3233b4dd99>" (a short prefix) or ".../data/32/3233b4dd...(64 hex)".
PACK_NAME_RE = re.compile(r"<data/(?P<short>[0-9a-f]{6,64})>|/data/[0-9a-f]{2}/(?P<full>[0-9a-f]{64})")
# restic could not read a pack at all (deleted from a local repository, a missing object on S3): ls, diff, dump, find
# or restore stop with it, e.g. "ReadFull(<data/3233b4dd99>): open .../data/32/3233...: no such file or directory".
PACK_MISSING_RE = re.compile(r"no such file or directory|does not exist|NoSuchKey|specified key does not exist")
# restic check: "pack 3233b4dd...: does not exist", "pack 3233b4dd...: unexpected file size ...", and after a data read
# "Pack ID does not match, want 3233b4dd..., got ..." (a bit-flipped pack) / "pack 3233b4dd... contains 1 errors".
CHECK_PACK_RE = re.compile(
    r"Pack ID does not match, want (?P<want>[0-9a-f]{8,64})|\b[Pp]ack (?P<id>[0-9a-f]{8,64})\b:?\s*(?P<reason>.*)"
)
CHECK_TREE_RE = re.compile(r"^error for tree (?P<tree>[0-9a-f]{6,64}):\s*(?P<reason>.*)")
TIMEOUT_KINDS = ("timeout",)


def _shorten(line: str, limit: int) -> str:
    """A long restic line cut in the middle, so both its start and its reason (at the end) stay readable."""
    if len(line) <= limit:
        return line
    head = limit // 3
    return f"{line[:head]} ... {line[-(limit - head - 5) :]}"


def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line
    return ""


def _restic_says(text: str) -> str:
    """The most telling line of restic's output (the Fatal line when present), shortened."""
    for line in (text or "").splitlines():
        if line.startswith("Fatal:"):
            return line[:400]
    return _first_line(text)[:400]


def packs_named(text: str) -> list[str]:
    """The pack IDs (full, or the prefix restic printed) named in restic's output, in order, once each."""
    out: list[str] = []
    for match in PACK_NAME_RE.finditer(text or ""):
        pack = match.group("full") or match.group("short")
        if any(p.startswith(pack) for p in out):
            continue
        out = [p for p in out if not pack.startswith(p)] + [pack]
    return out


def _missing_pack_line(text: str) -> str:
    """The first line saying a pack file could not be read because it is gone (retry notices are skipped)."""
    for line in (text or "").splitlines():
        if "retrying after" in line:
            continue
        if PACK_NAME_RE.search(line) and PACK_MISSING_RE.search(line):
            return line.strip()
    return ""


def lost_packs_from_check(errors: Iterable[str]) -> list[dict[str, Any]]:
    """The packs a ``restic check`` reported missing or damaged: [{id, reason, trees}], once each, in order.

    ``errors`` are parse_check's lines. A pack "not referenced in any index" holds no data a snapshot needs, so it is
    not counted. Trees restic could not load ("error for tree cc4b0684: ReadFull(<data/fbfe2e0a5f>) ...") are
    attached to their pack (the prefix restic printed is matched against the full IDs).
    """
    packs: dict[str, dict[str, Any]] = {}
    trees: list[tuple[str, str]] = []
    for line in errors:
        tree = CHECK_TREE_RE.match(line)
        if tree:
            for pack in packs_named(tree.group("reason")) or [""]:
                trees.append((tree.group("tree"), pack))
            continue
        match = CHECK_PACK_RE.search(line)
        if not match or "not referenced in any index" in line:
            continue
        pack = match.group("want") or match.group("id")
        entry = packs.setdefault(pack, {"id": pack, "reason": "", "trees": []})
        entry["reason"] = entry["reason"] or _shorten(line.strip(), 300)
    for tree, prefix in trees:
        owner = next((p for p in packs.values() if prefix and p["id"].startswith(prefix)), None)
        if owner is None and prefix:
            owner = packs.setdefault(prefix, {"id": prefix, "reason": f"tree {tree} cannot be loaded", "trees": []})
        if owner is not None and tree not in owner["trees"]:
            owner["trees"].append(tree)
    return list(packs.values())


def parse_find_objects(text: str) -> dict[str, list[str]]:
    """``restic find --json --pack/--blob/--tree`` (a flat list of objects) -> {snapshot id: [paths]}."""
    data = parse_json_document(text, "find") if (text or "").strip() else []
    out: dict[str, list[str]] = {}
    for item in data or []:
        if not isinstance(item, dict) or not item.get("snapshot"):
            continue
        paths = out.setdefault(item["snapshot"], [])
        if item.get("path") and item["path"] not in paths:
            paths.append(item["path"])
    return out


def parse_lock_holder(text: str) -> dict[str, Any] | None:
    """Who holds the lock and since when, from restic's 'repository is already locked' message."""
    match = LOCK_RE.search(text or "")
    if not match:
        return None
    return {
        "pid": int(match.group("pid")),
        "host": match.group("host"),
        "user": match.group("user"),
        "uid": int(match.group("uid")),
        "exclusive": bool(match.group("exclusive")),
        "created": match.group("created").strip(),
        "age": match.group("age").strip(),
        "storage_id": match.group("storage_id") or "",
    }


LOCK_CREATED_RE = re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)(?:\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?")


def lock_age_seconds(created: str, now: datetime | None = None) -> float | None:
    """Seconds since restic's 'lock was created at 2026-11-26 18:40:01.12 +0000 UTC'; None when unreadable."""
    match = LOCK_CREATED_RE.search(created or "")
    if not match:
        return None
    zone = (match.group(2) or "+0000").replace("Z", "+0000").replace(":", "")
    try:
        when = datetime.strptime(match.group(1).replace("T", " ") + " " + zone, "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        return None
    moment = now or datetime.now(timezone.utc)  # noqa: UP017 (managed hosts may run Python < 3.11)
    return (moment - when).total_seconds()


GO_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration_seconds(text: str) -> float | None:
    """restic's lock age, a Go duration such as ``1h2m3.5s`` or ``250ms`` -> seconds; None when unreadable."""
    text = (text or "").strip()
    parts = GO_DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * GO_UNITS[u] for n, u in parts)


def pid_alive(pid: int) -> bool:
    """True unless the process is provably gone on this host (a PID we may not signal counts as alive)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parse_unreachable(text: str, repository: str) -> dict[str, str] | None:
    """Host, port and reason when restic could not connect to the backend."""
    match = DIAL_RE.search(text or "")
    if match:
        return {"host": match.group("host").strip("[]"), "port": match.group("port"), "reason": match.group("reason")}
    match = LOOKUP_RE.search(text or "")
    if match:
        host = match.group("host")
        url = URL_HOST_RE.search(repository or "")
        port = (url.group("port") if url and url.group("port") else "") if url else ""
        return {"host": host, "port": port, "reason": match.group("reason")}
    lowered = (text or "").lower()
    for marker in (
        "connection refused",
        "i/o timeout",
        "no route to host",
        "network is unreachable",
        "connection reset",
    ):
        if marker in lowered:
            url = URL_HOST_RE.search(repository or "")
            host = url.group("host").strip("[]") if url else ""
            port = url.group("port") or "" if url else ""
            return {"host": host, "port": port, "reason": marker}
    return None


BACKEND_URL_RE = re.compile(
    r"^(?P<scheme>s3|rest):(?:(?P<proto>https?)://)?(?P<host>\[[^\]]+\]|[^/:\s]+)(?::(?P<port>\d+))?(?:/|$)"
)
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def backend_address(repository: str) -> tuple[str, int] | None:
    """(host, port) of an s3: or rest: repository's endpoint; None for other backends (local, sftp, rclone...)."""
    match = BACKEND_URL_RE.match(repository or "")
    if not match:
        return None
    port = match.group("port")
    if port:
        return match.group("host").strip("[]"), int(port)
    # restic's s3 backend speaks https unless the URL says http; rest: URLs always carry their scheme.
    return match.group("host").strip("[]"), 80 if match.group("proto") == "http" else 443


def probe_backend(
    repository: str, env: Mapping[str, str] | None = None, attempts: int = 3, timeout: float = 5.0, pause: float = 1.0
) -> ResticError | None:
    """Open (and close) one TCP connection to the repository's endpoint before restic runs.

    restic >= 0.16 retries an unreachable backend for many minutes before it gives up; an operator in an incident
    needs the clear "cannot reach" at once. ``Restic.run`` calls it before an engine's first restic run, so every
    user of the engine (modules, the CLI) gets it. Skipped when a proxy is configured (the proxy decides
    reachability) and for backends without a network endpoint of their own. ``attempts`` connects, ``pause`` seconds
    apart, ride out a server restart."""
    address = backend_address(repository)
    if address is None or any((env or {}).get(k) or os.environ.get(k) for k in PROXY_ENV):
        return None
    host, port = address
    reason = ""
    for attempt in range(attempts):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except socket.gaierror as exc:
            reason = f"lookup {host}: {exc.strerror or exc}"
            break  # a name that does not resolve will not resolve a second later
        except TimeoutError:
            reason = "i/o timeout"
        except OSError as exc:
            reason = "connect: " + (exc.strerror or str(exc)).lower()
        if attempt + 1 < attempts:
            time.sleep(pause)
    where = f"{host}:{port}"
    repo = redact_repository(repository)
    return ResticError(
        "unreachable",
        f"Cannot reach the backend of restic repository {repo}: {where} ({reason}). Check that the storage server "
        f"at {where} is running and reachable from this host (network, firewall, endpoint URL), then retry.",
        {"host": host, "port": str(port), "reason": reason, "attempts": str(attempts)},
    )


# --------------------------------------------------------------------------------------------------------------------
# SFTP backend (a NAS over SSH): restic runs ssh itself; we give it the key FILE and a known_hosts FILE with strict
# host-key checking, and probe the server with the same ssh command before restic runs (restic's own report of an
# ssh failure is racy: it often loses ssh's reason and says only "unable to start the sftp session ... EOF").
# --------------------------------------------------------------------------------------------------------------------

SFTP_URL_RE = re.compile(r"^sftp://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)(?::(?P<port>\d+))?(?P<path>/.*)?$")
SFTP_SCP_RE = re.compile(r"^sftp:(?!//)(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+):(?P<path>.*)$")
SSH_CONNECT_RE = re.compile(r"connect to host (?P<host>\S+) port (?P<port>\d+): (?P<reason>[^\n]+)")
SSH_RESOLVE_RE = re.compile(r"Could not resolve hostname (?P<host>[^:\s]+): (?P<reason>[^\n]+)")
SSH_HOSTKEY_RE = re.compile(
    r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known for (?P<who>\S+)|"
    r"Host key for (?P<who2>\S+) has changed"
)
SSH_AUTH_RE = re.compile(r"(?P<who>\S+): Permission denied \((?P<methods>[^)]*)\)")
SSH_KEYFILE_RE = re.compile(
    r"UNPROTECTED PRIVATE KEY FILE|bad permissions|Load key \"(?P<key>[^\"]+)\": (?P<reason>[^\n]+)"
)


def parse_sftp(repository: str) -> dict[str, Any] | None:
    """user, host, port (None when not given) and path of an ``sftp:`` repository; None for other backends."""
    match = SFTP_URL_RE.match(repository or "") or SFTP_SCP_RE.match(repository or "")
    if not match:
        return None
    found = match.groupdict()
    port = found.get("port")
    return {
        "user": found.get("user") or "",
        "host": (found.get("host") or "").strip("[]"),
        "port": int(port) if port else None,
        "path": found.get("path") or "",
    }


def sftp_ssh_argv(
    repository: str, identity_file: str | None = None, known_hosts_file: str | None = None, ssh: str = "ssh"
) -> list[str]:
    """The ssh command restic runs for an sftp: repository (``-o sftp.command=...``): batch mode (never a prompt),
    the key given as a file, strict host-key checking against the given known_hosts file."""
    where = parse_sftp(repository)
    if where is None:
        raise ValueError(f"{redact_repository(repository)} is not an sftp: repository")
    argv = [ssh, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=30"]
    for name, value in (("sftp_identity_file", identity_file), ("sftp_known_hosts_file", known_hosts_file)):
        if value and (not value.startswith("/") or re.search(r"[\s\"'\\]", value)):
            raise ValueError(
                f"{name} {value!r} must be an absolute path without spaces or quotes (restic splits its ssh command "
                "at spaces)"
            )
    if identity_file:
        argv += ["-i", identity_file, "-o", "IdentitiesOnly=yes"]
    if known_hosts_file:
        argv += ["-o", f"UserKnownHostsFile={known_hosts_file}", "-o", "StrictHostKeyChecking=yes"]
    if where["port"]:
        argv += ["-p", str(where["port"])]
    if where["user"]:
        argv += ["-l", where["user"]]
    return argv + ["-s", "--", where["host"], "sftp"]


def classify_ssh(text: str, repository: str) -> ResticError | None:
    """An ssh failure (ours or restic's ``subprocess ssh: ...`` lines) as a classified ResticError; None otherwise."""
    repo = redact_repository(repository)
    where = parse_sftp(repository) or {"host": "", "port": None, "user": ""}
    server = f"{where['host']}:{where['port'] or 22}"
    key = SSH_KEYFILE_RE.search(text or "")
    if key:
        return ResticError(
            "sftp_key_file",
            f"ssh cannot use the key file for restic repository {repo} ({_first_line(key.group(0))}). Give "
            "sftp_identity_file (ledgerguard_sftp_identity_file) a private key file owned by the user running the "
            "task, mode 0600, without a passphrase.",
            {"server": server},
        )
    hostkey = SSH_HOSTKEY_RE.search(text or "")
    if hostkey:
        changed = "CHANGED" in (text or "") or "has changed" in (text or "")
        return ResticError(
            "sftp_host_key",
            f"The SSH host key of {server} (restic repository {repo}) "
            + ("has CHANGED since it was recorded" if changed else "is not in the known_hosts file given")
            + ": ssh refused to connect (strict host-key checking). "
            + (
                "This can be an attack or a reinstalled NAS: verify the new key with the NAS's administrator before "
                "replacing its line in the known_hosts file."
                if changed
                else "Add the server's key to sftp_known_hosts_file (ledgerguard_sftp_known_hosts_file) after "
                "checking its fingerprint on the NAS, e.g. ssh-keyscan -p PORT HOST, compared with the NAS's console."
            ),
            {"server": server, "changed": changed},
        )
    auth = SSH_AUTH_RE.search(text or "")
    if auth:
        return ResticError(
            "sftp_auth_failed",
            f"The SSH server {server} refused the login {auth.group('who')} for restic repository {repo} "
            f"(Permission denied; it accepts: {auth.group('methods')}). Check the user in the repository URL and that "
            "the public half of sftp_identity_file (ledgerguard_sftp_identity_file) is in that user's "
            "authorized_keys on the NAS.",
            {"server": server, "login": auth.group("who")},
        )
    for pattern in (SSH_CONNECT_RE, SSH_RESOLVE_RE):
        match = pattern.search(text or "")
        if match:
            host = match.group("host")
            port = match.groupdict().get("port") or str(where["port"] or 22)
            reason = match.group("reason").strip()
            return ResticError(
                "unreachable",
                f"Cannot reach the backend of restic repository {repo}: {host}:{port} ({reason}). Check that the SSH "
                f"server of the NAS at {host}:{port} is running and reachable from this host (network, firewall, "
                "port), then retry.",
                {"host": host, "port": port, "reason": reason},
            )
    return None


def probe_sftp(
    repository: str,
    env: Mapping[str, str],
    identity_file: str | None,
    known_hosts_file: str | None,
    timeout: float = 30,
) -> ResticError | None:
    """Open the SFTP session restic would open (same ssh command, stdin closed so the server ends it at once) and
    classify what ssh says: unreachable, host key unknown or changed, login refused, key file unusable."""
    ssh = shutil.which("ssh", path=env.get("PATH")) if env.get("PATH") else shutil.which("ssh")
    if not ssh:
        return ResticError(
            "binary",
            f"ssh was not found on PATH on this host; restic needs it for the sftp: repository "
            f"{redact_repository(repository)} (Debian/Ubuntu: apt-get install openssh-client).",
        )
    if identity_file and not os.path.isfile(identity_file):
        return ResticError(
            "sftp_key_file",
            f"sftp_identity_file {identity_file} does not exist on this host (restic repository "
            f"{redact_repository(repository)}).",
        )
    if known_hosts_file and not os.path.isfile(known_hosts_file):
        return ResticError(
            "sftp_host_key",
            f"sftp_known_hosts_file {known_hosts_file} does not exist on this host; without it the SSH server of "
            f"{redact_repository(repository)} cannot be verified, and ledgerguard never connects unverified.",
        )
    argv = sftp_ssh_argv(repository, identity_file, known_hosts_file, ssh)
    try:
        proc = subprocess.run(
            argv, env=dict(env), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        where = parse_sftp(repository) or {}
        return ResticError(
            "unreachable",
            f"Cannot reach the backend of restic repository {redact_repository(repository)}: the SSH server "
            f"{where.get('host')}:{where.get('port') or 22} did not answer within {timeout:.0f} s.",
            {"host": str(where.get("host")), "port": str(where.get("port") or 22), "reason": "timeout"},
        )
    if proc.returncode == 0:
        return None
    text = proc.stderr.decode("utf-8", "replace")
    return classify_ssh(text, repository) or ResticError(
        "unreachable",
        f"The SFTP session to restic repository {redact_repository(repository)} could not be opened (ssh exit code "
        f"{proc.returncode}: {_first_line(text)[:300] or 'no output'}).",
        {"reason": _first_line(text)[:300]},
    )


def classify_error(
    result: ResticResult,
    repository: str,
    features: ResticFeatures | None = None,
    target: str | None = None,
    snapshot: str | None = None,
    action: str = "run restic",
) -> ResticError:
    """Turn a failed restic run into a ResticError whose message names the repository and what to do.

    restic >= 0.17 has distinct exit codes (10 no repository, 11 lock failed, 12 wrong password); they win when the
    binary is new enough. restic 0.14 exits 1 for everything, so the message text decides.
    """
    repo = redact_repository(repository)
    text = (result.stderr or "") + "\n" + (result.stdout or "")
    says = _restic_says(result.stderr) or _restic_says(result.stdout)
    codes = features.distinct_exit_codes if features else False

    if result.timed_out:
        return ResticError(
            "timeout",
            f"restic did not finish ({action}) on repository {repo} within the timeout of {result.seconds:.0f} s and "
            "was stopped. Raise 'timeout' (0 = no limit) or check whether the backend is slow or hanging.",
            {"seconds": round(result.seconds, 1)},
            result,
        )

    if (codes and result.rc == 12) or "wrong password or no key found" in text:
        return ResticError(
            "wrong_password",
            f"Wrong password for restic repository {repo}: no key in the repository opens with the password given. "
            "Check that ledgerguard_password_file (or password / password_file) holds this repository's password. "
            "Nothing was changed.",
            {},
            result,
        )

    if backend_of(repository) == "sftp" or "subprocess ssh:" in text:
        ssh_error = classify_ssh(text, repository)
        if ssh_error is not None:
            ssh_error.result = result
            return ssh_error

    holder = parse_lock_holder(text)
    if (codes and result.rc == 11) or holder or "repository is already locked" in text:
        if holder:
            who = (
                f"restic PID {holder['pid']} on host {holder['host']} (user {holder['user']}), "
                f"lock created at {holder['created']} ({holder['age']} ago)"
                + (f", lock ID {holder['storage_id']}" if holder["storage_id"] else "")
            )
        else:
            who = "another restic process (restic did not say which)"
        return ResticError(
            "locked",
            f"Restic repository {repo} is locked by {who}. Wait for that process to finish; if it is no longer "
            f"running, remove the stale lock with 'restic unlock' against {repo}, then retry (or set "
            "ledgerguard_stale_lock_age to a number of seconds: a lock whose holder process on this host is gone and "
            "that is older than that is then removed and recorded).",
            {"lock": holder or {}},
            result,
        )

    unreachable = parse_unreachable(text, repository)
    if unreachable:
        where = unreachable["host"] + (f":{unreachable['port']}" if unreachable["port"] else "")
        return ResticError(
            "unreachable",
            f"Cannot reach the backend of restic repository {repo}: {where} ({unreachable['reason']}). Check that the "
            f"storage server at {where} is running and reachable from this host (network, firewall, endpoint URL), "
            "then retry.",
            dict(unreachable),
            result,
        )

    if (
        (codes and result.rc == 10)
        or "Is there a repository at the following location?" in text
        or ("unable to open config file" in text)
    ):
        return ResticError(
            "repo_missing",
            f"There is no restic repository at {repo} (restic says: {says}). Check the repository location (path or "
            "bucket and prefix); to create a new repository there, run ledgerguard.recovery.restic_repository with "
            "init: true.",
            {},
            result,
        )

    nosnap = NO_SNAPSHOT_RE.search(text)
    if nosnap:
        wanted = snapshot or nosnap.group("id") or nosnap.group("id2") or "latest"
        return ResticError(
            "snapshot_not_found",
            f"Snapshot '{wanted}' was not found in restic repository {repo}. List the snapshots with "
            "ledgerguard.recovery.restic_snapshots and pass an existing snapshot ID (or 'latest' with filters that "
            "match a snapshot).",
            {"snapshot": wanted},
            result,
        )

    nospace = NO_SPACE_RE.search(text)
    if nospace:
        place = f"the restore target {target}" if target else "the local disk"
        return ResticError(
            "no_space",
            f"Out of space on {place} while trying to {action} from restic repository {repo} "
            f"(restic says: {_shorten(nospace.group('line').strip(), 300)}). Free space there or choose a target on a "
            "larger filesystem, then retry.",
            {"target": target or ""},
            result,
        )

    damaged = [m for m in IGNORED_RE.finditer(text) if DAMAGE_RE.search(m.group("reason"))]
    if damaged:
        paths = sorted({m.group("path") for m in damaged})
        short = (snapshot or "")[:8] or "?"
        packs = packs_named(" ".join(m.group("reason") for m in damaged))
        lost = f"; pack(s) missing or damaged: {', '.join(packs[:5])}" if packs else ""
        return ResticError(
            "repository_damaged",
            f"Snapshot {short} cannot be restored from restic repository {repo}: data it needs is missing or damaged "
            f"in the repository ({len(paths)} file(s), e.g. {', '.join(paths[:3])}; restic says: "
            f"{_shorten(damaged[0].group('reason').strip(), 300)}{lost}). The files restic could not verify must not "
            "be used. Run restic check --read-data to see the damage, and restore an older snapshot that does not "
            "need the lost data (the incident path moves to one by itself).",
            {"paths": paths[:50], "snapshot": snapshot or "", "packs": packs},
            result,
        )

    missing = _missing_pack_line(text)
    if missing:
        packs = packs_named(missing)
        what = f"snapshot {snapshot[:8]}" if snapshot else "it"
        return ResticError(
            "repository_damaged",
            f"restic could not {action} in restic repository {repo}: pack {', '.join(packs) or '(not named)'}, which "
            f"{what} needs, is missing from the repository (restic says: {_shorten(missing, 300)}). "
            + (f"Snapshot {snapshot[:8]} cannot be used. " if snapshot else "")
            + "Run restic check to see the damage, and use an older snapshot that does not need the lost pack (the "
            "incident path moves to one by itself).",
            {"packs": packs, "snapshot": snapshot or ""},
            result,
        )

    denied = DENIED_RE.search(text)
    if denied:
        path = (denied.group("path") or "").strip()
        on_target = bool(target and path and (path == target or path.startswith(target.rstrip("/") + "/")))
        if on_target or (target and not path):
            return ResticError(
                "permission_denied",
                f"Permission denied writing to the restore target {target} ({path or 'target'}: "
                f"{denied.group('reason')}) while restoring from restic repository {repo}. Give the user running the "
                "task write access to the target (and remove any immutable attribute), or choose another target.",
                {"path": path, "target": target or ""},
                result,
            )
        return ResticError(
            "permission_denied",
            f"Permission denied ({path or 'path not named'}: {denied.group('reason')}) while trying to {action} with "
            f"restic repository {repo}. Check the file permissions of that path for the user running the task.",
            {"path": path},
            result,
        )

    return ResticError(
        "failed",
        f"restic failed to {action} on repository {repo} (exit code {result.rc}): {says or 'no output'}",
        {"rc": result.rc},
        result,
    )


# --------------------------------------------------------------------------------------------------------------------
# Parsing restic output
# --------------------------------------------------------------------------------------------------------------------

RESTIC_TIME_RE = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(value: str, name: str = "time", require_tz: bool = True) -> datetime:
    """Parse an RFC 3339 / ISO 8601 timestamp (restic writes nanoseconds). A timezone is required by default."""
    text = (value or "").strip()
    match = RESTIC_TIME_RE.match(text)
    if not match:
        raise ValueError(
            f"{name} {value!r} is not a timestamp; use ISO 8601 with a timezone, e.g. 2026-03-01T09:30:00+08:00 "
            "or 2026-03-01T01:30:00Z"
        )
    tz = match.group("tz")
    if not tz:
        if require_tz:
            raise ValueError(
                f"{name} {value!r} has no timezone, so it is ambiguous; add one, e.g. "
                f"{match.group('base').replace(' ', 'T')}+08:00 or {match.group('base').replace(' ', 'T')}Z"
            )
        tz = "+00:00"
    if tz == "Z":
        tz = "+00:00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    frac = (match.group("frac") or "")[:7]  # a dot and at most microseconds
    return datetime.fromisoformat(match.group("base").replace(" ", "T") + frac + tz)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")  # noqa: UP017 (targets may run Python < 3.11)


def iter_json_lines(text: str) -> Iterator[dict[str, Any]]:
    """restic's line-delimited JSON (backup, ls), one object at a time; non-JSON lines are skipped.

    The parsed objects are never all held at once: ``restic ls --json`` of 20,000 files is 20,000 dicts of a dozen
    fields each (about 2 KiB apiece), which a list keeps alive together (about 40 MiB). Lines end at "\\n" only:
    restic writes one object per line, and a file name may hold U+0085 (NEL), which restic's JSON leaves unescaped
    and ``str.splitlines`` would split at.
    """
    text = text or ""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        if stop < 0:
            stop = end
        line = text[start:stop].strip()
        start = stop + 1
        if not line.startswith("{"):
            continue
        try:
            yield json.loads(line)
        except ValueError:
            continue


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    """restic's line-delimited JSON (backup, ls) as a list; non-JSON lines are skipped (long output: iterate over
    ``iter_json_lines`` instead)."""
    return list(iter_json_lines(text))


def parse_json_document(text: str, what: str) -> Any:
    """One JSON document (snapshots, find, stats, cat config); leading non-JSON lines are skipped."""
    stripped = (text or "").strip()
    start = min([i for i in (stripped.find("["), stripped.find("{")) if i >= 0], default=-1)
    if start < 0:
        raise ValueError(f"restic {what} gave no JSON output: {stripped[:200]!r}")
    return json.loads(stripped[start:])


# Backup-time manifests (module_utils/backup_manifest.py) live in the same repository as stdin snapshots carrying
# MANIFEST_TAG and MANIFEST_FOR_TAG_PREFIX + <data snapshot id>. This is the one test of "is this a manifest snapshot";
# every listing that chooses restore points, checks freshness / coverage, assesses damage or drills uses it.
MANIFEST_TAG = "ledgerguard-manifest"
MANIFEST_FOR_TAG_PREFIX = "ledgerguard-manifest-for="


def is_manifest_snapshot(tags: Iterable[str] | None) -> bool:
    """True for a backup-time manifest snapshot (by its tags), which is never a restore point."""
    return any(t == MANIFEST_TAG or str(t).startswith(MANIFEST_FOR_TAG_PREFIX) for t in tags or ())


@dataclass
class Snapshot:
    id: str
    short_id: str
    time: datetime
    hostname: str
    username: str
    paths: list[str]
    tags: list[str]
    tree: str
    parent: str = ""
    raw_time: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "short_id": self.short_id,
            "time": self.raw_time,
            "time_utc": iso_utc(self.time),
            "hostname": self.hostname,
            "username": self.username,
            "paths": list(self.paths),
            "tags": list(self.tags),
            "tree": self.tree,
            "parent": self.parent,
        }


def snapshot_from_json(item: Mapping[str, Any]) -> Snapshot:
    return Snapshot(
        id=item["id"],
        short_id=item.get("short_id") or item["id"][:8],
        time=parse_time(item["time"], "snapshot time"),
        hostname=item.get("hostname", ""),
        username=item.get("username", ""),
        paths=list(item.get("paths") or []),
        tags=list(item.get("tags") or []),
        tree=item.get("tree", ""),
        parent=item.get("parent", "") or "",
        raw_time=item["time"],
    )


def parse_snapshots(text: str) -> list[Snapshot]:
    """``restic snapshots --json`` -> snapshots sorted oldest first."""
    data = parse_json_document(text, "snapshots")
    if data is None:
        return []
    if isinstance(data, dict):  # restic >= 0.15 with --group-by prints groups; we never ask for it, but be kind
        data = [data]
    snaps: list[Snapshot] = []
    for item in data:
        if "snapshots" in item:
            snaps.extend(snapshot_from_json(s) for s in item["snapshots"])
        else:
            snaps.append(snapshot_from_json(item))
    return sorted(snaps, key=lambda s: (s.time, s.id))


def filter_snapshots(
    snaps: Iterable[Snapshot],
    hosts: Iterable[str] = (),
    tags: Iterable[str] = (),
    paths: Iterable[str] = (),
    before: datetime | None = None,
    after: datetime | None = None,
) -> list[Snapshot]:
    """Snapshots of any of ``hosts``, carrying every tag in ``tags``, holding every path in ``paths``,
    taken at or after ``after`` and strictly before ``before``."""
    hosts, tags, paths = set(hosts), set(tags), {p.rstrip("/") or "/" for p in paths}
    out = []
    for snap in snaps:
        if hosts and snap.hostname not in hosts:
            continue
        if tags and not tags.issubset(snap.tags):
            continue
        if paths and not paths.issubset({p.rstrip("/") or "/" for p in snap.paths}):
            continue
        if before is not None and not snap.time < before:
            continue
        if after is not None and not snap.time >= after:
            continue
        out.append(snap)
    return out


def parse_backup_summary(text: str) -> dict[str, Any]:
    """The summary message of ``restic backup --json`` (status lines are skipped)."""
    summary = None
    errors = []
    for msg in parse_json_lines(text):
        kind = msg.get("message_type")
        if kind == "summary":
            summary = msg
        elif kind == "error":
            err = msg.get("error")
            if isinstance(err, dict):
                # restic 0.14 serialises Go's *PathError: {"Op": "open", "Path": ..., "Err": errno}
                text = err.get("message") or f"{err.get('Op', '')} {err.get('Path', '')}: errno {err.get('Err', '?')}"
            else:
                text = str(err)
            errors.append(f"{text.strip()} ({msg.get('item', '')})")
    if summary is None:
        raise ValueError("restic backup --json printed no summary message")
    summary = {k: v for k, v in summary.items() if k != "message_type"}
    summary["errors"] = errors
    return summary


@dataclass
class TreeNode:
    path: str
    type: str
    size: int = 0
    mode: int = 0
    mtime: str = ""
    linktarget: str = ""


@dataclass
class Listing:
    """``restic ls --json`` of one snapshot: the snapshot and its nodes (optionally under some paths)."""

    snapshot: Snapshot | None
    nodes: list[TreeNode] = field(default_factory=list)

    @property
    def files(self) -> list[TreeNode]:
        return [n for n in self.nodes if n.type == "file"]


def parse_ls(text: str) -> Listing:
    snapshot = None
    nodes = []
    for item in iter_json_lines(text):  # one parsed object at a time: only the TreeNodes stay
        kind = item.get("struct_type")
        if kind == "snapshot" or (kind is None and "tree" in item and "paths" in item):
            snapshot = snapshot_from_json(item)
        elif kind == "node" or "path" in item:
            nodes.append(
                TreeNode(
                    path=item["path"],
                    type=item.get("type", ""),
                    size=int(item.get("size") or 0),
                    mode=int(item.get("mode") or 0),
                    mtime=item.get("mtime", ""),
                    linktarget=item.get("linktarget", ""),
                )
            )
    return Listing(snapshot, nodes)


def parse_find(text: str) -> dict[str, list[str]]:
    """``restic find --json`` -> {snapshot id: [matching paths]}."""
    data = parse_json_document(text, "find") if (text or "").strip() else []
    out: dict[str, list[str]] = {}
    for item in data or []:
        out.setdefault(item["snapshot"], []).extend(m["path"] for m in item.get("matches") or [])
    return out


def parse_config(text: str) -> dict[str, Any]:
    """``restic cat config`` -> id, version, chunker polynomial."""
    data = parse_json_document(text, "cat config")
    return {"id": data["id"], "version": int(data["version"])}


CHECK_ERROR_RE = re.compile(
    r"error|fatal|fail|invalid|damaged|missing|does not exist|does not match|not referenced|unused|mismatch|corrupt",
    re.I,
)
CHECK_PROGRESS = (
    "using temporary cache",
    "create exclusive lock",
    "load indexes",
    "check all packs",
    "check snapshots, trees and blobs",
    "read all data",
    "read group #",
    "Fatal: repository contains errors",
    "no errors were found",
)


def parse_check(result: ResticResult) -> dict[str, Any]:
    """Text output of ``restic check`` -> ok, errors (the lines that report problems), packs read.

    Retry noise ("Load(...) returned error, retrying after ...") is dropped; an indented detail line is joined to the
    error line above it.
    """
    text = result.stdout + "\n" + result.stderr
    errors: list[str] = []
    warnings = [m.group(0).strip() for m in CHECK_CACHE_WARNING_RE.finditer(text)]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("[") or line.startswith(CHECK_PROGRESS) or "retrying after" in line:
            continue
        if CHECK_CACHE_WARNING_RE.search(line) or line.startswith(CHECK_NOTICES) or CHECK_ADDITIONAL_RE.search(line):
            continue
        if raw.startswith((" ", "\t")) and errors:
            errors[-1] = f"{errors[-1]} {line}"
        elif CHECK_ERROR_RE.search(line):
            errors.append(line)
    ok = result.rc == 0 and "no errors were found" in text
    group = re.search(r"read group #(\d+) of (\d+) data packs \(out of total (\d+) packs in (\d+) groups\)", text)
    subset = re.search(r"read (\d+) of (\d+) data packs", text)
    read = {}
    if group:
        read = {"packs_read": int(group.group(2)), "packs_total": int(group.group(3))}
    elif subset:
        read = {"packs_read": int(subset.group(1)), "packs_total": int(subset.group(2))}
    return {"ok": ok, "errors": errors if not ok else [], "warnings": warnings, **read}


# restic check's notices that are not repository errors: the cache it could not create (a local TMPDIR problem),
# restic >= 0.17's pointer to its troubleshooting guide, and the "additional files" hint (classified below).
CHECK_CACHE_WARNING_RE = re.compile(r"unable to create temporary directory for cache[^\n]*", re.I)
CHECK_NOTICES = (
    "The repository is damaged and must be repaired",
    "This is non-critical, you can run `restic prune`",
)
CHECK_ADDITIONAL_RE = re.compile(r"(\d+) additional files were found in the repo")
CHECK_UNINDEXED_RE = re.compile(r"pack ([0-9a-f]{8,64}):? not referenced in any index")
# a tree or blob restic could not find through the index, no pack named: "error for tree d4f037aa: id d4f0... not
# found in repository" (0.14 and 0.18), "blob ... not found in index"
CHECK_UNFOUND_RE = re.compile(r"(?:error for tree (?P<tree>[0-9a-f]{6,64}):.*)?\bnot found in (?:repository|index)")


def index_repair_command(version: tuple[int, int, int]) -> list[str]:
    """``restic repair index`` (0.16+) or ``restic rebuild-index`` (older): rebuilds the index from the packs."""
    return ["repair", "index"] if version >= (0, 16, 0) else ["rebuild-index"]


def diagnose_check(
    parsed: Mapping[str, Any],
    text: str,
    located: Iterable[Mapping[str, Any]] | None = None,
    version: tuple[int, int, int] = (0, 14, 0),
) -> list[dict[str, Any]]:
    """What a failed ``restic check`` means and what to do, one finding per kind:

    - ``data_lost`` (critical): packs missing or damaged that snapshots need (``located``: restic_check's
      damaged_snapshots), or trees restic cannot load from a named pack;
    - ``index_incomplete`` (repairable): trees/blobs not found through the index while pack files no index names are
      present: the data is there, ``restic rebuild-index`` (0.14) / ``restic repair index`` (0.16+) rebuilds it;
    - ``unused_data_missing`` (harmless): missing packs no snapshot needs (data of forgotten snapshots);
    - ``unindexed_data`` (harmless): extra pack files no index names and no snapshot misses (duplicate data);
    - ``cache_warning`` (harmless): restic could not create its temporary cache; not a repository problem.
    """
    repair = "restic " + " ".join(index_repair_command(version))
    findings: list[dict[str, Any]] = []
    errors = list(parsed.get("errors") or [])
    located = list(located or [])
    lost = lost_packs_from_check(errors)
    missing = [p for p in lost if not p.get("trees")]
    needed_packs = {pk for snap in located for pk in snap.get("packs") or []}
    unindexed = list(dict.fromkeys(CHECK_UNINDEXED_RE.findall(text or "")))
    additional = CHECK_ADDITIONAL_RE.search(text or "")
    extra_files = max(len(unindexed), int(additional.group(1)) if additional else 0)
    unfound = [e for e in errors if CHECK_UNFOUND_RE.search(e) and not packs_named(e)]
    tree_packs = [p for p in lost if p.get("trees")]
    data = [p for p in missing if any(q.startswith(p["id"]) or p["id"].startswith(q) for q in needed_packs)]
    data += tree_packs
    unused = [p for p in missing if p not in data]
    if unfound and not extra_files:
        # a tree or blob that is in no index and in no unindexed pack: lost, not merely unindexed
        data.append({"id": "", "reason": "; ".join(unfound[:3]), "trees": []})
    if data:
        findings.append(
            {
                "kind": "data_lost",
                "severity": "critical",
                "harmless": False,
                "repairable": False,
                "packs": [p["id"] for p in data if p["id"]],
                "snapshots": [
                    {"id": s.get("id"), "short_id": s.get("short_id"), "paths": list(s.get("paths") or [])[:20]}
                    for s in located
                ],
                "summary": f"{len(data)} pack(s) or tree(s) that snapshots need are lost or damaged"
                + (
                    f"; snapshots needing them: {', '.join(str(s.get('short_id')) for s in located)}" if located else ""
                ),
                "what_to_do": "Do not prune or forget. Restore from snapshots that do not need the lost packs (the "
                "incident path skips the others by itself); run 'restic check --read-data' to see the full extent; "
                "if another copy of the repository (off-site restic copy) holds the packs, copy them back. Back up "
                "the affected clients again as soon as possible.",
            }
        )
    if unfound and extra_files:
        trees = [m.group("tree") for e in unfound for m in [CHECK_UNFOUND_RE.search(e)] if m and m.group("tree")]
        findings.append(
            {
                "kind": "index_incomplete",
                "severity": "error",
                "harmless": False,
                "repairable": True,
                "repair_command": repair,
                "trees": trees,
                "unindexed_packs": unindexed or [],
                "extra_files": extra_files,
                "summary": f"the index is incomplete: {len(unfound)} tree(s)/blob(s) are not found through it while "
                f"{extra_files} pack file(s) no index names are present; the data is most likely all there",
                "what_to_do": f"Rebuild the index from the pack files with '{repair}' (nothing is deleted; run "
                "restic_check with repair_index: true and index_backup_dir to do it with a copy of the index taken "
                "first), then check again. Until then restores that need those trees fail.",
            }
        )
    if unused:
        findings.append(
            {
                "kind": "unused_data_missing",
                "severity": "harmless",
                "harmless": True,
                "repairable": True,
                "repair_command": repair,
                "packs": [p["id"] for p in unused],
                "summary": f"{len(unused)} pack file(s) are missing that no snapshot needs (data of forgotten "
                "snapshots)",
                "what_to_do": f"No snapshot is affected. '{repair}' (repair_index: true) removes them from the index; "
                "find out why pack files disappear (storage lifecycle rules, manual deletion).",
            }
        )
    if extra_files and not unfound:
        findings.append(
            {
                "kind": "unindexed_data",
                "severity": "harmless",
                "harmless": True,
                "repairable": False,
                "unindexed_packs": unindexed,
                "extra_files": extra_files,
                "summary": f"{extra_files} pack file(s) no index names (restic: likely duplicate data)",
                "what_to_do": "Nothing is lost. 'restic prune' removes them at the next maintenance window.",
            }
        )
    for warning in parsed.get("warnings") or []:
        findings.append(
            {
                "kind": "cache_warning",
                "severity": "harmless",
                "harmless": True,
                "repairable": False,
                "summary": warning,
                "what_to_do": "Not a repository problem: restic could not create its temporary cache (TMPDIR not "
                "writable or missing); the check ran without it. Set TMPDIR or cache_dir to a writable folder.",
            }
        )
    return findings


SUBSET_RE = re.compile(
    r"^(?:(?P<n>\d+)/(?P<t>\d+)|(?P<pct>\d+(?:\.\d+)?)%|(?P<size>\d+(?:\.\d+)?)(?P<unit>[kKmMgGtT]?))$"
)


def validate_read_data_subset(value: str) -> str:
    """Accept 'n/t' (1 <= n <= t), 'x%' / 'x.y%' (0 < x <= 100) or a size like '500M'; return it normalised."""
    text = str(value).strip()
    match = SUBSET_RE.match(text)
    problem = ""
    if not match:
        problem = "it is none of the three forms"
    elif match.group("n") is not None:
        n, t = int(match.group("n")), int(match.group("t"))
        if not 1 <= n <= t:
            problem = f"in n/t, n must be between 1 and t (got {n}/{t})"
    elif match.group("pct") is not None:
        pct = float(match.group("pct"))
        if not 0 < pct <= 100:
            problem = f"a percentage must be above 0 and at most 100 (got {pct:g}%)"
    elif float(match.group("size")) <= 0:
        problem = "a size must be above zero"
    if problem:
        raise ValueError(
            f"read_data_subset {value!r} is not valid ({problem}); use a rolling part 'n/t' such as '1/7', a "
            "percentage such as '5%' or '2.5%', or a size such as '500M' or '2G'"
        )
    return text


# --------------------------------------------------------------------------------------------------------------------
# Snapshot layout: where a live path is inside a snapshot's tree (issue 17)
# --------------------------------------------------------------------------------------------------------------------
# restic records each backed-up path absolute in the snapshot's ``paths``, but stores (and restores) the tree as the
# path was GIVEN, cleaned against "/": ``cd /srv && restic backup ledgers`` stores /ledgers/..., ``restic backup .``
# stores the folder's contents at the top, ``restic backup ../x/y`` stores /x/y; an absolute path is stored whole.
# Measured identical with restic 0.14 and 0.18. So the stored root of a recorded path P is always one of P's
# suffixes ("/" included), and the tree itself says which: the longest suffix the tree holds.


def norm_path(path: str) -> str:
    """An absolute, cleaned path ("/" for the root)."""
    text = str(path or "").strip("/")
    return os.path.normpath("/" + text).replace("//", "/") if text else "/"


def snapshot_pins(value) -> dict[str, str]:
    """The ``snapshot_paths`` option of the modules (``ledgerguard_clients[].snapshot_path``) as {live path: path
    inside the snapshot}, both absolute and normalised; anything else is refused naming the entry."""
    pins = {}
    for live, pinned in (value or {}).items():
        if not str(live).startswith("/") or not str(pinned or "").startswith("/"):
            raise ValueError(
                f"snapshot_paths entry {live!r}: {pinned!r} must map an absolute live path to an absolute path "
                "inside the snapshot, e.g. /srv/ledgers/C001: /ledgers/C001"
            )
        pins[norm_path(live)] = norm_path(pinned)
    return pins


def path_parts(path: str) -> list[str]:
    return [p for p in norm_path(path).split("/") if p]


def path_suffixes(path: str) -> list[str]:
    """``/a/b/c`` -> ["/a/b/c", "/b/c", "/c", "/"]: every place restic may have stored it."""
    parts = path_parts(path)
    return ["/" + "/".join(parts[k:]) for k in range(len(parts))] + ["/"]


def path_under(path: str, root: str) -> str | None:
    """The part of ``path`` below ``root`` ("" when equal), or None when it is not under it."""
    path, root = norm_path(path), norm_path(root)
    if path == root:
        return ""
    prefix = root.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def path_join(root: str, rest: str) -> str:
    return norm_path(root.rstrip("/") + "/" + rest) if rest else norm_path(root)


def _real(path: str) -> str:
    """The path with the symlinks of THIS host resolved (the path itself when nothing resolves)."""
    try:
        return norm_path(os.path.realpath(norm_path(path)))
    except (OSError, ValueError):
        return norm_path(path)


@dataclass
class SnapshotRoot:
    """One recorded path of a snapshot and where its tree is stored (``stored`` "" when the tree does not hold it)."""

    recorded: str
    stored: str
    type: str = ""
    linktarget: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {"recorded": self.recorded, "snapshot_path": self.stored, "type": self.type}
        if self.linktarget:
            out["linktarget"] = self.linktarget
        return out


@dataclass
class SnapshotLayout:
    """What the top of one snapshot's tree holds, and the stored root of each recorded path."""

    snapshot: Snapshot
    nodes: dict[str, TreeNode] = field(default_factory=dict)
    asked: set[str] = field(default_factory=set)
    roots: list[SnapshotRoot] = field(default_factory=list)

    @property
    def top(self) -> list[str]:
        """The entries at the top of the tree: ``ledgers/``, ``books.csv``, ``tmp/`` ..."""
        return [
            path[1:] + ("/" if node.type == "dir" else "")
            for path, node in sorted(self.nodes.items())
            if path != "/" and path.count("/") == 1
        ]

    @property
    def stdin(self) -> bool:
        """A ``restic backup --stdin`` snapshot: one recorded path, stored as the single file at the top."""
        paths = self.snapshot.paths
        node = self.nodes.get(norm_path(paths[0])) if len(paths) == 1 else None
        return node is not None and node.type == "file" and len(self.top) == 1 and norm_path(paths[0]).count("/") == 1

    def compute_roots(self) -> None:
        roots = []
        for recorded in dict.fromkeys(norm_path(p) for p in self.snapshot.paths):
            stored, node = "", None
            for candidate in path_suffixes(recorded)[:-1]:
                if candidate in self.nodes:
                    stored, node = candidate, self.nodes[candidate]
                    break
            if not stored and self._root_holds_contents(recorded):
                stored = "/"
            kind = node.type if node else ("dir" if stored == "/" else "")
            roots.append(SnapshotRoot(recorded, stored, kind, node.linktarget if node else ""))
        self.roots = roots

    def _root_holds_contents(self, recorded: str) -> bool:
        """``restic backup .``: the top of the tree holds the recorded folder's contents (no suffix of any other
        recorded path is in the tree)."""
        others = [r for r in (norm_path(p) for p in self.snapshot.paths) if r != recorded]
        return bool(self.top) and not any(any(c in self.nodes for c in path_suffixes(o)[:-1]) for o in others)

    def describe(self) -> str:
        snap = self.snapshot
        top = ", ".join(self.top[:12]) + (f" and {len(self.top) - 12} more" if len(self.top) > 12 else "")
        what = f"snapshot {snap.short_id} (host {snap.hostname}, {snap.raw_time}) of {', '.join(snap.paths)}"
        if self.stdin:
            return f"{what}, a 'restic backup --stdin' snapshot holding one file ({self.top[0]}) and no folders"
        return f"{what}, which holds at the top of its tree: {top or 'nothing'}"

    def as_dict(self) -> dict[str, Any]:
        return {"top": self.top, "roots": [r.as_dict() for r in self.roots], "stdin": self.stdin}


PIN_HINT = (
    "If the books are in the snapshot under another path, pin it: set snapshot_path of this client in "
    "ledgerguard_clients (the path inside the snapshot, as 'restic ls {sid}' shows it, e.g. {example})."
)


class PathNotInSnapshot(ResticError, ValueError):
    """A live path that cannot be mapped into a snapshot's tree (error_kind ``path_not_in_snapshot``); the message
    says what the snapshot holds at its top and how to pin the path."""

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__("path_not_in_snapshot", message, details)


# --------------------------------------------------------------------------------------------------------------------
# The engine object a module uses
# --------------------------------------------------------------------------------------------------------------------


class Restic:
    """One repository, one binary, one password; runs restic and classifies its failures.

    ``run`` is injected (default: subprocess_run) so tests can replay captured output. Features are detected once per
    instance (one module run = one process) and cached on it.
    """

    def __init__(
        self,
        binary: str,
        repository: str,
        password_file: str,
        env: Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
        timeout: int = 0,
        run: RunFunc = subprocess_run,
        base_env: Mapping[str, str] | None = None,
        stale_lock_age: int = 1800,
        sftp_identity_file: str | None = None,
        sftp_known_hosts_file: str | None = None,
    ):
        self.binary = binary
        self.stale_lock_age = stale_lock_age
        self.removed_locks: list[dict[str, Any]] = []
        self._backend_probed = False
        self.repository = repository
        self.cache_dir = cache_dir
        self.timeout = timeout or None
        self._run = run
        self.env = build_env(repository, password_file, env, base_env)
        if cache_dir:
            self.env["RESTIC_CACHE_DIR"] = cache_dir
        self._features: ResticFeatures | None = None
        # global options the engine itself sets (sftp.command); never taken from a positional
        self.global_options: list[str] = []
        self.sftp_identity_file = sftp_identity_file
        self.sftp_known_hosts_file = sftp_known_hosts_file
        if backend_of(repository) == "sftp" and (sftp_identity_file or sftp_known_hosts_file):
            command = " ".join(sftp_ssh_argv(repository, sftp_identity_file, sftp_known_hosts_file))
            self.global_options = ["-o", f"sftp.command={command}"]
        self._layouts: dict[str, Any] = {}

    @property
    def features(self) -> ResticFeatures:
        if self._features is None:
            self._features = detect_features(self._run, self.binary, self.env)
        return self._features

    def argv(self, *args: str) -> list[str]:
        """The full argv of one restic run: global options, then ``safe_args(args)`` (options, ``--``,
        positionals), so no snapshot ID or path can ever be read as a restic option."""
        argv = [self.binary]
        if self.cache_dir:
            argv += ["--cache-dir", self.cache_dir]
        argv += self.global_options
        return argv + safe_args(args)

    def run(self, *args: str, timeout: int | None = None, cwd: str | None = None, stdin: Any = None) -> ResticResult:
        """Run restic once (twice when a provably stale lock was removed). ``stdin``: an open, seekable binary file.

        The first run of an engine probes the backend's endpoint (``probe_backend``) and raises the ``unreachable``
        ResticError at once when nothing answers, instead of waiting out newer restic's minutes of retries."""
        if not self._backend_probed:
            self._backend_probed = True
            unreachable = probe_backend(self.repository, self.env)
            if unreachable is None and backend_of(self.repository) == "sftp" and self._run is subprocess_run:
                unreachable = probe_sftp(
                    self.repository, self.env, self.sftp_identity_file, self.sftp_known_hosts_file, self.timeout or 30
                )
            if unreachable is not None:
                raise unreachable
        extra = {} if stdin is None else {"stdin": stdin}
        result = self._run(self.argv(*args), env=self.env, timeout=timeout or self.timeout, cwd=cwd, **extra)
        if result.rc != 0 and not result.timed_out and args and args[0] != "unlock":
            holder = parse_lock_holder(result.stderr + "\n" + result.stdout)
            if holder and self._remove_stale_lock(holder):
                if stdin is not None:
                    stdin.seek(0)
                result = self._run(self.argv(*args), env=self.env, timeout=timeout or self.timeout, cwd=cwd, **extra)
        return result

    def _remove_stale_lock(self, holder: dict[str, Any]) -> bool:
        """Remove a lock only when it is provably stale: held by a process of THIS host that no longer exists, and
        older than ``stale_lock_age`` seconds. Live locks, locks of other hosts and young locks are never touched.
        ``restic unlock`` (without --remove-all) removes only locks restic itself also judges stale."""
        age = go_duration_seconds(holder.get("age", ""))
        if age is None:
            age = lock_age_seconds(holder.get("created", ""))
        if (
            self.stale_lock_age <= 0
            or holder.get("host") != socket.gethostname()
            or pid_alive(int(holder["pid"]))
            or age is None
            or age < self.stale_lock_age
        ):
            return False
        res = self._run(self.argv("unlock"), env=self.env, timeout=self.timeout)
        if res.rc != 0:
            return False
        self.removed_locks.append(
            {
                "pid": holder["pid"],
                "host": holder["host"],
                "user": holder.get("user", ""),
                "created": holder.get("created", ""),
                "age_seconds": int(age),
                "storage_id": holder.get("storage_id", ""),
                "removed_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),  # noqa: UP017
                "why": f"holder PID {holder['pid']} no longer runs on {holder['host']} and the lock is "
                f"{int(age)} s old (threshold {self.stale_lock_age} s)",
            }
        )
        return True

    def must(
        self, *args: str, action: str, target: str | None = None, snapshot: str | None = None, ok_rcs=(0,)
    ) -> ResticResult:
        """Run and raise a classified ResticError unless the exit code is in ok_rcs."""
        result = self.run(*args)
        if result.rc not in ok_rcs or result.timed_out:
            raise classify_error(
                result, self.repository, self.features, target=target, snapshot=snapshot, action=action
            )
        return result

    # -- operations used by several modules ---------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return parse_config(self.must("cat", "config", action="read the repository config").stdout)

    def snapshots(self, manifests: bool = False) -> list[Snapshot]:
        """The repository's snapshots, oldest first. Backup-time manifest snapshots (``is_manifest_snapshot``) are
        left out unless ``manifests`` is true: they are never restore points, freshness or coverage evidence."""
        snaps = parse_snapshots(self.must("snapshots", "--json", action="list snapshots").stdout)
        return snaps if manifests else [s for s in snaps if not is_manifest_snapshot(s.tags)]

    def resolve_snapshot(self, wanted: str, hosts: Iterable[str] = (), tags: Iterable[str] = ()) -> Snapshot:
        """The one snapshot meant by an ID (or unique prefix) or 'latest' (optionally of some hosts / with tags)."""
        wanted = validate_snapshot_id(wanted)
        snaps = self.snapshots()
        if wanted == "latest":
            chosen = filter_snapshots(snaps, hosts=hosts, tags=tags)
            if chosen:
                return chosen[-1]
        else:
            matches = [s for s in snaps if s.id.startswith(wanted.lower())]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ResticError(
                    "snapshot_ambiguous",
                    f"Snapshot ID prefix '{wanted}' matches {len(matches)} snapshots in restic repository "
                    f"{redact_repository(self.repository)}; give more characters of the ID.",
                    {"snapshot": wanted},
                )
        filters = ""
        if wanted == "latest" and (list(hosts) or list(tags)):
            filters = f" (filters: hosts={list(hosts)}, tags={list(tags)})"
        raise ResticError(
            "snapshot_not_found",
            f"Snapshot '{wanted}'{filters} was not found in restic repository {redact_repository(self.repository)} "
            f"({len(snaps)} snapshots there). List them with ledgerguard.recovery.restic_snapshots and pass an "
            "existing snapshot ID (or 'latest' with filters that match a snapshot).",
            {"snapshot": wanted, "snapshots_in_repository": len(snaps)},
        )

    def ls(
        self, snapshot_id: str, paths: Iterable[str] = (), hosts: Iterable[str] = (), tags: Iterable[str] = ()
    ) -> Listing:
        """``restic ls --json`` of one snapshot (an ID, a unique prefix, or 'latest' of some hosts / with tags),
        optionally only under ``paths``. Raises snapshot_not_found when restic matched no snapshot."""
        snapshot_id = validate_snapshot_id(snapshot_id)
        args = ["ls", "--json"]
        paths = list(paths)
        if paths:
            args.append("--recursive")  # without it, a directory filter lists only the directory's own entries
        if snapshot_id == "latest":
            for host in hosts:
                args += ["--host", host]
            if tags:
                args += ["--tag", ",".join(tags)]
        res = self.must(*args, "--", snapshot_id, *paths, action="list the snapshot's files", snapshot=snapshot_id)
        listing = parse_ls(res.stdout)
        if snapshot_id == "latest" and listing.snapshot is not None and is_manifest_snapshot(listing.snapshot.tags):
            # restic's own 'latest' does not know manifest snapshots: take the newest data snapshot instead.
            chosen = self.resolve_snapshot("latest", hosts, tags)
            return self.ls(chosen.id, paths)
        if listing.snapshot is None:
            stderr = (
                res.stderr
                if NO_SNAPSHOT_RE.search(res.stderr or "")
                else f'no matching ID found for prefix "{snapshot_id}"'
            )
            raise classify_error(
                ResticResult(res.argv, 1, res.stdout, stderr),
                self.repository,
                self.features,
                snapshot=snapshot_id,
                action="list the snapshot's files",
            )
        return listing

    # -- snapshot layout (issue 17) ---------------------------------------------------------------------------

    def layout(self, snapshot: Snapshot | str, live_paths: Iterable[str] = ()) -> SnapshotLayout:
        """The top levels of a snapshot's tree (``restic ls`` of the candidate roots, not recursive), cached per
        snapshot: every suffix of each recorded path and of each live path (and of their real paths on this host).
        ``snapshot``: a Snapshot, or a full/short ID (resolved by the same listing)."""
        snap_id = snapshot.id if isinstance(snapshot, Snapshot) else validate_snapshot_id(snapshot)
        cached = self._layouts.get(snap_id)
        if cached is None and not isinstance(snapshot, Snapshot) and snap_id != "latest":
            cached = next((v for k, v in self._layouts.items() if k.startswith(snap_id)), None)
        wanted: list[str] = ["/"]
        for live in live_paths:
            for form in dict.fromkeys((norm_path(live), _real(live))):
                wanted += path_suffixes(form)
        snap = cached.snapshot if cached else (snapshot if isinstance(snapshot, Snapshot) else None)
        if snap is not None:
            for recorded in snap.paths:
                for form in dict.fromkeys((norm_path(recorded), _real(recorded))):
                    wanted += path_suffixes(form)
        wanted = list(dict.fromkeys(wanted))
        if cached is not None and set(wanted) <= cached.asked:
            if not cached.roots:
                cached.compute_roots()
            return cached
        asked = [w for w in wanted if cached is None or w not in cached.asked]
        res = self.must(
            "ls", "--json", "--", snap.id if snap else snap_id, *asked,
            action="list the top of the snapshot's tree", snapshot=snap_id,
        )  # fmt: skip
        listing = parse_ls(res.stdout)
        if listing.snapshot is None:
            raise classify_error(
                ResticResult(res.argv, 1, res.stdout, f'no matching ID found for prefix "{snap_id}"'),
                self.repository,
                self.features,
                snapshot=snap_id,
                action="list the snapshot's files",
            )
        if cached is None:
            cached = SnapshotLayout(listing.snapshot)
            self._layouts[listing.snapshot.id] = cached
        cached.asked.update(asked)
        for node in listing.nodes:
            cached.nodes[norm_path(node.path)] = node
        if snap is None:  # the recorded paths were not known before this listing: ask for their suffixes too
            return self.layout(cached.snapshot, live_paths)
        cached.compute_roots()
        return cached

    def map_path(self, snapshot: Snapshot | str, live_path: str, pinned: str | None = None) -> str:
        """THE mapping of a live path (as on the client's host, e.g. /srv/ledgers/C001) to the path inside a
        snapshot's tree (e.g. /ledgers/C001 for ``cd /srv && restic backup ledgers``). Every module that selects,
        restores, compares, assesses damage or checks coverage uses it.

        ``pinned``: the client's ``snapshot_path`` (used as is once the snapshot is seen to hold it). Raises
        PathNotInSnapshot (a ValueError) naming what the snapshot holds at its top and how to pin the path."""
        layout = self.layout(snapshot, [live_path] if not pinned else [pinned])
        snap = layout.snapshot
        example = "/" + (layout.top[0].rstrip("/") if layout.top else "ledgers")
        hint = PIN_HINT.format(sid=snap.short_id, example=example)
        if pinned:
            pin = norm_path(pinned)
            if pin in layout.nodes or pin == "/":
                return pin
            raise PathNotInSnapshot(
                f"snapshot_path {pinned} (pinned for {live_path}) is not in {layout.describe()}. {hint}"
            )
        live = norm_path(live_path)
        mapped = self._map_through_roots(layout, live, depth=0)
        if mapped is not None:
            return mapped
        raise PathNotInSnapshot(self._unmapped_message(layout, live, hint))

    def live_path(
        self,
        snapshot: Snapshot | str,
        stored_path: str,
        live_roots: Iterable[str],
        pins: Mapping[str, str] | None = None,
    ) -> str | None:
        """The reverse of ``map_path`` for a path read from the snapshot (``restic ls``/``diff``/``find`` output):
        the live path it belongs to under one of ``live_roots`` (e.g. /ledgers/C001/a.csv -> /srv/ledgers/C001/a.csv),
        or None when it is under none of them. ``pins``: live root -> pinned snapshot_path."""
        for live in live_roots:
            try:
                inside = self.map_path(snapshot, live, (pins or {}).get(live))
            except PathNotInSnapshot:
                continue
            rest = path_under(stored_path, inside)
            if rest is not None:
                return path_join(norm_path(live), rest)
        return None

    def _map_through_roots(self, layout: SnapshotLayout, live: str, depth: int) -> str | None:
        forms = list(dict.fromkeys((live, _real(live))))
        for form in forms:
            for root in layout.roots:
                for recorded in dict.fromkeys((root.recorded, _real(root.recorded))):
                    rest = path_under(form, recorded)
                    if rest is not None and root.stored:
                        if root.type == "symlink":
                            target = root.linktarget
                            if depth < 4 and target.startswith("/"):
                                through = self._map_through_roots(layout, path_join(target, rest), depth + 1)
                                if through is not None:
                                    return through
                            continue
                        return path_join(root.stored, rest)
                    # the live path is a parent of recorded paths (a folder holding many clients)
                    below = path_under(recorded, form)
                    if below and root.stored and root.type != "symlink":
                        extra = path_parts(below)
                        stored = path_parts(root.stored)
                        if len(stored) >= len(extra) and stored[len(stored) - len(extra) :] == extra:
                            return "/" + "/".join(stored[: len(stored) - len(extra)])
        return None

    def _unmapped_message(self, layout: SnapshotLayout, live: str, hint: str) -> str:
        for root in layout.roots:
            if root.type == "symlink" and any(
                path_under(f, r) is not None for f in (live, _real(live)) for r in (root.recorded, _real(root.recorded))
            ):
                target = root.linktarget or (os.path.realpath(root.recorded) if os.path.islink(root.recorded) else "")
                return (
                    f"{live} cannot be read from snapshot {layout.snapshot.short_id}: the snapshot stored "
                    f"{root.recorded} as a symbolic link{f' (to {target})' if target else ''}, not the files behind "
                    "it (restic does not follow a symlink given on its command line). Back up the real folder"
                    + (f" ({target})" if target else "")
                    + f" from now on; this snapshot holds no copy of {live}. {hint}"
                )
        if layout.stdin:
            return f"{live} is not in {layout.describe()} (a stream, not the client's folder). {hint}"
        lost = [r.recorded for r in layout.roots if not r.stored]
        extra = f" ({', '.join(lost)} could not be found in its tree)" if lost else ""
        return f"{live} is not in {layout.describe()}{extra}. {hint}"

    def covering(self, snapshots: Iterable[Snapshot], live_path: str, pinned: str | None = None) -> dict[str, str]:
        """{snapshot id: path inside it} for each snapshot whose tree holds ``live_path`` (or the pin), with ONE
        ``restic find`` over all of them: the batched form of ``map_path``. Candidates are the places the mapping
        rule allows (every suffix of the live path and of its real path on this host, beneath a recorded path of the
        snapshot); of those the snapshot holds, the longest wins, as in ``map_path``. A live folder that is a parent
        of a snapshot's recorded paths is mapped with ``map_path`` (one listing of that snapshot)."""
        snaps = list(snapshots)
        live = norm_path(live_path)
        forms = list(dict.fromkeys((live, _real(live))))
        candidates: dict[str, list[str]] = {}
        parents: list[Snapshot] = []
        for snap in snaps:
            if pinned:
                candidates[snap.id] = [norm_path(pinned)]
                continue
            recorded = [f for p in snap.paths for f in dict.fromkeys((norm_path(p), _real(p)))]
            under = [f for f in forms for r in recorded if path_under(f, r) is not None]
            if under:
                candidates[snap.id] = list(dict.fromkeys(s for f in under for s in path_suffixes(f)[:-1]))
                if any(path_under(f, r) == "" for f in forms for r in recorded):
                    parents.append(snap)  # the live path IS a recorded path: '.' backups store it as "/"
            elif any(path_under(r, f) for f in forms for r in recorded):
                parents.append(snap)
        found: dict[str, str] = {}
        patterns = sorted({c for cands in candidates.values() for c in cands})
        if candidates and patterns:
            args = ["find", "--json"]
            for sid in candidates:
                args += ["--snapshot", sid]
            res = self.must(*args, "--", *(restic_pattern(p) for p in patterns), action=f"search for {live}")
            try:
                held = parse_find(res.stdout)
            except ValueError as exc:
                # restic 0.14 stops its JSON mid-array when a tree it must read is in a lost pack (and still exits 0)
                said = (res.stderr or "").strip().splitlines()
                raise ResticError(
                    "repository_damaged",
                    f"restic find could not finish its search for {live} in {redact_repository(self.repository)} "
                    f"({exc}){': ' + said[-1] if said else ''}; run restic check to locate lost data",
                    {},
                    res,
                ) from None
            for sid, cands in candidates.items():
                paths = {norm_path(p) for p in held.get(sid, [])}
                match = next((c for c in cands if c in paths), None)
                if match:
                    found[sid] = match
        for snap in parents:
            if snap.id in found:
                continue
            try:
                mapped = self.map_path(snap, live)
            except PathNotInSnapshot:
                continue
            layout = self.layout(snap, [live])
            if mapped == "/" and layout.top or mapped in layout.nodes:
                found[snap.id] = mapped
        return found

    def survey(self, snapshots: list[Snapshot], clients: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Per client path: which snapshots hold it, under which host and tags, at which path inside each snapshot (the
        same mapping the restore uses), so an operator sees before the bad day whether the incident path will find
        each client's books. One restic find per client path over all the snapshots."""
        out = []
        for client in clients:
            paths = client.get("paths") or ([client["path"]] if client.get("path") else [])
            for path in paths:
                if not str(path).startswith("/"):
                    raise ValueError(f"client {client.get('id')!r}: path {path!r} is not absolute")
                pin = client.get("snapshot_path") or None
                found = self.covering(snapshots, str(path), pin) if snapshots else {}
                covering = [
                    {
                        "id": s.id,
                        "short_id": s.short_id,
                        "time": s.raw_time,
                        "hostname": s.hostname,
                        "tags": list(s.tags),
                        "snapshot_path": found[s.id],
                    }
                    for s in snapshots
                    if s.id in found
                ]
                out.append(
                    {
                        "client": client.get("id", ""),
                        "name": client.get("name", ""),
                        "path": str(path),
                        "pinned_snapshot_path": pin or "",
                        "snapshots": len(covering),
                        "hosts": sorted({c["hostname"] for c in covering}),
                        "snapshot_paths": sorted({c["snapshot_path"] for c in covering}),
                        "newest": covering[-1] if covering else None,
                        "covering": covering,
                    }
                )
        return out

    def covers(self, snapshot: Snapshot, live_path: str, pinned: str | None = None) -> str | None:
        """The in-snapshot path of ``live_path`` when the snapshot's tree holds that node, else None."""
        try:
            mapped = self.map_path(snapshot, live_path, pinned)
        except PathNotInSnapshot:
            return None
        layout = self.layout(snapshot, [live_path] if not pinned else [pinned])
        if mapped == "/" or mapped in layout.nodes:
            return mapped
        res = self.run("ls", "--json", "--", snapshot.id, mapped)
        listing = parse_ls(res.stdout) if res.rc == 0 else Listing(None)
        for node in listing.nodes:
            layout.nodes.setdefault(norm_path(node.path), node)
        return mapped if mapped in layout.nodes else None


def restic_pattern(path: str) -> str:
    """An exact path as a restic include/find pattern: glob characters are escaped."""
    return re.sub(r"([\\*?\[])", r"\\\1", path)


# --------------------------------------------------------------------------------------------------------------------
# Streaming (restic dump) and the module glue
# --------------------------------------------------------------------------------------------------------------------


def stream_restic(
    argv: list[str], env: Mapping[str, str], consume: Callable[[Any], Any], timeout: float | None = None
) -> tuple[Any, ResticResult]:
    """Run restic with stdout as a binary stream handed to ``consume``; returns (consume's value, result)."""
    import threading

    start = time.monotonic()
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err_file,
            start_new_session=True,
        )
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _stop_group(proc)

        timer = threading.Timer(timeout, expire) if timeout else None
        if timer:
            timer.start()
        value = None
        try:
            value = consume(proc.stdout)
            proc.stdout.read()  # drain whatever the consumer left
        finally:
            proc.stdout.close()
            proc.wait()
            if timer:
                timer.cancel()
        err_file.seek(0)
        stderr = plain_stderr(err_file.read().decode("utf-8", "replace"))
    result = ResticResult(list(argv), proc.returncode, "", stderr, time.monotonic() - start, expired.is_set())
    return value, result


def restic_from_module(module: Any) -> Restic:
    """Build the engine from a module's shared options (binary discovery, password file, env, cache dir)."""
    params = module.params
    if not params.get("repository"):
        module.fail_json(msg=NO_REPOSITORY_MESSAGE)
    if url_embeds_credentials(params["repository"]):
        module.fail_json(msg=CREDENTIALS_IN_URL_MESSAGE.format(repo=redact_repository(params["repository"])))
    binary = params.get("restic_binary")
    if binary:
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            module.fail_json(
                msg=f"restic_binary {binary} is not an executable file on this host; install restic there or point "
                "restic_binary at the right path."
            )
    else:
        binary = module.get_bin_path("restic")
        if not binary:
            module.fail_json(
                msg="restic was not found on PATH on this host; install it (Debian/Ubuntu: apt-get install restic) "
                "or set restic_binary to its path."
            )
    if params.get("password") is None and not params.get("password_file"):
        module.fail_json(
            msg="No restic password for repository "
            f"{redact_repository(params['repository'])}: set password or password_file on the task, or the variable "
            "ledgerguard_password_file (a 0600 file on the controller)."
        )
    if params.get("password_file") and not os.path.isfile(params["password_file"]):
        module.fail_json(msg=f"password_file {params['password_file']} does not exist on this host.")
    return Restic(
        binary=binary,
        repository=params["repository"],
        password_file="",
        env=params.get("env") or {},
        cache_dir=params.get("cache_dir"),
        timeout=params.get("timeout") or 0,
        stale_lock_age=1800 if params.get("stale_lock_age") is None else params["stale_lock_age"],
        sftp_identity_file=params.get("sftp_identity_file"),
        sftp_known_hosts_file=params.get("sftp_known_hosts_file"),
    )


NO_REPOSITORY_MESSAGE = (
    "No restic repository given: set the task option repository, the variable ledgerguard_repository, or "
    "RESTIC_REPOSITORY in the controller's environment."
)
CREDENTIALS_IN_URL_MESSAGE = (
    "The repository URL {repo} embeds credentials (user:secret@host). Remove them from the URL: give S3 keys "
    "through the variable ledgerguard_s3_credentials_file (an AWS shared-credentials file, 0600, on the controller), "
    "the task option env, or the controller's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, so they never appear in "
    "logs, process lists or task results."
)


def run_module(module: Any, body: Callable[[Restic], dict[str, Any]]) -> None:
    """Run ``body(restic)`` with the password in a 0600 temp file; turn ResticError / ValueError into fail_json."""
    try:
        restic = restic_from_module(module)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
        return
    params = module.params
    directory = getattr(module, "tmpdir", None)
    try:
        with PasswordFile(params.get("password"), params.get("password_file"), directory) as pwfile:
            restic.env["RESTIC_PASSWORD_FILE"] = pwfile.path
            result = body(restic)
    except ResticError as exc:
        fail: dict[str, Any] = {
            "msg": exc.message,
            "error_kind": exc.kind,
            "repository": redact_repository(restic.repository),
        }
        if exc.details:
            fail["error_details"] = exc.details
        if exc.result is not None:
            fail["rc"] = exc.result.rc
            fail["stderr"] = exc.result.stderr[-4000:]
        if restic._features is not None:
            fail["restic_version"] = restic._features.version_string
        module.fail_json(**fail)
        return
    except ValueError as exc:
        module.fail_json(msg=str(exc))
        return
    if restic.removed_locks:
        result["stale_locks_removed"] = restic.removed_locks
        for lock in restic.removed_locks:
            module.warn(f"Removed a stale restic lock from {redact_repository(restic.repository)}: {lock['why']}")
    module.exit_json(**result)
