"""Many hosts (issue 7): one host becomes unreachable in the middle of an incident; an incident across 20 hosts.

Each inventory host is this machine on the local connection with its own books folder, its own state folder (freeze
registry, incident lock, watchdog) and its own frozen target (readonly_bind of its client folder), and its own
snapshots in one shared repository (restic --host). Real playbooks, real restic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import UserPids, proc_stat
from ledgerguard import sampledata
from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

RESULTS = Path(__file__).resolve().parent / "reliability"


# The first task after every host froze: state_snapshot's argument-spec check (on the controller; the linear strategy
# starts it once the freeze and its rollback check ran on every host).
AFTER_FREEZE_TASK = (
    "Validating arguments against arg spec 'main' - Back up the damaged state and collect the host's state bundle into "
    "the evidence folder"
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def try_write(folder: Path) -> int:
    try:
        (folder / ".probe").write_text("x")
        (folder / ".probe").unlink()
    except OSError as exc:
        return exc.errno
    return 0


class Fleet:
    """N local hosts, one client each, snapshots of every host in one local restic repository."""

    def __init__(self, base: Path, count: int, password_file: Path, repo: str):
        self.base = base
        self.repo = repo
        self.password_file = password_file
        self.hosts = [f"books{n:02d}" for n in range(1, count + 1)]
        self.clients: dict[str, dict] = {}
        for n, host in enumerate(self.hosts, start=1):
            info = sampledata.make_client_tree(
                self.books(host), "c001", f"客户{n:02d}贸易有限公司", periods=("2026-10",), vouchers_per_period=6,
                pdfs=1, seed=n,
            )  # fmt: skip
            self.clients[host] = dict(info["client"], priority=10)
        self.hostvars: dict[str, dict] = {h: {} for h in self.hosts}

    def books(self, host: str) -> Path:
        return self.base / host / "books"

    def state(self, host: str) -> Path:
        return self.base / host / "state"

    def root(self, host: str) -> Path:
        return self.books(host) / "c001"

    def restic_env(self) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "LC_ALL": "C",
            "RESTIC_REPOSITORY": self.repo,
            "RESTIC_PASSWORD_FILE": str(self.password_file),
        }

    def backup_all(self, when: dt.datetime, parallel: int = 5) -> None:
        stamp = when.strftime("%Y-%m-%d %H:%M:%S")
        for i in range(0, len(self.hosts), parallel):
            procs = [
                subprocess.Popen(
                    ["restic", "backup", "--host", h, "--time", stamp, str(self.books(h))],
                    env=self.restic_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                for h in self.hosts[i : i + parallel]
            ]
            for proc in procs:
                _out, err = proc.communicate()
                assert proc.returncode == 0, err

    def inventory(self) -> Path:
        hosts = {}
        for host in self.hosts:
            hosts[host] = {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "ledgerguard_clients": [self.clients[host]],
                "ledgerguard_state_dir": str(self.state(host)),
                **self.hostvars[host],
            }
        path = self.base / "inventory.json"
        path.write_text(json.dumps({"all": {"hosts": hosts}}, ensure_ascii=False), encoding="utf-8")
        return path

    def run(self, handler=None, forks: int | None = None, **extravars):
        evars = {
            "ledgerguard_repository": self.repo,
            "ledgerguard_password_file": str(self.password_file),
            "ledgerguard_evidence_dir": str(self.base / "evidence"),
            "incident_operator": "pytest",
            "incident_cause": "deleted",
            "state_snapshot_journal_lines": 20,
            **extravars,
        }
        run = PlaybookRun(
            playbook="incident_respond.yml",
            private_data_dir=self.base / "runner",
            inventory=str(self.inventory()),
            extravars=evars,
            forks=forks,
        )
        return run_playbook(run, event_handler=handler)

    def report(self) -> dict:
        [folder] = list((self.base / "evidence").glob("INC-*"))
        return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def damage(fleet: Fleet) -> dict[str, dict[str, str]]:
    clean = {h: tree(fleet.root(h)) for h in fleet.hosts}
    for host in fleet.hosts:
        (fleet.root(host) / "凭证" / "2026-10.csv").unlink()
    return clean


# ----------------------------------------------------------------------------------------------------------------------
# A host becomes unreachable in the middle of the run
# ----------------------------------------------------------------------------------------------------------------------


def test_host_unreachable_mid_run(tmp_path, local_repo, restic_password_file):
    fleet = Fleet(tmp_path, 3, restic_password_file, local_repo)
    lost = "books03"
    remote_tmp = tmp_path / lost / "remote-tmp"
    remote_tmp.mkdir()
    # The freeze's deadline per host (inventory variables): 150 s on the hosts that finish, so their watchdogs cannot
    # thaw them before the run's own thaw even on a loaded machine; 40 s on the host that drops out, so its watchdog
    # (which this test waits for) thaws it soon after the run instead of up to 150 s later.
    fleet.hostvars = {host: {"write_freeze_max_duration": 150} for host in fleet.hosts}
    # Its modules go through its temporary folder (no pipelining, which the tests turn on for their local hosts), so
    # replacing that folder by a file cuts it off.
    fleet.hostvars[lost] = {
        "ansible_remote_tmp": str(remote_tmp / "ansible"),
        "ansible_pipelining": False,
        "write_freeze_max_duration": 40,
    }
    fleet.backup_all(dt.datetime.now() - dt.timedelta(days=1))
    clean = damage(fleet)
    cut = {}

    def lose_the_host(event: dict) -> bool:
        # Once writes are frozen everywhere, books03 can no longer run modules: its temp folder becomes a file, which
        # Ansible reports as UNREACHABLE ("Failed to create temporary directory") for every later task there.
        data = event.get("event_data", {})
        # The first result of the first task after the freeze (writes stopped on every host).
        if event.get("event") == "runner_on_ok" and data.get("task") == AFTER_FREEZE_TASK and not cut:
            shutil.rmtree(remote_tmp)
            remote_tmp.write_text("not a folder any more\n")
            cut["at"] = time.time()
        return True

    try:
        runner = fleet.run(handler=lose_the_host)
        assert cut, "the host was never cut off"
        unreachable = {ev["event_data"]["host"] for ev in runner.events if ev.get("event") == "runner_on_unreachable"}
        assert unreachable == {lost}
        assert runner.rc != 0
        # The other hosts finished: restored byte for byte, thawed, their locks released.
        for host in ("books01", "books02"):
            assert tree(fleet.root(host)) == clean[host]
            assert try_write(fleet.root(host)) == 0
            assert not (fleet.state(host) / "incident.lock").exists()
        report = fleet.report()
        assert report["status"] == "partial"
        by_host = {(c["host"], c["id"]): c for c in report["clients"]}
        assert by_host[("books01", "c001")]["status"] == "ok" and by_host[("books02", "c001")]["status"] == "ok"
        assert by_host[(lost, "c001")]["status"] == "not_done"
        assert any(p.startswith(f"{lost}: not done: the host dropped out of the run") for p in report["problems"])
        [row] = [h for h in report["hosts"] if h["host"] == lost]
        assert row["not_done"] == ["c001"]
        # Nothing lost on the unreachable host: its damaged tree is as it was, and its watchdog thaws it.
        assert (fleet.root(lost) / "凭证" / "2026-10.csv").exists() is False
        # No thaw could reach it: its watchdog thaws it by the deadline (maybe already, on a slow machine).
        registry_path = next((fleet.state(lost) / "freeze").glob("INC-*.json"))
        registry = json.loads(registry_path.read_text())
        deadline = max([t["deadline"] for t in registry["targets"]] or [time.time()])
        while time.time() < deadline + 30 and try_write(fleet.root(lost)) != 0:
            time.sleep(1)
        assert try_write(fleet.root(lost)) == 0, "the watchdog did not thaw the unreachable host"
        registry = json.loads(registry_path.read_text())
        assert registry["targets"] == [] and [r["thawed_by"] for r in registry["released"]] == ["watchdog"]
        assert row["thawed"] is False  # the report does not claim a thaw it could not do
        assert dict(tree(fleet.root(lost))) == {k: v for k, v in clean[lost].items() if k != "凭证/2026-10.csv"}
    finally:
        if remote_tmp.is_file():
            remote_tmp.unlink()
        for point in [fleet.root(h) for h in fleet.hosts]:
            while str(point) in os.fsdecode(Path("/proc/self/mountinfo").read_bytes()):
                if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode:
                    break


# ----------------------------------------------------------------------------------------------------------------------
# Load: one incident across 20 hosts, forks 10
# ----------------------------------------------------------------------------------------------------------------------


class MemoryWatch(threading.Thread):
    """Peak total RSS of this process's descendants (ansible-playbook, its workers, modules, restic), every 0.2 s.

    Each sample reads /proc/<pid>/stat (parent and RSS on one line) with plain os calls: globbing /proc with pathlib
    and parsing every status file cost about four times as much CPU, taken from the run it measures."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_kib = 0
        self.peak_procs = 0

    def run(self) -> None:
        me = os.getpid()
        page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        user_pids = UserPids()
        while not self.stop.is_set():
            parents, rss = {}, {}
            for name in user_pids():
                try:
                    fields = proc_stat(name)
                except (OSError, IndexError):
                    continue
                pid = int(name)
                parents[pid] = int(fields[1])
                rss[pid] = int(fields[21]) * page_kib
            total = count = 0
            for pid in rss:
                p, seen = pid, 0
                while p and p != me and seen < 64:
                    p, seen = parents.get(p, 0), seen + 1
                if p == me and pid != me:
                    total += rss[pid]
                    count += 1
            self.peak_kib = max(self.peak_kib, total)
            self.peak_procs = max(self.peak_procs, count)
            time.sleep(0.2)


