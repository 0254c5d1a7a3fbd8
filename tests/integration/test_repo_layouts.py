"""Repositories as firms really make them (issue 17) and restic argument safety (issue 13 item 9).

The restic modules run as real module processes (``python -m ...modules.<name> args.json``, as Ansible runs them on a
managed host) against real restic 0.14 (Debian) and, when ``scripts/fetch-restic.sh`` can provide it, restic 0.18.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".collections"


def _restic_018() -> str | None:
    path = ROOT / ".cache" / "restic-newer" / "restic"
    if not path.exists():
        try:
            out = subprocess.run(
                ["bash", str(ROOT / "scripts" / "fetch-restic.sh")], capture_output=True, text=True, timeout=300
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
    return str(path) if path.exists() else None


RESTIC_014 = shutil.which("restic")


@pytest.fixture(params=["0.14", "0.18"], scope="module")
def restic_bin(request):
    binary = RESTIC_014 if request.param == "0.14" else _restic_018()
    if not binary:
        pytest.skip(f"restic {request.param} is not available here")
    return binary


def run_restic(binary: str, repo: str, pwfile: Path, *args: str, cwd=None, stdin: bytes | None = None, check=True):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C"}
    env.update(RESTIC_REPOSITORY=repo, RESTIC_PASSWORD_FILE=str(pwfile))
    res = subprocess.run([binary, *args], env=env, capture_output=True, cwd=cwd, input=stdin, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f"restic {args} failed: {res.stderr.decode()}")
    return res


def run_module(name: str, args: dict, tmp_path: Path) -> dict:
    """One module run, the way Ansible runs it on a managed host (arguments in a JSON file)."""
    argfile = tmp_path / f"args-{name}-{os.urandom(4).hex()}.json"
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"_ansible_tmpdir": str(tmp_path), **args}}))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    res = subprocess.run(
        [sys.executable, "-m", f"ansible_collections.ledgerguard.recovery.plugins.modules.{name}", str(argfile)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    try:
        return json.loads(res.stdout)
    except ValueError:
        raise AssertionError(f"{name} printed no JSON: {res.stdout[-2000:]} {res.stderr[-2000:]}") from None


def sha_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def make_books(base: Path) -> Path:
    """/<base>/srv/ledgers with two clients (Chinese names included)."""
    ledgers = base / "srv" / "ledgers"
    for client in ("C001", "C002"):
        (ledgers / client / "凭证").mkdir(parents=True)
        (ledgers / client / "凭证" / "2026-01.csv").write_text(f"编号,金额\n1,{client}\n", encoding="utf-8")
        (ledgers / client / "ledger.db").write_bytes(os.urandom(70_000))
    return ledgers


@pytest.fixture
def repo(tmp_path, restic_bin):
    pwfile = tmp_path / "pw"
    pwfile.write_text("layout-secret")
    pwfile.chmod(0o600)
    path = str(tmp_path / "repo")
    run_restic(restic_bin, path, pwfile, "init")
    return {"path": path, "pw": pwfile, "bin": restic_bin}


def common(repo: dict, tmp_path: Path) -> dict:
    return {
        "repository": repo["path"],
        "password_file": str(repo["pw"]),
        "restic_binary": repo["bin"],
        "cache_dir": str(tmp_path / "cache"),
    }


# -- issue 13 item 9 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("planted", ["--help", "-r/tmp/x", "--delete"])
def test_snapshot_value_that_is_an_option_is_refused(planted, repo, tmp_path):
    """A snapshot value starting with '-' is refused by name and never reaches restic as an option (a logging wrapper
    around the real binary records every argv restic is given)."""
    books = make_books(tmp_path / "live")
    run_restic(repo["bin"], repo["path"], repo["pw"], "backup", str(books))
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "restic-logged"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {repo["bin"]} "$@"\n')
    wrapper.chmod(0o755)
    args = dict(common(repo, tmp_path), restic_binary=str(wrapper))
    target = tmp_path / "restore"
    result = run_module("restic_restore", dict(args, snapshot=planted, target=str(target)), tmp_path)
    assert result.get("failed") and f"snapshot {planted!r} is not a restic snapshot ID" in result["msg"], result
    listed = run_module("restic_snapshots", dict(args, contains_path="/srv"), tmp_path)
    assert not listed.get("failed"), listed
    calls = log.read_text().splitlines() if log.exists() else []
    for line in calls:
        words = line.split()
        if len(words) == 2 and words[1] == "--help":
            continue  # the engine's own feature probe ('restic restore --help')
        options = words[: words.index("--")] if "--" in words else words
        assert planted not in options, line
    assert not target.exists() or not any(target.iterdir())
