"""The restic modules end to end: real playbooks through ansible-runner, real restic 0.14, a local-directory
repository and an S3 repository on a moto server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from ledgerguard.embedded_s3 import EmbeddedS3
from ledgerguard.runner import PlaybookRun, run_playbook

from conftest import restic, write_inventory, write_password_file, write_s3_credentials

PLAYBOOKS = Path(__file__).parent / "playbooks"


def task_results(runner, host: str | None = None) -> dict[str, dict]:
    """{task name: module result} of every ok / failed task (last one wins), of ``host`` only when given."""
    out = {}
    for ev in runner.events:
        if ev.get("event") in ("runner_on_ok", "runner_on_failed"):
            data = ev.get("event_data", {})
            if host is None or data.get("host") == host:
                out[data.get("task")] = dict(data.get("res", {}), _failed=ev["event"] == "runner_on_failed")
    return out


def sha256_tree(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every regular file, symlinks as 'link:<target>'."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def make_tree(root: Path) -> Path:
    """A small ledger tree: Chinese names, an empty file, a multi-chunk file (> 512 KiB), a symlink."""
    rng = __import__("random").Random(20260301)
    src = root / "srv" / "ledgers"
    for client in ("C001", "C002"):
        (src / client / "凭证").mkdir(parents=True)
        for month in ("2026-01", "2026-02"):
            rows = "\n".join(f"{i},{rng.randint(1, 9999)},借,贷" for i in range(200))
            (src / client / "凭证" / f"{month}.csv").write_text("编号,金额,借方,贷方\n" + rows + "\n", encoding="utf-8")
    (src / "C002" / "notes.txt").write_text("客户备注\n")
    (src / "C002" / "empty.dat").write_bytes(b"")
    (src / "C001" / "ledger.sqlite").write_bytes(rng.randbytes(3 * 1024 * 1024 + 17))
    (src / "C001" / "current.csv").symlink_to("凭证/2026-02.csv")
    return src


@pytest.fixture(scope="module")
def flow(tmp_path_factory, s3_server) -> dict:
    """restic_flow.yml run ONCE with one inventory host per backend (issue 19: a run each before): ``local`` on a
    local-directory repository, ``s3`` on a bucket of the moto server, each with its own tree, scratch folder and
    not-yet-initialised repository; test_flow[<backend>] asserts on its own host's results."""
    base = tmp_path_factory.mktemp("flow")
    password_file = write_password_file(base / "restic-password")
    credentials = write_s3_credentials(base / "s3-credentials", s3_server)
    aws = s3_server.env()
    bucket = "lg-flow-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    backends = {
        "local": {"repo": str(base / "local" / "repo-new"), "hostvars": {}, "env": {}},
        "s3": {
            "repo": s3_server.restic_url(bucket, "restic"),
            "hostvars": {"ledgerguard_s3_credentials_file": str(credentials)},
            "env": aws,
        },
    }
    for name, backend in backends.items():
        backend["src"] = make_tree(base / name / "data")
        backend["work"] = base / name / "work"
        backend["work"].mkdir()
        # the filters the S3 host skips are backend-independent: every case on the local host, the core path on S3
        backend["hostvars"].update(
            ledgerguard_repository=backend["repo"], ledgerguard_password_file=str(password_file),
            src=str(backend["src"]), work=str(backend["work"]), every_case=name == "local",
        )  # fmt: skip
    inventory = write_inventory(base / "inventory.json", hosts={n: b["hostvars"] for n, b in backends.items()})
    runner = run_playbook(
        PlaybookRun(playbook=str(PLAYBOOKS / "restic_flow.yml"), private_data_dir=base / "runner", inventory=inventory)
    )
    return {"base": base, "runner": runner, "inventory": inventory, "password_file": password_file, **backends}


