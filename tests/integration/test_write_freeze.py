"""write_freeze on this host, for real: loop-device ext4 and xfs filesystems made by the test, the playbooks run
through ansible-runner, a throwaway PostgreSQL cluster. Needs root; cleans up (thaw, unmount, detach) in finally.

Never touches the machine's own disks: every target is below the test's tmp_path, on a filesystem the test made.
The host has no systemd as init, so the watchdog runs as its fallback (a detached process); the systemd timer is
covered by molecule/write_freeze.
"""

from __future__ import annotations

import calendar
import contextlib
import errno
import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import freeze as fz

from conftest import failed_messages
from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounts, loop devices and FIFREEZE need root"),
    pytest.mark.skipif(shutil.which("losetup") is None, reason="util-linux losetup is missing"),
]


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def mountinfo_line(path: Path) -> str:
    """The per-mount options and the source of the topmost mount at path."""
    mounts = fz.mounts_at(str(path), fz.parse_mountinfo(os.fsdecode(Path("/proc/self/mountinfo").read_bytes())))
    assert mounts, f"{path} is not a mount point"
    m = mounts[-1]
    return f"{','.join(m.options)} {m.fstype} {m.source}"


def try_write(path: Path) -> int:
    """0 when a file can be created and written in path, else the errno."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("2026-11-26 voucher 1 借 100 贷 100\n")
    except OSError as exc:
        return exc.errno
    return 0


class Lab:
    """Loop filesystems below tmp_path, and everything to undo at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mounts: list[Path] = []
        self.state_dirs: list[tuple[str, str]] = []

    def filesystem(self, name: str, fstype: str) -> Path:
        image = self.root / f"{name}.img"
        with open(image, "wb") as fh:
            fh.truncate(320 * 1024 * 1024 if fstype == "xfs" else 64 * 1024 * 1024)
        if fstype == "xfs":
            sh("mkfs.xfs", "-q", "-f", str(image))
        else:
            sh("mkfs.ext4", "-q", "-F", str(image))
        mnt = self.root / "mnt" / name
        mnt.mkdir(parents=True)
        sh("mount", "-o", "loop", str(image), str(mnt))
        self.mounts.append(mnt)
        return mnt

    def watch(self, state_dir: str, incident: str) -> None:
        self.state_dirs.append((state_dir, incident))

    def cleanup(self) -> None:
        # 1. Thaw whatever a test left frozen (this also stops the watchdog processes).
        for state_dir, incident in self.state_dirs:
            with contextlib.suppress(fz.FreezeError, OSError):
                fz.apply_thaw(fz.Host(fz.subprocess_run, state_dir=state_dir), incident)
        # 2. FITHAW every filesystem (harmless when not frozen), then unmount everything below root, deepest first.
        for mnt in self.mounts:
            with contextlib.suppress(OSError):
                fd = os.open(mnt, os.O_RDONLY)
                with contextlib.suppress(OSError):
                    fcntl.ioctl(fd, fz.FITHAW, 0)
                os.close(fd)
        prefix = str(self.root) + "/"
        for _attempt in range(3):
            mounts = [
                m
                for m in fz.parse_mountinfo(os.fsdecode(Path("/proc/self/mountinfo").read_bytes()))
                if m.mountpoint.startswith(prefix)
            ]
            if not mounts:
                break
            for m in sorted(mounts, key=lambda m: (-len(m.mountpoint), -m.mount_id)):
                sh("umount", m.mountpoint, check=False)
        # 3. Loop devices of our images (mount -o loop uses autoclear; detach any left over).
        for line in sh("losetup", "-a", check=False).stdout.splitlines():
            if str(self.root) in line:
                sh("losetup", "-d", line.split(":")[0], check=False)


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.cleanup()


def inventory_hosts(hosts: dict) -> dict:
    base = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {name: {**base, **hv} for name, hv in hosts.items()}


@pytest.fixture
def run_freeze(tmp_path):
    """Run playbooks/<name> through ansible-runner against local 'hosts' (name -> host vars) with shared vars.

    Only the write_freeze plays are under test here: the timeline callback (tested on its own) is left out so a
    change there cannot break these tests.
    """
    counter = {"n": 0}

    def go(name: str, hosts: dict, check: bool = False, **common):
        counter["n"] += 1
        inv = {"all": {"hosts": inventory_hosts(hosts), "vars": {"ledgerguard_become": False, **common}}}
        path = tmp_path / f"inventory-{counter['n']}.json"
        path.write_text(json.dumps(inv))
        run = PlaybookRun(
            playbook=name, private_data_dir=tmp_path / f"runner-{counter['n']}", inventory=path, check=check
        )
        return run_playbook(run, extra_env={"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"})

    return go


