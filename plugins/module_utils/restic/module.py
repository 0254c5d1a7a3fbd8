# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module glue: the argument spec every restic module shares (documented by the doc fragment
ledgerguard.recovery.restic), the engine built from a module's options, and ``run_module``, which turns a ResticError
into fail_json with error_kind, details and the restic version."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import (
    Restic,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import (
    ResticError,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import (
    PasswordFile,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import (
    CREDENTIALS_IN_URL_MESSAGE,
    NO_REPOSITORY_MESSAGE,
    redact_repository,
    url_embeds_credentials,
)


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
        stale_lock_age=stale_lock_age(params),
        sftp_identity_file=params.get("sftp_identity_file"),
        sftp_known_hosts_file=params.get("sftp_known_hosts_file"),
    )


def stale_lock_age(params: dict[str, Any]) -> int:
    """The module's stale_lock_age option (its default when unset)."""
    return 1800 if params.get("stale_lock_age") is None else params["stale_lock_age"]


def report_removed_locks(module: Any, restic: Restic, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the stale locks this run removed (stale_locks_removed), each also a warning."""
    if restic.removed_locks:
        result["stale_locks_removed"] = restic.removed_locks
        for lock in restic.removed_locks:
            module.warn(f"Removed a stale restic lock from {redact_repository(restic.repository)}: {lock['why']}")
    return result


def run_module(module: Any, body: Callable[[Restic], dict[str, Any]]) -> None:
    """Run ``body(restic)`` with the password in a 0600 temp file; turn ResticError / ValueError into fail_json, and a
    result with ``failed`` (and ``msg``) into fail_json with all its keys."""
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
    report_removed_locks(module, restic, result)
    if result.get("failed"):
        # a body that reports a partial failure (restic_backup with clients: every client's result, then the failure)
        module.fail_json(**result)
        return
    module.exit_json(**result)
