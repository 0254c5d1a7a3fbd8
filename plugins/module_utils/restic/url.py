# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repository strings: which backend, credentials embedded in a URL (refused) and their redaction, the endpoint
of an s3:/rest: repository and the parts of an sftp: one (with the ssh command restic runs for it).

Pure functions of the repository string; nothing here runs anything."""

from __future__ import annotations

import re
from typing import Any

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


BACKEND_URL_RE = re.compile(
    r"^(?P<scheme>s3|rest):(?:(?P<proto>https?)://)?(?P<host>\[[^\]]+\]|[^/:\s]+)(?::(?P<port>\d+))?(?:/|$)"
)


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


SFTP_URL_RE = re.compile(r"^sftp://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)(?::(?P<port>\d+))?(?P<path>/.*)?$")


SFTP_SCP_RE = re.compile(r"^sftp:(?!//)(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+):(?P<path>.*)$")


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