def module_results(runner, task_suffix: str) -> dict:
    """host -> result of the task whose name ends with task_suffix."""
    out = {}
    for ev in runner.events:
        data = ev.get("event_data", {})
        if ev.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task", "").endswith(task_suffix):
            out[data["host"]] = data["res"]
    return out


# ----------------------------------------------------------------------------------------------------------------


def test_freeze_and_thaw_round_trip(lab, tmp_path, run_freeze):
    ext4 = lab.filesystem("ext4", "ext4")
    xfs = lab.filesystem("xfs", "xfs")
    client = ext4 / "clients" / "acme"
    client.mkdir(parents=True)
    (client / "ledger.csv").write_text("voucher,debit,credit\n")
    (xfs / "archive.csv").write_text("2025\n")
    state = str(tmp_path / "state")
    evidence = tmp_path / "evidence"
    lab.watch(state, "INC-RT-1")
    before = {p: mountinfo_line(p) for p in (ext4, xfs)}
    ledger_before = (client / "ledger.csv").read_bytes()
    hosts = {
        "h1": {
            "write_freeze_state_dir": state,
            "write_freeze_targets": [
                {"method": "readonly_bind", "path": str(client)},
                {"method": "remount_ro", "path": str(xfs), "name": "档案 archive"},
            ],
        }
    }
    common = {"ledgerguard_incident_id": "INC-RT-1", "ledgerguard_evidence_dir": str(evidence)}

    # Check mode: the plan, and nothing changes.
    r = run_freeze("freeze.yml", hosts, check=True, **common)
    assert r.status == "successful", failed_messages(r)
    plan = module_results(r, "Freeze this host's targets")["h1"]
    assert plan["changed"] is True
    assert [(p["name"], p["method"], p["action"]) for p in plan["plan"]] == [
        (f"readonly_bind {client}", "readonly_bind", "freeze"),
        ("档案 archive", "remount_ro", "freeze"),
    ]
    assert {p: mountinfo_line(p) for p in (ext4, xfs)} == before
    assert not os.path.exists(f"{state}/freeze/INC-RT-1.json")
    assert try_write(client / "ledger.csv") == 0  # still writable (and restore the bytes below)
    (client / "ledger.csv").write_bytes(ledger_before)

    # Freeze: writes fail with EROFS; the proof is in the evidence folder.
    r = run_freeze("freeze.yml", hosts, **common)
    assert r.status == "successful", failed_messages(r)
    assert try_write(client / "ledger.csv") == errno.EROFS
    assert try_write(client / "new.csv") == errno.EROFS
    assert try_write(xfs / "archive.csv") == errno.EROFS
    assert try_write(ext4 / "elsewhere.txt") == 0  # only the client folder is frozen on ext4
    assert mountinfo_line(xfs).startswith("ro,")
    record = json.loads((evidence / "INC-RT-1" / "hosts" / "h1" / "freeze.json").read_text())
    assert [(p["target"], p["kind"], p["errno"]) for p in record["proof"]] == [
        (f"readonly_bind {client}", "write_refused", "EROFS"),
        ("档案 archive", "write_refused", "EROFS"),
    ]
    assert record["watchdog"]["kind"] == "process"
    assert oct((evidence / "INC-RT-1" / "hosts" / "h1" / "freeze.json").stat().st_mode & 0o777) == "0o600"
    registry = json.loads(Path(state, "freeze", "INC-RT-1.json").read_text())
    assert [t["previous"]["read_only"] for t in registry["targets"]] == [False, False]
    assert registry["targets"][1]["previous"]["options"] == before[xfs].split()[0]

    # Freezing again changes nothing.
    r = run_freeze("freeze.yml", hosts, **common)
    assert r.status == "successful", failed_messages(r)
    again = module_results(r, "Freeze this host's targets")["h1"]
    assert again["changed"] is False
    assert [t["action"] for t in again["targets"]] == ["already_frozen", "already_frozen"]
    # ... and did not overwrite the original proof.
    assert json.loads((evidence / "INC-RT-1" / "hosts" / "h1" / "freeze.json").read_text()) == record

    # Thaw: writes succeed, the mount options come back exactly, the watchdog is gone.
    watchdog_pid = record["watchdog"]["pid"]
    r = run_freeze("thaw.yml", hosts, **common)
    assert r.status == "successful", failed_messages(r)
    thaw = module_results(r, "Thaw the incident's targets on this host")["h1"]
    assert [(t["name"], t["action"]) for t in thaw["targets"]] == [
        ("档案 archive", "thawed"),
        (f"readonly_bind {client}", "thawed"),
    ]
    assert {p: mountinfo_line(p) for p in (ext4, xfs)} == before
    assert not fz.mounts_at(str(client), fz.parse_mountinfo(os.fsdecode(Path("/proc/self/mountinfo").read_bytes())))
    assert (client / "ledger.csv").read_bytes() == ledger_before
    assert try_write(client / "ledger.csv") == 0
    assert try_write(xfs / "archive.csv") == 0
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{watchdog_pid}") or "zombie" in Path(f"/proc/{watchdog_pid}/status").read_text()
    assert sorted(os.listdir(client)) == ["ledger.csv"]  # no probe file, and the refused new.csv never appeared

    # Thawing again changes nothing.
    r = run_freeze("thaw.yml", hosts, **common)
    assert r.status == "successful", failed_messages(r)
    assert module_results(r, "Thaw the incident's targets on this host")["h1"]["changed"] is False


