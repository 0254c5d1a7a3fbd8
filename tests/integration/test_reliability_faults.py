"""Reliability under real faults (issue 7): the incident path when S3 dies, the disk fills, the controller is killed.

Every test drives playbooks/incident_respond.yml through ansible-runner against real restic and the moto S3 server,
injects the fault for real (a TCP proxy that is cut, a loop-device filesystem that is full, SIGKILL of the
ansible-playbook process group) and asserts the state afterwards: bytes of the live trees, the freeze registry, the
mount table, the repository, the evidence. See docs/reliability.md for the table these tests prove.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import damage_pack
from receivers import WebhookReceiver
from test_incident import Site, evidence_dir, failed_msgs, sha, tree
from test_incident_failures import Proxy

from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")


# The first task after every host froze: state_snapshot's argument-spec check (on the controller; the linear strategy
# starts it once the freeze and its rollback check ran on every host).
AFTER_FREEZE_TASK = (
    "Validating arguments against arg spec 'main' - Back up the damaged state and collect the host's state bundle into "
    "the evidence folder"
)


def try_write(path: Path) -> int:
    """0 when a file can be created in the folder path, else the errno."""
    try:
        with open(path / ".lg-write-probe", "w", encoding="utf-8") as fh:
            fh.write("x")
        os.unlink(path / ".lg-write-probe")
    except OSError as exc:
        return exc.errno
    return 0


def mounted_below(root: Path) -> list[str]:
    prefix = str(root) + "/"
    out = []
    for line in os.fsdecode(Path("/proc/self/mountinfo").read_bytes()).splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(prefix):
            out.append(point)
    return out


def proxied_site(tmp_path: Path, s3_server, bucket_prefix: str) -> tuple[Site, Proxy]:
    bucket = bucket_prefix + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path, s3_server, bucket)
    site.restic("init")
    proxy = Proxy(s3_server.port).start()
    site.direct_repo = site.repo
    site.repo = f"s3:http://127.0.0.1:{proxy.port}/{bucket}/restic"
    return site, proxy


def direct_snapshots(site: Site, *tags: str) -> list[dict]:
    """The repository's snapshots read past the proxy (which a test may have cut)."""
    out = site.restic("snapshots", "--json", f"--tag={','.join(tags)}", repo=site.direct_repo)
    return json.loads(out.stdout) or []


# ----------------------------------------------------------------------------------------------------------------------
# S3 lost in the middle of the pre-restore snapshot (the S3-lost-mid-restore case is test_incident_failures.py)
# ----------------------------------------------------------------------------------------------------------------------


