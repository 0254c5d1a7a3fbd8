"""Fixtures shared by unit and integration tests: a real moto S3 server, restic repositories, playbook runs."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))
# Unit tests import the collection as ansible_collections.ledgerguard.recovery from the checkout's link.
sys.path.insert(0, str(REPO_ROOT / ".collections"))

from ledgerguard.embedded_s3 import EmbeddedS3  # noqa: E402
from ledgerguard.runner import PlaybookRun, run_playbook  # noqa: E402


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A moto S3 server on a free 127.0.0.1 port for the whole session."""
    server = EmbeddedS3(log_path=tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket on the session's S3 server."""
    name = "lg-" + secrets.token_hex(6)
    s3_server.create_bucket(name)
    return name


@pytest.fixture
def restic_password_file(tmp_path):
    path = tmp_path / "restic-password"
    path.write_text("correct horse battery staple " + secrets.token_hex(8) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def s3_credentials_file(tmp_path, s3_server):
    """An AWS shared-credentials file (0600) for the moto server."""
    env = s3_server.env()
    path = tmp_path / "s3-credentials"
    path.write_text(
        "[default]\n"
        f"aws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    path.chmod(0o600)
    return path


def restic(repo: str, password_file: Path, *args: str, env: dict | None = None, check=True, cwd=None):
    """Run the real restic binary directly (for test set-up and cross-checks)."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": os.environ.get("HOME", "/root")}
    full_env.update(env or {})
    full_env.update({"RESTIC_REPOSITORY": repo, "RESTIC_PASSWORD_FILE": str(password_file)})
    return subprocess.run(["restic", *args], env=full_env, capture_output=True, text=True, check=check, cwd=cwd)


@pytest.fixture
def restic_cmd():
    return restic


@pytest.fixture
def local_repo(tmp_path, restic_password_file):
    """An initialised restic repository in a local directory."""
    repo = str(tmp_path / "repo")
    restic(repo, restic_password_file, "init")
    return repo


@pytest.fixture
def s3_repo(s3_server, s3_bucket, restic_password_file):
    """An initialised restic repository in a fresh bucket on the moto server."""
    repo = s3_server.restic_url(s3_bucket, "restic")
    restic(repo, restic_password_file, "init", env=s3_server.env())
    return repo


@pytest.fixture
def localhost_inventory(tmp_path):
    """Write a localhost inventory using this interpreter; returns a function taking extra host vars."""

    def make(hostvars: dict | None = None, hosts: dict | None = None) -> Path:
        base = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        all_hosts = hosts or {"localhost": {}}
        inv = {"all": {"hosts": {h: {**base, **(v or {}), **(hostvars or {})} for h, v in all_hosts.items()}}}
        path = tmp_path / "inventory.json"
        path.write_text(json.dumps(inv))
        return path

    return make


@pytest.fixture
def playbook(tmp_path):
    """Run a playbook through ansible-runner; returns the Runner.

    Usage: playbook('x.yml', inventory=..., extravars=...).
    """

    def go(name: str, **kw):
        run = PlaybookRun(playbook=name, private_data_dir=kw.pop("private_data_dir", tmp_path / "runner"), **kw)
        return run_playbook(run)

    return go


def failed_messages(runner) -> list[str]:
    """The msg of every failed task event in a runner's events."""
    out = []
    for ev in runner.events:
        if ev.get("event") in ("runner_on_failed", "runner_item_on_failed"):
            res = ev.get("event_data", {}).get("res", {})
            out.append(str(res.get("msg", "")))
    return out


def task_result(runner, task: str) -> dict:
    """The result of the task named ``task`` in a runner's events (ok or failed)."""
    for ev in runner.events:
        data = ev.get("event_data", {})
        if ev.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task") == task:
            return data["res"]
    raise AssertionError(f"no result for task {task!r}")


def module_result(main, args: dict, capsys, check_mode: bool = False) -> dict:
    """Run a module's ``main`` in this process with ``args`` (as Ansible would pass them) and return its JSON result."""
    from ansible.module_utils.testing import patch_module_args  # noqa: PLC0415 (only unit tests of modules need it)

    if check_mode:
        args = {**args, "_ansible_check_mode": True}
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)
