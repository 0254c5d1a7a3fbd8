# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side half of the restic modules: resolve repository, password and backend credentials.

Resolution order (the collection's secrets contract):
  repository: task arg > var ledgerguard_repository > controller env RESTIC_REPOSITORY
  password:   task arg password / password_file > var ledgerguard_password_file (0600 controller file, read here and
              passed as the no_log option password) > controller env RESTIC_PASSWORD_FILE
  env:        task arg env > var ledgerguard_s3_credentials_file (AWS shared-credentials INI on the controller)
              > controller env AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN / AWS_DEFAULT_REGION
Secrets travel only as no_log module options; nothing here displays or returns them.
"""

from __future__ import annotations

import configparser
import os
import stat
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# Only the URL part of the restic package: every restic task's worker process loads this file, and the engine's
# parts (run, errors, parsers, engine, module: about 140 KB of source) are the module's, on the managed host.
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import (
    CREDENTIALS_IN_URL_MESSAGE,
    NO_REPOSITORY_MESSAGE,
    redact_repository,
    url_embeds_credentials,
)

AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")
INI_KEYS = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "region": "AWS_DEFAULT_REGION",
}


def read_private_file(path: str, what: str) -> str:
    """Read a controller file that holds a secret; refuse it when group or others may read it."""
    path = os.path.expanduser(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise AnsibleActionFail(f"{what} {path} cannot be read on the controller: {exc.strerror}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise AnsibleActionFail(f"{what} {path} is not a regular file.")
    if st.st_mode & 0o077:
        raise AnsibleActionFail(
            f"{what} {path} is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); it holds a secret: "
            f"run 'chmod 600 {path}' and retry."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise AnsibleActionFail(f"{what} {path} cannot be read on the controller: {exc.strerror}.") from None


def credentials_from_ini(path: str, profile: str = "default") -> dict[str, str]:
    """The restic environment for S3 from an AWS shared-credentials file (one profile)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_private_file(path, "ledgerguard_s3_credentials_file"))
    except configparser.Error as exc:
        raise AnsibleActionFail(
            f"ledgerguard_s3_credentials_file {path} is not an AWS shared-credentials INI file ({type(exc).__name__})."
        ) from None
    if not parser.has_section(profile):
        raise AnsibleActionFail(
            f"ledgerguard_s3_credentials_file {path} has no [{profile}] profile (it has: "
            f"{', '.join(parser.sections()) or 'none'}); add it or set ledgerguard_s3_profile."
        )
    env = {}
    for key, name in INI_KEYS.items():
        value = parser.get(profile, key, fallback="").strip()
        if value:
            env[name] = value
    if "AWS_ACCESS_KEY_ID" not in env or "AWS_SECRET_ACCESS_KEY" not in env:
        raise AnsibleActionFail(
            f"ledgerguard_s3_credentials_file {path} profile [{profile}] lacks aws_access_key_id or "
            "aws_secret_access_key."
        )
    return env


def resolve_connection(
    args: dict[str, Any], variables: dict[str, Any], environ: dict[str, str] | os._Environ
) -> dict[str, Any]:
    """The module arguments with repository, password and env filled in per the contract (pure; tested)."""
    args = dict(args)
    repository = args.get("repository") or variables.get("ledgerguard_repository") or environ.get("RESTIC_REPOSITORY")
    if not repository:
        raise AnsibleActionFail(NO_REPOSITORY_MESSAGE)
    repository = str(repository)
    if url_embeds_credentials(repository):
        raise AnsibleActionFail(CREDENTIALS_IN_URL_MESSAGE.format(repo=redact_repository(repository)))
    args["repository"] = repository

    if args.get("password") is None and not args.get("password_file"):
        source = variables.get("ledgerguard_password_file")
        what = "ledgerguard_password_file"
        if not source and environ.get("RESTIC_PASSWORD_FILE"):
            source, what = environ["RESTIC_PASSWORD_FILE"], "RESTIC_PASSWORD_FILE"
        if not source:
            raise AnsibleActionFail(
                f"No restic password for repository {redact_repository(repository)}: set password or password_file "
                "on the task, the variable ledgerguard_password_file (a 0600 file on the controller), or "
                "RESTIC_PASSWORD_FILE in the controller's environment."
            )
        args["password"] = read_private_file(str(source), what)

    if not args.get("env"):
        ini = variables.get("ledgerguard_s3_credentials_file")
        if ini:
            args["env"] = credentials_from_ini(str(ini), str(variables.get("ledgerguard_s3_profile") or "default"))
        else:
            env = {k: environ[k] for k in AWS_ENV if environ.get(k)}
            if env:
                args["env"] = env
    return args


class ResticActionBase(ActionBase):
    """Base of every ledgerguard.recovery.restic_* action plugin: resolve the connection, run the module."""

    TRANSFERS_FILES = False
    # Long restores run with `async`/`poll` so callers can show progress while they wait.
    _supports_async = True
    _VARIABLES = ("ledgerguard_repository", "ledgerguard_password_file", "ledgerguard_s3_credentials_file")
    _OPTIONAL = (
        "ledgerguard_s3_profile",
        "ledgerguard_stale_lock_age",
        "ledgerguard_sftp_identity_file",
        "ledgerguard_sftp_known_hosts_file",
    )

    def _connection_variables(self, task_vars: dict[str, Any]) -> dict[str, Any]:
        """The ledgerguard_* connection variables that are set (templated, empty ones left out)."""
        variables = {}
        for name in self._VARIABLES + self._OPTIONAL:
            if name in task_vars:
                value = self._templar.template(task_vars[name])
                if value not in (None, ""):
                    variables[name] = value
        return variables

    def _restic_module_args(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """A restic module's arguments with the connection filled in (also used by restore_clients per module call)."""
        variables = self._connection_variables(task_vars)
        module_args = resolve_connection(args, variables, os.environ)
        if "stale_lock_age" not in module_args and "ledgerguard_stale_lock_age" in variables:
            module_args["stale_lock_age"] = int(variables["ledgerguard_stale_lock_age"])
        # sftp: the key and known_hosts FILES on the managed host (paths only; the key never travels)
        for option in ("sftp_identity_file", "sftp_known_hosts_file"):
            if not module_args.get(option) and f"ledgerguard_{option}" in variables:
                module_args[option] = str(variables[f"ledgerguard_{option}"])
        return module_args

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        try:
            module_args = self._restic_module_args(dict(self._task.args), task_vars)
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=exc.message)
            return result
        module_name = self._task.resolved_action or self._task.action
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result.update(
            self._execute_module(
                module_name=module_name, module_args=module_args, task_vars=task_vars, wrap_async=wrap_async
            )
        )
        return result
