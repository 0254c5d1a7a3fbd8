"""Reliability of the repository side (issue 7): stale and live restic locks, concurrent restores, lost packs.

Real restic processes hold the locks (a backup reading a pipe that never ends, killed with SIGKILL to leave a stale
lock; one run in its own UTS namespace to hold a lock "from another host"). The modules run through real playbooks.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledgerguard.runner import project_env, tool_path

RELIABILITY = Path(__file__).resolve().parent / "reliability"


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make_data(root: Path, files: int = 20, size: int = 40_000) -> Path:
    for i in range(files):
        path = root / f"c{i % 3:03d}" / f"凭证-{i:04d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size) + f"row {i}\n".encode())
    return root


def restic_env(repo: str, password_file: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "LC_ALL": "C",
        "RESTIC_REPOSITORY": repo,
        "RESTIC_PASSWORD_FILE": str(password_file),
    }


def hold_lock(repo: str, password_file: Path, other_host: str | None = None) -> subprocess.Popen:
    """A real restic process holding a (non-exclusive) lock: a backup reading a pipe that never ends. Returns once
    the lock file is there AND readable (restic cat lock): a lock file that exists but is not written yet, when its
    holder is killed at once, is an invalid lock that newer restic ignores (seen with restic 0.18 under load)."""
    argv = ["restic", "backup", "--stdin", "--stdin-filename", "held.txt"]
    if other_host:
        argv = ["unshare", "--uts", "sh", "-c", f'hostname {other_host} && exec "$@"', "sh", *argv]
    before = set((Path(repo) / "locks").iterdir())
    env = restic_env(repo, password_file)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    for _attempt in range(400):
        for lock in set((Path(repo) / "locks").iterdir()) - before:
            cat = subprocess.run(
                ["restic", "--no-lock", "cat", "lock", lock.name], env=env, capture_output=True, check=False
            )
            if cat.returncode == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("restic did not take its lock")


def run_module_play(playbook, inventory, name: str, **extravars):
    runner = playbook(str(RELIABILITY / name), inventory=inventory, extravars=extravars)
    out = {}
    for ev in runner.events:
        if ev.get("event") in ("runner_on_ok", "runner_on_failed"):
            out[ev["event_data"]["task"]] = ev["event_data"]["res"]
    return runner, out


# ----------------------------------------------------------------------------------------------------------------------
# Stale lock vs live lock
# ----------------------------------------------------------------------------------------------------------------------


def test_live_lock_is_never_broken_stale_lock_removed_only_when_provably_stale(
    tmp_path, playbook, localhost_inventory, local_repo, restic_password_file
):
    locks = Path(local_repo) / "locks"
    inventory = localhost_inventory(
        {"ledgerguard_repository": local_repo, "ledgerguard_password_file": str(restic_password_file)}
    )
    me = socket.gethostname()

    # 1. A live lock (its holder runs): the exclusive check stops, names the holder, and the lock stays.
    live = hold_lock(local_repo, restic_password_file)
    try:
        _runner, res = run_module_play(playbook, inventory, "check_locked.yml", stale_lock_age=1)
        failed = res["Check the repository"]
        assert failed["error_kind"] == "locked"
        assert f"is locked by restic PID {live.pid} on host {me}" in failed["msg"]
        assert "stale_locks_removed" not in failed
        assert live.poll() is None, "the holder must not be disturbed"
        assert len(list(locks.iterdir())) == 1
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait(timeout=10)
    # The holder is gone (SIGKILL: restic could not remove its lock). The lock is now stale but young.
    assert len(list(locks.iterdir())) == 1
    _runner, res = run_module_play(playbook, inventory, "check_locked.yml", stale_lock_age=3600)
    young = res["Check the repository"]
    assert young["error_kind"] == "locked" and f"PID {live.pid}" in young["msg"]
    assert len(list(locks.iterdir())) == 1, "a young lock is never removed"

    # 2. Old enough and its holder provably gone: removed, recorded, and the check runs.
    time.sleep(2.5)
    runner, res = run_module_play(playbook, inventory, "check_locked.yml", stale_lock_age=2)
    ok = res["Check the repository"]
    assert "error_kind" not in ok, ok.get("msg")
    assert ok["ok"] is True
    [removed] = ok["stale_locks_removed"]
    assert removed["pid"] == live.pid and removed["host"] == me and removed["age_seconds"] >= 2
    assert removed["why"].startswith(f"holder PID {live.pid} no longer runs on {me}")
    assert any("Removed a stale restic lock" in w for w in ok.get("warnings", []))
    assert list(locks.iterdir()) == []

    # 3. A lock held from another host (its PID means nothing here) is never removed, however old.
    other = hold_lock(local_repo, restic_password_file, other_host="books-elsewhere")
    other.send_signal(signal.SIGKILL)
    other.wait(timeout=10)
    time.sleep(2.5)
    _runner, res = run_module_play(playbook, inventory, "check_locked.yml", stale_lock_age=1)
    foreign = res["Check the repository"]
    assert foreign["error_kind"] == "locked"
    assert "on host books-elsewhere" in foreign["msg"]
    assert len(list(locks.iterdir())) == 1


# ----------------------------------------------------------------------------------------------------------------------
# Two restores from one repository at the same time, to two hosts
# ----------------------------------------------------------------------------------------------------------------------


def test_two_concurrent_restores_from_one_repository(tmp_path, local_repo, restic_password_file, restic_cmd):
    data = make_data(tmp_path / "data", files=60, size=200_000)
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "books01", str(data))
    env = {k: v for k, v in os.environ.items() if "PASSWORD" not in k and "SECRET" not in k}
    env.update(project_env())
    env["PATH"] = tool_path(env.get("PATH"))
    procs = {}
    for host in ("books-a", "books-b"):
        inv = tmp_path / f"{host}.json"
        inv.write_text(
            json.dumps(
                {
                    "all": {
                        "hosts": {
                            host: {
                                "ansible_connection": "local",
                                "ansible_python_interpreter": sys.executable,
                                "ledgerguard_repository": local_repo,
                                "ledgerguard_password_file": str(restic_password_file),
                                "target": str(tmp_path / host),
                            }
                        }
                    }
                }
            )
        )
        procs[host] = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                "-i",
                str(inv),
                str(RELIABILITY / "restore_one.yml"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    # Both restics run at the same moment (sampled from the process table). On a loaded machine one playbook may
    # reach its restore seconds after the other, so the first restic seen is paused (SIGSTOP) until the second
    # appears (at most 300 s), then resumed: the two really hold the repository at once.
    overlap = 0
    paused: int | None = None
    done_pausing = False
    deadline = time.monotonic() + 300
    while any(p.poll() is None for p in procs.values()):
        running = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                args = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if args[0].endswith(b"restic") and b"restore" in args and any(str(tmp_path).encode() in a for a in args):
                running.append(int(cmdline.parent.name))
        overlap = max(overlap, len(running))
        if len(running) == 1 and paused is None and not done_pausing and running[0] > 1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(running[0], signal.SIGSTOP)
                paused = running[0]
        if paused is not None and (len(running) >= 2 or time.monotonic() >= deadline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(paused, signal.SIGCONT)
            paused, done_pausing = None, True
        time.sleep(0.05)
    outputs = {h: p.communicate()[0] for h, p in procs.items()}
    for host, proc in procs.items():
        assert proc.returncode == 0, outputs[host]
    assert overlap == 2, "the two restores did not run at the same time"
    for host in ("books-a", "books-b"):
        assert tree(tmp_path / host / str(data).lstrip("/")) == tree(data)


# ----------------------------------------------------------------------------------------------------------------------
# A pack file lost or corrupted
# ----------------------------------------------------------------------------------------------------------------------


def new_packs(repo: str, before: set[Path]) -> list[Path]:
    return sorted(
        (p for p in (Path(repo) / "data").rglob("*") if p.is_file() and p not in before),
        key=lambda p: -p.stat().st_size,
    )


@pytest.mark.parametrize("fault", ["deleted", "corrupted"])
def test_lost_pack_found_by_verification_and_restore_fails_clearly(
    tmp_path, fault, playbook, localhost_inventory, local_repo, restic_password_file, restic_cmd
):
    data = make_data(tmp_path / "data", files=6, size=30_000)
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "books01", str(data))
    old_tree = tree(data)
    packs_before = set(p for p in (Path(local_repo) / "data").rglob("*") if p.is_file())
    (data / "c000" / "新增-2026-11.csv").write_bytes(os.urandom(3 * 1024 * 1024))
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "books01", str(data))
    snaps = json.loads(restic_cmd(local_repo, restic_password_file, "snapshots", "--json").stdout)
    old_id, new_id = snaps[0]["id"], snaps[1]["id"]
    victim = new_packs(local_repo, packs_before)[0]  # the biggest new pack: the new file's data
    if fault == "deleted":
        victim.unlink()
    else:
        victim.chmod(0o644)
        raw = bytearray(victim.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        victim.write_bytes(bytes(raw))
    inventory = localhost_inventory(
        {"ledgerguard_repository": local_repo, "ledgerguard_password_file": str(restic_password_file)}
    )
    runner, res = run_module_play(
        playbook,
        inventory,
        "pack_fault.yml",
        new_id=new_id,
        old_id=old_id,
        new_target=str(tmp_path / "restore-new"),
        old_target=str(tmp_path / "restore-old"),
        read_data=fault == "corrupted",
    )
    check = res["Verify the repository"]
    assert check["ok"] is False
    assert any(victim.name in e for e in check["errors"]), check["errors"]
    # The check names the lost pack, and restic find --pack (from the index, even with the pack file gone) names the
    # one snapshot that needs it.
    assert [p["id"] for p in check["lost_packs"]] == [victim.name]
    assert check["located"] is True and check["locate_errors"] == []
    [needs] = check["damaged_snapshots"]
    assert needs["id"] == new_id and needs["packs"] == [victim.name]
    assert needs["paths"] == [str(data / "c000" / "新增-2026-11.csv")]
    assert needs["reasons"][0].startswith(f"needs pack {victim.name}, which the repository lost (1 file(s) of it")
    new = res["Restore the snapshot that needs the pack"]
    assert new["error_kind"] == "repository_damaged", new
    assert new["msg"].startswith(f"Snapshot {new_id[:8]} cannot be restored from restic repository {local_repo}:")
    assert "Run restic check" in new["msg"]
    old = res["Restore the older snapshot"]
    assert not old.get("failed"), old.get("msg")
    assert tree(tmp_path / "restore-old" / str(data).lstrip("/")) == old_tree


def test_lost_tree_pack_makes_the_snapshot_unusable_and_the_older_one_is_assessed(
    tmp_path, playbook, localhost_inventory, local_repo, restic_password_file, restic_cmd
):
    data = make_data(tmp_path / "data", files=6, size=30_000)
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "books01", str(data))
    packs_before = set(p for p in (Path(local_repo) / "data").rglob("*") if p.is_file())
    (data / "c001" / "新增-2026-11.csv").write_bytes(os.urandom(200_000))
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "books01", str(data))
    snaps = json.loads(restic_cmd(local_repo, restic_password_file, "snapshots", "--json").stdout)
    old_id, new_id = snaps[0]["id"], snaps[1]["id"]
    victim = new_packs(local_repo, packs_before)[-1]  # the smallest new pack: the new snapshot's trees
    blobs = restic_cmd(local_repo, restic_password_file, "list", "blobs").stdout
    victim.unlink()
    assert f"tree {snaps[1]['tree']}" in blobs
    inventory = localhost_inventory(
        {"ledgerguard_repository": local_repo, "ledgerguard_password_file": str(restic_password_file)}
    )
    _runner, res = run_module_play(
        playbook, inventory, "tree_pack_fault.yml", data_path=str(data), cache_dir=str(tmp_path / "empty-cache")
    )
    check = res["Check the repository and locate the snapshots that need lost packs"]
    assert check["ok"] is False
    [lost] = check["lost_packs"]
    assert lost["id"] == victim.name and snaps[1]["tree"][:8] in lost["trees"]
    [needs] = check["damaged_snapshots"]
    assert needs["id"] == new_id
    assert f"its root tree {snaps[1]['tree'][:8]} is in that pack" in needs["reasons"][0]
    damage = res["Assess the snapshots of the data"]
    assert not damage.get("failed"), damage.get("msg")
    newest, older = damage["snapshots"]
    assert newest["id"] == new_id and newest["unusable"] is True and newest["clean"] is False
    assert newest["lost_packs"] == [victim.name]
    assert newest["reasons"][0].startswith(
        # the first read of the snapshot is its layout (Restic.layout: the top of its tree), so that is what fails
        f"restic could not list the top of the snapshot's tree in restic repository {local_repo}: pack {victim.name}, "
        f"which snapshot {new_id[:8]} needs, is missing from the repository"
    )
    assert older["id"] == old_id and older["clean"] is True and older["unusable"] is False
    assert damage["clean"] == [old_id]


def test_stale_lock_rules_without_a_repository():
    """The rule itself, with restic's real message replayed: unlock only for a gone PID of this host, old enough."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".collections"))
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import Restic

    me = socket.gethostname()
    dead = 4_000_000  # above pid_max: no such process
    cases = [
        (me, dead, "1h2m3.5s", 1800, True),  # provably stale
        (me, dead, "5m0s", 1800, False),  # too young
        (me, os.getpid(), "2h0m0s", 1800, False),  # holder alive
        ("books-elsewhere", dead, "9h0m0s", 1800, False),  # another host: its PID means nothing here
        (me, dead, "9h0m0s", 0, False),  # removal switched off
    ]
    for host, pid, age, threshold, removed in cases:
        calls = []
        locked = (
            f"unable to create lock in backend: repository is already locked by PID {pid} on {host} by root "
            f"(UID 0, GID 0)\nlock was created at 2026-11-26 10:00:00 ({age} ago)\nstorage ID 0123abcd\n"
        )

        run = functools.partial(_fake_locked_restic, calls, locked)
        restic = Restic("restic", "/srv/repo", "/dev/null", run=run, stale_lock_age=threshold)
        result = restic.run("check")
        assert (calls == ["check", "unlock", "check"]) is removed, (host, pid, age, calls)
        assert (result.rc == 0) is removed
        assert bool(restic.removed_locks) is removed
        if removed:
            assert restic.removed_locks[0]["pid"] == dead and restic.removed_locks[0]["age_seconds"] == 3723


def _fake_locked_restic(calls, locked, argv, env, timeout=None, cwd=None):
    """A restic stand-in for the stale-lock decision: 'check' is locked until 'unlock' has run."""
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import ResticResult

    del env, timeout, cwd
    calls.append(argv[1])
    if argv[1] == "unlock":
        return ResticResult(argv, 0, "successfully removed locks\n", "")
    if argv[1] == "check" and "unlock" not in calls:
        return ResticResult(argv, 1, "", locked)
    return ResticResult(argv, 0, "no errors were found\n", "")
