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
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import damage_pack, restic, write_password_file
from ledgerguard.runner import PlaybookRun, project_env, run_playbook, tool_path

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
        # beside the repository: the lock test's repositories are copies of one, with one repository ID
        "RESTIC_CACHE_DIR": repo + "-cache",
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


def results_by_host(runner) -> dict[str, dict[str, dict]]:
    """Each host's task results by task name (one run, several hosts: one per case)."""
    out: dict[str, dict[str, dict]] = {}
    for ev in runner.events:
        if ev.get("event") in ("runner_on_ok", "runner_on_failed"):
            data = ev["event_data"]
            out.setdefault(data["host"], {})[data["task"]] = data["res"]
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Stale lock vs live lock
# ----------------------------------------------------------------------------------------------------------------------


def test_live_lock_is_never_broken_stale_lock_removed_only_when_provably_stale(
    tmp_path, playbook, localhost_inventory, local_repo, restic_password_file
):
    """Four lock states, each in its own copy of one empty repository (a host of the inventory each, one run): a
    live lock, a stale but young one, a stale one old enough, a stale one held from another host."""
    repos = {}
    for case in ("live", "young", "old", "foreign"):
        repos[case] = str(tmp_path / f"repo-{case}")
        shutil.copytree(local_repo, repos[case], symlinks=True)
    locks = {case: Path(repo) / "locks" for case, repo in repos.items()}
    me = socket.gethostname()

    # A live lock (its holder runs until the run is over).
    live = hold_lock(repos["live"], restic_password_file)
    try:
        # Holders killed with SIGKILL: restic could not remove their locks, which are now stale.
        gone = {}
        for case in ("young", "old", "foreign"):
            holder = hold_lock(
                repos[case], restic_password_file, other_host="books-elsewhere" if case == "foreign" else None
            )
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
            gone[case] = holder.pid
        for case in repos:
            assert len(list(locks[case].iterdir())) == 1, case
        time.sleep(2.5)  # every lock is now more than 2 s old
        hostvars = {"young": 3600, "old": 2, "live": 1, "foreign": 1}
        inventory = localhost_inventory(
            {"ledgerguard_password_file": str(restic_password_file)},
            hosts={
                case: {"ledgerguard_repository": repos[case], "stale_lock_age": age} for case, age in hostvars.items()
            },
        )
        res = results_by_host(playbook(str(RELIABILITY / "check_locked.yml"), inventory=inventory))
        # 1. The live lock: the exclusive check stops, names the holder, and the lock stays.
        failed = res["live"]["Check the repository"]
        assert failed["error_kind"] == "locked"
        assert f"is locked by restic PID {live.pid} on host {me}" in failed["msg"]
        assert "stale_locks_removed" not in failed
        assert live.poll() is None, "the holder must not be disturbed"
        assert len(list(locks["live"].iterdir())) == 1
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait(timeout=10)

    # 2. Its holder gone but the lock young: kept.
    young = res["young"]["Check the repository"]
    assert young["error_kind"] == "locked" and f"PID {gone['young']}" in young["msg"]
    assert len(list(locks["young"].iterdir())) == 1, "a young lock is never removed"

    # 3. Old enough and its holder provably gone: removed, recorded, and the check runs.
    ok = res["old"]["Check the repository"]
    assert "error_kind" not in ok, ok.get("msg")
    assert ok["ok"] is True
    [removed] = ok["stale_locks_removed"]
    assert removed["pid"] == gone["old"] and removed["host"] == me and removed["age_seconds"] >= 2
    assert removed["why"].startswith(f"holder PID {gone['old']} no longer runs on {me}")
    assert any("Removed a stale restic lock" in w for w in ok.get("warnings", []))
    assert list(locks["old"].iterdir()) == []

    # 4. A lock held from another host (its PID means nothing here) is never removed, however old.
    foreign = res["foreign"]["Check the repository"]
    assert foreign["error_kind"] == "locked"
    assert "on host books-elsewhere" in foreign["msg"]
    assert len(list(locks["foreign"].iterdir())) == 1


# ----------------------------------------------------------------------------------------------------------------------
# Two restores from one repository at the same time, to two hosts
# ----------------------------------------------------------------------------------------------------------------------