def test_s3_lost_mid_pre_restore_snapshot_then_rerun(tmp_path, s3_server):
    site, proxy = proxied_site(tmp_path, s3_server, "lg-rel-pre-")
    site.backup(dt.datetime.now() - dt.timedelta(days=1))
    clean = tree(site.root("c001"))
    # Make the pre-restore backup long enough to be cut in the middle: 24 MiB of incompressible "scans".
    big = site.root("c001") / "扫描件" / "big-scan.pdf"
    big.write_bytes(os.urandom(24 * 1024 * 1024))
    victim = site.root("c001") / "凭证" / "2026-09.csv"
    victim.unlink()
    damaged = tree(site.root("c001"))
    cut = {}

    def cut_s3_during_backup(event: dict) -> bool:
        task = event.get("event_data", {}).get("task", "")
        if event.get("event") == "playbook_on_task_start" and task == "Back up the affected paths as they are now":
            timer = threading.Timer(1.0, lambda: (proxy.stop(), cut.setdefault("at", time.time())))
            timer.start()
        return True

    first = site.run(handler=cut_s3_during_backup, incident_clients=["c001"], incident_cause="deleted")
    assert first.rc != 0
    assert "at" in cut, "the proxy was never cut: the pre-restore backup task did not start"
    msgs = " | ".join(failed_msgs(first))
    assert "Cannot reach the backend of restic repository" in msgs and f"127.0.0.1:{proxy.port}" in msgs, msgs
    ev = evidence_dir(site)
    incident_id = ev.name
    report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed"
    assert report["summary"]["all_thawed"] is True
    assert str(site.books) not in os.fsdecode(Path("/proc/self/mountinfo").read_bytes())  # thawed
    assert try_write(site.root("c001")) == 0
    # Nothing was restored, swapped or quarantined: the live tree is exactly the damaged one, no work folder exists.
    assert tree(site.root("c001")) == damaged
    assert not any(site.books.glob(".ledgerguard-*/quarantine/*"))
    assert not any(site.books.glob(".ledgerguard-*/staging/*"))
    assert json.loads((site.state / "incident.lock").read_text())["incident_id"] == incident_id
    assert direct_snapshots(site, incident_id, "pre-restore") == []  # the cut backup left no half snapshot

    # S3 back on the same port: the re-run keeps the damaged state once, restores and releases the lock.
    proxy = Proxy(s3_server.port, port=proxy.port).start()
    try:
        # The cut backup may leave its lock behind (restic could not reach the backend to remove it). Its holder is
        # gone, so the operator allows ledgerguard to remove a lock that is provably stale and a few seconds old.
        again = site.run(
            incident_clients=["c001"],
            incident_cause="deleted",
            ledgerguard_incident_id=incident_id,
            ledgerguard_stale_lock_age=1,
        )
        assert again.rc == 0, failed_msgs(again)
    finally:
        proxy.stop()
    assert sha(victim) == clean[str(victim.relative_to(site.root("c001")))]
    for rel, digest in clean.items():
        assert sha(site.root("c001") / rel) == digest
    # The new, random-looking file is not in the snapshot: it looks encrypted, so it went to quarantine, intact.
    [kept] = list(site.books.glob(f".ledgerguard-{incident_id}/quarantine/c001/**/big-scan.pdf"))
    assert sha(kept) == damaged["扫描件/big-scan.pdf"]
    assert len(direct_snapshots(site, incident_id, "pre-restore")) == 1
    check = site.restic("check", repo=site.direct_repo)
    assert "no errors were found" in check.stdout
    report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "restored"
    assert not (site.state / "incident.lock").exists()


