"""Issue 13 items 1, 2, 7 and 8 through real playbooks: books under a Chinese folder behind a real read-only bind mount,
a re-run after a client failed past its swap, hostile nodes (FIFO, device, link to /etc) in the damaged tree, and a
planted work folder. Real restic, the moto S3 server, ansible-runner; assertions on bytes of the trees."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_incident import Site, evidence_dir, failed_msgs, sha, tree

from conftest import failed_messages, task_result
from ledgerguard import sampledata
from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts, mknod and root-owned work folders need root")

NOW = dt.datetime.now()


def mounted(path: Path) -> bool:
    return os.fsencode(str(path)) in Path("/proc/self/mountinfo").read_bytes()


def run_site(site: Site, **extravars):
    """Site.run with a task timeout: a task that blocks (a FIFO opened) fails the run instead of hanging the suite."""
    run = PlaybookRun(
        playbook="incident_respond.yml",
        private_data_dir=site.base / "runner",
        inventory=str(site.inventory()),
        extravars=site.extravars(**extravars),
    )
    return run_playbook(run, extra_env={"ANSIBLE_TASK_TIMEOUT": "300"})


def new_site(base: Path, s3_server) -> Site:
    bucket = "lg-swap-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    base.mkdir(parents=True, exist_ok=True)
    site = Site(base, s3_server, bucket)
    site.restic("init")
    return site


def report_of(site: Site) -> dict:
    return json.loads((evidence_dir(site) / "report.json").read_text(encoding="utf-8"))


# -- item 1: a read-only bind mount over a Chinese folder name ---------------------------------------------------------

SWAP_PLAY = """
- name: Swap one client
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Swap the restored files into place
      ledgerguard.recovery.restore_swap:
        paths: ["{{ live }}"]
        staging: "{{ staging }}"
        quarantine: "{{ quarantine }}"
        snapshot_time: "2026-11-25T02:00:00Z"