def test_refusals(lab, tmp_path):
    data = lab.filesystem("data", "ext4")
    state_on_data = data / "ledgerguard"
    other = lab.filesystem("other", "ext4")
    (other / "clients" / "a").mkdir(parents=True)
    host = fz.Host(fz.subprocess_run, state_dir=str(state_on_data))
    lab.watch(str(state_on_data), "INC-A")

    def refused(targets, incident="INC-A"):
        with pytest.raises(fz.FreezeError) as err:
            fz.apply_freeze(host, incident, targets, watchdog_backend="process")
        return str(err.value)

    assert refused([{"method": "remount_ro", "path": "/"}]).startswith(
        "target 1 (remount_ro /): refusing to freeze '/': a read-only or frozen root filesystem stops the host"
    )
    assert "refusing to freeze '/'" in refused([{"method": "fsfreeze", "path": "/"}])
    assert "refusing to freeze '/'" in refused([{"method": "readonly_bind", "path": "/"}])
    assert refused([{"method": "fsfreeze", "path": str(data)}]) == (
        f"target fsfreeze {data}: refusing to freeze {data}: it is the filesystem that holds the state directory "
        f"{state_on_data}, where the freeze registry and the watchdog live (thaw would be impossible). Move "
        "ledgerguard_state_dir to another filesystem, or freeze the data directories with readonly_bind."
    )
    assert "it is the filesystem that holds the state directory" in refused(
        [{"method": "remount_ro", "path": str(data)}]
    )
    assert refused([{"method": "readonly_bind", "path": str(data)}]).startswith(
        f"target readonly_bind {data}: refusing to freeze {data}: it holds the state directory {state_on_data}"
    )
    assert refused([{"method": "readonly_bind", "path": str(other / "clients" / "b")}]) == (
        f"target 1 (readonly_bind {other}/clients/b): path {other}/clients/b does not exist on this host. Check "
        "the host's write_freeze_targets in the inventory (a typo, or a filesystem that is not mounted)."
    )
    assert refused([{"method": "remount_ro", "path": str(other / "clients")}]).startswith(
        f"target remount_ro {other}/clients: {other}/clients is not a mount point; remount_ro works on a whole "
        "filesystem."
    )
    # A unit: on this host systemd is not the init system, so the question cannot even be asked.
    if shutil.which("systemctl") and not os.path.isdir("/run/systemd/system"):
        assert "cannot ask systemd about nope-ledger.service" in refused([{"method": "service", "unit": "nope-ledger"}])
    # Nothing was frozen by any refusal.
    assert try_write(data / "x") == 0 and try_write(other / "clients" / "a" / "x") == 0
    assert not os.path.exists(state_on_data / "freeze" / "INC-A.json")

    # A second incident over a target another incident holds (and over a folder inside it).
    host2 = fz.Host(fz.subprocess_run, state_dir=str(tmp_path / "state"))
    lab.watch(str(tmp_path / "state"), "INC-A")
    fz.apply_freeze(
        host2, "INC-A", [{"method": "readonly_bind", "path": str(other / "clients")}], watchdog_backend="process"
    )
    with pytest.raises(fz.FreezeError) as err:
        fz.apply_freeze(
            host2, "INC-B", [{"method": "readonly_bind", "path": str(other / "clients" / "a")}], check_mode=True
        )
    assert str(err.value).startswith(
        f"target readonly_bind {other}/clients/a: incident INC-A already holds readonly_bind {other}/clients (frozen "
    )
    assert str(err.value).endswith(
        "one incident at a time may freeze a target. Thaw incident INC-A first, or continue the work under that "
        "incident."
    )
    assert not os.path.exists(tmp_path / "state" / "freeze" / "INC-B.json")


