"""Run ledgerguard playbooks through ansible-runner the way AWX does.

A private data directory per run (project = the installed collection's folder, inventory, artifacts),
`suppress_env_files`, artifacts rotated, and no secret in anything ansible-runner writes: secrets travel only as paths
to 0600 files that the collection's action plugins read on the controller (`ledgerguard_password_file`,
`ledgerguard_s3_credentials_file`). The collection's playbooks run by FQCN (`ledgerguard.recovery.drill`), from the
collection found by ledgerguard.collection (Ansible's own configuration).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledgerguard import collection

# The environment ansible-runner gets is an allow-list: ansible-runner writes its whole environment into
# artifacts/<ident>/command, and every process it starts can be read by its owner in /proc/<pid>/environ. Anything not
# named here (RESTIC_PASSWORD, B2_ACCOUNT_KEY, AZURE_ACCOUNT_KEY, MYSQL_PWD, SSHPASS, AWS_SECRET_ACCESS_KEY, ...) is
# dropped; secrets reach the playbooks only as paths to 0600 files. URL credentials in what is kept are masked.
ALLOWED_ENV = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR", "PWD",
        "SSH_AUTH_SOCK", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
        "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    }
)  # fmt: skip
ALLOWED_ENV_PREFIXES = ("LC_", "ANSIBLE_", "LEDGERGUARD_", "RESTIC_", "AWS_")
# Even under an allowed prefix, a name that says it holds a secret is dropped (ANSIBLE_BECOME_PASS, RESTIC_PASSWORD,
# RESTIC_PASSWORD_COMMAND, AWS_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN, ...), except the *_FILE
# variables that only name a file.
SECRET_ENV = re.compile(
    r"(PASS|PWD|SECRET|TOKEN|ACCESS_KEY|ACCOUNT_KEY|CREDENTIAL(?!S_FILE)|PRIVATE_KEY|AUTH|KEY_ID)", re.I
)


def mask_url_credentials(text: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host``: the collection's one masking helper
    (``plugins/module_utils/redact.py``)."""
    return collection.module("plugins.module_utils.redact").mask_url_credentials(text or "")


def env_allowed(name: str) -> bool:
    if name in ALLOWED_ENV:
        return True
    if name.startswith(ALLOWED_ENV_PREFIXES):
        return name.endswith("_FILE") or not SECRET_ENV.search(name)
    return False


def scrubbed_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The allowed part of the environment (see ALLOWED_ENV), with credentials embedded in URLs masked."""
    env = dict(os.environ if base is None else base)
    return {k: mask_url_credentials(v) for k, v in env.items() if env_allowed(k)}


@dataclass
class PlaybookRun:
    playbook: str
    private_data_dir: Path
    inventory: str | Path | None = None
    extravars: dict[str, Any] = field(default_factory=dict)
    # Variable files (-e @file) passed through by path: their content (secrets, often) never reaches ansible-runner's
    # command line or artifacts. Given before `extravars`, so `extravars` win on a clash.
    extravars_files: list[str] = field(default_factory=list)
    limit: str | None = None
    ident: str | None = None
    forks: int | None = None
    check: bool = False
    verbosity: int = 0
    rotate_artifacts: int = 20
    quiet: bool = True
    tags: str | None = None


def project_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Settings every run gets: the collection this process found comes first on the collections path (so the
    playbooks run the same code the CLI imported), the rest of the path as configured; the timeline callback on."""
    env = os.environ if environ is None else environ
    found = str(collection.collections_dir())
    configured = env.get("ANSIBLE_COLLECTIONS_PATH") or env.get("ANSIBLE_COLLECTIONS_PATHS")
    if not configured:
        from ansible import constants as C

        configured = os.pathsep.join(C.COLLECTIONS_PATHS)
    paths = [found] + [p for p in configured.split(os.pathsep) if p and p != found]
    return {
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(paths),
        "ANSIBLE_CALLBACKS_ENABLED": "ledgerguard.recovery.timeline",
        "ANSIBLE_FORCE_COLOR": "0",
    }


def tool_path(path: str | None) -> str:
    """PATH with this interpreter's bin directory first when ansible-playbook is not otherwise found (a venv)."""
    path = path or os.defpath
    bindir = os.path.dirname(sys.executable)
    if shutil.which("ansible-playbook", path=path) is None and os.path.exists(os.path.join(bindir, "ansible-playbook")):
        return bindir + os.pathsep + path
    return path


def run_playbook(
    run: PlaybookRun,
    event_handler: Callable[[dict], bool] | None = None,
    extra_env: dict[str, str] | None = None,
    cmdline: Iterable[str] = (),
):
    """Run one playbook with ansible-runner and return the Runner object."""
    import ansible_runner

    pdd = Path(run.private_data_dir)
    pdd.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(pdd, 0o700)
    args = list(cmdline)
    for path in run.extravars_files:
        args += ["-e", shlex.quote("@" + str(path))]
    if run.check:
        args.append("--check")
    if run.tags:
        args += ["--tags", run.tags]
    playbook = run.playbook
    if not os.path.isabs(playbook):
        # incident_respond.yml -> ledgerguard.recovery.incident_respond; a sub-path stays a file of the collection
        playbook = str(collection.root() / "playbooks" / playbook) if "/" in playbook else collection.playbook(playbook)
    env = scrubbed_environment()
    env["PATH"] = tool_path(env.get("PATH"))
    env.update(project_env())
    env.update(extra_env or {})
    saved = dict(os.environ)
    # ansible-runner copies os.environ into the command artifact; run with a scrubbed one.
    os.environ.clear()
    os.environ.update(env)
    try:
        return ansible_runner.run(
            private_data_dir=str(pdd),
            project_dir=str(collection.root()),
            playbook=playbook,
            inventory=str(run.inventory) if run.inventory else None,
            extravars=run.extravars or None,
            limit=run.limit,
            ident=run.ident,
            forks=run.forks,
            verbosity=run.verbosity or None,
            quiet=run.quiet,
            suppress_env_files=True,
            rotate_artifacts=run.rotate_artifacts,
            cmdline=" ".join(args) if args else None,
            event_handler=event_handler,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
