"""Run ledgerguard playbooks through ansible-runner the way AWX does.

A private data directory per run (project = this checkout, inventory, artifacts), `suppress_env_files`, artifacts
rotated, and no secret in anything ansible-runner writes: secrets travel only as paths to 0600 files that the
collection's action plugins read on the controller (`ledgerguard_password_file`, `ledgerguard_s3_credentials_file`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

# Environment variables that may carry a secret; they are never handed to ansible-runner, which writes its whole
# environment to artifacts/<ident>/command.
SECRET_ENV = re.compile(r"(PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL(?!S_FILE)|PRIVATE_KEY)", re.I)


def scrubbed_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without variables whose names say they hold a secret."""
    env = dict(os.environ if base is None else base)
    return {k: v for k, v in env.items() if not SECRET_ENV.search(k) or k.endswith("_FILE")}


@dataclass
class PlaybookRun:
    playbook: str
    private_data_dir: Path
    inventory: str | Path | None = None
    extravars: dict[str, Any] = field(default_factory=dict)
    limit: str | None = None
    ident: str | None = None
    forks: int | None = None
    check: bool = False
    verbosity: int = 0
    rotate_artifacts: int = 20
    quiet: bool = True
    tags: str | None = None


def project_env() -> dict[str, str]:
    """Settings every run gets: this checkout's ansible.cfg and collections."""
    return {
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"),
        "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"),
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
    if run.check:
        args.append("--check")
    if run.tags:
        args += ["--tags", run.tags]
    playbook = run.playbook
    if not os.path.isabs(playbook):
        playbook = str(REPO_ROOT / "playbooks" / playbook)
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
            project_dir=str(REPO_ROOT),
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
