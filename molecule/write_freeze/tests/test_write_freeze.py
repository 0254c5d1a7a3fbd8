"""Verifier for the write_freeze scenario (testinfra, podman backend).

The tests run in file order and walk the incident: converge froze INC-MOL-1 through playbooks/freeze.yml; here we
prove every write fails, thaw through playbooks/thaw.yml and prove the previous state came back exactly, prove check
mode changes nothing, let the systemd watchdog thaw a freeze by itself (no controller), and produce every refusal.
Ansible runs from this process against Molecule's inventory (MOLECULE_INVENTORY_FILE).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("LEDGERGUARD_ROOT", Path(__file__).resolve().parents[3]))
INCIDENT = "INC-MOL-1"
REGISTRY = f"/var/lib/ledgerguard/freeze/{INCIDENT}.json"
EVIDENCE = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "evidence"
# The SMB share of a client folder (prepare.yml), served by smbd.service (write_freeze_services in molecule.yml).
SHARE = "//127.0.0.1/客户甲"
SHARE_DIR = "/srv/账套/客户甲"


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
            "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    return env


def host_results(output: str) -> list[dict]:
    """Every task result for the scenario's host, in order, from the json callback's output."""
    data = json.loads(output[output.index("{") :])
    out = []
    for play in data["plays"]:
        for task in play["tasks"]:
            for _host, res in task["hosts"].items():
                out.append({"task": task["task"]["name"], **res})
    return out


def playbook(name: str, *args: str, extra: dict | None = None) -> tuple[int, list[dict]]:
    argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(ROOT / "playbooks" / name), *args]
    if extra:
        argv += ["-e", json.dumps(extra)]
    proc = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=300)
    return proc.returncode, host_results(proc.stdout)


def module(args: dict, check: bool = False) -> dict:
    """Run ledgerguard.recovery.write_freeze once on the container (ad hoc) and return its result."""
    argv = [
        "ansible",
        "all",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        "-b",
        "-m",
        "ledgerguard.recovery.write_freeze",
    ]
    argv += ["-a", json.dumps(args)]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=300)
    results = host_results(proc.stdout)
    assert len(results) == 1, proc.stdout + proc.stderr
    return results[0]


def task(results: list[dict], suffix: str) -> dict:
    found = [r for r in results if r["task"].endswith(suffix)]
    assert found, [r["task"] for r in results]
    return found[-1]


def sh(host, cmd: str):
    return host.run(cmd)


def mount_options(host, path: str) -> str:
    return sh(host, f"findmnt -n -o VFS-OPTIONS --mountpoint {path} | tail -n 1").stdout.strip()


def pg(host, sql: str):
    """psql as the postgres superuser: default_transaction_read_only binds superusers too."""
    return sh(host, f"runuser -u postgres -- psql -X -q -A -t -d postgres -c {sql!r}")


def maria_app(host, sql: str):
    return sh(host, f"mariadb -u app -papp-password -h localhost --batch --skip-column-names -e {sql!r}")


def lines(host, path: str) -> int:
    out = sh(host, f"wc -l < {path} 2>/dev/null || echo 0").stdout.strip()
    return int(out or 0)


# ----------------------------------------------------------------------------------------------------------------
# 1. Frozen by converge
# ----------------------------------------------------------------------------------------------------------------


def test_writes_fail_while_frozen(host):
    assert host.service("ledger-writer.service").is_running is False
    before = lines(host, "/srv/data/clients/acme/ledger.log")
    refused_before = lines(host, "/srv/data/beta-refused.log")
    time.sleep(2.2)
    assert lines(host, "/srv/data/clients/acme/ledger.log") == before  # the writer is stopped
    assert lines(host, "/srv/data/beta-refused.log") >= refused_before + 2  # beta's writer is refused every second

    beta = sh(host, "echo x >> /srv/data/clients/beta/ledger.log")
    assert beta.rc != 0 and "Read-only file system" in beta.stderr
    assert sh(host, "echo x >> /srv/data/clients/acme/other.log").rc == 0  # only beta's folder is frozen on ext4
    archive = sh(host, "touch /srv/archive/new.csv")
    assert archive.rc != 0 and "Read-only file system" in archive.stderr
    assert mount_options(host, "/srv/archive").split(",")[0] == "ro"

    insert = pg(host, f"INSERT INTO vouchers VALUES ({secrets.randbelow(10**9)}, 100, 100)")
    assert insert.rc != 0 and "cannot execute INSERT in a read-only transaction" in insert.stderr
    maria = maria_app(host, f"INSERT INTO books.vouchers VALUES ({secrets.randbelow(10**9)}, 100, 100)")
    assert maria.rc != 0 and "ERROR 1290" in maria.stderr and "--read-only" in maria.stderr


def smbclient(host, command: str):
    """One smbclient session to the share as a guest, running `command` (smbclient's own command language)."""
    return sh(host, f"smbclient {SHARE} --no-pass --command {shlex.quote(command)}")


def share_hashes(host) -> str:
    out = sh(host, f"cd {shlex.quote(SHARE_DIR)} && sha256sum -- *")
    assert out.rc == 0, out.stderr
    return out.stdout


def test_smbd_stopped_and_the_share_refused(host):
    """smbd (write_freeze_services) is stopped by the freeze: no smbd process is left and a client is refused."""
    assert host.service("smbd.service").is_running is False
    assert sh(host, "pgrep '^smbd'").rc == 1, sh(host, "pgrep -a '^smbd'").stdout  # no worker left behind
    before = share_hashes(host)
    put = smbclient(host, "put /etc/hostname 冻结期间.txt")
    assert put.rc != 0 and "NT_STATUS_CONNECTION_REFUSED" in put.stdout + put.stderr, put.stdout + put.stderr
    assert share_hashes(host) == before
    record = json.loads((EVIDENCE / INCIDENT / "hosts" / "ledgerguard-write-freeze" / "freeze.json").read_text())
    smbd = record["targets"][0]
    assert (smbd["name"], smbd["action"], smbd["previous"]["was_running"]) == ("service smbd.service", "freeze", True)
    proof = record["proof"][0]
    assert (proof["target"], proof["kind"], proof["detail"]) == (
        "service smbd.service",
        "service_stopped",
        "smbd.service ActiveState=inactive",
    )


def test_registry_watchdog_and_proof(host):
    registry = json.loads(host.file(REGISTRY).content_string)
    assert host.file(REGISTRY).mode == 0o600
    assert [(t["label"], t["status"]) for t in registry["targets"]][:3] == [
        ("service smbd.service", "frozen"),  # write_freeze_services come first
        ("service ledger-writer.service", "frozen"),
        ("service legacy-share.service", "left_alone"),
    ]
    assert [(t["method"], t["status"]) for t in registry["targets"]][3:] == [
        ("readonly_bind", "frozen"),
        ("remount_ro", "frozen"),
        ("postgresql", "frozen"),
        ("mariadb", "frozen"),
    ]
    timer = registry["watchdog"]["timer"]
    assert registry["watchdog"]["kind"] == "systemd"
    assert sh(host, f"systemctl is-active {timer}").stdout.strip() == "active"
    record = json.loads((EVIDENCE / INCIDENT / "hosts" / "ledgerguard-write-freeze" / "freeze.json").read_text())
    assert [(p["target"], p["kind"]) for p in record["proof"]] == [
        ("service smbd.service", "service_stopped"),
        ("service ledger-writer.service", "service_stopped"),
        ("客户 beta", "write_refused"),
        ("remount_ro /srv/archive", "write_refused"),
        ("postgresql port 5432", "read_only_transaction"),
        ("mariadb default socket", "read_only_variable"),
    ]
    assert record["proof"][3]["errno"] == "EROFS"
    assert record["proof"][4]["detail"] == "ERROR:  cannot execute CREATE TABLE in a read-only transaction"


def test_running_encryptor_is_stopped_and_named(host, encryptor):
    pid = encryptor.pid
    assert pid > 0 and encryptor.state() == "T"
    before = sh(host, "sha256sum /srv/data/clients/beta/*").stdout
    time.sleep(0.5)
    assert sh(host, "sha256sum /srv/data/clients/beta/*").stdout == before
    record = json.loads((EVIDENCE / INCIDENT / "hosts" / "ledgerguard-write-freeze" / "freeze.json").read_text())
    (w,) = [w for w in record["writers"] if w["pid"] == pid]
    assert (w["role"], w["action"], w["exe"]) == ("writer", "stopped", "/usr/bin/python3.11")
    assert {"kind": "cwd", "path": "/srv/data/clients/beta", "mode": "dir", "writing": True} | {
        "target": "/srv/data/clients/beta"
    } in w["holds"]
    assert record["containment"]["stopped"] == [pid]
    bind = [p for p in record["proof"] if p["target"] == "客户 beta"][0]
    assert bind["handle_probe"]["write_through_handle"] == "possible" and bind["handle_probe"]["holds"] is True
    registry = json.loads(host.file(REGISTRY).content_string)
    assert [p["pid"] for p in registry["containment"]["processes"] if p["action"] == "stopped"] == [pid]
    # The PostgreSQL freeze (ALTER SYSTEM) survives a reboot: a boot unit undoes it then.
    unit = "/etc/systemd/system/ledgerguard-freeze-boot.service"
    assert "ledgerguard_freeze.py boot --state-dir /var/lib/ledgerguard" in host.file(unit).content_string
    assert sh(host, "systemctl is-enabled ledgerguard-freeze-boot.service").stdout.strip() == "enabled"


# ----------------------------------------------------------------------------------------------------------------
# 2. Thaw through the playbook: everything back exactly; thawing twice changes nothing
# ----------------------------------------------------------------------------------------------------------------


def test_thaw_restores_previous_state_exactly(host):
    registry = json.loads(host.file(REGISTRY).content_string)
    previous_archive = registry["targets"][4]["previous"]["options"]
    timer = registry["watchdog"]["timer"]
    rc, results = playbook("thaw.yml")
    assert rc == 0, results
    thaw = task(results, "Thaw the incident's targets on this host")
    assert [(t["name"], t["action"]) for t in thaw["targets"]] == [
        ("mariadb default socket", "thawed"),
        ("postgresql port 5432", "thawed"),
        ("remount_ro /srv/archive", "thawed"),
        ("客户 beta", "thawed"),
        ("service legacy-share.service", "left_alone"),
        ("service ledger-writer.service", "thawed"),
        ("service smbd.service", "thawed"),
    ]
    # Services: the writer that ran runs again; the unit that was stopped stays stopped.
    assert host.service("ledger-writer.service").is_running
    assert host.service("legacy-share.service").is_running is False
    before = lines(host, "/srv/data/clients/acme/ledger.log")
    time.sleep(2.2)
    assert lines(host, "/srv/data/clients/acme/ledger.log") >= before + 2
    # Mounts: the bind mount is gone, the archive has exactly its previous options.
    assert sh(host, "findmnt --mountpoint /srv/data/clients/beta").rc != 0
    assert mount_options(host, "/srv/archive") == previous_archive
    assert previous_archive.startswith("rw,")
    assert sh(host, "echo x >> /srv/data/clients/beta/ledger.log").rc == 0
    assert sh(host, "touch /srv/archive/new.csv && rm /srv/archive/new.csv").rc == 0
    # Databases: writes work, and the settings are back where they were (not merely "off").
    assert pg(host, f"INSERT INTO vouchers VALUES ({secrets.randbelow(10**9)}, 100, 100)").rc == 0
    assert (
        pg(
            host, "SELECT setting || '/' || source FROM pg_settings WHERE name = 'default_transaction_read_only'"
        ).stdout.strip()
        == "off/default"
    )
    auto = sh(host, "cat /var/lib/postgresql/15/main/postgresql.auto.conf").stdout
    assert "default_transaction_read_only" not in auto
    assert maria_app(host, f"INSERT INTO books.vouchers VALUES ({secrets.randbelow(10**9)}, 100, 100)").rc == 0
    assert sh(host, "mariadb --batch --skip-column-names -e 'SELECT @@GLOBAL.read_only'").stdout.strip() == "0"
    # The watchdog is disarmed, the registry releases everything.
    assert sh(host, f"systemctl is-active {timer}").stdout.strip() != "active"
    registry = json.loads(host.file(REGISTRY).content_string)
    assert registry["targets"] == [] and registry["watchdog"] is None
    assert [r["thawed_by"] for r in registry["released"][-7:]] == ["module"] * 7

    rc, results = playbook("thaw.yml")
    assert rc == 0
    assert task(results, "Thaw the incident's targets on this host")["changed"] is False


def test_thaw_started_smbd_and_the_share_serves(host):
    """The thaw started smbd again (it ran before the freeze): a client writes and reads through the share."""
    assert host.service("smbd.service").is_running
    deadline = time.time() + 15
    put = smbclient(host, "put /etc/os-release 解冻后.txt")
    while put.rc != 0 and time.time() < deadline:  # smbd may still be opening its port
        time.sleep(0.5)
        put = smbclient(host, "put /etc/os-release 解冻后.txt")
    assert put.rc == 0, put.stdout + put.stderr
    uploaded = host.file(f"{SHARE_DIR}/解冻后.txt")
    assert uploaded.sha256sum == host.file("/etc/os-release").sha256sum and uploaded.user == "kuaiji"
    got = smbclient(host, 'get "2026-10 凭证.csv" /root/凭证-via-smb.csv')
    assert got.rc == 0, got.stdout + got.stderr
    assert host.file("/root/凭证-via-smb.csv").sha256sum == host.file(f"{SHARE_DIR}/2026-10 凭证.csv").sha256sum


def test_encryptor_stays_stopped_after_the_thaw(host, encryptor):
    pid = encryptor.pid
    assert encryptor.state() == "T"  # resuming it is a person's decision, never the thaw's
    thaw = json.loads((EVIDENCE / INCIDENT / "hosts" / "ledgerguard-write-freeze" / "thaw.json").read_text())
    assert [(p["pid"], p["resume"]) for p in thaw["stopped_processes"]] == [(pid, f"kill -CONT {pid}")]
    assert not host.file("/etc/systemd/system/ledgerguard-freeze-boot.service").exists  # nothing frozen any more


# ----------------------------------------------------------------------------------------------------------------
# 3. Check mode: the plan, and no target touched
# ----------------------------------------------------------------------------------------------------------------


def test_check_mode_changes_nothing(host):
    archive_before = mount_options(host, "/srv/archive")
    incident = f"INC-MOL-CHECK-{secrets.token_hex(3)}"
    rc, results = playbook("freeze.yml", "--check", extra={"ledgerguard_incident_id": incident})
    assert rc == 0, results
    plan = task(results, "Freeze this host's targets")
    assert plan["changed"] is True
    assert [(p["method"], p["action"]) for p in plan["plan"]] == [
        ("service", "freeze"),  # smbd.service
        ("service", "freeze"),
        ("service", "left_alone"),
        ("readonly_bind", "freeze"),
        ("remount_ro", "freeze"),
        ("postgresql", "freeze"),
        ("mariadb", "freeze"),
    ]
    assert host.service("ledger-writer.service").is_running
    assert host.service("smbd.service").is_running
    assert mount_options(host, "/srv/archive") == archive_before
    assert sh(host, "findmnt --mountpoint /srv/data/clients/beta").rc != 0
    assert pg(host, "SHOW default_transaction_read_only").stdout.strip() == "off"
    assert sh(host, "mariadb --batch --skip-column-names -e 'SELECT @@GLOBAL.read_only'").stdout.strip() == "0"
    assert not host.file(f"/var/lib/ledgerguard/freeze/{incident}.json").exists
    assert sh(host, "systemctl list-timers --all --no-legend 'ledgerguard-thaw-*'").stdout.strip() == ""


# ----------------------------------------------------------------------------------------------------------------
# 4. The watchdog for real: freeze, no thaw from any controller, the host thaws by itself
# ----------------------------------------------------------------------------------------------------------------


def test_watchdog_thaws_without_a_controller(host):
    incident = f"INC-MOL-WD-{secrets.token_hex(3)}"
    out = module(
        {
            "incident": incident,
            "max_duration": 12,
            "fsfreeze_max_duration": 6,
            "targets": [
                {"method": "fsfreeze", "path": "/srv/archive"},
                {"method": "readonly_bind", "path": "/srv/data/clients/acme"},
            ],
        }
    )
    assert out["changed"] is True, out
    assert [p["kind"] for p in out["proof"]] == ["fifreeze_ebusy", "write_refused"]
    unit = out["watchdog"]["unit"]
    assert out["watchdog"]["kind"] == "systemd" and unit == f"ledgerguard-thaw-{incident}-1"
    # The controller is done. A write to the frozen archive blocks (not killable) until the watchdog thaws it.
    log = f"/srv/archive/wd-{incident}.log"
    sh(host, f"systemd-run --unit lg-blocked-writer --collect sh -c 'echo after >> {log}'")
    time.sleep(1)
    assert sh(host, "systemctl is-active lg-blocked-writer").stdout.strip() == "active"
    assert sh(host, f"cat {log}").stdout == ""
    deadline = time.time() + 20
    while time.time() < deadline and sh(host, f"cat {log}").stdout != "after\n":
        time.sleep(0.5)
    assert sh(host, f"cat {log}").stdout == "after\n"
    # The client folder's deadline is later: still read-only, then thawed by the re-armed timer.
    assert sh(host, "touch /srv/data/clients/acme/wd").rc != 0
    while time.time() < deadline + 10 and sh(host, "touch /srv/data/clients/acme/wd").rc != 0:
        time.sleep(0.5)
    assert sh(host, "touch /srv/data/clients/acme/wd").rc == 0
    # The watchdog unmounts first, then disarms its timer and writes the registry: wait for that record.
    registry_file = f"/var/lib/ledgerguard/freeze/{incident}.json"
    registry = json.loads(host.file(registry_file).content_string)
    while time.time() < deadline + 20 and registry["targets"]:
        time.sleep(0.5)
        registry = json.loads(host.file(registry_file).content_string)
    assert registry["targets"] == [] and registry["watchdog"] is None
    assert [(r["method"], r["thawed_by"]) for r in registry["released"]] == [
        ("fsfreeze", "watchdog"),
        ("readonly_bind", "watchdog"),
    ]
    journal = sh(host, f"journalctl --no-pager -o cat -u 'ledgerguard-thaw-{incident}-*'").stdout
    assert f"ledgerguard: thaw incident {incident} if no thaw comes" in journal
    assert sh(host, "systemctl list-timers --all --no-legend 'ledgerguard-thaw-*'").stdout.strip() == ""


# ----------------------------------------------------------------------------------------------------------------
# 5. Every refusal, with its message; none changes anything
# ----------------------------------------------------------------------------------------------------------------


REFUSALS = {
    "root": "target 1 (remount_ro /): refusing to freeze '/': a read-only or frozen root filesystem stops the host",
    "state-dir-filesystem": "target fsfreeze /srv/data: refusing to freeze /srv/data: it is the filesystem that "
    "holds the state directory /srv/data/ledgerguard, where the freeze registry and the watchdog live",
    "missing-path": "target 1 (readonly_bind /srv/data/clients/nobody): path /srv/data/clients/nobody does not "
    "exist on this host.",
    "missing-unit": "target service no-such-ledger-app.service: the systemd unit no-such-ledger-app.service does "
    "not exist on this host (LoadState=not-found).",
    "not-a-mount-point": "target remount_ro /srv/data/clients: /srv/data/clients is not a mount point;",
}


@pytest.fixture(scope="module")
def refusals(host):
    """Run molecule/write_freeze/refusals.yml once; its task results by task name (and the cases by id)."""
    data_before = mount_options(host, "/srv/data")
    argv = [
        "ansible-playbook",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(Path(__file__).parents[1] / "refusals.yml"),
    ]
    proc = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    results = host_results(proc.stdout)
    assert mount_options(host, "/srv/data") == data_before
    assert not host.file("/var/lib/ledgerguard/freeze/INC-MOL-3.json").exists
    assert not host.file("/srv/data/ledgerguard/freeze/INC-MOL-3.json").exists
    out = {r["task"]: r for r in results}
    out["cases"] = {r["item"]["id"]: r for r in task(results, "Try each refused freeze")["results"]}
    return out


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals(refusals, case):
    result = refusals["cases"][case]
    assert result["failed_when_result"] is False  # refused: the playbook's failed_when turns a refusal into success
    assert result["changed"] is False
    assert result["msg"].startswith(REFUSALS[case]), result["msg"]


def test_refusal_when_another_incident_holds_the_target(host, refusals):
    assert refusals["Hold the clients folder under another incident"]["changed"] is True
    result = refusals["Try to freeze a folder inside it under a second incident"]
    assert result["failed_when_result"] is False and result["changed"] is False
    assert result["msg"].startswith(
        "target beta under INC-MOL-3: incident INC-MOL-2 already holds readonly_bind /srv/data/clients (frozen "
    )
    assert result["msg"].endswith("Thaw incident INC-MOL-2 first, or continue the work under that incident.")
    released = refusals["Thaw the other incident again"]
    assert released["changed"] is True
    assert [(t["name"], t["action"]) for t in released["targets"]] == [("readonly_bind /srv/data/clients", "thawed")]
    assert sh(host, "findmnt --mountpoint /srv/data/clients").rc != 0
    assert sh(host, "touch /srv/data/clients/beta/after-refusal").rc == 0