def test_refusal_message_reaches_the_play(lab, tmp_path, run_freeze):
    hosts = {
        "h1": {
            "write_freeze_state_dir": str(tmp_path / "state"),
            "write_freeze_targets": [{"method": "remount_ro", "path": "/"}],
        }
    }
    r = run_freeze(
        "freeze.yml", hosts, ledgerguard_incident_id="INC-REF", ledgerguard_evidence_dir=str(tmp_path / "ev")
    )
    assert r.status == "failed"
    msgs = failed_messages(r)
    assert msgs[0].startswith("target 1 (remount_ro /): refusing to freeze '/'")
    assert msgs[-1].startswith("Freezing failed on h1 (target 1 (remount_ro /): refusing to freeze '/'")
    bad = {"h1": {"write_freeze_targets": [{"method": "chattr", "path": "/srv"}]}}
    r = run_freeze("freeze.yml", bad, ledgerguard_incident_id="INC-REF")
    assert r.status == "failed"
    assert "value of method must be one of" in " ".join(failed_messages(r)) or "method among" in " ".join(
        failed_messages(r)
    )


def test_failure_on_one_host_thaws_every_host(lab, tmp_path, run_freeze):
    a = lab.filesystem("a", "ext4")
    b = lab.filesystem("b", "xfs")
    (a / "clients" / "x").mkdir(parents=True)
    (b / "clients" / "y").mkdir(parents=True)
    before = {p: mountinfo_line(p) for p in (a, b)}
    s1, s2 = str(tmp_path / "s1"), str(tmp_path / "s2")
    lab.watch(s1, "INC-MH")
    lab.watch(s2, "INC-MH")
    hosts = {
        "h1": {"write_freeze_state_dir": s1, "write_freeze_targets": [{"method": "remount_ro", "path": str(a)}]},
        "h2": {
            "write_freeze_state_dir": s2,
            "write_freeze_targets": [
                {"method": "readonly_bind", "path": str(b / "clients" / "y")},
                {"method": "remount_ro", "path": str(b)},  # busy: a writer holds a file open
            ],
        },
    }
    holder = open(b / "open-for-write.log", "w")  # noqa: SIM115 - held open on purpose
    try:
        r = run_freeze(
            "freeze.yml", hosts, ledgerguard_incident_id="INC-MH", ledgerguard_evidence_dir=str(tmp_path / "ev")
        )
    finally:
        holder.close()
    assert r.status == "failed"
    msgs = failed_messages(r)
    assert any(m.startswith(f"freezing remount_ro {b} failed: remounting {b} read-only failed") for m in msgs), msgs
    assert any("stop the writers first" in m for m in msgs)
    final = [m for m in msgs if m.startswith("Freezing failed on h2")]
    assert final and final[0].endswith("What this run froze was thawed again on every host.")
    # Both hosts are back as they were: h1's remount and h2's bind mount were undone.
    assert {p: mountinfo_line(p) for p in (a, b)} == before
    assert try_write(a / "clients" / "x" / "f") == 0
    assert try_write(b / "clients" / "y" / "f") == 0
    for s in (s1, s2):
        reg = json.loads(Path(s, "freeze", "INC-MH.json").read_text())
        assert reg["targets"] == [] and reg["watchdog"] is None
    ev = json.loads((tmp_path / "ev" / "INC-MH" / "hosts" / "h1" / "freeze.json").read_text())
    assert [t["action"] for t in ev["rolled_back"]] == ["thawed"]


