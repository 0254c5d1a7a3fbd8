"""Containment, for real: processes started by the test hold client folders on loop-device filesystems; the freeze
must find them in /proc, stop the writers (state T), leave readers and allow-listed agents running, refuse under the
`report` policy, find late writers on rescan, and keep them stopped through the thaw and the watchdog. The watchdog
survives a non-UTF-8 mount point, a vanished target and an injected exception.

Every process the test starts is killed in finally (SIGCONT, then SIGKILL); every mount is undone and every loop
device detached.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import freeze as fz
from ansible_collections.ledgerguard.recovery.plugins.module_utils import writers as wr

from conftest import failed_messages
from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounts, loop devices and signals to other users need root"),
    pytest.mark.skipif(shutil.which("losetup") is None, reason="util-linux losetup is missing"),
]

# Rewrites every file of its working directory, by relative path, again and again (ransomware still running).
ENCRYPTOR = r"""
import os, sys, time
n = 0
while True:
    n += 1
    for name in sorted(os.listdir(".")):
        if name.startswith(".ledgerguard"):
            continue
        try:
            with open(name, "r+b") as fh:
                fh.write(b"LOCKED-%d " % n)
        except OSError:
            pass
    time.sleep(0.01)
"""
# Holds one file open for writing and appends to it.
HOLDER = r"""
import sys, time
fh = open(sys.argv[1], "a")
while True:
    fh.write("x\n"); fh.flush(); time.sleep(0.02)
"""
# Holds one file open read-only.
READER = r"""
import sys, time
fh = open(sys.argv[1], "rb")
while True:
    fh.seek(0); fh.read(); time.sleep(0.05)
