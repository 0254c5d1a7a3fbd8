# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors: restic's output turned into a ResticError whose ``kind`` is stable (tests and roles match on it) and whose
message names the repository and says what to do."""

from __future__ import annotations

import re
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


SSH_AUTH_RE = re.compile(r"(?P<who>\S+): Permission denied \((?P<methods>[^)]*)\)")


SSH_KEYFILE_RE = re.compile(
    r"UNPROTECTED PRIVATE KEY FILE|bad permissions|Load key \"(?P<key>[^\"]+)\": (?P<reason>[^\n]+)"
)


def classify_ssh(text: str, repository: str) -> ResticError | None:
    """An ssh failure (ours or restic's ``subprocess ssh: ...`` lines) as a classified ResticError; None otherwise."""
    repo = redact_repository(repository)
    where = parse_sftp(repository) or {"host": "", "port": None, "user": ""}
    server = f"{where['host']}:{where['port'] or 22}"
    key = SSH_KEYFILE_RE.search(text or "")
    if key:
        return ResticError(
            "sftp_key_file",
            f"ssh cannot use the key file for restic repository {repo} ({first_line(key.group(0))}). Give "
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
            f"(restic says: {shorten(nospace.group('line').strip(), 300)}). Free space there or choose a target on a "
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
            f"{shorten(damaged[0].group('reason').strip(), 300)}{lost}). The files restic could not verify must not "
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
            f"{what} needs, is missing from the repository (restic says: {shorten(missing, 300)}). "
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


class PathNotInSnapshot(ResticError, ValueError):
    """A live path that cannot be mapped into a snapshot's tree (error_kind ``path_not_in_snapshot``); the message
    says what the snapshot holds at its top and how to pin the path."""

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__("path_not_in_snapshot", message, details)
