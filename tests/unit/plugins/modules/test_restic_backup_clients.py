"""restic_backup with ``clients`` (issue 15: every client of a host in one module run) against a real restic in a
local repository: one snapshot per client with its tags and manifest, a failing client reported by name while the
others are backed up, the incident lock stopping the run between clients, check mode, bad input, and the host's
backup lock taken by the run itself (held while it backs up, given back or kept for later steps, refused)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ledgerguard.recovery.plugins.module_utils import backup_lock
from conftest import flock_free

RESTIC = shutil.which("restic")
pytestmark = pytest.mark.skipif(RESTIC is None, reason="restic is not installed")
PASSWORD = "单元测试 password"
MANIFEST_TAG = "ledgerguard-manifest"


@pytest.fixture
def site(tmp_path):
    """A fresh repository and three client folders with Chinese names."""
    repo = tmp_path / "repo"
    env = dict(os.environ, RESTIC_REPOSITORY=str(repo), RESTIC_PASSWORD=PASSWORD, RESTIC_CACHE_DIR=str(tmp_path / "c"))
    subprocess.run([RESTIC, "init"], env=env, check=True, capture_output=True)
    roots = {}
    for cid in ("c001", "c002", "c003"):
        root = tmp_path / "账套" / cid
        (root / "凭证").mkdir(parents=True)
        (root / "凭证" / "2026-11.csv").write_text(f"科目,金额\n1001,{cid}\n", encoding="utf-8")
        (root / "scratch.tmp").write_text("scratch")
        roots[cid] = root

    def snapshots() -> list[dict]:
        out = subprocess.run([RESTIC, "snapshots", "--json"], env=env, check=True, capture_output=True).stdout
        return json.loads(out or b"[]")

    return {"repo": str(repo), "env": env, "roots": roots, "snapshots": snapshots, "tmp": tmp_path}


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    module = importlib.import_module("ansible_collections.ledgerguard.recovery.plugins.modules.restic_backup")
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def args_for(site, clients: list[dict], **kw) -> dict:
    return {
        "repository": site["repo"],
        "password": PASSWORD,
        "restic_binary": kw.pop("restic_binary", RESTIC),
        "cache_dir": str(site["tmp"] / "c"),
        "clients": clients,
        "host": "books-hz01",
        "tags": ["ledgerguard-backup"],
        **kw,
    }


def client(site, cid: str, **kw) -> dict:
    return {"id": cid, "name": {"c001": "杭州示例贸易", "c002": "宁波示例制造", "c003": "c003"}[cid],
            "paths": [str(site["roots"][cid])], **kw}  # fmt: skip


def test_each_client_its_snapshot_and_manifest_and_a_failed_one_named(site, capsys):
    gone = client(site, "c002", paths=[str(site["tmp"] / "账套" / "没有")])
    clients = [client(site, "c001", exclude=["*.tmp"]), gone, client(site, "c003", tags=["月结"])]
    result = run(args_for(site, clients, manifest=True), capsys)

    # the failing client did not stop the others; the task fails naming it with a run of its own's message
    assert result["failed"] is True
    assert [e["status"] for e in result["clients"]] == ["ok", "failed", "ok"]
    assert result["failed_clients"] == ["c002"] and result["stopped_before"] == ""
    alone = f"paths entry {site['tmp'] / '账套' / '没有'} does not exist on this host; nothing was backed up"
    assert result["clients"][1]["msg"] == alone
    assert result["msg"] == f"1 of 3 clients failed: client c002 (宁波示例制造): {alone}"

    snaps = {s["id"]: s for s in site["snapshots"]()}
    assert len(snaps) == 4  # two data snapshots, two manifests
    for entry, cid, extra in ((result["clients"][0], "c001", []), (result["clients"][2], "c003", ["月结"])):
        snap = snaps[entry["snapshot_id"]]
        assert entry["id"] == cid and entry["short_id"] == entry["snapshot_id"][:8]
        assert snap["tags"] == [cid, "ledgerguard-backup", *extra] and snap["hostname"] == "books-hz01"
        assert snap["paths"] == [str(site["roots"][cid])]
        assert entry["summary"]["files_new"] == (1 if cid == "c001" else 2)  # c001 excludes scratch.tmp
        manifest = snaps[entry["manifest_snapshot_id"]]
        assert manifest["tags"] == [MANIFEST_TAG, f"ledgerguard-manifest-for={entry['snapshot_id']}"]
        assert entry["manifest"]["recorded"] is True and entry["manifest"]["files"] == entry["summary"]["files_new"]
    assert result["clients"][0]["name"] == "杭州示例贸易"


def test_an_unchanged_tree_adds_no_file_and_the_run_succeeds(site, capsys):
    clients = [client(site, "c001"), client(site, "c003")]
    first = run(args_for(site, clients), capsys)
    again = run(args_for(site, clients), capsys)
    assert "failed" not in first and "failed" not in again and again["failed_clients"] == []
    for entry in again["clients"]:
        assert entry["status"] == "ok" and entry["manifest_snapshot_id"] == "" and "manifest" not in entry
        assert entry["summary"]["files_new"] == 0 and entry["summary"]["files_changed"] == 0
        assert entry["summary"]["files_unmodified"] == 2
    assert len(site["snapshots"]()) == 4


def test_the_incident_lock_stops_the_run_between_clients(site, capsys):
    lock = site["tmp"] / "state" / "incident.lock"
    lock.parent.mkdir()
    # a restic that lets an incident take the host during the first client's backup
    wrapper = site["tmp"] / "restic-then-incident"
    wrapper.write_text(
        f"#!{sys.executable}\nimport os, sys, subprocess\n"
        f"rc = subprocess.call([{RESTIC!r}, *sys.argv[1:]])\n"
        f"if 'backup' in sys.argv: open({str(lock)!r}, 'w').write('INC-1')\nsys.exit(rc)\n"
    )
    wrapper.chmod(0o755)
    clients = [client(site, "c001"), client(site, "c002"), client(site, "c003")]
    result = run(args_for(site, clients, stop_if_exists=str(lock), restic_binary=str(wrapper)), capsys)
    assert result["failed"] is True
    assert [e["status"] for e in result["clients"]] == ["ok", "not_run", "not_run"]
    assert result["stopped_before"] == "c002" and result["failed_clients"] == []
    assert result["msg"] == f"The backup stopped: {lock} exists: stopped before client c002; clients backed up: c001"
    assert [s["tags"][0] for s in site["snapshots"]()] == ["c001"]


def test_check_mode_makes_nothing_and_dry_runs_each_client(site, capsys):
    clients = [client(site, "c001"), client(site, "c002")]
    result = run(args_for(site, clients, manifest=True), capsys, check_mode=True)
    assert "failed" not in result and result["changed"] is True
    for entry in result["clients"]:
        assert entry["status"] == "ok" and entry["snapshot_id"] == "" and entry["summary"]["dry_run"] is True
        assert entry["manifest"] == {"recorded": False}
    assert site["snapshots"]() == []


@pytest.mark.parametrize(
    ("extra", "msg"),
    [
        ({"paths": ["/srv"]}, "parameters are mutually exclusive: paths|clients"),
        ({"clients": []}, "clients is empty: give at least one client (id, paths) to back up"),
        ({"clients": "twice"}, "clients holds the ids c001 more than once; give each client once"),
        ({"clients": "comma"}, "tag 'a,b' is empty or contains a comma; restic tags cannot contain commas"),
    ],
)
def test_bad_input_names_it_and_backs_up_nothing(site, capsys, extra, msg):
    if extra.get("clients") == "twice":
        extra = {"clients": [client(site, "c001"), client(site, "c001")]}
    elif extra.get("clients") == "comma":
        extra = {"clients": [client(site, "c001", tags=["a,b"])]}
    args = args_for(site, [client(site, "c001")])
    args.update(extra)
    result = run(args, capsys)
    assert result["failed"] is True and msg in result["msg"], result["msg"]
    assert site["snapshots"]() == []


def test_neither_paths_nor_clients_is_refused(site, capsys):
    args = args_for(site, [])
    del args["clients"]
    result = run(args, capsys)
    assert result["failed"] is True and "one of the following is required: paths, clients" in result["msg"]


def test_progress_file_before_each_client_and_at_the_end(site, capsys):
    """progress_file (issue 15): before each client and at the end, replaced atomically, 0600, ids and statuses only.
    A restic wrapper copies the file at each `restic backup`, so the test sees what a poller sees mid-run."""
    progress = site["tmp"] / "状态" / "backup-progress.json"
    progress.parent.mkdir()
    seen = site["tmp"] / "seen.jsonl"
    wrapper = site["tmp"] / "restic-wrapper"
    wrapper.write_text(
        f'#!/bin/sh\ncase " $* " in *" backup "*) cat "{progress}" >> "{seen}"; echo >> "{seen}";; esac\n'
        f'exec "{RESTIC}" "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    gone = client(site, "c002", paths=[str(site["tmp"] / "账套" / "没有")])
    clients = [client(site, "c001"), gone, client(site, "c003")]
    result = run(args_for(site, clients, progress_file=str(progress), restic_binary=str(wrapper)), capsys)
    assert [e["status"] for e in result["clients"]] == ["ok", "failed", "ok"]

    # c002 failed before restic ran, so restic backed up c001 and c003: the file then said what was running
    mid = [json.loads(line) for line in seen.read_text(encoding="utf-8").splitlines() if line]
    assert mid == [
        {"done": 0, "total": 3, "current": "c001", "finished": [], "client": {"id": "c001", "name": "杭州示例贸易"}},
        {"done": 2, "total": 3, "current": "c003",
         "finished": [{"id": "c001", "status": "ok"}, {"id": "c002", "status": "failed"}],
         "client": {"id": "c003", "name": "c003"}},
    ]  # fmt: skip
    statuses = [{"id": "c001", "status": "ok"}, {"id": "c002", "status": "failed"}, {"id": "c003", "status": "ok"}]
    assert json.loads(progress.read_text(encoding="utf-8")) == {
        "done": 3,
        "total": 3,
        "current": "",
        "finished": statuses,
    }
    assert progress.stat().st_mode & 0o777 == 0o600
    # no temporary file left; beside it, each client's one-line result for the poller, in order
    assert sorted(p.name for p in progress.parent.iterdir()) == [
        "backup-progress.json",
        "backup-progress.json.finished",
    ]
    records = [
        json.loads(line)
        for line in (progress.parent / "backup-progress.json.finished").read_text("utf-8").split("\n")
        if line
    ]
    snaps = {s["tags"][0]: s["short_id"] for s in site["snapshots"]() if MANIFEST_TAG not in s["tags"]}
    assert [(r["id"], r["status"], r.get("snapshot")) for r in records] == [
        ("c001", "ok", snaps["c001"]), ("c002", "failed", None), ("c003", "ok", snaps["c003"])
    ]  # fmt: skip
    assert PASSWORD not in progress.read_text(encoding="utf-8")


def test_progress_file_not_written_in_check_mode_and_its_folder_must_exist(site, capsys):
    progress = site["tmp"] / "backup-progress.json"
    result = run(args_for(site, [client(site, "c001")], progress_file=str(progress)), capsys, check_mode=True)
    assert "failed" not in result and not progress.exists()

    missing = site["tmp"] / "没有" / "backup-progress.json"
    result = run(args_for(site, [client(site, "c001")], progress_file=str(missing)), capsys)
    assert result["failed"] is True
    assert result["msg"] == (
        f"progress_file {missing}: its folder does not exist on this host; create it or give another path"
    )
    assert site["snapshots"]() == []


def test_restic_is_asked_for_one_status_per_progress_interval_in_the_backup_only(site, capsys):
    """RESTIC_PROGRESS_FPS (issue 15): 1/progress_interval for each client's backup when a progress file is written,
    effectively none without one and for the manifest's stdin backup, and not set for any other restic command (the
    variable would put progress counters into output that is parsed)."""
    seen = site["tmp"] / "fps.log"
    wrapper = site["tmp"] / "restic-fps"
    wrapper.write_text(
        f'#!/bin/sh\nfor a; do case "$a" in backup|snapshots|version|cat) cmd=$a; break;; esac; done\n'
        f'echo "$cmd ${{RESTIC_PROGRESS_FPS:-unset}}" >> "{seen}"\nexec "{RESTIC}" "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    progress = site["tmp"] / "backup-progress.json"
    clients = [client(site, "c001"), client(site, "c003")]
    args = args_for(site, clients, manifest=True, restic_binary=str(wrapper))
    result = run(dict(args, progress_file=str(progress), progress_interval=2), capsys)
    assert "failed" not in result and [e["status"] for e in result["clients"]] == ["ok", "ok"]
    if tuple(int(p) for p in result["restic_version"].split(".")) >= (0, 17, 0):  # each manifest after its backup
        calls = ["backup 0.500000", "backup 0.000001"] * 2
    else:  # the backups, the one listing, the manifests
        calls = ["backup 0.500000", "backup 0.500000", "snapshots unset", "backup 0.000001", "backup 0.000001"]
    assert seen.read_text().splitlines() == ["version unset", *calls]

    seen.unlink()
    result = run(dict(args, manifest=False), capsys)
    assert "failed" not in result
    assert seen.read_text().splitlines() == ["version unset", "backup 0.000001", "backup 0.000001"]


def logging_restic(site, fail: str = "", nth: int = 0) -> tuple:
    """A restic wrapper that logs each call's arguments (one JSON list a line) and runs the real restic; with
    ``fail``, the ``nth`` call (every one when 0) whose arguments contain it fails instead (exit 1, a Fatal line)
    without running restic."""
    log, wrapper = site["tmp"] / "calls.jsonl", site["tmp"] / "restic-logged"
    wrapper.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"open({str(log)!r}, 'a', encoding='utf-8').write(json.dumps(sys.argv[1:], ensure_ascii=False) + '\\n')\n"
        f"matching = [c for c in open({str(log)!r}, encoding='utf-8') if {fail!r} and {fail!r} in c]\n"
        f"if {fail!r} and {fail!r} in ' '.join(sys.argv[1:]) and {nth} in (0, len(matching)):\n"
        "    sys.stderr.write('Fatal: refused by the test\\n')\n    sys.exit(1)\n"
        f"os.execv({RESTIC!r}, [{RESTIC!r}, *sys.argv[1:]])\n",
        encoding="utf-8",
    )
    wrapper.chmod(0o755)

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]

    return str(wrapper), calls


def finished_records(progress) -> list[dict]:
    text = (progress.parent / (progress.name + ".finished")).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


def test_manifests_of_all_clients_from_one_listing_with_restic_before_017(site, capsys):
    """Issue 15: with restic 0.14 (summary: 8 digits, no time) the run lists the new snapshots ONCE, after the last
    client, instead of once per client; each manifest's header still names its data snapshot as restic lists it,
    and each client's finished record comes once, in order, after the manifests, also around a client that failed
    before restic ran."""
    progress = site["tmp"] / "状态" / "backup-progress.json"
    progress.parent.mkdir()
    wrapper, calls = logging_restic(site)
    gone = client(site, "c002", paths=[str(site["tmp"] / "账套" / "没有")])
    clients = [client(site, "c001"), gone, client(site, "c003", tags=["月结"])]
    result = run(args_for(site, clients, manifest=True, progress_file=str(progress), restic_binary=wrapper), capsys)
    assert [e["status"] for e in result["clients"]] == ["ok", "failed", "ok"]

    newer = tuple(int(p) for p in result["restic_version"].split(".")) >= (0, 17, 0)
    commands = [c[c.index("backup") if "backup" in c else 0] if c else "" for c in calls()]
    listings = [c for c in calls() if "snapshots" in c]
    assert len(listings) == (0 if newer else 1), calls()
    assert commands.count("backup") == 4  # two data backups, two manifests (backup --stdin)
    if not newer:  # filtered on the run's host and each waiting client's tags
        assert listings[0][listings[0].index("snapshots") :] == [
            "snapshots", "--json", "--host=books-hz01", "--tag=c001,ledgerguard-backup",
            "--tag=c003,ledgerguard-backup,月结",
        ]  # fmt: skip
        assert calls().index(listings[0]) == 3  # version, backup c001, backup c003, then the listing

    listed = {s["id"]: s for s in site["snapshots"]()}
    for entry in (result["clients"][0], result["clients"][2]):
        snap, manifest = listed[entry["snapshot_id"]], listed[entry["manifest_snapshot_id"]]
        assert manifest["tags"] == [MANIFEST_TAG, f"ledgerguard-manifest-for={snap['id']}"]
        assert manifest["hostname"] == snap["hostname"] == "books-hz01"
        dump = subprocess.run([RESTIC, "dump", manifest["id"], manifest["paths"][0]], env=site["env"], check=True,
                              capture_output=True, text=True).stdout  # fmt: skip
        header = json.loads(dump.splitlines()[0])
        assert (header["snapshot"], header["hostname"], header["paths"]) == (snap["id"], "books-hz01", snap["paths"])
        assert header["snapshot_time"] == snap["time"]
        assert entry["manifest"]["recorded"] is True and entry["manifest"]["files"] == 2
        assert sum('"type":"file"' in line for line in dump.splitlines()) == 2
    records = finished_records(progress)
    assert [(r["id"], r["status"], r.get("snapshot"), r.get("manifest")) for r in records] == [
        ("c001", "ok", result["clients"][0]["short_id"], result["clients"][0]["manifest_snapshot_id"][:8]),
        ("c002", "failed", None, None),
        ("c003", "ok", result["clients"][2]["short_id"], result["clients"][2]["manifest_snapshot_id"][:8]),
    ]
    end = json.loads(progress.read_text(encoding="utf-8"))
    assert end["finished"] == [{"id": e["id"], "status": e["status"]} for e in result["clients"]]


def test_a_manifest_that_cannot_be_stored_fails_its_client_after_the_listing(site, capsys):
    """restic refuses the second manifest (the wrapper fails the second backup --stdin): c003 fails with the message
    a run of its own gives (its data snapshot stays), c001 keeps its manifest, and the finished records say so, in
    order; the run lists the repository at most once."""
    progress = site["tmp"] / "状态" / "backup-progress.json"
    progress.parent.mkdir()
    wrapper, calls = logging_restic(site, fail="--stdin-filename=ledgerguard-manifest-", nth=2)
    result = run(args_for(site, [client(site, "c001"), client(site, "c003")], manifest=True,
                          progress_file=str(progress), restic_binary=wrapper), capsys)  # fmt: skip
    assert [e["status"] for e in result["clients"]] == ["ok", "failed"] and result["failed_clients"] == ["c003"]
    failed = result["clients"][1]
    assert "store the backup-time manifest of snapshot" in failed["msg"] and failed["error_kind"], failed
    assert result["msg"].startswith("1 of 2 clients failed: client c003: ")
    assert [(r["id"], r["status"]) for r in finished_records(progress)] == [("c001", "ok"), ("c003", "failed")]
    snaps = site["snapshots"]()
    assert sorted(s["tags"][0] for s in snaps if MANIFEST_TAG not in s["tags"]) == ["c001", "c003"]
    assert [s["id"] for s in snaps if MANIFEST_TAG in s["tags"]] == [result["clients"][0]["manifest_snapshot_id"]]
    assert len([c for c in calls() if "snapshots" in c]) <= 1


# ------------------------------------------------------------------------------------------------ the backup lock


def lock_opts(site, **kw) -> dict:
    state = site["tmp"] / "状态"
    return {"path": str(state / "backup.lock"), "incident_lock": str(state / "incident.lock"), "run_id": "run-1", **kw}


def lock_probe(site) -> tuple:
    """A restic that, at each backup, tries the backup lock from another process and writes down what it found."""
    probe = site["tmp"] / "probe.jsonl"
    wrapper = site["tmp"] / "restic-probe"
    wrapper.write_text(
        f"#!{sys.executable}\nimport fcntl, json, os, subprocess, sys\n"
        "if 'backup' in sys.argv:\n"
        f"    fd = os.open({lock_opts(site)['path']!r}, os.O_RDWR)\n"
        "    try:\n        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); held = False\n"
        "    except OSError:\n        held = True\n"
        f"    text = open({lock_opts(site)['path']!r}).read()\n"
        f"    open({str(probe)!r}, 'a').write(json.dumps({{'held': held, 'file': text}}) + '\\n')\n"
        f"sys.exit(subprocess.call([{RESTIC!r}, *sys.argv[1:]]))\n"
    )
    wrapper.chmod(0o755)
    return str(wrapper), probe


def test_the_lock_held_by_the_run_itself_while_it_backs_up_and_free_at_its_end(site, capsys):
    wrapper, probe = lock_probe(site)
    clients = [client(site, "c001"), client(site, "c002")]
    result = run(args_for(site, clients, lock=lock_opts(site), restic_binary=wrapper), capsys)
    assert "failed" not in result and [e["status"] for e in result["clients"]] == ["ok", "ok"]
    seen = [json.loads(line) for line in probe.read_text().splitlines()]
    assert [s["held"] for s in seen] == [True, True]  # another process could not take it during either backup
    holder = json.loads(seen[0]["file"])
    assert holder["run_id"] == "run-1" and holder["held_by"] == "module" and holder["purpose"] == "backup"
    lock = result["lock"]
    assert lock["taken"] is True and lock["held_after"] is False and lock["holder"]["pid"] == holder["pid"]
    assert flock_free(lock_opts(site)["path"])  # given back with the module's descriptor: no release needed
    # the state folder was created for it, 0700
    assert (site["tmp"] / "状态").stat().st_mode & 0o777 == 0o700


def test_the_lock_kept_for_the_later_steps_until_released(site, capsys):
    path = lock_opts(site)["path"]
    result = run(args_for(site, [client(site, "c001")], lock=lock_opts(site, hold_after=True)), capsys)
    assert "failed" not in result
    assert result["lock"]["taken"] is True and result["lock"]["held_after"] is True
    holder = result["lock"]["holder"]
    assert "held_by" not in holder and holder["pid"] != os.getpid()
    assert not flock_free(path)  # a detached process keeps it after the module ended
    # a second run of the same run ID keeps it (nothing taken twice), another run is refused
    again = run(args_for(site, [client(site, "c003")], lock=lock_opts(site, hold_after=True)), capsys)
    assert again["lock"]["taken"] is False and again["lock"]["held_after"] is True and "failed" not in again
    other = run(args_for(site, [client(site, "c002")], lock=lock_opts(site, run_id="run-2")), capsys)
    assert other["failed"] is True and other["lock"]["taken"] is False and "clients" not in other
    assert other["msg"].startswith(f"Another backup run holds {path} (run run-1, started {holder['started']} on ")
    assert f"holder PID {holder['pid']}); this run exits without doing anything." in other["msg"]
    assert sorted(s["tags"][0] for s in site["snapshots"]()) == ["c001", "c003"]
    assert backup_lock.release(path, "run-1", False) == (True, {}, "")
    assert flock_free(path)


def test_the_lock_refused_under_an_incident_backs_up_nothing(site, capsys):
    opts = lock_opts(site)
    os.makedirs(os.path.dirname(opts["incident_lock"]))
    incident = {"incident_id": "INC-20261207-0002", "operator": "王芳", "created": "2026-12-07T01:00:00Z"}
    with open(opts["incident_lock"], "w", encoding="utf-8") as handle:
        json.dump(incident, handle, ensure_ascii=False)
    result = run(args_for(site, [client(site, "c001")], lock=opts), capsys)
    assert result["failed"] is True and "clients" not in result
    assert result["msg"] == (
        f"Incident INC-20261207-0002 holds this host (operator 王芳, since 2026-12-07T01:00:00Z; lock "
        f"{opts['incident_lock']}). No backup runs while an incident owns the host: nothing was backed up, forgotten "
        "or pruned. Run it again after the incident is released."
    )
    assert result["lock"] == {"taken": False, "held_after": False, "holder": {}, "waited": 0.0}
    assert site["snapshots"]() == []
    assert not os.path.exists(opts["path"])  # refused before the lock file was made


def test_the_lock_in_check_mode_is_only_tested(site, capsys):
    opts = lock_opts(site, hold_after=True)
    result = run(args_for(site, [client(site, "c001")], lock=opts), capsys, check_mode=True)
    assert "failed" not in result and result["lock"]["taken"] is True and result["lock"]["held_after"] is False
    assert site["snapshots"]() == []
    assert not os.path.lexists(os.path.dirname(opts["path"]))  # check mode made neither the state folder nor the file
    # with a lock file there (another run's, now ended) it is tried and given back: still free, nothing written
    os.makedirs(os.path.dirname(opts["path"]), mode=0o700)
    with open(opts["path"], "w", encoding="utf-8") as handle:
        handle.write('{"run_id": "run-0"}')
    again = run(args_for(site, [client(site, "c001")], lock=opts), capsys, check_mode=True)
    assert again["lock"]["taken"] is True and "failed" not in again
    assert flock_free(opts["path"]) and backup_lock.read_holder(opts["path"]) == {"run_id": "run-0"}


def test_release_never_stops_a_module_that_holds_the_lock_itself(tmp_path):
    path = str(tmp_path / "backup.lock")
    options = {**lock_opts({"tmp": tmp_path}), "path": path, "purpose": "backup", "wait": 0, "max_hold": 60}
    held = backup_lock.acquire(options, False, detach=False)
    try:
        assert held["holder"]["held_by"] == "module" and held["holder"]["pid"] == os.getpid()
        changed, holder, warning = backup_lock.release(path, "run-1", False)
        assert not changed and holder["pid"] == os.getpid()
        assert warning == (
            f"{path} is held by this run's module process (PID {os.getpid()}), which is still running: left alone; "
            "the lock ends with that process"
        )
        assert not flock_free(path)
    finally:
        os.close(held["fd"])
    assert flock_free(path)