"""


def sh(*argv, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def state_of(pid: int) -> str | None:
    return wr.proc_state(pid)


def wait_for(pred, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


def tree_digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


class Lab:
    """Loop filesystems (names may be non-UTF-8), processes, and everything to undo at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen] = []
        self.watched: list[tuple[str, str]] = []

    def filesystem(self, name: str, fstype: str = "ext4") -> Path:
        image = (
            self.root
            / "images"
            / f"{len(os.listdir(self.root / 'images')) if (self.root / 'images').exists() else 0}.img"
        )
        image.parent.mkdir(exist_ok=True)
        with open(image, "wb") as fh:
            fh.truncate(48 * 1024 * 1024)
        sh("mkfs.ext4", "-q", "-F", str(image))
        mnt = self.root / "mnt" / name
        mnt.mkdir(parents=True)
        sh("mount", "-o", "loop", str(image), str(mnt))
        return mnt

    def spawn(self, script: str, *args: str, cwd: str | Path = "/", exe: str | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(  # noqa: S603
            [exe or sys.executable, "-c", script, *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def spawn_argv(self, argv: list[str], cwd: str | Path = "/") -> subprocess.Popen:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
        self.procs.append(proc)
        return proc

    def watch(self, state_dir: str, incident: str) -> None:
        self.watched.append((state_dir, incident))

    def cleanup(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for state_dir, incident in self.watched:
            with contextlib.suppress(Exception):
                fz.apply_thaw(fz.Host(fz.subprocess_run, state_dir=state_dir), incident)
            for pid in _watchdog_pids(incident):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        prefix = os.fsencode(str(self.root)) + b"/"
        for _attempt in range(3):
            mounts = [m for m in fz.read_mounts() if os.fsencode(m.mountpoint).startswith(prefix)]
            if not mounts:
                break
            for m in sorted(mounts, key=lambda m: (-len(m.mountpoint), -m.mount_id)):
                subprocess.run(["umount", os.fsencode(m.mountpoint)], capture_output=True, check=False)
        for line in sh("losetup", "-a", check=False).stdout.splitlines():
            if str(self.root) in line:
                sh("losetup", "-d", line.split(":")[0], check=False)


def _watchdog_pids(incident: str) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                args = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
                if b"watchdog" in args and incident.encode() in args:
                    out.append(int(name))
    return out


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.cleanup()


def clients(fs: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        folder = fs / "clients" / name
        folder.mkdir(parents=True)
        for i in range(3):
            (folder / f"凭证-{i}.csv").write_bytes(f"voucher,{i},借,100,贷,100\n".encode() * 50)
        out.append(folder)
    return out


def by_pid(writers: list[dict]) -> dict[int, dict]:
    return {w["pid"]: w for w in writers}


# ----------------------------------------------------------------------------------------------------------------


def test_writers_found_stopped_and_kept_stopped(lab, tmp_path):
    fs = lab.filesystem("data")
    acme, beta = clients(fs, "acme", "beta")
    agent_exe = tmp_path / "lg-backup-agent"
    shutil.copy("/usr/bin/sleep", agent_exe)
    encryptor = lab.spawn(ENCRYPTOR, "--key=hunter2", cwd=acme)
    holder = lab.spawn(HOLDER, str(beta / "凭证-0.csv"))
    reader = lab.spawn(READER, str(beta / "凭证-1.csv"))
    agent = lab.spawn_argv([str(agent_exe), "600"], cwd=acme)
    time.sleep(0.8)
    assert (acme / "凭证-0.csv").read_bytes().startswith(b"LOCKED-"), "the encryptor must be running"
    state = str(tmp_path / "state")
    lab.watch(state, "INC-C1")
    host = fz.Host(fz.subprocess_run, state_dir=state)
    hook = wr.make_hook("stop", allow=[str(agent_exe)])
    targets = [{"method": "readonly_bind", "path": str(acme)}, {"method": "readonly_bind", "path": str(beta)}]

    # Check mode: found and named, nothing signalled.
    plan = fz.apply_freeze(host, "INC-C1", targets, check_mode=True, contain=hook)
    assert by_pid(plan["writers"])[encryptor.pid]["action"] == "would_stop"
    assert state_of(encryptor.pid) != "T"

    out = fz.apply_freeze(host, "INC-C1", targets, watchdog_backend="process", contain=hook)
    found = by_pid(out["writers"])

    enc = found[encryptor.pid]
    assert (enc["role"], enc["action"], enc["state_after"]) == ("writer", "stopped", "T")
    assert state_of(encryptor.pid) == "T"
    assert {"kind": "cwd", "path": str(acme), "mode": "dir", "writing": True, "target": str(acme)} in enc["holds"]
    assert enc["ppid"] == os.getpid() and enc["user"] == "root"
    assert enc["exe"] == os.path.realpath(sys.executable)
    assert enc["exe_sha256"] == hashlib.sha256(Path(os.path.realpath(sys.executable)).read_bytes()).hexdigest()
    assert enc["cmdline"].endswith("'--key=***'") and "hunter2" not in json.dumps(out, ensure_ascii=False)
    assert enc["started"].endswith("Z") and enc["found_by"] == "contain"
    assert "kill -CONT" in enc["resume"]

    hold = found[holder.pid]
    assert (hold["role"], hold["action"]) == ("writer", "stopped") and state_of(holder.pid) == "T"
    fds = [h for h in hold["holds"] if h["kind"] == "fd"]
    assert [(h["path"], h["mode"], h["writing"]) for h in fds] == [(str(beta / "凭证-0.csv"), "w", True)]

    rd = found[reader.pid]
    assert (rd["role"], rd["action"], rd["writing"]) == ("reader", "recorded", False)
    assert state_of(reader.pid) in ("S", "R")
    ag = found[agent.pid]
    assert (ag["role"], ag["action"]) == ("allowed", "allowed") and state_of(agent.pid) == "S"
    assert os.getpid() not in found

    # The proof from a writer's position: a directory handle taken before the freeze can still create a file under
    # readonly_bind (it stops new opens only), and it holds because every writer is stopped.
    proof = out["proof"][0]
    assert proof["errno"] == "EROFS"
    assert proof["handle_probe"]["write_through_handle"] == "possible"
    assert (proof["handle_probe"]["writers_running"], proof["handle_probe"]["holds"]) == (0, True)
    assert proof["handle_probe"]["writers_stopped"] == 1

    # Nothing changes any more (the encryptor writes by relative path into the writable mount below: stopped).
    before = tree_digest(acme)
    time.sleep(0.5)
    assert tree_digest(acme) == before

    registry = json.loads(Path(state, "freeze", "INC-C1.json").read_text())
    recorded = {p["pid"]: p["action"] for p in registry["containment"]["processes"]}
    assert recorded == {encryptor.pid: "stopped", holder.pid: "stopped", reader.pid: "recorded", agent.pid: "allowed"}
    assert "hunter2" not in Path(state, "freeze", "INC-C1.json").read_text()

    # A writer that starts after the freeze, in the writable folder below the bind (through the stopped process's
    # cwd): the rescan finds it and stops it; a second rescan finds nothing new.
    late = lab.spawn(ENCRYPTOR, cwd=f"/proc/{encryptor.pid}/cwd")
    time.sleep(0.5)
    assert tree_digest(acme) != before, "the late writer does write (readonly_bind alone does not stop it)"
    again = fz.apply_rescan(host, "INC-C1", hook)
    assert [(w["pid"], w["action"], w["found_by"]) for w in again["writers"] if w["role"] == "writer"] == [
        (late.pid, "stopped", "rescan")
    ]
    assert again["changed"] is True and again["held"] == [] and state_of(late.pid) == "T"
    assert fz.apply_rescan(host, "INC-C1", hook)["changed"] is False

    # Thaw: the folders are writable again, the suspects stay stopped, and the thaw says how to resume them.
    after_rescan = tree_digest(acme)
    thaw = fz.apply_thaw(host, "INC-C1")
    assert [t["action"] for t in thaw["targets"]] == ["thawed", "thawed"]
    time.sleep(0.5)
    assert state_of(encryptor.pid) == "T" and state_of(late.pid) == "T" and state_of(holder.pid) == "T"
    assert tree_digest(acme) == after_rescan
    still = wr.stopped_processes(json.loads(Path(state, "freeze", "INC-C1.json").read_text()))
    assert sorted(s["pid"] for s in still) == sorted([encryptor.pid, holder.pid, late.pid])
    assert {s["resume"] for s in still} == {f"kill -CONT {p}" for p in (encryptor.pid, holder.pid, late.pid)}


def test_report_policy_refuses_and_kill_policy_kills(lab, tmp_path):
    fs = lab.filesystem("data")
    (acme,) = clients(fs, "acme")
    encryptor = lab.spawn(ENCRYPTOR, cwd=acme)
    time.sleep(0.5)
    state = str(tmp_path / "state")
    lab.watch(state, "INC-C2")
    host = fz.Host(fz.subprocess_run, state_dir=state)
    targets = [{"method": "readonly_bind", "path": str(acme)}]
    with pytest.raises(fz.FreezeError) as err:
        fz.apply_freeze(host, "INC-C2", targets, watchdog_backend="process", contain=wr.make_hook("report"))
    msg = str(err.value)
    assert msg.startswith("containment policy 'report': 1 process(es) hold the folders being frozen")
    assert f"pid {encryptor.pid} (python" in msg and f"cwd {acme}" in msg and msg.endswith("Nothing was frozen.")
    assert [(w["pid"], w["action"]) for w in err.value.result["writers"]] == [(encryptor.pid, "refused")]
    assert not fz.mounts_at(str(acme), fz.read_mounts())
    assert not os.path.exists(Path(state, "freeze", "INC-C2.json"))
    assert state_of(encryptor.pid) in ("R", "S")

    out = fz.apply_freeze(host, "INC-C2", targets, watchdog_backend="process", contain=wr.make_hook("kill"))
    assert [(w["pid"], w["action"]) for w in out["writers"]] == [(encryptor.pid, "killed")]
    assert encryptor.wait(timeout=5) == -signal.SIGKILL
    # A writer that appears later under the report policy: the rescan refuses to go on, names it, signals nothing,
    # and leaves the freeze in place (the operator decides).
    late = lab.spawn(ENCRYPTOR, cwd=acme)
    time.sleep(0.3)
    with pytest.raises(fz.FreezeError) as err:
        fz.apply_rescan(host, "INC-C2", wr.make_hook("report"))
    assert str(err.value).startswith("containment policy 'report': 1 process(es)") and f"pid {late.pid}" in str(
        err.value
    )
    assert [(w["pid"], w["action"], w["found_by"]) for w in err.value.result["writers"]] == [
        (late.pid, "refused", "rescan")
    ]
    assert state_of(late.pid) in ("R", "S") and fz.mounts_at(str(acme), fz.read_mounts())
    # The late writer's working directory is on the bind mount itself: the thaw detaches it lazily (not "busy").
    thaw = fz.apply_thaw(host, "INC-C2")
    assert [t["action"] for t in thaw["targets"]] == ["thawed"], thaw
    assert fz.load_registry(state, "INC-C2")["released"][-1]["lazy_unmount"] is True
    assert not fz.mounts_at(str(acme), fz.read_mounts())
    (acme / "after-thaw.csv").write_text("ok")


def _latin1(name: bytes) -> str:
    return os.fsdecode(name)


def test_latin1_mount_point_freeze_and_watchdog_thaw(lab, tmp_path):
    fs = lab.filesystem(_latin1(b"caf\xe9"))
    assert any(os.fsencode(m.mountpoint).endswith(b"/caf\xe9") for m in fz.read_mounts())
    (folder,) = clients(fs, "acme")
    writer = lab.spawn(ENCRYPTOR, cwd=folder)
    time.sleep(0.5)
    state = str(tmp_path / "state")
    lab.watch(state, "INC-L1")
    host = fz.Host(fz.subprocess_run, state_dir=state)
    out = fz.apply_freeze(
        host,
        "INC-L1",
        [{"method": "readonly_bind", "path": str(folder)}],
        max_duration=3,
        watchdog_backend="process",
        contain=wr.make_hook("stop"),
    )
    (w,) = out["writers"]
    assert (w["pid"], w["action"]) == (writer.pid, "stopped")
    assert "\\xe9" in w["holds"][0]["path"]  # shown safely (JSON-able), the byte kept visible
    json.dumps(out["writers"], ensure_ascii=False).encode("utf-8")
    with pytest.raises(OSError) as err:
        (folder / "new.csv").write_text("x")
    assert err.value.errno == errno.EROFS
    registry = fz.load_registry(state, "INC-L1")
    assert registry["targets"][0]["path"] == str(folder)  # the exact path, surrogates and all, round-trips
    # The watchdog (a detached process) thaws by itself; the writer stays stopped.
    assert wait_for(lambda: not fz.mounts_at(str(folder), fz.read_mounts()), 15)
    assert wait_for(lambda: not fz.load_registry(state, "INC-L1")["targets"], 5)
    released = fz.load_registry(state, "INC-L1")["released"]
    assert [(r["method"], r["thawed_by"]) for r in released] == [("readonly_bind", "watchdog")]
    # The watchdog writes its log line after the registry (under load the line can come a moment later).
    log_path = Path(state, "freeze", "INC-L1.watchdog.log")
    assert wait_for(log_path.exists, 10)
    log = [json.loads(x) for x in log_path.read_text().splitlines()]
    assert [t["action"] for t in log[-1]["targets"]] == ["thawed"]
    assert state_of(writer.pid) == "T"
    (folder / "new.csv").write_text("x")


def test_playbook_freeze_rescan_thaw_with_a_latin1_mount_on_the_host(lab, tmp_path):
    """The module through the role: writers in the result and the evidence, rescan, thaw keeps them stopped; a mount
    point with a Latin-1 name elsewhere on the host does not disturb the freeze or the thaw."""
    lab.filesystem(_latin1(b"na\xefve"))
    fs = lab.filesystem("books")
    (acme,) = clients(fs, "客户甲")
    encryptor = lab.spawn(ENCRYPTOR, "--password", "s3cret", cwd=acme)
    time.sleep(0.5)
    state, evidence = str(tmp_path / "state"), tmp_path / "evidence"
    lab.watch(state, "INC-C4")
    inv = {
        "all": {
            "hosts": {"h1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
            "vars": {
                "ledgerguard_become": False,
                "ledgerguard_incident_id": "INC-C4",
                "ledgerguard_evidence_dir": str(evidence),
                "write_freeze_state_dir": state,
                "write_freeze_watchdog_backend": "process",
                "write_freeze_targets": [{"method": "readonly_bind", "path": str(acme)}],
            },
        }
    }
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inv, ensure_ascii=False))

    def play(name: str, n: int):
        run = PlaybookRun(playbook=name, private_data_dir=tmp_path / f"runner-{n}", inventory=path)
        return run_playbook(run, extra_env={"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"})

    r = play("freeze.yml", 1)
    assert r.status == "successful", failed_messages(r)
    assert state_of(encryptor.pid) == "T"
    record = json.loads((evidence / "INC-C4" / "hosts" / "h1" / "freeze.json").read_text())
    (w,) = [x for x in record["writers"] if x["pid"] == encryptor.pid]
    assert w["action"] == "stopped" and w["cmdline"].endswith("--password '***'")
    assert record["containment"]["stopped"] == [encryptor.pid]
    assert "s3cret" not in json.dumps(record)

    late = lab.spawn(ENCRYPTOR, cwd=f"/proc/{encryptor.pid}/cwd")
    time.sleep(0.3)
    r = play("thaw.yml", 2)
    assert r.status == "successful", failed_messages(r)
    thaw = json.loads((evidence / "INC-C4" / "hosts" / "h1" / "thaw.json").read_text())
    # The thaw re-scanned first: the late writer was stopped before the folder became writable again.
    assert [x["pid"] for x in thaw["rescan"]["writers"]] == [late.pid]
    assert sorted(s["pid"] for s in thaw["stopped_processes"]) == sorted([encryptor.pid, late.pid])
    assert state_of(encryptor.pid) == "T" and state_of(late.pid) == "T"
    (acme / "after.csv").write_text("ok")


def test_watchdog_survives_an_injected_exception_and_a_vanished_target(lab, tmp_path):
    fs = lab.filesystem("wd")
    gone = lab.filesystem("gone")
    (acme,) = clients(fs, "acme")
    state = str(tmp_path / "state")
    lab.watch(state, "INC-C5")
    host = fz.Host(fz.subprocess_run, state_dir=state)
    fz.apply_freeze(
        host,
        "INC-C5",
        [{"method": "readonly_bind", "path": str(acme)}, {"method": "remount_ro", "path": str(gone)}],
        max_duration=3,
        watchdog_backend="process",
        retry_seconds=2,
    )
    sh("umount", str(gone))  # the target vanishes while frozen
    # Inject a fault: a target whose deadline is not a number makes the thaw raise TypeError.
    with fz.registry_lock(state):
        reg = fz.load_registry(state, "INC-C5")
        good = json.loads(json.dumps(reg))
        reg["targets"].append(dict(reg["targets"][0], key="path:/nowhere", label="bogus", deadline="soon"))
        fz.save_registry(state, reg)
    log_path = Path(state, "freeze", "INC-C5.watchdog.log")

    def log():
        return [json.loads(x) for x in log_path.read_text().splitlines()] if log_path.exists() else []

    assert wait_for(lambda: any("unexpected TypeError" in " ".join(e.get("errors", [])) for e in log()), 12)
    entry = next(e for e in log() if e.get("errors"))
    assert entry["retry"]["kind"] == "process" and entry["retry"]["in_seconds"] == 2
    assert "Traceback" in entry["traceback"]
    assert fz.mounts_at(str(acme), fz.read_mounts()), "still frozen: the thaw failed, and is retried"
    # The fault goes away; the retry (re-armed by the failing watchdog itself) thaws everything.
    with fz.registry_lock(state):
        good["watchdog"] = None
        fz.save_registry(state, good)
    assert wait_for(lambda: not fz.mounts_at(str(acme), fz.read_mounts()), 12)
    assert wait_for(lambda: not fz.load_registry(state, "INC-C5")["targets"], 5)
    released = fz.load_registry(state, "INC-C5")["released"]
    assert sorted((r["method"], r["thawed_by"], bool(r.get("vanished"))) for r in released) == [
        ("readonly_bind", "watchdog", False),
        ("remount_ro", "watchdog", True),
    ]
    time.sleep(0.5)
    assert _watchdog_pids("INC-C5") == []


def test_postgresql_freeze_is_undone_at_boot(lab, tmp_path, postgres):
    """ALTER SYSTEM survives a restart of the server (and of the host), the watchdog does not: the boot command
    (run by the boot unit) thaws what a freeze of an earlier boot left."""
    sock, port, pg_ctl, psql = postgres.sock, postgres.port, postgres.pg_ctl, postgres.psql_argv
    state = str(tmp_path / "state")
    lab.watch(state, "INC-PGB")
    host = fz.Host(fz.subprocess_run, state_dir=state)
    target = [{"method": "postgresql", "port": port, "socket_dir": str(sock), "os_user": "postgres"}]
    try:
        out = fz.apply_freeze(host, "INC-PGB", target, watchdog_backend="process")
        assert out["targets"][0]["action"] == "freeze"
        # The "reboot": the watchdog process dies, the server restarts and is still read-only.
        os.kill(out["watchdog"]["pid"], signal.SIGKILL)
        sh(*pg_ctl, "restart")
        assert sh(*psql, "-c", "SHOW default_transaction_read_only").stdout.strip() == "on"
        script = out["watchdog"]["script"]
        # Same boot: the boot command leaves a live freeze alone.
        assert subprocess.run([sys.executable, script, "boot", "--state-dir", state], check=False).returncode == 0
        assert sh(*psql, "-c", "SHOW default_transaction_read_only").stdout.strip() == "on"
        # A registry from an earlier boot: thawed whole.
        with fz.registry_lock(state):
            reg = fz.load_registry(state, "INC-PGB")
            reg["boot_id"] = "an-earlier-boot"
            fz.save_registry(state, reg)
        assert subprocess.run([sys.executable, script, "boot", "--state-dir", state], check=False).returncode == 0
        assert sh(*psql, "-c", "SHOW default_transaction_read_only").stdout.strip() == "off"
        reg = fz.load_registry(state, "INC-PGB")
        assert reg["targets"] == [] and [r["thawed_by"] for r in reg["released"]] == ["boot"]
        assert sh(*psql, "-c", "CREATE TABLE after_boot (x int)").returncode == 0
    finally:
        with contextlib.suppress(Exception):
            fz.apply_thaw(host, "INC-PGB")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is missing")
def test_writer_in_another_mount_namespace_is_found_by_inode(lab, tmp_path):
    """A writer in its own private mount namespace (as the swap uses) does not see the read-only bind mount at all;
    its paths are not ours. It is found by the device and inode of its working directory, and stopped."""
    fs = lab.filesystem("ns")
    (acme,) = clients(fs, "acme")
    ns_writer = lab.spawn_argv(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", ENCRYPTOR], cwd=acme
    )
    time.sleep(0.8)
    assert os.readlink(f"/proc/{ns_writer.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    state = str(tmp_path / "state")
    lab.watch(state, "INC-C6")
    host = fz.Host(fz.subprocess_run, state_dir=state)
    out = fz.apply_freeze(
        host,
        "INC-C6",
        [{"method": "readonly_bind", "path": str(acme)}],
        watchdog_backend="process",
        contain=wr.make_hook("stop"),
    )
    (w,) = [w for w in out["writers"] if w["pid"] == ns_writer.pid]
    assert (w["action"], w["holds"][0]["kind"], w["holds"][0]["target"]) == ("stopped", "cwd", str(acme))
    assert state_of(ns_writer.pid) == "T"
    before = tree_digest(acme)
    time.sleep(0.4)
    assert tree_digest(acme) == before


def test_thread_with_its_own_working_directory_is_found(lab, tmp_path):
    """A thread that unshared its filesystem context (CLONE_FS) and changed directory is found by its own cwd."""
    folder = tmp_path / "客户"
    folder.mkdir()
    code = (
        "import ctypes, os, threading, time\n"
        "def t():\n"
        "    ctypes.CDLL(None).unshare(0x200)\n"
        f"    os.chdir({str(folder)!r})\n"
        "    time.sleep(600)\n"
        "threading.Thread(target=t, daemon=True).start()\n"
        "time.sleep(600)\n"
    )
    proc = lab.spawn(code)
    assert wait_for(lambda: any(r["pid"] == proc.pid for r in wr.scan([str(folder)])), 5)
    (rec,) = [r for r in wr.scan([str(folder)]) if r["pid"] == proc.pid]
    assert [(h["kind"], h["path"], h["writing"]) for h in rec["holds"]] == [("cwd", str(folder), True)]
    assert rec["holds"][0]["tid"] != proc.pid
