# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors: restic's output turned into a ResticError whose ``kind`` is stable (tests and roles match on it) and whose
message names the repository and says what to do."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import (
    backend_of,
    parse_sftp,
    redact_repository,
)

if TYPE_CHECKING:  # annotations only: run imports errors
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import ResticFeatures, ResticResult


class ResticError(Exception):
    """A classified restic failure. ``kind`` is stable (tests and roles match on it), ``message`` is for people."""

    def __init__(
        self,
        kind: str,
        message: str,
        details: dict[str, Any] | None = None,
        result: ResticResult | None = None,
        hint: str = "",
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message  # what happened and what to do (the hint), for people
        self.details = details or {}
        self.result = result
        self.hint = hint


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


TIMEOUT_KINDS = ("timeout",)


def shorten(line: str, limit: int) -> str:
    """A long restic line cut in the middle, so both its start and its reason (at the end) stay readable."""
    if len(line) <= limit:
        return line
    head = limit // 3
    return f"{line[:head]} ... {line[-(limit - head - 5) :]}"


def first_line(text: str) -> str:
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
    return first_line(text)[:400]


def packs_named(text: str) -> list[str]:
    """The pack IDs (full, or the prefix restic printed) named in restic's output, in order, once each."""
    out: list[str] = []
    for match in PACK_NAME_RE.finditer(text or ""):
        pack = match.group("full") or match.group("short")
        if any(p.startswith(pack) for p in out):
            continue
        out = [p for p in out if not pack.startswith(p)] + [pack]
    return out


RETRY_NOTICE_RE = re.compile(r", retrying after [^:]*:")


def gone_pack_retry(line: str) -> str:
    """restic's notice that it will read a pack file again although the file is gone (restic 0.14 retries a read ten
    times with a growing pause, about 44 s in all, even for a file that does not exist; restic 0.18 gives up at once),
    as the line restic would have printed without the retry ("Load(<data/...>, ...) returned error: open ...: no such
    file or directory"); "" for any other line."""
    if "retrying after" not in line or not PACK_NAME_RE.search(line) or not PACK_MISSING_RE.search(line):
        return ""
    return RETRY_NOTICE_RE.sub(":", line.strip(), count=1)


def _missing_pack_line(text: str) -> str:
    """The first line saying a pack file could not be read because it is gone (retry notices are skipped)."""
    for line in (text or "").splitlines():
        if "retrying after" in line:
            continue
        if PACK_NAME_RE.search(line) and PACK_MISSING_RE.search(line):
            return line.strip()
    return ""


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


SSH_CONNECT_RE = re.compile(r"connect to host (?P<host>\S+) port (?P<port>\d+): (?P<reason>[^\n]+)")


SSH_RESOLVE_RE = re.compile(r"Could not resolve hostname (?P<host>[^:\s]+): (?P<reason>[^\n]+)")


SSH_HOSTKEY_RE = re.compile(
    r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known for (?P<who>\S+)|"
    r"Host key for (?P<who2>\S+) has changed"
)


SSH_HOSTKEY_CHANGED_RE = re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for \S+ has changed")
SSH_AUTH_RE = re.compile(r"(?P<who>\S+): Permission denied \((?P<methods>[^)]*)\)")


SSH_KEYFILE_RE = re.compile(
    r"UNPROTECTED PRIVATE KEY FILE|bad permissions|Load key \"(?P<key>[^\"]+)\": (?P<reason>[^\n]+)"
)


# --------------------------------------------------------------------------------------------------------------------
# The classifier: a table of rules, tried in order; the first that applies names the kind, the message and the hint
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clue:
    """What a rule reads: restic's output (stderr, then stdout) and what the caller was doing."""

    text: str
    rc: int = 1
    timed_out: bool = False
    seconds: float = 0.0
    exit_codes: bool = False  # restic >= 0.17: exit codes 10, 11, 12 mean one thing each
    repository: str = ""
    action: str = "run restic"
    target: str | None = None
    snapshot: str | None = None
    says: str = ""  # restic's most telling line
    ssh_output: bool = False  # the text is ssh's own output (probe_sftp)

    @property
    def ssh(self) -> bool:
        """ssh's words are read for ssh's own output, an sftp: repository, or when restic quotes ssh."""
        return self.ssh_output or backend_of(self.repository) == "sftp" or "subprocess ssh:" in self.text

    def fields(self) -> dict[str, Any]:
        """The fields every template may use."""
        where = parse_sftp(self.repository) or {"host": "", "port": None}
        return {
            "repo": redact_repository(self.repository),
            "action": self.action,
            "target": self.target,
            "snapshot": self.snapshot,
            "says": self.says,
            "rc": self.rc,
            "server": f"{where['host']}:{where['port'] or 22}",
            "sftp_port": str(where["port"] or 22),
        }


Facts = Callable[[Clue, "re.Match[str] | None"], "dict[str, Any] | None"]


@dataclass(frozen=True)
class ErrorRule:
    """One kind of restic failure.

    The rule applies when ``pattern`` is found in restic's output, or when restic >= 0.17 exited with ``exit_code``;
    a rule without either applies when ``facts`` says so. ``facts(clue, match)`` returns the fields the templates
    need (None: the rule does not apply after all); without it, the match's named groups. ``message`` says what
    happened and ``hint`` what to do (str.format templates over those fields and Clue.fields); ``details`` names the
    fields returned as error_details. ``ssh``: the rule reads ssh's output (Clue.ssh).
    """

    kind: str
    message: str
    hint: str = ""
    pattern: re.Pattern[str] | None = None
    exit_code: int | None = None
    facts: Facts | None = None
    details: tuple[str, ...] = ()
    ssh: bool = False

    def read(self, clue: Clue) -> dict[str, Any] | None:
        """The fields of this rule's message when it applies to ``clue``, else None."""
        if self.ssh and not clue.ssh:
            return None
        match = self.pattern.search(clue.text) if self.pattern is not None else None
        by_code = self.exit_code is not None and clue.exit_codes and clue.rc == self.exit_code
        if self.pattern is not None and match is None and not by_code:
            return None
        if self.facts is not None:
            return self.facts(clue, match)
        return {k: v for k, v in (match.groupdict() if match else {}).items() if v is not None}

    def error(self, fields: Mapping[str, Any], result: ResticResult | None = None) -> ResticError:
        """The ResticError this rule gives for ``fields`` (they must hold every field its templates name)."""
        message = self.message.format(**fields)
        hint = self.hint.format(**fields)
        details = {name: fields[name] for name in self.details}
        return ResticError(self.kind, f"{message} {hint}" if hint else message, details, result, hint=hint)


def _timeout(clue: Clue, _match: re.Match[str] | None) -> dict[str, Any] | None:
    return {"elapsed": clue.seconds, "seconds": round(clue.seconds, 1)} if clue.timed_out else None


def _key_file(clue: Clue, match: re.Match[str] | None) -> dict[str, Any]:
    """ssh's line that names the key file (``Load key "...": bad permissions``) when it printed one."""
    named = re.search(r'Load key "[^"]+": [^\n]+', clue.text)
    return {"line": named.group(0).strip() if named else first_line(match.group(0) if match else "")}


def _lock(clue: Clue, _match: re.Match[str] | None) -> dict[str, Any]:
    holder = parse_lock_holder(clue.text)
    if holder is None:
        return {"who": "another restic process (restic did not say which)", "lock": {}}
    lock_id = f", lock ID {holder['storage_id']}" if holder["storage_id"] else ""
    who = (
        f"restic PID {holder['pid']} on host {holder['host']} (user {holder['user']}), lock created at "
        f"{holder['created']} ({holder['age']} ago){lock_id}"
    )
    return {"who": who, "lock": holder}


def _unreachable(clue: Clue, _match: re.Match[str] | None) -> dict[str, Any] | None:
    found = parse_unreachable(clue.text, clue.repository)
    if not found:
        return None
    return {**found, "where": found["host"] + (f":{found['port']}" if found["port"] else "")}


def _matched(match: re.Match[str] | None) -> re.Match[str]:
    """A rule's details function runs only after its pattern matched."""
    if match is None:
        raise AssertionError("an error rule's details function was called without its pattern's match")
    return match


def _ssh_unreachable(clue: Clue, match: re.Match[str] | None) -> dict[str, Any]:
    match = _matched(match)
    port = match.groupdict().get("port") or clue.fields()["sftp_port"]
    return {"host": match.group("host"), "port": port, "reason": match.group("reason").strip()}


def _snapshot_missing(clue: Clue, match: re.Match[str] | None) -> dict[str, Any]:
    match = _matched(match)
    return {"snapshot": clue.snapshot or match.group("id") or match.group("id2") or "latest"}


def _no_space(clue: Clue, match: re.Match[str] | None) -> dict[str, Any]:
    match = _matched(match)
    place = f"the restore target {clue.target}" if clue.target else "the local disk"
    return {"place": place, "line": shorten(match.group("line").strip(), 300), "target": clue.target or ""}


def _restore_damaged(clue: Clue, _match: re.Match[str] | None) -> dict[str, Any] | None:
    damaged = [m for m in IGNORED_RE.finditer(clue.text) if DAMAGE_RE.search(m.group("reason"))]
    if not damaged:
        return None
    paths = sorted({m.group("path") for m in damaged})
    packs = packs_named(" ".join(m.group("reason") for m in damaged))
    return {
        "short": (clue.snapshot or "")[:8] or "?",
        "count": len(paths),
        "examples": ", ".join(paths[:3]),
        "reason": shorten(damaged[0].group("reason").strip(), 300),
        "lost": f"; pack(s) missing or damaged: {', '.join(packs[:5])}" if packs else "",
        "paths": paths[:50],
        "snapshot": clue.snapshot or "",
        "packs": packs,
    }


def _pack_missing(clue: Clue, _match: re.Match[str] | None) -> dict[str, Any] | None:
    line = _missing_pack_line(clue.text)
    if not line:
        return None
    packs = packs_named(line)
    snapshot = clue.snapshot or ""
    return {
        "packs": packs,
        "named": ", ".join(packs) or "(not named)",
        "what": f"snapshot {snapshot[:8]}" if snapshot else "it",
        "line": shorten(line, 300),
        "unusable": f" Snapshot {snapshot[:8]} cannot be used." if snapshot else "",
        "snapshot": snapshot,
    }


def _restore_pack_missing(clue: Clue, match: re.Match[str] | None) -> dict[str, Any] | None:
    """A restore that stopped on a gone pack before restic named the files that need it (restic 0.14 stopped at its
    first retry of the pack: run.watched_run); restic 0.18 goes on and names them (the rule before this one)."""
    if not clue.target:
        return None
    fields = _pack_missing(clue, match)
    return dict(fields, short=(clue.snapshot or "")[:8] or "?") if fields else None


def _denied(clue: Clue, match: re.Match[str] | None) -> dict[str, Any]:
    match = _matched(match)
    path = (match.group("path") or "").strip()
    return {"path": path, "where": path or "path not named", "reason": match.group("reason")}


def _denied_on_target(clue: Clue, match: re.Match[str] | None) -> dict[str, Any] | None:
    facts = _denied(clue, match)
    target, path = clue.target, facts["path"]
    on_target = bool(target and path and (path == target or path.startswith(target.rstrip("/") + "/")))
    if not (on_target or (target and not path)):
        return None
    return {**facts, "where": path or "target", "target": target}


# what an operator does about a backend that does not answer (also said by the probe before restic runs)
UNREACHABLE = ErrorRule(
    "unreachable",
    "Cannot reach the backend of restic repository {repo}: {where} ({reason}).",
    "Check that the storage server at {where} is running and reachable from this host (network, firewall, endpoint "
    "URL), then retry.",
    facts=_unreachable,
    details=("host", "port", "reason"),
)

SSH_UNREACHABLE_MESSAGE = "Cannot reach the backend of restic repository {repo}: {host}:{port} ({reason})."
SSH_UNREACHABLE_HINT = (
    "Check that the SSH server of the NAS at {host}:{port} is running and reachable from this host (network, "
    "firewall, port), then retry."
)

# ssh's own words, read for sftp: repositories (before restic runs: probe_sftp; after: restic's "subprocess ssh:")
SSH_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        "sftp_key_file",
        "ssh cannot use the key file for restic repository {repo} ({line}).",
        "Give sftp_identity_file (ledgerguard_sftp_identity_file) a private key file owned by the user running the "
        "task, mode 0600, without a passphrase.",
        pattern=SSH_KEYFILE_RE,
        facts=_key_file,
        details=("server",),
        ssh=True,
    ),
    ErrorRule(
        "sftp_host_key",
        "The SSH host key of {server} (restic repository {repo}) has CHANGED since it was recorded: ssh refused to "
        "connect (strict host-key checking).",
        "This can be an attack or a reinstalled NAS: verify the new key with the NAS's administrator before replacing "
        "its line in the known_hosts file.",
        pattern=SSH_HOSTKEY_CHANGED_RE,
        facts=lambda clue, match: {"changed": True},
        details=("server", "changed"),
        ssh=True,
    ),
    ErrorRule(
        "sftp_host_key",
        "The SSH host key of {server} (restic repository {repo}) is not in the known_hosts file given: ssh refused "
        "to connect (strict host-key checking).",
        "Add the server's key to sftp_known_hosts_file (ledgerguard_sftp_known_hosts_file) after checking its "
        "fingerprint on the NAS, e.g. ssh-keyscan -p PORT HOST, compared with the NAS's console.",
        pattern=SSH_HOSTKEY_RE,
        facts=lambda clue, match: {"changed": False},
        details=("server", "changed"),
        ssh=True,
    ),
    ErrorRule(
        "sftp_auth_failed",
        "The SSH server {server} refused the login {login} for restic repository {repo} (Permission denied; it "
        "accepts: {methods}).",
        "Check the user in the repository URL and that the public half of sftp_identity_file "
        "(ledgerguard_sftp_identity_file) is in that user's authorized_keys on the NAS.",
        pattern=SSH_AUTH_RE,
        facts=lambda clue, match: {"login": match.group("who"), "methods": match.group("methods")} if match else None,
        details=("server", "login"),
        ssh=True,
    ),
    ErrorRule(
        "unreachable",
        SSH_UNREACHABLE_MESSAGE,
        SSH_UNREACHABLE_HINT,
        pattern=SSH_CONNECT_RE,
        facts=_ssh_unreachable,
        details=("host", "port", "reason"),
        ssh=True,
    ),
    ErrorRule(
        "unreachable",
        SSH_UNREACHABLE_MESSAGE,
        SSH_UNREACHABLE_HINT,
        pattern=SSH_RESOLVE_RE,
        facts=_ssh_unreachable,
        details=("host", "port", "reason"),
        ssh=True,
    ),
)