def _watchdog_processes(incident: str) -> list[int]:
    out = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            args = Path(cmdline).read_bytes().split(b"\0")
            if b"watchdog" in args and incident.encode() in args:
                out.append(int(cmdline.split("/")[2]))
    return out


def test_watchdog_thaws_when_no_thaw_comes(lab, tmp_path, run_freeze):
    xfs = lab.filesystem("wx", "xfs")
    ext4 = lab.filesystem("we", "ext4")
    (ext4 / "clients" / "c").mkdir(parents=True)
    state = str(tmp_path / "state")
    lab.watch(state, "INC-WD")
    before = {p: mountinfo_line(p) for p in (xfs, ext4)}
    hosts = {
        "h1": {
            "write_freeze_state_dir": state,
            "write_freeze_max_duration": 36,
            "write_freeze_fsfreeze_max_duration": 30,
            "write_freeze_targets": [
                {"method": "fsfreeze", "path": str(xfs)},
                {"method": "readonly_bind", "path": str(ext4 / "clients" / "c")},
            ],
        }
    }
    r = run_freeze("freeze.yml", hosts, ledgerguard_incident_id="INC-WD", ledgerguard_evidence_dir=str(tmp_path / "ev"))
    assert r.status == "successful", failed_messages(r)
    res = module_results(r, "Freeze this host's targets")["h1"]
    assert [(p["kind"], p["errno"]) for p in res["proof"]] == [("fifreeze_ebusy", "EBUSY"), ("write_refused", "EROFS")]
    deadlines = [calendar.timegm(time.strptime(t["deadline"], "%Y-%m-%dT%H:%M:%SZ")) for t in res["targets"]]
    assert deadlines[1] - deadlines[0] == 6  # fsfreeze is bounded by write_freeze_fsfreeze_max_duration
    # The controller is gone (the playbook ended). A writer on the frozen xfs blocks until the watchdog thaws it.
    # (The fsfreeze window is 30 s so that the playbook's remaining tasks end inside it even on a loaded machine.)
    writer = subprocess.Popen(["sh", "-c", f"echo 'after freeze' >> {xfs}/ledger.log"])
    try:
        time.sleep(1)
        assert time.time() < deadlines[0], "the playbook took longer than the fsfreeze window"
        assert writer.poll() is None, "a write to a frozen filesystem must block"
        assert try_write(ext4 / "clients" / "c" / "f") == errno.EROFS
        assert writer.wait(timeout=40) == 0
        assert deadlines[0] - 1 <= time.time() <= deadlines[0] + 5
        assert (xfs / "ledger.log").read_text() == "after freeze\n"
        assert try_write(ext4 / "clients" / "c" / "f") == errno.EROFS  # its deadline is later
        while time.time() < deadlines[1] + 10 and try_write(ext4 / "clients" / "c" / "f") != 0:
            time.sleep(0.5)
        assert time.time() >= deadlines[1] - 1
    finally:
        if writer.poll() is None:
            with contextlib.suppress(OSError):
                fd = os.open(xfs, os.O_RDONLY)
                fcntl.ioctl(fd, fz.FITHAW, 0)
                os.close(fd)
            writer.wait(timeout=10)
    assert try_write(ext4 / "clients" / "c" / "f") == 0
    assert {p: mountinfo_line(p) for p in (xfs, ext4)} == before
    registry = json.loads(Path(state, "freeze", "INC-WD.json").read_text())
    assert registry["targets"] == [] and registry["watchdog"] is None
    assert [(r["method"], r["thawed_by"]) for r in registry["released"]] == [
        ("fsfreeze", "watchdog"),
        ("readonly_bind", "watchdog"),
    ]
    log = [json.loads(line) for line in Path(state, "freeze", "INC-WD.watchdog.log").read_text().splitlines()]
    assert [[t["action"] for t in entry["targets"]] for entry in log] == [["thawed"], ["thawed"]]
    time.sleep(0.5)
    assert _watchdog_processes("INC-WD") == []


