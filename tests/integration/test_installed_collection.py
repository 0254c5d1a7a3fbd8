"""The collection as a user gets it: built with ``ansible-galaxy collection build``, installed with ``ansible-galaxy
collection install --offline`` into an empty collections path, and run by FQCN from outside the checkout.

The dependencies declared in galaxy.yml come from the ``ansible`` package in the venv (no Galaxy server is reachable
here): each one is linked, alone, into a ``deps`` collections path, and the install resolves galaxy.yml's dependencies
against it (ansible-galaxy checks the version constraint and reports "already installed"). The playbooks then run
through ansible-runner with ANSIBLE_COLLECTIONS_PATH = the install dir and ``deps`` only, no ansible.cfg, no sys.path
scan and a working directory outside the checkout: a role or plugin that needs code outside the built collection
(the old ``PYTHONPATH=role_path/../../src``) or an undeclared collection fails here.

One incident (the demo's: ransomware, a deleted folder, a ledger corrupted in place), one drill and the report role's
sign entry point on the incident's evidence, sharing one build, one install and one embedded S3 repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import ansible_runner
import pytest
import yaml

from ledgerguard import evidence
from ledgerguard.demo import Demo

from conftest import failed_messages

REPO = Path(__file__).resolve().parents[2]
BUNDLED = Path(sysconfig.get_paths()["purelib"]) / "ansible_collections"
BIN = Path(sys.executable).parent
# Includes ledgerguard.recovery.report (tasks_from: sign) by FQCN only.
SIGN_DRIVER = Path(__file__).resolve().parent / "files" / "compliance_sign.yml"
# Not copied for the build: the venv, caches, git, runs (build_ignore in galaxy.yml decides what the tarball holds).
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".cache", ".collections", "demo-run", "evidence", "output", "__pycache__", ".pytest_cache",
    ".ruff_cache", "*.tar.gz",
)  # fmt: skip


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _tool(*argv: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    res = subprocess.run([str(BIN / argv[0]), *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, f"{' '.join(argv)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build, install offline, then run the incident and a drill by FQCN; returns what the assertions need."""
    tmp = tmp_path_factory.mktemp("installed")
    work = tmp / "elsewhere"  # the working directory of every command: no ansible.cfg, not the checkout
    work.mkdir()
    src = tmp / "src" / "recovery"
    shutil.copytree(REPO, src, ignore=COPY_IGNORE, symlinks=True)

    # The declared dependencies only, each linked from the venv's `ansible` package.
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
    deps = tmp / "deps"
    for fqcn in galaxy["dependencies"]:
        namespace, name = fqcn.split(".")
        (deps / "ansible_collections" / namespace).mkdir(parents=True, exist_ok=True)
        (deps / "ansible_collections" / namespace / name).symlink_to(BUNDLED / namespace / name)
    install = tmp / "collections"
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp / "home"),
        "LANG": "C.UTF-8",
        "ANSIBLE_HOME": str(tmp / "ansible-home"),
        "ANSIBLE_COLLECTIONS_PATH": str(deps),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
    }
    _tool("ansible-galaxy", "collection", "build", str(src), "--output-path", str(tmp / "dist"), env=env, cwd=work)
    (tarball,) = (tmp / "dist").glob("ledgerguard-recovery-*.tar.gz")
    installing = _tool(
        "ansible-galaxy", "collection", "install", "--offline", "-p", str(install), str(tarball), env=env, cwd=work
    )
    collection = install / "ansible_collections" / "ledgerguard" / "recovery"
    before = _files(collection)

    run_env = {
        **env,
        "ANSIBLE_COLLECTIONS_PATH": f"{install}{os.pathsep}{deps}",
        "ANSIBLE_CALLBACKS_ENABLED": "ledgerguard.recovery.timeline",
        "ANSIBLE_FORCE_COLOR": "0",
        # The drill gives no ledgerguard_evidence_dir: the documented default applies.
        "LEDGERGUARD_EVIDENCE_DIR": str(tmp / "evidence-default"),
    }
    listed = _tool("ansible-galaxy", "collection", "list", "--format", "json", env=run_env, cwd=work)

    demo = Demo(tmp / "demo-run")
    out: dict = {"installing": installing.stdout, "listed": json.loads(listed.stdout), "tmp": tmp, "demo": demo}
    out.update(env=run_env, work=work, collection=collection)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ANSIBLE_") or name in ("PYTHONPATH", "LEDGERGUARD_EVIDENCE_DIR"):
                mp.delenv(name)
        for name, value in run_env.items():
            mp.setenv(name, value)
        mp.chdir(work)
        for name in ("runner-incident", "runner-drill", "runner-sign"):
            (tmp / name).mkdir(mode=0o700)
        try:
            demo.setup()
            demo.history()
            demo.incident()
            started = time.monotonic()
            out["incident"] = ansible_runner.run(
                private_data_dir=str(tmp / "runner-incident"),
                project_dir=str(work),
                playbook="ledgerguard.recovery.incident_respond",
                inventory=str(demo.inventory),
                extravars=demo.extravars(),
                quiet=True,
                suppress_env_files=True,
            )
            demo.seconds = time.monotonic() - started
            out["incident_check"] = demo.check(out["incident"])
            drill_vars = {k: v for k, v in demo.extravars().items() if not k.startswith(("incident_", "ledgerguard_e"))}
            drill_vars.update(
                drill_id="drill-installed",
                drill_sandbox_dir=str(tmp / "sandbox"),
                drill_progress_interval=0,
                ledgerguard_clients=[c for c in demo.clients if c["id"] == "c003"],
            )
            out["drill"] = ansible_runner.run(
                private_data_dir=str(tmp / "runner-drill"),
                project_dir=str(work),
                playbook="ledgerguard.recovery.drill",
                inventory=str(demo.inventory),
                extravars=drill_vars,
                quiet=True,
                suppress_env_files=True,
            )
            # The report role's sign entry point, by FQCN from the install: the signing code is in the collection.
            (folder,) = (p.parent for p in demo.evidence.glob("INC-*/report.json"))
            out["keys"] = evidence.keygen(tmp / "keys" / "firm.key")
            out["signed_folder"] = folder
            out["sign"] = ansible_runner.run(
                private_data_dir=str(tmp / "runner-sign"),
                project_dir=str(work),
                playbook=str(SIGN_DRIVER),
                inventory=str(demo.inventory),
                extravars={"report_sign_folder": str(folder), "report_sign_key": out["keys"]["key"],
                           "report_sign_kind": "incident", "report_sign_signer": "审计员"},
                quiet=True,
                suppress_env_files=True,
            )  # fmt: skip
        finally:
            demo.cleanup()
    out["collection_changed"] = {
        k: v for k, v in _files(collection).items() if before.get(k) != v and "__pycache__" not in k
    }
    return out