"""


def test_swap_under_a_chinese_folder_frozen_by_a_readonly_bind(tmp_path, localhost_inventory, playbook):
    root = tmp_path / "客户账套"
    live = root / "C001"
    (live / "凭证").mkdir(parents=True)
    (live / "凭证" / "2026-09.csv").write_text("期间,凭证号\n2026-09,1\n", encoding="utf-8")
    staging = root / ".ledgerguard-INC-1" / "staging" / "C001" / "run1"
    shutil.copytree(live, staging / str(live).lstrip("/"))
    (live / "凭证" / "2026-09.csv").rename(live / "凭证" / "2026-09.csv.locked")
    play = tmp_path / "swap.yml"
    play.write_text(SWAP_PLAY, encoding="utf-8")
    # The readonly_bind freeze: the folder bind-mounted on itself, read-only.
    subprocess.run(["mount", "--bind", str(live), str(live)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(live)], check=True)
        assert mounted(live)
        with pytest.raises(OSError):
            (live / "probe").write_text("x")
        runner = playbook(
            str(play),
            inventory=localhost_inventory(),
            extravars={
                "live": str(live),
                "staging": str(staging),
                "quarantine": str(root / ".ledgerguard-INC-1" / "quarantine" / "C001"),
            },
        )
        assert runner.rc == 0, failed_messages(runner)
        result = task_result(runner, "Swap the restored files into place")
        assert result["detached_mounts"] == [str(live)]
        assert result["restored"] == [str(live / "凭证" / "2026-09.csv")]
        # Everyone else still sees the frozen (read-only) view, which shows the swapped files.
        assert mounted(live)
        assert (live / "凭证" / "2026-09.csv").read_text(encoding="utf-8") == "期间,凭证号\n2026-09,1\n"
        assert not (live / "凭证" / "2026-09.csv.locked").exists()
    finally:
        subprocess.run(["umount", "-l", str(live)], check=False)


# -- item 7: a FIFO, a device node and links to /etc in the damaged tree, books under a Chinese path ------------------


def test_incident_with_fifo_device_and_etc_link_in_the_damaged_tree(tmp_path, s3_server):
    site = new_site(tmp_path / "客户账套", s3_server)
    site.backup(NOW - dt.timedelta(days=1))
    c001 = site.root("c001")
    clean = tree(c001)
    # The damage: a voucher file replaced by a FIFO, a new FIFO, a device node, links to /etc. (The new FIFO and link
    # are not named *.csv: ledger_verify, which reads the client's CSV files after the swap, is not this test's.)
    victim = c001 / "凭证" / "2026-09.csv"
    victim.unlink()
    os.mkfifo(victim)
    os.mkfifo(c001 / "凭证" / "pipe.dat")
    os.mknod(c001 / "账簿" / "null.dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.symlink("/etc", c001 / "etc")
    os.symlink("/etc/passwd", c001 / "凭证" / "passwd.txt")
    etc_before = {p: os.lstat(os.path.join("/etc", p)).st_mtime_ns for p in os.listdir("/etc")}
    runner = run_site(site, incident_clients=["c001"], incident_cause="deleted")
    assert runner.rc == 0, failed_msgs(runner)
    assert {p: os.lstat(os.path.join("/etc", p)).st_mtime_ns for p in os.listdir("/etc")} == etc_before
    assert sha(victim) == clean["凭证/2026-09.csv"]
    [client] = report_of(site)["clients"]
    assert client["status"] == "ok"
    moved = {q["path"]: q for q in client["quarantined"]}
    assert moved[str(victim)]["reason"] == "a fifo stands where the snapshot has a file"
    assert stat.S_ISFIFO(os.lstat(moved[str(victim)]["to"]).st_mode)
    kept = {k["path"]: k.get("type") for k in client["kept_new"]}
    assert kept[str(c001 / "凭证" / "pipe.dat")] == "fifo"
    assert kept[str(c001 / "账簿" / "null.dev")] == "char device"
    assert kept[str(c001 / "etc")] == "symlink" and os.readlink(c001 / "etc") == "/etc"
    for rel, digest in clean.items():
        assert sha(c001 / rel) == digest, rel


# -- item 2: a re-run after the client failed past its swap keeps users' edits ----------------------------------------


def test_rerun_after_a_failure_past_the_swap_keeps_users_edits(tmp_path, s3_server):
    site = new_site(tmp_path / "site", s3_server)
    # c001's books hold an unbalanced voucher: ledger_verify fails the client after the swap.
    shutil.rmtree(site.root("c001"))
    sampledata.make_client_tree(
        site.books,
        "c001",
        site.clients[0]["name"],
        periods=("2026-09", "2026-10"),
        vouchers_per_period=8,
        pdfs=2,
        seed=1,
        unbalanced=[("2026-09", 3)],
    )
    site.backup(NOW - dt.timedelta(days=1))
    victim = site.root("c001") / "凭证" / "2026-10.csv"
    victim.unlink()  # the loss
    incident_id = f"INC-{NOW:%Y%m%d}-9{secrets.randbelow(90) + 10}"
    # The ledger check on the staging copy (restore_ledger_check_before_swap) would stop the client before the swap;
    # this test is about a failure past it.
    past_swap = {"restore_ledger_check_before_swap": False}
    first = run_site(
        site, incident_clients=["c001"], incident_cause="deleted", ledgerguard_incident_id=incident_id, **past_swap
    )
    assert first.rc != 0
    [client] = report_of(site)["clients"]
    assert client["status"] == "failed", client
    assert client["failed_task"] == "Check the restored books (vouchers balance, no gaps)", client
    assert victim.is_file()  # swapped in before the ledger check failed
    marker = site.state / "incidents" / incident_id / "restore" / "c001.swapped.json"
    assert json.loads(marker.read_text(encoding="utf-8"))["restored"] == 1
    # Writes are thawed: a user edits the restored file in place (same inode, as SQLite or an editor saving in place).
    with open(victim, "ab") as handle:
        handle.write("2026-10,记,99,2026-10-31,1,补录 用户的修改,1001,库存现金,5.00,\n".encode())
    edited = sha(victim)
    again = run_site(
        site, incident_clients=["c001"], incident_cause="deleted", ledgerguard_incident_id=incident_id, **past_swap
    )
    assert again.rc != 0  # the ledger still has its unbalanced voucher
    assert sha(victim) == edited, "the user's edit was overwritten by the re-run"
    stagings = sorted((site.books / f".ledgerguard-{incident_id}" / "staging" / "c001").iterdir())
    assert len([p for p in stagings if p.is_dir()]) == 2  # one fresh staging folder per run


# -- item 8: a planted work folder ------------------------------------------------------------------------------------


PLANTED = {"c001": "symlink", "c002": "other-owner"}  # client: how its work folder was planted


def test_planted_work_folder_stops_the_client(tmp_path, s3_server):
    """Both kinds of planted work folder in one incident (two runs instead of two per kind): the work folder lives
    beside the client's folder, so c002 is moved to a books folder of its own and each client gets its own planted
    folder: a symlink to the attacker's folder (c001) and a folder of another owner (c002)."""
    site = new_site(tmp_path / "site", s3_server)
    books_b = site.base / "books-b"
    shutil.rmtree(site.root("c002"))
    made = sampledata.make_client_tree(
        books_b, "c002", site.clients[1]["name"], periods=("2026-09", "2026-10"), vouchers_per_period=8, pdfs=2, seed=2
    )
    site.clients[1] = dict(made["client"], priority=site.clients[1]["priority"])
    root = {"c001": site.root("c001"), "c002": books_b / "c002"}
    stamp = (NOW - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    site.restic("backup", "--host", "localhost", "--time", stamp, str(site.books), str(books_b))
    victim = {cid: root[cid] / "凭证" / "2026-09.csv" for cid in PLANTED}
    for path in victim.values():
        path.unlink()
    damaged = {cid: tree(root[cid]) for cid in PLANTED}
    incident_id = f"INC-{NOW:%Y%m%d}-8{secrets.randbelow(90) + 10}"
    work = {cid: root[cid].parent / f".ledgerguard-{incident_id}" for cid in PLANTED}
    attacker = {cid: tmp_path / f"attacker-{cid}" for cid in PLANTED}
    for cid, planted in PLANTED.items():
        attacker[cid].mkdir()
        fake = {"id": cid, "name": "x", "priority": 10, "host": "localhost", "status": "ok", "paths": [], "why": ""}
        if planted == "symlink":
            os.symlink(attacker[cid], work[cid])
            (attacker[cid] / f"{cid}.done.json").write_text(json.dumps(fake))
        else:
            work[cid].mkdir()
            (work[cid] / f"{cid}.done.json").write_text(json.dumps(fake))
            os.chown(work[cid], 1000, 1000)
    clients = list(PLANTED)
    runner = run_site(site, incident_clients=clients, incident_cause="deleted", ledgerguard_incident_id=incident_id)
    assert runner.rc != 0
    reported = {c["id"]: c for c in report_of(site)["clients"]}
    assert sorted(reported) == clients
    for cid, planted in PLANTED.items():
        client = reported[cid]
        assert client["status"] == "failed" and not client.get("resumed"), client
        assert f"{work[cid]} exists but is not ledgerguard's own folder" in client["msg"]
        assert "move it aside for inspection" in client["msg"]
        assert tree(root[cid]) == damaged[cid]  # nothing swapped
        expected = [f"{cid}.done.json"] if planted == "symlink" else []
        assert sorted(p.name for p in attacker[cid].iterdir()) == expected, planted
    # Moved aside, the same incident restores.
    for path in work.values():
        path.rename(path.with_name(path.name + ".suspect"))
    again = run_site(site, incident_clients=clients, incident_cause="deleted", ledgerguard_incident_id=incident_id)
    assert again.rc == 0, failed_msgs(again)
    for cid in PLANTED:
        st = os.lstat(work[cid])
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700
        assert victim[cid].is_file()
        assert (site.state / "incidents" / incident_id / "restore" / f"{cid}.done.json").is_file()
        assert not (work[cid] / f"{cid}.done.json").exists()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