@pytest.mark.slow
def test_incident_across_20_hosts(tmp_path, local_repo, restic_password_file):
    fleet = Fleet(tmp_path, 20, restic_password_file, local_repo)
    fleet.backup_all(dt.datetime.now() - dt.timedelta(days=1))
    clean = damage(fleet)
    watch = MemoryWatch()
    watch.start()
    started = time.monotonic()
    try:
        runner = fleet.run(forks=10)
    finally:
        wall = time.monotonic() - started
        watch.stop.set()
        watch.join(timeout=5)
    assert runner.rc == 0, [
        ev["event_data"].get("res", {}).get("msg") for ev in runner.events if ev.get("event") == "runner_on_failed"
    ]
    for host in fleet.hosts:
        assert tree(fleet.root(host)) == clean[host], host
        assert try_write(fleet.root(host)) == 0
        assert not (fleet.state(host) / "incident.lock").exists()
    report = fleet.report()
    assert report["status"] == "restored"
    assert report["summary"]["clients_total"] == 20 and report["summary"]["clients_restored"] == 20
    assert report["summary"]["all_thawed"] is True
    assert sorted(h["host"] for h in report["hosts"]) == fleet.hosts
    assert all(c["status"] == "ok" and c["verified"] in (True, "True") for c in report["clients"])
    assert report["problems"] == []
    largest_child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = {
        "hosts": 20,
        "forks": 10,
        "wall_seconds": round(wall, 1),
        "peak_total_rss_mib": round(watch.peak_kib / 1024, 1),
        "peak_processes": watch.peak_procs,
        "largest_single_process_mib": round(largest_child_kib / 1024, 1),
        "load_average_at_end": os.getloadavg()[0],
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    print("LOAD RESULT", json.dumps(result))
    (tmp_path / "load-result.json").write_text(json.dumps(result, indent=2) + "\n")
    if os.environ.get("LEDGERGUARD_RECORD_LOAD"):
        (RESULTS / "load-result.json").write_text(json.dumps(result, indent=2) + "\n")