def test_install_resolves_the_declared_dependencies_offline(installed):
    """galaxy.yml's community.general is resolved from the bundled copy, and ledgerguard.recovery is found only in
    the fresh install dir (not the checkout's .collections link)."""
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
    for fqcn in galaxy["dependencies"]:
        version = json.loads((BUNDLED / Path(*fqcn.split(".")) / "MANIFEST.json").read_text())["collection_info"]
        assert f"'{fqcn}:{version['version']}' is already installed, skipping." in installed["installing"]
    places = [path for path, found in installed["listed"].items() if "ledgerguard.recovery" in found]
    assert places == [str(installed["tmp"] / "collections" / "ansible_collections")]


def test_incident_by_fqcn_restores_byte_identical_into_the_given_evidence_dir(installed):
    runner, demo = installed["incident"], installed["demo"]
    assert runner.status == "successful", failed_messages(runner)
    # demo.check: every file of the clean snapshot back byte-identical, the morning's file kept, c004's ledger
    # replaced, restores compared with the backup-time manifests.
    assert installed["incident_check"] == 0
    (report,) = demo.evidence.glob("INC-*/report.json")
    assert json.loads(report.read_text(encoding="utf-8"))["summary"]["rto"]
    assert (report.parent / "timeline.jsonl").is_file()


def test_drill_by_fqcn_writes_evidence_to_the_documented_default(installed):
    runner = installed["drill"]
    assert runner.status == "successful", failed_messages(runner)
    default = installed["tmp"] / "evidence-default" / "drill-installed"
    history = (default / "hosts" / "localhost" / "history.jsonl").read_text(encoding="utf-8").splitlines()
    last = json.loads(history[-1])
    assert last["passed"] is True and [c["id"] for c in last["clients"]] == ["c003"]
    assert (default / "report.json").is_file()


def test_the_sign_entry_point_signs_with_code_from_the_installed_collection(installed):
    assert installed["sign"].status == "successful", failed_messages(installed["sign"])
    report = evidence.verify(installed["signed_folder"], installed["keys"]["public_key"])
    assert report.ok and report.signer == "审计员" and report.timelines_checked == 1, report.problems


def test_nothing_is_written_into_the_installed_collection(installed):
    assert installed["collection_changed"] == {}
    collection = installed["tmp"] / "collections" / "ansible_collections" / "ledgerguard" / "recovery"
    assert not (collection / "evidence").exists() and not (collection.parent / "evidence").exists()


def test_the_cli_imports_the_installed_collection_found_by_ansible(installed):
    """The ledgerguard CLI, started outside the checkout with only the install dir configured, imports the collection
    from there (Ansible's collection loader, no sys.path edits) and verifies the incident's timeline with it."""
    (timeline,) = installed["demo"].evidence.glob("INC-*/timeline.jsonl")
    env = {**installed["env"], "PYTHONDONTWRITEBYTECODE": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "from ledgerguard import collection; print(collection.root())"],
        env=env, cwd=installed["work"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip() == str(installed["collection"])
    res = _tool("ledgerguard", "timeline", "verify", str(timeline), env=env, cwd=installed["work"])
    assert res.stdout.startswith(f"{timeline}: OK, ") and "chain intact" in res.stdout


def test_the_cli_says_how_to_install_a_missing_collection(tmp_path):
    """No collection where Ansible looks: one line naming the paths searched and how to install it, exit 2."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "empty"),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
    }
    argv = [str(BIN / "ledgerguard"), "drill", "--plain"]
    res = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr == (
        f"ledgerguard: the Ansible collection ledgerguard.recovery is not installed where Ansible looks "
        f"({tmp_path / 'empty'}); install it with `ansible-galaxy collection install "
        "<ledgerguard-recovery-VERSION.tar.gz>`, or set ANSIBLE_COLLECTIONS_PATH (or ANSIBLE_CONFIG) to where it is; "
        "in a checkout, run `make setup`\n"
    )
