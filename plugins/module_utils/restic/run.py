# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running restic: the child's environment (nothing secret inherited), the 0600 password file, argv built so no input
becomes an option, the subprocess (captured or streamed, stopped as a process group on timeout), version and
feature detection, and the reachability probes that run before restic's first call.

Secrets reach restic only through its environment or a 0600 password file that is removed afterwards; they never
appear in argv, in a message or in a returned value."""

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import (
    UNREACHABLE,
    ResticError,
    classify_ssh,
    first_line,
    gone_pack_retry,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import (
    backend_address,
    parse_sftp,
    redact_repository,
    sftp_ssh_argv,
)

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


@dataclass
class ResticResult:
    """What one restic invocation returned."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float = 0.0
    timed_out: bool = False
    gave_up: str = ""  # restic was stopped at its first retry of this pack file that is gone (watched_run)


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


# The subcommands whose one answer a lost pack makes unusable, whatever restic would read after it: a restore, a dump,
# a listing or a diff of a snapshot that needs a pack that is gone fails (the restore point moves to an older
# snapshot). They give up at restic's first retry of a gone pack file (watched_run). Not ``check`` (its later reads
# find other damage), ``find`` (it locates every snapshot that needs a lost pack), ``copy`` or ``prune``.
GIVE_UP_ON_GONE = frozenset({"restore", "dump", "ls", "diff"})


def gives_up_on_gone(args: tuple[str, ...], asked: bool | None = None) -> bool:
    """Whether a run of restic ``args`` gives up at its first retry of a gone pack: ``asked`` when the caller says,
    else by its subcommand (``GIVE_UP_ON_GONE``)."""
    if asked is not None:
        return asked
    return bool(args) and args[0] in GIVE_UP_ON_GONE


def subprocess_run(
    argv: list[str],
    env: Mapping[str, str],
    timeout: float | None = None,
    cwd: str | None = None,
    stdin: Any = None,
    give_up_on_gone: bool = False,
) -> ResticResult:
    """Run restic with a clean environment; on timeout the whole process group is stopped (TERM, then KILL).

    ``stdin`` is an open binary file restic reads (``backup --stdin``); default: no input. ``give_up_on_gone``: stop
    restic at its first retry of a pack file that is gone (``watched_run``)."""
    stdout, result = watched_run(argv, env, lambda out: out.read(), timeout, cwd, stdin, give_up_on_gone)
    result.stdout = (stdout or b"").decode("utf-8", "replace")
    return result


def watched_run(
    argv: list[str],
    env: Mapping[str, str],
    consume: Callable[[Any], Any],
    timeout: float | None = None,
    cwd: str | None = None,
    stdin: Any = None,
    give_up_on_gone: bool = False,
) -> tuple[Any, ResticResult]:
    """Run restic as its own process group, restic's stdout (a binary stream) handed to ``consume`` while it runs and
    its stderr read line by line beside it; returns (consume's value, the result without stdout).

    On ``timeout`` the group is stopped (TERM, then KILL). With ``give_up_on_gone`` restic is stopped (TERM: it
    removes its lock) at its first notice that it will read a pack file again although the file is gone: restic 0.14
    retries such a read for about 44 s (ten times, a growing pause), once per read, so a restore that needs a lost pack
    took minutes to fail; restic 0.18 gives up on a missing file at once. The notice, without its retry, is added to
    stderr (what restic 0.18 prints), so the classifier names the lost pack as it does when restic gives up itself.
    """
    import threading

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
    expired, err_lines, gone = threading.Event(), [], []

    def expire() -> None:
        expired.set()
        _stop_group(proc)

    def read_stderr() -> None:
        for raw in iter(proc.stderr.readline, b""):
            err_lines.append(raw)
            if give_up_on_gone and not gone:
                line = gone_pack_retry(raw.decode("utf-8", "replace"))
                if line:
                    gone.append(line)
                    _signal_group(proc, signal.SIGTERM)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    timer = threading.Timer(timeout, expire) if timeout else None
    if timer:
        timer.start()
    value = None
    try:
        value = consume(proc.stdout)
        proc.stdout.read()  # drain whatever the consumer left
    finally:
        proc.stdout.close()
        if gone:
            _reap_or_kill(proc)  # the TERM is sent; a second one could cut restic's lock removal short
        proc.wait()
        reader.join()
        proc.stderr.close()
        if timer:
            timer.cancel()
    stderr = plain_stderr(b"".join(err_lines).decode("utf-8", "replace"))
    if gone:
        stderr = f"{stderr.rstrip()}\n{gone[0]}\n"
    result = ResticResult(
        argv=list(argv),
        rc=-int(signal.SIGTERM) if expired.is_set() else proc.returncode,
        stdout="",
        stderr=stderr,
        seconds=time.monotonic() - start,
        timed_out=expired.is_set(),
        gave_up=gone[0] if gone else "",
    )
    return value, result