def assert_no_secret_in_artifacts(private_data_dir: Path, *secrets_: str) -> None:
    for path in Path(private_data_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets_:
                assert secret.encode() not in data, f"secret leaked into {path}"


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_flow(backend, flow):
    host = flow[backend]
    src, work, password_file = host["src"], host["work"], flow["password_file"]
    res = task_results(flow["runner"], backend)
    assert flow["runner"].rc == 0, {k: v.get("msg") for k, v in task_results(flow["runner"]).items() if v["_failed"]}
    assert res, f"no task results for host {backend}"

    # repository: initialised once, never again
    assert res["Initialise the repository"]["changed"] is True
    assert res["Initialise the repository"]["backend"] == backend
    assert res["Initialise again (must not re-initialise)"]["changed"] is False
    assert (
        res["Initialise again (must not re-initialise)"]["repository_id"]
        == res["Initialise the repository"]["repository_id"]
    )
    assert res["Initialise the repository"]["repository_version"] == 2
    assert res["Initialise the repository"]["restic_version"].startswith("0.")

    # check-mode backup made no snapshot
    assert res["Back up in check mode"]["snapshot_id"] == ""
    assert res["Back up in check mode"]["summary"]["total_files_processed"] == 7
    assert res["Snapshots after the check-mode backup"]["count"] == 0

    full, c001 = res["Back up the whole tree"], res["Back up client C001 only"]
    assert len(full["snapshot_id"]) == 64 and full["summary"]["total_files_processed"] == 7
    listed = json.loads(restic(host["repo"], password_file, "snapshots", "--json", env=host["env"]).stdout)
    assert sorted(s["id"] for s in listed) == sorted([full["snapshot_id"], c001["snapshot_id"]])

    # filters (the S3 run does the core path only; filtering happens after restic has answered, on any backend)
    every_case = backend == "local"
    assert [s["id"] for s in res["Filter by tags"]["snapshots"]] == [c001["snapshot_id"]]
    assert res["Which snapshots contain a C001 file"]["containing"] == [full["snapshot_id"], c001["snapshot_id"]]
    if every_case:
        assert [s["id"] for s in res["Filter by host"]["snapshots"]] == [full["snapshot_id"]]
        assert [s["id"] for s in res["Filter by path"]["snapshots"]] == [c001["snapshot_id"]]
        before, after = (
            res["Filter by time, before the C001 backup"],
            res["Filter by time, at or after the C001 backup"],
        )
        assert [s["id"] for s in before["snapshots"]] == [full["snapshot_id"]]
        assert [s["id"] for s in after["snapshots"]] == [c001["snapshot_id"]]
        assert res["Which snapshots contain the C002 directory"]["containing"] == [full["snapshot_id"]]

    # check
    checks = ["Check the repository, rolling part 1 of 2"] + (
        ["Check the repository, 50 percent of the data"] * every_case
    )
    for name in checks:
        assert res[name]["ok"] is True and res[name]["errors"] == [] and res[name]["changed"] is False
    assert res["Check the repository, rolling part 1 of 2"]["read_data"] == "1/2"

    # check-mode restore wrote nothing
    assert res["Restore the whole snapshot in check mode"]["changed"] is True
    assert res["Restore the whole snapshot in check mode"]["comparison"]["missing"] > 0

    # whole restore: byte-identical at target/<path as in the snapshot>
    whole = res["Restore the whole snapshot"]
    landed = work / "whole" / str(src).lstrip("/")
    assert whole["changed"] is True and whole["verified"] is True
    assert whole["files"] == 7 and whole["bytes"] == sum(
        p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert whole["restored_paths"] == [{"path": str(src), "snapshot_path": str(src), "restored_to": str(landed)}]
    assert sha256_tree(landed) == sha256_tree(src)
    assert res["Restore the whole snapshot again"]["changed"] is False
    assert res["Restore the whole snapshot again"]["comparison"]["content_checked"] is True

    # sub-path restore: C001 lands once under target, C002 does not come along
    sub = res["Restore only C001 from the full snapshot"]
    sub_root = work / "sub" / str(src).lstrip("/")
    assert sub["restored_paths"] == [
        {"path": str(src / "C001"), "snapshot_path": str(src / "C001"), "restored_to": str(sub_root / "C001")}
    ]
    assert sha256_tree(sub_root / "C001") == sha256_tree(src / "C001")
    assert not (sub_root / "C002").exists()
    assert not (sub_root / str(src).lstrip("/")).exists()  # never target/srv/ledgers/srv/ledgers/...
    assert sub["files"] == 3
    assert res["Restore only C001 again"]["changed"] is False

    assert_no_secret_in_artifacts(
        flow["base"] / "runner", password_file.read_text().strip(), "ledgerguard-demo-secret-key"
    )
    if not every_case:
        return

    latest = res["Restore the latest snapshot of ledger-host"]
    assert latest["snapshot_id"] == full["snapshot_id"]
    assert (work / "latest" / str(src).lstrip("/") / "C002" / "notes.txt").read_text() == "客户备注\n"
    assert [p.name for p in (work / "latest" / str(src).lstrip("/") / "C002").iterdir()] == ["notes.txt"]

    # a damaged target: check mode reports and writes nothing, a real run repairs, the next run changes nothing
    damaged = landed / "C001" / "ledger.sqlite"
    original = damaged.read_bytes()
    corrupt = bytes([original[0] ^ 0xFF]) + original[1:]
    damaged.write_bytes(corrupt)
    (landed / "C002" / "notes.txt").unlink()
    runner = run_playbook(
        PlaybookRun(
            playbook=str(PLAYBOOKS / "restic_restore_repair.yml"),
            private_data_dir=flow["base"] / "runner-repair",
            inventory=flow["inventory"],
            limit=backend,
            extravars={"snapshot": full["snapshot_id"], "target": str(work / "whole"), "damaged": str(damaged)},
        )
    )
    res = task_results(runner)
    assert runner.rc == 0, {k: v.get("msg") for k, v in res.items() if v["_failed"]}
    check = res["Restore in check mode"]
    assert check["changed"] is True and check["comparison"]["missing"] == 1
    assert (
        res["Read the damaged file after the check-mode run"]["stat"]["checksum"] == hashlib.sha256(corrupt).hexdigest()
    )
    assert res["Restore for real"]["changed"] is True
    assert sha256_tree(landed) == sha256_tree(src)
    assert res["Restore once more"]["changed"] is False


# ----------------------------------------------------------------------------------------------------------------------
# Each error class, produced for real


@pytest.fixture
def held_lock(local_repo, restic_password_file, tmp_path):
    """A real restic process holding a lock on local_repo: a backup reading stdin that never ends."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "LC_ALL": "C",
        "RESTIC_REPOSITORY": local_repo,
        "RESTIC_PASSWORD_FILE": str(restic_password_file),
    }
    proc = subprocess.Popen(
        ["restic", "backup", "--stdin", "--stdin-filename", "held.txt"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    locks = Path(local_repo) / "locks"
    for _attempt in range(100):
        if locks.exists() and any(locks.iterdir()):
            break
        proc.wait(timeout=0.1) if proc.poll() is not None else __import__("time").sleep(0.1)
    assert any(locks.iterdir()), "restic did not take its lock"
    yield proc
    # restic 0.14 exits on TERM; restic >= 0.17 first waits for its stdin to end, so close it too.
    proc.send_signal(signal.SIGTERM)
    proc.stdin.close()
    proc.wait(timeout=30)


@pytest.fixture
def immutable_dir(tmp_path):
    """A directory even root cannot write into (chattr +i); removed again afterwards."""
    path = tmp_path / "immutable"
    path.mkdir()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not available here")
    yield path
    subprocess.run(["chattr", "-i", str(path)], check=True)


def test_errors(
    tmp_path, playbook, localhost_inventory, local_repo, restic_password_file, restic_cmd, held_lock, immutable_dir
):
    src = make_tree(tmp_path / "data")
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "errhost", str(src))
    # a second, stopped S3 server: restic gets "connection refused" from its port
    stopped = EmbeddedS3(log_path=tmp_path / "moto-stopped.log").start()
    stopped.create_bucket("gone")
    stopped_url = stopped.restic_url("gone", "restic")
    stopped.stop()
    wrong = tmp_path / "wrong-password"
    wrong.write_text("this is not the password\n")
    wrong.chmod(0o600)
    loose = tmp_path / "loose-password"
    loose.write_text(restic_password_file.read_text())
    loose.chmod(0o644)
    inventory = localhost_inventory(
        {"ledgerguard_repository": local_repo, "ledgerguard_password_file": str(restic_password_file)}
    )
    extravars = {
        "wrong_password_file": str(wrong),
        "loose_password_file": str(loose),
        "missing_repo": str(tmp_path / "no-repo-here"),
        "held_repo": local_repo,
        "stopped_repo": stopped_url,
        "stopped_port": stopped.port,
        "denied_target": str(immutable_dir / "restore"),
        "work": str(tmp_path / "work"),
        "src": str(src),
    }
    runner = playbook(str(PLAYBOOKS / "restic_errors.yml"), inventory=inventory, extravars=extravars)
    res = task_results(runner)
    failed = {k: v for k, v in res.items() if v["_failed"]}
    msg = {k: v.get("msg", "") for k, v in failed.items()}
    kind = {k: v.get("error_kind") for k, v in failed.items()}
    assert runner.rc == 0, "the rescue blocks must catch every failure"

    assert kind["Wrong password"] == "wrong_password"
    assert msg["Wrong password"].startswith(f"Wrong password for restic repository {local_repo}:")
    assert "ledgerguard_password_file" in msg["Wrong password"]

    assert kind["Repository missing"] == "repo_missing"
    assert f"There is no restic repository at {extravars['missing_repo']}" in msg["Repository missing"]
    assert "init: true" in msg["Repository missing"]

    assert kind["Repository locked"] == "locked"
    assert (
        f"Restic repository {local_repo} is locked by restic PID {held_lock.pid} on host " in msg["Repository locked"]
    )
    assert "lock created at" in msg["Repository locked"] and "restic unlock" in msg["Repository locked"]
    assert failed["Repository locked"]["error_details"]["lock"]["pid"] == held_lock.pid

    assert kind["Backend unreachable"] == "unreachable"
    assert (
        f"Cannot reach the backend of restic repository {stopped_url}: "
        f"127.0.0.1:{stopped.port} (connect: connection refused)" in msg["Backend unreachable"]
    )

    assert kind["Snapshot not found"] == "snapshot_not_found"
    assert msg["Snapshot not found"].startswith(f"Snapshot 'deadbeef' was not found in restic repository {local_repo}")

    assert kind["Target without permission"] == "permission_denied"
    assert msg["Target without permission"].startswith(
        f"Permission denied writing to the restore target {extravars['denied_target']}"
    )
    assert not (immutable_dir / "restore").exists()

    assert kind["Path not in snapshot"] == "path_not_in_snapshot"
    assert msg["Path not in snapshot"].startswith("/srv/elsewhere is not in snapshot")
    assert str(src) in msg["Path not in snapshot"] and "snapshot_path" in msg["Path not in snapshot"]

    assert "has no timezone" in msg["Naive timestamp"] and "2026-03-01T09:30:00+08:00" in msg["Naive timestamp"]

    assert "embeds credentials" in msg["Credentials in the URL"]
    assert "hunter2" not in json.dumps(failed["Credentials in the URL"])

    assert "readable by group or others" in msg["Password file readable by others"]
    assert "chmod 600" in msg["Password file readable by others"]

    assert "read_data_subset '0/7' is not valid" in msg["Bad read_data_subset"]

    assert_no_secret_in_artifacts(tmp_path / "runner", restic_password_file.read_text().strip(), "hunter2")


def test_out_of_space(tmp_path, playbook, localhost_inventory, local_repo, restic_password_file, restic_cmd):
    """Restoring 3 MiB into a 1 MiB tmpfs (needs root to mount it)."""
    src = make_tree(tmp_path / "data")
    restic_cmd(local_repo, restic_password_file, "backup", str(src))
    snapshot_id = json.loads(restic_cmd(local_repo, restic_password_file, "snapshots", "--json").stdout)[0]["id"]
    small = tmp_path / "small"
    small.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=False).returncode
    ):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        inventory = localhost_inventory(
            {"ledgerguard_repository": local_repo, "ledgerguard_password_file": str(restic_password_file)}
        )
        runner = playbook(
            str(PLAYBOOKS / "restic_no_space.yml"),
            inventory=inventory,
            extravars={"small_target": str(small), "snapshot_id": snapshot_id},
        )
        res = task_results(runner)
        failed = res["Target out of space"]
        assert failed["_failed"] and failed["error_kind"] == "no_space"
        # the module measures before restic writes anything: 3 MiB of files against a 1 MiB filesystem
        assert failed["msg"].startswith(
            f"Out of space on the restore target {small} while trying to restore into {small}"
        )
        assert "no space left on device" in failed["msg"] and "Nothing was restored." in failed["msg"]
        assert failed["error_details"]["needed_bytes"] > failed["error_details"]["free_bytes"]
        # the second case only takes restic's own path because the first left the target empty
        during = res["Target runs out of space during the restore"]
        assert during["_failed"] and during["error_kind"] == "no_space"
        assert during["msg"].startswith(
            f"Out of space on the restore target {small} while trying to restore into {small} from restic repository "
            f"{local_repo} (restic says: "
        )
        assert "no space left on device" in during["msg"] and "The files restored so far are still in" in during["msg"]
    finally:
        subprocess.run(["umount", str(small)], check=True)
    shutil.rmtree(small)


def test_secret_never_in_argv_or_result(tmp_path, local_repo, restic_password_file):
    """The module runs restic with the password in a 0600 temp file that is gone afterwards."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import PasswordFile, Restic

    seen = {}

    def spy(argv, env, timeout=None, cwd=None, **_):
        from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import subprocess_run

        path = env["RESTIC_PASSWORD_FILE"]
        seen["mode"] = os.stat(path).st_mode & 0o777
        seen["argv"] = list(argv)
        seen["path"] = path
        return subprocess_run(argv, env, timeout, cwd)

    password = restic_password_file.read_text()
    with PasswordFile(password=password, directory=str(tmp_path)) as pw:
        restic = Restic("restic", local_repo, pw.path, run=spy)
        assert restic.snapshots() == []
    assert seen["mode"] == 0o600
    assert not Path(seen["path"]).exists()
    assert all(password.strip() not in arg for arg in seen["argv"])