def test_extend_rearms_the_watchdog(lab, tmp_path):
    ext4 = lab.filesystem("ex", "ext4")
    (ext4 / "d").mkdir()
    state = str(tmp_path / "state")
    lab.watch(state, "INC-EX")
    host = fz.Host(fz.subprocess_run, state_dir=state)
    target = [{"method": "readonly_bind", "path": str(ext4 / "d")}]
    first = fz.apply_freeze(host, "INC-EX", target, max_duration=3, watchdog_backend="process")
    second = fz.apply_freeze(host, "INC-EX", target, max_duration=600, extend=True, watchdog_backend="process")
    assert second["changed"] is True
    assert second["watchdog"]["pid"] != first["watchdog"]["pid"]
    time.sleep(0.3)
    assert _watchdog_processes("INC-EX") == [second["watchdog"]["pid"]]
    time.sleep(4)  # past the first deadline: still frozen
    assert try_write(ext4 / "d" / "f") == errno.EROFS
    assert fz.apply_thaw(host, "INC-EX")["changed"] is True
    assert try_write(ext4 / "d" / "f") == 0
    time.sleep(0.3)
    assert _watchdog_processes("INC-EX") == []


def test_postgresql_read_only_and_restore(tmp_path, postgres):
    data, sock, port, psql = postgres.data, postgres.sock, postgres.port, postgres.psql_argv
    state = str(tmp_path / "state")
    host = fz.Host(fz.subprocess_run, state_dir=state)
    target = [
        {"method": "postgresql", "port": port, "socket_dir": str(sock), "os_user": "postgres", "database": "postgres"}
    ]
    holder = None
    try:
        sh(*psql, "-c", "CREATE TABLE vouchers (no int primary key, debit numeric, credit numeric)")
        auto_before = (data / "postgresql.auto.conf").read_bytes()
        holder = subprocess.Popen(
            psql, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        holder.stdin.write("BEGIN; INSERT INTO vouchers VALUES (1, 100, 100);\n")
        holder.stdin.flush()
        time.sleep(0.5)

        plan = fz.apply_freeze(host, "INC-PG", target, check_mode=True)
        assert [(p["action"], p["previous"]) for p in plan["plan"]] == [
            ("freeze", {"setting": "off", "auto_conf": "", "read_only": False})
        ]
        assert sh(*psql, "-c", "SHOW default_transaction_read_only").stdout.strip() == "off"

        out = fz.apply_freeze(host, "INC-PG", target, watchdog_backend="process")
        t = out["targets"][0]
        assert t["terminated_sessions"] == 1
        assert t["proof"]["detail"] == "ERROR:  cannot execute CREATE TABLE in a read-only transaction"
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        assert "terminating connection due to administrator command" in holder.stdout.read()
        holder.wait(timeout=10)
        write = sh(*psql, "-c", "INSERT INTO vouchers VALUES (2, 5, 5)", check=False)
        assert write.returncode != 0 and "cannot execute INSERT in a read-only transaction" in write.stderr
        assert sh(*psql, "-c", "SELECT count(*) FROM vouchers").stdout.strip() == "0"  # the open one was rolled back
        assert fz.apply_freeze(host, "INC-PG", target, watchdog_backend="process")["changed"] is False

        thaw = fz.apply_thaw(host, "INC-PG")
        assert [x["action"] for x in thaw["targets"]] == ["thawed"]
        assert sh(*psql, "-c", "INSERT INTO vouchers VALUES (3, 7, 7)").returncode == 0
        assert (
            sh(
                *psql,
                "-c",
                "SELECT setting || '/' || source FROM pg_settings WHERE name = 'default_transaction_read_only'",
            ).stdout.strip()
            == "off/default"
        )
        assert (data / "postgresql.auto.conf").read_bytes() == auto_before
        assert fz.apply_thaw(host, "INC-PG")["changed"] is False

        # Already read-only before the incident: left alone at freeze and at thaw.
        sh(*psql, "-c", "ALTER SYSTEM SET default_transaction_read_only = on", "-c", "SELECT pg_reload_conf()")
        time.sleep(0.5)
        out = fz.apply_freeze(host, "INC-PG2", target, watchdog_backend="process")
        assert [x["action"] for x in out["targets"]] == ["left_alone"]
        fz.apply_thaw(host, "INC-PG2")
        assert sh(*psql, "-c", "SHOW default_transaction_read_only").stdout.strip() == "on"
    finally:
        if holder and holder.poll() is None:
            holder.kill()
        with contextlib.suppress(fz.FreezeError, OSError):
            fz.apply_thaw(host, "INC-PG")