# ----------------------------------------------------------------------------------------------------------------------
# The restore target's filesystem is full (a 24 MiB ext4 loop filesystem made here)
# ----------------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def loop_filesystem(image: Path, mountpoint: Path, size_mib: int):
    """A fresh ext4 on a loop device at mountpoint; always unmounted and detached afterwards."""
    with open(image, "wb") as fh:
        fh.truncate(size_mib * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, capture_output=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True, capture_output=True)
    try:
        yield mountpoint
    finally:
        for point in sorted(mounted_below(mountpoint), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        for line in subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout.splitlines():
            if str(image) in line:
                subprocess.run(["losetup", "-d", line.split(":")[0]], capture_output=True, check=False)


def test_target_filesystem_full(tmp_path, s3_server):
    base = tmp_path / "site"
    base.mkdir()
    with loop_filesystem(tmp_path / "books.img", base / "books", 24):
        bucket = "lg-rel-full-" + secrets.token_hex(4)
        s3_server.create_bucket(bucket)
        site = Site(base, s3_server, bucket)
        site.restic("init")
        big = site.root("c001") / "扫描件" / "年度汇总.pdf"
        big.write_bytes(os.urandom(6 * 1024 * 1024))
        site.backup(dt.datetime.now() - dt.timedelta(days=1))
        snapshot_bytes = sum(p.stat().st_size for p in site.root("c001").rglob("*") if p.is_file())
        clean = tree(site.root("c001"))
        # Ransomware-like damage in place (same size), then fill the filesystem until 1 MiB is left.
        big.write_bytes(os.urandom(6 * 1024 * 1024))
        ledger = site.root("c001") / "账簿" / "ledger.sqlite"
        ledger.write_bytes(os.urandom(ledger.stat().st_size))
        st = os.statvfs(site.books)
        with open(site.books / "filler.bin", "wb") as fh:
            fh.write(b"\0" * max(st.f_bavail * st.f_frsize - 1024 * 1024, 0))
        damaged = tree(site.root("c001"))
        others = {cid: tree(site.root(cid)) for cid in ("c002", "c003")}

        runner = site.run(incident_clients=["c001"], incident_cause="ransomware")
        assert runner.rc != 0
        msgs = " | ".join(failed_msgs(runner))
        ev = evidence_dir(site)
        report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
        client = report["clients"][0]
        assert client["status"] == "failed"
        assert client["failed_task"].startswith("Restore the chosen snapshot into staging")
        staging = f"{site.books}/.ledgerguard-{ev.name}/staging/c001"
        assert f"Out of space on the restore target {staging}" in client["msg"]
        # How much was needed: the selection's size (restic_restore's pre-check says "needs N bytes"; when restic
        # itself runs out of space first the message says "The selection holds N bytes").
        assert f"needs {snapshot_bytes} bytes" in client["msg"] or f"holds {snapshot_bytes} bytes" in client["msg"]
        assert "no space left on device" in client["msg"]
        assert "client c001 failed" in msgs
        # Nothing swapped in, the damaged originals untouched (kept for forensics), nothing quarantined, thawed.
        assert tree(site.root("c001")) == damaged
        assert {cid: tree(site.root(cid)) for cid in ("c002", "c003")} == others
        # Whatever restic wrote before the disk was full stays in staging (ours); none of it was swapped in.
        assert not any(site.books.glob(".ledgerguard-*/quarantine/*"))
        assert report["summary"]["all_thawed"] is True
        assert mounted_below(site.books) == [str(site.books)]  # only the loop filesystem itself, no bind left
        assert try_write(site.root("c001")) == errno.ENOSPC  # writable again (not EROFS), only still full
        # Free the space: the re-run of the same incident restores.
        (site.books / "filler.bin").unlink()
        again = site.run(incident_clients=["c001"], incident_cause="ransomware", ledgerguard_incident_id=ev.name)
        assert again.rc == 0, failed_msgs(again)
        quarantine = site.books / f".ledgerguard-{ev.name}" / "quarantine" / "c001"
        # The ledger (header lost) was replaced, its damaged copy kept in quarantine.
        assert sha(ledger) == clean["账簿/ledger.sqlite"]
        assert sha(next(quarantine.rglob("ledger.sqlite"))) == damaged["账簿/ledger.sqlite"]
        # The random-looking PDF rewritten after the snapshot cannot be told from new work (its snapshot version is
        # random too): it is kept in place and listed for review, or replaced with its copy in quarantine.
        report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
        if sha(big) == damaged["扫描件/年度汇总.pdf"]:
            assert str(big) in [e["path"] for e in report["files_to_review"]]
        else:
            assert sha(big) == clean["扫描件/年度汇总.pdf"]
            assert sha(next(quarantine.rglob("年度汇总.pdf"))) == damaged["扫描件/年度汇总.pdf"]
        assert report["status"] == "restored"
    assert mounted_below(base / "books") == []


# ----------------------------------------------------------------------------------------------------------------------
# The controller is killed while the host is frozen: the watchdog thaws, a later thaw is a no-op that says so
# ----------------------------------------------------------------------------------------------------------------------


def ansible_playbook_pids(marker: str) -> list[int]:
    out = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"ansible-playbook") for a in args) and any(marker.encode() in a for a in args):
            out.append(int(cmdline.parent.name))
    return out