# Every failed restic run, in this order: the first rule that applies wins; "failed" quotes restic when none does.
ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        "timeout",
        "restic did not finish ({action}) on repository {repo} within the timeout of {elapsed:.0f} s and was stopped.",
        "Raise 'timeout' (0 = no limit) or check whether the backend is slow or hanging.",
        facts=_timeout,
        details=("seconds",),
    ),
    ErrorRule(
        "wrong_password",
        "Wrong password for restic repository {repo}: no key in the repository opens with the password given.",
        "Check that ledgerguard_password_file (or password / password_file) holds this repository's password. "
        "Nothing was changed.",
        pattern=re.compile(r"wrong password or no key found"),
        exit_code=12,
    ),
    *SSH_RULES,
    ErrorRule(
        "locked",
        "Restic repository {repo} is locked by {who}.",
        "Wait for that process to finish; if it is no longer running, remove the stale lock with 'restic unlock' "
        "against {repo}, then retry (or set ledgerguard_stale_lock_age to a number of seconds: a lock whose holder "
        "process on this host is gone and that is older than that is then removed and recorded).",
        pattern=re.compile(r"repository is already locked"),
        exit_code=11,
        facts=_lock,
        details=("lock",),
    ),
    UNREACHABLE,
    ErrorRule(
        "repo_missing",
        "There is no restic repository at {repo} (restic says: {says}).",
        "Check the repository location (path or bucket and prefix); to create a new repository there, run "
        "ledgerguard.recovery.restic_repository with init: true.",
        pattern=re.compile(r"Is there a repository at the following location\?|unable to open config file"),
        exit_code=10,
    ),
    ErrorRule(
        "snapshot_not_found",
        "Snapshot '{snapshot}' was not found in restic repository {repo}.",
        "List the snapshots with ledgerguard.recovery.restic_snapshots and pass an existing snapshot ID (or 'latest' "
        "with filters that match a snapshot).",
        pattern=NO_SNAPSHOT_RE,
        facts=_snapshot_missing,
        details=("snapshot",),
    ),
    ErrorRule(
        "no_space",
        "Out of space on {place} while trying to {action} from restic repository {repo} (restic says: {line}).",
        "Free space there or choose a target on a larger filesystem, then retry.",
        pattern=NO_SPACE_RE,
        facts=_no_space,
        details=("target",),
    ),
    ErrorRule(
        "repository_damaged",
        "Snapshot {short} cannot be restored from restic repository {repo}: data it needs is missing or damaged in "
        "the repository ({count} file(s), e.g. {examples}; restic says: {reason}{lost}).",
        "The files restic could not verify must not be used. Run restic check --read-data to see the damage, and "
        "restore an older snapshot that does not need the lost data (the incident path moves to one by itself).",
        pattern=IGNORED_RE,
        facts=_restore_damaged,
        details=("paths", "snapshot", "packs"),
    ),
    ErrorRule(
        "repository_damaged",
        "Snapshot {short} cannot be restored from restic repository {repo}: pack {named}, which it needs, is missing "
        "from the repository (restic says: {line}).",
        "Nothing restored from it may be used. Run restic check to see the damage, and restore an older snapshot that "
        "does not need the lost pack (the incident path moves to one by itself).",
        pattern=PACK_MISSING_RE,
        facts=_restore_pack_missing,
        details=("packs", "snapshot"),
    ),
    ErrorRule(
        "repository_damaged",
        "restic could not {action} in restic repository {repo}: pack {named}, which {what} needs, is missing from the "
        "repository (restic says: {line}).{unusable}",
        "Run restic check to see the damage, and use an older snapshot that does not need the lost pack (the incident "
        "path moves to one by itself).",
        pattern=PACK_MISSING_RE,
        facts=_pack_missing,
        details=("packs", "snapshot"),
    ),
    ErrorRule(
        "permission_denied",
        "Permission denied writing to the restore target {target} ({where}: {reason}) while restoring from restic "
        "repository {repo}.",
        "Give the user running the task write access to the target (and remove any immutable attribute), or choose "
        "another target.",
        pattern=DENIED_RE,
        facts=_denied_on_target,
        details=("path", "target"),
    ),
    ErrorRule(
        "permission_denied",
        "Permission denied ({where}: {reason}) while trying to {action} with restic repository {repo}.",
        "Check the file permissions of that path for the user running the task.",
        pattern=DENIED_RE,
        facts=_denied,
        details=("path",),
    ),
    ErrorRule(
        "failed",
        "restic failed to {action} on repository {repo} (exit code {rc}): {quote}",
        facts=lambda clue, match: {"quote": clue.says or "no output"},
        details=("rc",),
    ),
)