def test_two_concurrent_restores_from_one_repository(tmp_path, local_repo, restic_password_file, restic_cmd):
    data = make_data(tmp_path / "data", files=60, size=200_000)
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "books01", str(data))
    env = {k: v for k, v in os.environ.items() if "PASSWORD" not in k and "SECRET" not in k}
    env.update(project_env())
    env["PATH"] = tool_path(env.get("PATH"))
    # One playbook, two hosts (one per restore target): Ansible runs the task on both at once.
    inv = tmp_path / "inventory.json"
    hosts = {
        host: {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "ledgerguard_repository": local_repo,
            "ledgerguard_password_file": str(restic_password_file),
            "target": str(tmp_path / host),
        }
        for host in ("books-a", "books-b")
    }
    inv.write_text(json.dumps({"all": {"hosts": hosts}}))
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv), str(RELIABILITY / "restore_one.yml")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Both restics run at the same moment (sampled from the process table). On a loaded machine one host's worker may
    # reach its restore seconds after the other's, so the first restic seen is paused (SIGSTOP) until the second
    # appears (at most 300 s), then resumed: the two really hold the repository at once. Once both were seen, nothing
    # is paused (before, the one still running when the other ended was paused and waited out the 300 s).
    overlap = 0
    paused: int | None = None
    done_pausing = False
    deadline = time.monotonic() + 300
    while proc.poll() is None:
        running = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                args = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if args[0].endswith(b"restic") and b"restore" in args and any(str(tmp_path).encode() in a for a in args):
                running.append(int(cmdline.parent.name))
        overlap = max(overlap, len(running))
        if len(running) == 1 and overlap < 2 and paused is None and not done_pausing and running[0] > 1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(running[0], signal.SIGSTOP)
                paused = running[0]
        if paused is not None and (len(running) >= 2 or time.monotonic() >= deadline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(paused, signal.SIGCONT)
            paused, done_pausing = None, True
        time.sleep(0.05)
    output = proc.communicate()[0]
    assert proc.returncode == 0, output
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


def two_snapshots(base: Path, password_file: Path, new_file: str, new_size: int) -> dict:
    """A repository of its own with two snapshots of the same data, the second with one new file; returns the case
    (repository, data, snapshots, the packs the second snapshot added, biggest first)."""
    repo = str(base / "repo")
    restic(repo, password_file, "init")
    data = make_data(base / "data", files=6, size=30_000)
    restic(repo, password_file, "backup", "--host", "books01", str(data))
    old_tree = tree(data)
    packs_before = set(p for p in (Path(repo) / "data").rglob("*") if p.is_file())
    (data / new_file).write_bytes(os.urandom(new_size))
    restic(repo, password_file, "backup", "--host", "books01", str(data))
    snaps = json.loads(restic(repo, password_file, "snapshots", "--json").stdout)
    return {
        "repo": repo,
        "data": data,
        "old_tree": old_tree,
        "snaps": snaps,
        "old_id": snaps[0]["id"],
        "new_id": snaps[1]["id"],
        "new_packs": new_packs(repo, packs_before),
    }


@pytest.fixture(scope="module")
def pack_faults(tmp_path_factory):
    """The lost-pack cases, each a host with its own repository, in one run of repository_faults.yml: a data pack
    deleted, a data pack corrupted (pack_fault.yml), the pack of a snapshot's trees deleted (tree_pack_fault.yml)."""
    base = tmp_path_factory.mktemp("pack-faults")
    password_file = write_password_file(base / "restic-password")
    cases = {}
    for fault in ("deleted", "corrupted"):
        case = two_snapshots(base / fault, password_file, "c000/新增-2026-11.csv", 3 * 1024 * 1024)
        victim = case["victim"] = case["new_packs"][0]  # the biggest new pack: the new file's data
        damage_pack(victim, fault)
        case["vars"] = {
            "new_id": case["new_id"],
            "old_id": case["old_id"],
            "new_target": str(base / fault / "restore-new"),
            "old_target": str(base / fault / "restore-old"),
            "read_data": fault == "corrupted",
        }
        cases[fault] = case
    case = cases["tree"] = two_snapshots(base / "tree", password_file, "c001/新增-2026-11.csv", 200_000)
    case["victim"] = case["new_packs"][-1]  # the smallest new pack: the new snapshot's trees
    case["blobs"] = restic(case["repo"], password_file, "list", "blobs").stdout
    case["victim"].unlink()
    case["vars"] = {"data_path": str(case["data"]), "cache_dir": str(base / "tree" / "empty-cache")}

    def host(case: dict) -> dict:
        return {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "ledgerguard_repository": case["repo"],
            "ledgerguard_password_file": str(password_file),
            **case["vars"],
        }

    inventory = base / "inventory.json"
    groups = {
        "pack_fault": {"hosts": {fault: host(cases[fault]) for fault in ("deleted", "corrupted")}},
        "tree_pack": {"hosts": {"tree": host(cases["tree"])}},
    }
    inventory.write_text(json.dumps({"all": {"children": groups}}, ensure_ascii=False), encoding="utf-8")
    runner = run_playbook(
        PlaybookRun(
            playbook=str(RELIABILITY / "repository_faults.yml"), private_data_dir=base / "runner", inventory=inventory
        )
    )
    results = results_by_host(runner)
    for name, case in cases.items():
        case["res"] = results[name]
    return cases


@pytest.mark.parametrize("fault", ["deleted", "corrupted"])
def test_lost_pack_found_by_verification_and_restore_fails_clearly(fault, pack_faults):
    case = pack_faults[fault]
    res, victim, data, local_repo = case["res"], case["victim"], case["data"], case["repo"]
    new_id = case["new_id"]
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
    assert tree(Path(case["vars"]["old_target"]) / str(data).lstrip("/")) == case["old_tree"]


def test_lost_tree_pack_makes_the_snapshot_unusable_and_the_older_one_is_assessed(pack_faults):
    case = pack_faults["tree"]
    res, victim, snaps, local_repo = case["res"], case["victim"], case["snaps"], case["repo"]
    old_id, new_id = case["old_id"], case["new_id"]
    assert f"tree {snaps[1]['tree']}" in case["blobs"]
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