def test_controller_killed_while_frozen(tmp_path, s3_server):
    bucket = "lg-rel-kill-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path, s3_server, bucket)
    site.restic("init")
    site.backup(dt.datetime.now() - dt.timedelta(days=1))
    (site.root("c002") / "凭证" / "2026-10.csv").unlink()
    before = {cid: tree(site.root(cid)) for cid in ("c001", "c002", "c003")}
    killed = {}
    max_duration = 25

    def kill_controller(event: dict) -> bool:
        data = event.get("event_data", {})
        # The first result of the first task after the freeze (writes stopped on every host).
        if event.get("event") == "runner_on_ok" and data.get("task") == AFTER_FREEZE_TASK and not killed:
            frozen = [try_write(site.root(cid)) for cid in ("c001", "c002", "c003")]
            for pid in ansible_playbook_pids(str(site.state)):
                with contextlib.suppress(ProcessLookupError):
                    pgid = os.getpgid(pid)
                    if pgid != os.getpgid(0):
                        os.killpg(pgid, signal.SIGKILL)
                        killed[pid] = pgid
            killed["frozen"] = frozen
            killed["at"] = time.time()
        return True

    site.run(handler=kill_controller, incident_clients=["c001", "c002", "c003"], write_freeze_max_duration=max_duration)
    assert killed.get("at"), "the controller was not killed"
    assert killed["frozen"] == [errno.EROFS] * 3, "the client folders were not frozen when the controller died"
    registry = next((site.state / "freeze").glob("INC-*.json"))
    incident_id = registry.stem
    # Right after the kill the host is still frozen (no thaw came), then the watchdog thaws it by its deadline.
    assert try_write(site.root("c001")) == errno.EROFS
    deadline = killed["at"] + max_duration + 30
    while time.time() < deadline and any(try_write(site.root(c)) for c in ("c001", "c002", "c003")):
        time.sleep(1)
    assert [try_write(site.root(c)) for c in ("c001", "c002", "c003")] == [0, 0, 0], "the watchdog did not thaw"
    assert mounted_below(site.books) == []
    reg = json.loads(registry.read_text())
    assert reg["targets"] == []
    assert {r["thawed_by"] for r in reg["released"]} == {"watchdog"}
    assert len(reg["released"]) == 3
    assert {cid: tree(site.root(cid)) for cid in ("c001", "c002", "c003")} == before  # nothing lost or half-swapped

    # A later thaw (what the operator runs next) changes nothing and says so.
    inventory = site.inventory()
    thaw = run_playbook(
        PlaybookRun(
            playbook="thaw.yml",
            private_data_dir=tmp_path / "runner-thaw",
            inventory=str(inventory),
            extravars={
                "ledgerguard_incident_id": incident_id,
                "ledgerguard_state_dir": str(site.state),
                "ledgerguard_become": False,
                "ledgerguard_evidence_dir": str(site.evidence),
            },
        )
    )
    assert thaw.rc == 0
    res = [
        ev["event_data"]["res"]
        for ev in thaw.events
        if ev.get("event") == "runner_on_ok"
        and ev["event_data"].get("task") == "Thaw the incident's targets on this host"
    ][0]
    assert res["changed"] is False
    assert res["msg"].startswith(f"Nothing to thaw: every target of incident {incident_id} on this host was already")
    assert "thawed by watchdog" in res["msg"] and str(site.root("c001")) in res["msg"]