def first_rule(rules: Iterable[ErrorRule], clue: Clue) -> tuple[ErrorRule, dict[str, Any]] | None:
    """The first of ``rules`` that applies to ``clue``, with the fields of its message; None when none does."""
    for rule in rules:
        facts = rule.read(clue)
        if facts is not None:
            return rule, {**clue.fields(), **facts}
    return None


def classify_ssh(text: str, repository: str) -> ResticError | None:
    """An ssh failure (ours or restic's ``subprocess ssh: ...`` lines) as a classified ResticError; None otherwise."""
    found = first_rule(SSH_RULES, Clue(text or "", repository=repository, ssh_output=True))
    return found[0].error(found[1]) if found else None


def clue_of(
    result: ResticResult,
    repository: str,
    features: ResticFeatures | None = None,
    target: str | None = None,
    snapshot: str | None = None,
    action: str = "run restic",
) -> Clue:
    """What the rules read of one failed restic run."""
    return Clue(
        text=(result.stderr or "") + "\n" + (result.stdout or ""),
        rc=result.rc,
        timed_out=result.timed_out,
        seconds=result.seconds,
        exit_codes=features.distinct_exit_codes if features else False,
        repository=repository,
        action=action,
        target=target,
        snapshot=snapshot,
        says=_restic_says(result.stderr) or _restic_says(result.stdout),
    )


def classify_error(
    result: ResticResult,
    repository: str,
    features: ResticFeatures | None = None,
    target: str | None = None,
    snapshot: str | None = None,
    action: str = "run restic",
) -> ResticError:
    """Turn a failed restic run into a ResticError whose message names the repository and what to do (ERROR_RULES).

    restic >= 0.17 has distinct exit codes (10 no repository, 11 lock failed, 12 wrong password); they count when the
    binary is new enough. restic 0.14 exits 1 for everything, so the message text decides.
    """
    # the last rule ("failed") applies to every run, so a rule is always found
    rule, fields = first_rule(ERROR_RULES, clue_of(result, repository, features, target, snapshot, action))
    return rule.error(fields, result)


class PathNotInSnapshot(ResticError, ValueError):
    """A live path that cannot be mapped into a snapshot's tree (error_kind ``path_not_in_snapshot``); the message
    says what the snapshot holds at its top and how to pin the path."""

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__("path_not_in_snapshot", message, details)