def _reap_or_kill(proc: subprocess.Popen, grace: float = 15) -> None:
    """Wait up to ``grace`` seconds for a process that was sent TERM, then KILL its group."""
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _stop_group(proc: subprocess.Popen) -> None:
    """TERM the process group (restic removes its lock on TERM), KILL it if it does not exit within 15 s."""
    _signal_group(proc, signal.SIGTERM)
    _reap_or_kill(proc)


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


SNAPSHOT_ID_RE = re.compile(r"^(?:[0-9a-f]{8,64}|latest)$")
# A snapshot named by its full ID: the hash of the snapshot, so what restic shows of it never changes.
FULL_SNAPSHOT_ID_RE = re.compile(r"^[0-9a-f]{64}$")


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
    """What this restic binary can do, detected from ``restic version`` and ``restic <cmd> --help``.

    The flags of a command are given (``restore_flags`` ...) or, with ``help``, read the first time a property needs
    them (``help(command)`` -> its flags, once per command): a module asks only the help it uses. Under load every
    restic start costs a fraction of a second, and a backup needs none of them."""

    version: tuple[int, int, int]
    restore_flags: frozenset[str] = frozenset()
    check_flags: frozenset[str] = frozenset()
    backup_flags: frozenset[str] = frozenset()
    help: Callable[[str], frozenset[str]] | None = field(default=None, compare=False, repr=False)
    _asked: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    def flags(self, command: str) -> frozenset[str]:
        """The flags of ``restore``, ``check`` or ``backup`` (asked of the binary once when ``help`` is set)."""
        given = getattr(self, f"{command}_flags")
        if given or self.help is None:
            return given
        if command not in self._asked:
            self._asked[command] = self.help(command)
        return self._asked[command]

    @property
    def version_string(self) -> str:
        return ".".join(str(p) for p in self.version)

    @property
    def distinct_exit_codes(self) -> bool:
        """restic 0.17.0 added exit codes 10 (no repository), 11 (lock failed), 12 (wrong password)."""
        return self.version >= (0, 17, 0)

    @property
    def restore_verify(self) -> bool:
        return "--verify" in self.flags("restore")

    @property
    def restore_dry_run(self) -> bool:
        return "--dry-run" in self.flags("restore")

    @property
    def check_read_data_subset(self) -> bool:
        return "--read-data-subset" in self.flags("check")

    @property
    def backup_dry_run(self) -> bool:
        return "--dry-run" in self.flags("backup")

    @property
    def retry_lock(self) -> bool:
        return "--retry-lock" in self.flags("restore")


def detect_features(run: RunFunc, binary: str, env: Mapping[str, str], timeout: float = 30) -> ResticFeatures:
    """Ask the binary itself: its version now, the flags of a command (``restic <cmd> --help``) when first needed."""
    res = run([binary, "version"], env=env, timeout=timeout)
    if res.rc != 0:
        raise ResticError(
            "binary",
            f"'{binary} version' failed with exit code {res.rc}: {(res.stderr or res.stdout).strip()[:300]}. "
            "Check restic_binary points at a working restic.",
        )
    version = parse_version(res.stdout)

    def command_help(command: str) -> frozenset[str]:
        out = run([binary, command, "--help"], env=env, timeout=timeout)
        return parse_help_flags(out.stdout + out.stderr)

    return ResticFeatures(version, help=command_help)


PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


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
    error = UNREACHABLE.error(
        {"repo": redact_repository(repository), "where": where, "host": host, "port": str(port), "reason": reason}
    )
    error.details["attempts"] = str(attempts)
    return error


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
        f"{proc.returncode}: {first_line(text)[:300] or 'no output'}).",
        {"reason": first_line(text)[:300]},
    )


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