# ----------------------------------------------------------------------------------------------------------------------
# A pack the newest clean snapshot needs is damaged or lost: the restore point moves to an older intact snapshot
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["corrupted", "deleted"])
def test_damaged_pack_moves_restore_point_to_older_snapshot(tmp_path, s3_server, fault):
    site = Site(tmp_path, s3_server, "unused")
    site.repo = str(tmp_path / "repo")  # a local repository: the test edits its pack files directly
    site.restic("init")
    now = dt.datetime.now()
    older = site.backup(now - dt.timedelta(days=2))
    older_tree = tree(site.root("c001"))
    packs_before = {p for p in (tmp_path / "repo" / "data").rglob("*") if p.is_file()}
    # New work after the older snapshot (plain text, so the swap keeps it in place as legitimate new work).
    extra = site.root("c001") / "扫描件" / "2026-11-补充说明.txt"
    rows = [
        f"{n},{secrets.randbelow(10**12)},{secrets.randbelow(10**6)}.{secrets.randbelow(100):02d}"
        for n in range(80_000)
    ]
    extra.write_text("\n".join(rows) + "\n", encoding="utf-8")
    newer = site.backup(now - dt.timedelta(days=1))
    new_packs = sorted(
        (p for p in (tmp_path / "repo" / "data").rglob("*") if p.is_file() and p not in packs_before),
        key=lambda p: p.stat().st_size,
    )
    victim = new_packs[-1]  # the new file's data
    damage_pack(victim, fault)
    lost = site.root("c001") / "凭证" / "2026-09.csv"
    lost.unlink()
    extra_sha = sha(extra)

    if fault == "deleted":
        # A pin on the snapshot that needs the lost pack: the client fails naming the snapshot and the pack; nothing
        # was restored (the lost file is still lost), writes thawed.
        pinned = site.run(
            incident_clients=["c001"], incident_cause="deleted", incident_pinned_snapshots={"c001": newer}
        )
        assert pinned.rc != 0
        msgs = " | ".join(failed_msgs(pinned))
        assert (
            f"pinned snapshot {newer[:8]} " in msgs
            and f"cannot be restored: the repository lost data it needs (lost pack: {victim.name})" in msgs
        ), msgs
        assert not lost.exists()
        assert sha(extra) == extra_sha  # the newer work is untouched
        report = json.loads((evidence_dir(site) / "report.json").read_text(encoding="utf-8"))
        assert report["clients"][0]["status"] == "failed" and report["summary"]["all_thawed"] is True
        incident_id = evidence_dir(site).name
        # Without the pin, and with the quick check left on (incident_backup_check defaults to true): the check finds
        # the deleted pack, restic find --pack names the snapshot that needs it, that snapshot is skipped before the
        # choice (no restore attempt, no 45 s of restic retries) and the older intact one is restored.
        runner = site.run(incident_clients=["c001"], incident_cause="deleted", ledgerguard_incident_id=incident_id)
    else:
        # A damaged pack passes the quick check (no data is read); restic restore --verify finds it.
        runner = site.run(incident_clients=["c001"], incident_cause="deleted")
    assert runner.rc == 0, failed_msgs(runner)
    ev = evidence_dir(site)
    report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
    [client] = report["clients"]
    assert client["status"] == "ok"
    assert client["snapshot"]["id"] == older_id(site, older)
    [unusable] = [s for s in client["skipped"] if s["id"] == older_id(site, newer)]
    if fault == "deleted":
        assert unusable["unusable"] is True and unusable["lost_packs"] == [victim.name]
        assert unusable["reasons"][0].startswith(f"needs pack {victim.name}, which the repository lost (")
        assert f"restic check: pack {victim.name}: does not exist" in unusable["reasons"][0]
        assert "newer snapshot" in client["why"] and "skipped" in client["why"]
        # The report shows the repository damage first: the lost pack, what restic said, the skipped snapshot.
        damage = report["repository_damage"]
        assert report["summary"]["repository_damaged"] is True
        assert [p["id"] for p in damage["lost_packs"]] == [victim.name]
        assert damage["errors"] == [f"pack {victim.name}: does not exist"]
        # restic also names the incident's own pre-restore snapshots: restic deduplicates, so the untouched newer file
        # in them refers to the same lost data (the damaged state kept for forensics lacks that file's content).
        pre_restore = {s["id"] for s in site.snapshots("pre-restore")}
        assert pre_restore and {s["id"] for s in damage["damaged_snapshots"]} == {older_id(site, newer)} | pre_restore
        assert damage["located"] is True and damage["skipped_by_clients"] == {newer[:8]: ["localhost/c001"]}
        md = (ev / "report.md").read_text(encoding="utf-8")
        assert md.index("## Repository damage") < md.index("## Clients")
        assert f"Lost pack `{victim.name}`" in md and f"Snapshot `{newer[:8]}`" in md
        assert "skipped for localhost/c001" in md
        assert "Repository damage" in (ev / "report.html").read_text(encoding="utf-8")
        # No restore of the newer snapshot was even tried.
        restores = [
            ev_["event_data"]["res"]
            for ev_ in runner.events
            if ev_.get("event") in ("runner_on_ok", "runner_on_failed")
            and ev_["event_data"].get("task", "").startswith("Restore the chosen snapshot into staging")
        ]
        assert len(restores) == 1 and not restores[0].get("failed")
    else:
        assert unusable["reasons"][0].startswith(f"Snapshot {newer[:8]} cannot be restored from restic repository")
        assert "was skipped: the repository lost data it needs" in client["why"]
        assert not report["repository_damage"] and report["summary"]["repository_damaged"] is False
    assert sha(lost) == older_tree["凭证/2026-09.csv"]
    assert sha(extra)  # the newer file was never lost: it stayed in place
    for rel, digest in older_tree.items():
        assert sha(site.root("c001") / rel) == digest


def test_s3_lost_at_the_repository_check_stops_with_the_endpoint(tmp_path, s3_server):
    """A check that cannot run is not repository damage: the incident stops there with restic's classified message."""
    site, proxy = proxied_site(tmp_path, s3_server, "lg-rel-chk-")
    site.backup(dt.datetime.now() - dt.timedelta(days=1))
    victim = site.root("c001") / "凭证" / "2026-09.csv"
    victim.unlink()
    damaged = tree(site.root("c001"))
    check_task = "Check the repository before trusting it (quick pass, no data read)"

    def cut_s3_at_check(event: dict) -> bool:
        if event.get("event") == "playbook_on_task_start" and event.get("event_data", {}).get("task") == check_task:
            proxy.stop()
        return True

    # The on-call lead's channel (issue 16): the step that failed reaches a person from the rescue path.
    hooks = WebhookReceiver()
    oncall = [
        {"name": "张伟", "role": "lead", "channels": [{"kind": "generic", "url": f"http://127.0.0.1:{hooks.port}/h"}]}
    ]
    try:
        runner = site.run(
            handler=cut_s3_at_check, incident_clients=["c001"], incident_cause="deleted", ledgerguard_oncall=oncall
        )
    finally:
        proxy.stop()
    assert runner.rc != 0
    failed = [ev["event_data"] for ev in runner.events if ev.get("event") == "runner_on_failed"]
    assert [f["task"] for f in failed][0] == check_task, [f["task"] for f in failed]
    msg = failed[0]["res"]["msg"]
    assert msg.startswith(f"Cannot reach the backend of restic repository {site.repo}: 127.0.0.1:{proxy.port} ("), msg
    report = json.loads((evidence_dir(site) / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed"
    [host] = report["hosts"]
    assert host["failed_step"] == check_task and host["failed_msg"] == msg
    ev = evidence_dir(site)
    assert [p["body"]["data"]["milestone"] for p in hooks.posts] == ["declare", "failure", "end"]
    failure = hooks.posts[1]["body"]
    assert (failure["title"], failure["status"]) == (f"事故 {ev.name}：步骤失败，需人工处理", "FAIL")
    assert f"- localhost：步骤「{check_task}」失败：{msg}\n" in failure["text"], failure["text"]
    assert failure["text"].endswith(
        f"解冻和报告仍会执行；主机锁保留，修复后用 ledgerguard_incident_id={ev.name} 重新运行。"
        f"报告：{ev / 'report.html'}\n"
    )
    records = [json.loads(line) for line in (ev / "oncall.jsonl").read_text(encoding="utf-8").splitlines()]
    [record] = [r for r in records if r["milestone"] == "failure"]
    assert (record["person"], record["channel"], record["status"]) == ("张伟", "generic", "ok")
    assert record["text_sha256"] == hashlib.sha256(failure["text"].encode("utf-8")).hexdigest()
    assert not report["repository_damage"]
    assert report["summary"]["all_thawed"] is True
    assert tree(site.root("c001")) == damaged  # nothing restored or swapped
    assert not any(site.books.glob(".ledgerguard-*/staging/*"))


def older_id(site: Site, short_or_full: str) -> str:
    [snap] = [s for s in site.snapshots() if s["id"].startswith(short_or_full)]
    return snap["id"]
