"""Progress inside one client's backup (issue 15), with real restic: restic_backup run as its own process (as the
backup role's async job runs it) writes restic's figures for the client being backed up into its progress file
while restic runs, and the backup it makes is the one it makes without a progress file.

A poller reads the file every 20 ms while the module runs and keeps each distinct content (the file's history as a
poller sees it). The first client is 200 MiB of incompressible data (restic takes seconds for it even on an idle
machine), read with progress_interval 0.2 s (RESTIC_PROGRESS_FPS 5), so several of restic's in-flight statuses
reach the file. Runs with whichever restic is first on PATH (make restic-newer puts 0.18 first).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[2] / ".collections"
MODULES = "ansible_collections.ledgerguard.recovery.plugins.modules."
MODULE = MODULES + "restic_backup"
PASSWORD = "集成测试 password"
FILE_NAME_PART = "凭证"  # every file of the trees has it in its name; no state may show it
COUNTS = ("files_new", "files_changed", "files_unmodified", "dirs_new", "dirs_changed", "dirs_unmodified",
          "total_files_processed", "total_bytes_processed")  # fmt: skip
FIGURES = {"percent_done", "bytes_done", "total_bytes", "files_done", "total_files", "seconds_elapsed",
           "seconds_remaining", "error_count"}  # fmt: skip


def restic(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "RESTIC_REPOSITORY": str(repo),
           "RESTIC_PASSWORD": PASSWORD, "LC_ALL": "C"}  # fmt: skip
    return subprocess.run([shutil.which("restic"), *args], env=env, capture_output=True, text=True, check=True)


def make_tree(root: Path, big_files: int, mib: int, small: int) -> None:
    root.mkdir(parents=True)
    (root / "归档").mkdir()
    for i in range(big_files):
        with open(root / "归档" / f"{FILE_NAME_PART}-{i:03d}.bin", "wb") as handle:
            handle.write(os.urandom(mib << 20))
    for i in range(small):
        (root / f"{FILE_NAME_PART}-{i:04d}.csv").write_text(f"科目,金额\n1001,{i}\n", encoding="utf-8")


def args_file(args: dict, workdir: Path) -> Path:
    path = workdir / f"args-{time.monotonic_ns()}.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}, ensure_ascii=False), encoding="utf-8")
    path.chmod(0o600)
    return path


def module_argv(name: str, args: dict, workdir: Path) -> list[str]:
    return [sys.executable, "-m", MODULES + name, str(args_file(args, workdir))]


def module_output(out: str) -> dict:
    return json.loads(out[out.index("{") :])


def run_module(args: dict, workdir: Path, watch: Path | None = None) -> tuple[dict, list[str], float]:
    """restic_backup as its own process; with ``watch``, every distinct content of that file while it runs."""
    seen: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                text = watch.read_text(encoding="utf-8")
            except FileNotFoundError:
                text = ""
            if text and (not seen or seen[-1] != text):
                seen.append(text)
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True) if watch else None
    if poller:
        poller.start()
    started = time.monotonic()
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    proc = subprocess.run(
        module_argv("restic_backup", args, workdir), capture_output=True, text=True, env=env, check=False
    )
    seconds = time.monotonic() - started
    if poller:
        stop.set()
        poller.join()
        text = watch.read_text(encoding="utf-8")
        if not seen or seen[-1] != text:
            seen.append(text)
    return module_output(proc.stdout), seen, seconds


@pytest.fixture
def site(tmp_path):
    books = tmp_path / "客户账套"
    make_tree(books / "c001", big_files=25, mib=8, small=300)  # 200 MiB
    make_tree(books / "c002", big_files=1, mib=1, small=50)
    repos = {name: tmp_path / f"repo-{name}" for name in ("with", "without")}
    for repo in repos.values():
        restic(repo, "init")
    state = tmp_path / "状态"
    state.mkdir()
    clients = [
        {"id": "c001", "name": "杭州西湖记账示例有限公司", "paths": [str(books / "c001")]},
        {"id": "c002", "name": "宁波示例制造有限公司", "paths": [str(books / "c002")]},
    ]
    return {"tmp": tmp_path, "repos": repos, "state": state, "clients": clients}


def test_restics_figures_reach_the_progress_file_while_a_client_is_backed_up_and_the_backup_is_unchanged(site):
    progress = site["state"] / "backup-progress.json"
    base = {"password": PASSWORD, "clients": site["clients"], "host": "books-hz01", "tags": ["ledgerguard-backup"]}
    with_progress, history, seconds = run_module(
        dict(base, repository=str(site["repos"]["with"]), progress_file=str(progress), progress_interval=0.2),
        site["tmp"],
        watch=progress,
    )
    without, _none, _s = run_module(dict(base, repository=str(site["repos"]["without"])), site["tmp"])
    assert "failed" not in with_progress and "failed" not in without, (with_progress.get("msg"), without.get("msg"))
    restic_version = with_progress["restic_version"]

    # the file's history: each state a whole JSON object (atomic replace), clients done never going back
    states = [json.loads(text) for text in history]
    assert [s["done"] for s in states] == sorted(s["done"] for s in states)
    assert states[0] == {"done": 0, "total": 2, "current": "c001", "finished": [],
                         "client": {"id": "c001", "name": "杭州西湖记账示例有限公司"}}  # fmt: skip
    assert states[-1] == {"done": 2, "total": 2, "current": "",
                          "finished": [{"id": "c001", "status": "ok"}, {"id": "c002", "status": "ok"}]}  # fmt: skip

    # restic's figures for c001 while restic ran: at least one status with part of the 200 MiB done
    figures = [s["client"] for s in states if s["current"] == "c001" and "total_bytes" in s["client"]]
    in_flight = [f for f in figures if 0 < f["percent_done"] < 1 and f["bytes_done"] < f["total_bytes"]]
    assert in_flight, f"no in-flight status of c001 in {len(states)} states over {seconds:.1f} s ({restic_version})"
    for f in figures:
        assert set(f) == {"id", "name"} | FIGURES and f["total_bytes"] <= 201 << 20
    assert max(f["total_bytes"] for f in figures) > 100 << 20  # restic counted most of c001 while it ran
    # numbers, IDs and names only: no file name (restic's current_files), no password
    for text in history:
        assert FILE_NAME_PART not in text and PASSWORD not in text and "current_files" not in text
    assert progress.stat().st_mode & 0o777 == 0o600
    # beside it, the finished clients' records nobody polled here (job_progress takes and removes them)
    assert sorted(p.name for p in site["state"].iterdir()) == ["backup-progress.json", "backup-progress.json.finished"]

    # the backup is the one made without a progress file: the same counts, the same tree in each snapshot
    for made, plain in zip(with_progress["clients"], without["clients"], strict=True):
        assert made["status"] == plain["status"] == "ok" and made["id"] == plain["id"]
        assert {k: made["summary"][k] for k in COUNTS} == {k: plain["summary"][k] for k in COUNTS}
        assert made["summary"]["errors"] == plain["summary"]["errors"] == []
        assert re.fullmatch(r"[0-9a-f]{64}", made["snapshot_id"]) and made["short_id"] == made["snapshot_id"][:8]
        assert (made["paths"], made["tags"], made["host"]) == (plain["paths"], plain["tags"], plain["host"])
        trees = []
        for name, entry in (("with", made), ("without", plain)):
            out = restic(site["repos"][name], "ls", "--json", entry["snapshot_id"]).stdout.splitlines()
            nodes = [json.loads(line) for line in out if '"struct_type":"node"' in line]
            trees.append(sorted((n["path"], n["type"], n.get("size", 0)) for n in nodes))
        assert trees[0] == trees[1] and len(trees[0]) > 50


SMALL_CLIENTS = ("客户甲", "客户乙", "客户丙", "客户丁", "客户戊", "客户己", "客户庚", "客户辛", "客户壬", "客户癸")
POLL_SECONDS = 4.0


def test_every_small_client_gets_its_finished_line_once_in_order_with_its_real_snapshot(tmp_path):
    """Issue 15: ten small clients backed up (with manifests) as the backup role's async job, polled by job_progress
    as the role polls it but every 4 s, longer than a small client's backup: clients that start and end between two
    polls still each get their one-line result exactly once, in order, naming the snapshot and manifest restic
    lists for that client; the poll that sees the job ended removes the finished file. Each manifest describes the
    data snapshot as restic lists it."""
    repo = tmp_path / "repo"
    restic(repo, "init")
    state = tmp_path / "状态"
    state.mkdir()
    clients = []
    for cid in SMALL_CLIENTS:
        root = tmp_path / "客户账套" / cid
        root.mkdir(parents=True)
        (root / f"{FILE_NAME_PART}-2026-11.csv").write_text(f"科目,金额\n1001,{cid}\n", encoding="utf-8")
        clients.append({"id": cid, "name": f"杭州{cid}贸易有限公司", "paths": [str(root)]})
    progress, results = state / "backup-progress.json", state / "j1.1"
    results.write_text(json.dumps({"started": 1, "finished": 0}), encoding="utf-8")  # as async_wrapper starts a job
    backup_args = {"repository": str(repo), "password": PASSWORD, "clients": clients, "host": "books-hz01",
                   "tags": ["ledgerguard-backup"], "manifest": True, "progress_file": str(progress),
                   "progress_interval": POLL_SECONDS / 2}  # fmt: skip
    poll_args = {"results_file": str(results), "progress_file": str(progress), "unit": "clients", "label": "backup"}
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))

    def poll() -> dict:
        out = subprocess.run(module_argv("job_progress", poll_args, tmp_path), capture_output=True, text=True,
                             env=env, check=True).stdout  # fmt: skip
        return module_output(out)

    polls = []
    job = subprocess.Popen(module_argv("restic_backup", backup_args, tmp_path), stdout=subprocess.PIPE, text=True,
                           env=env)  # fmt: skip
    while job.poll() is None:
        polls.append(poll())
        time.sleep(POLL_SECONDS)
    made = module_output(job.stdout.read())
    job.stdout.close()
    assert "failed" not in made, made.get("msg")
    results.write_text(json.dumps(made, ensure_ascii=False), encoding="utf-8")  # the job's result replaces "started"
    polls.append(poll())
    assert polls[-1]["finished"] is True and not any(p["finished"] for p in polls[:-1])
    assert not (state / "backup-progress.json.finished").exists()

    per_poll = [p["ledgerguard_progress"].get("lines", []) for p in polls]
    lines = [line for batch in per_poll for line in batch]
    # the case this is about: some poll brought the lines of several clients that ran between two polls
    assert max(len(batch) for batch in per_poll) >= 2, per_poll
    listed = json.loads(restic(repo, "snapshots", "--json").stdout)
    data = {s["tags"][0]: s for s in listed if "ledgerguard-manifest" not in s["tags"]}
    manifests = {t.split("=", 1)[1]: s for s in listed for t in s["tags"] if t.startswith("ledgerguard-manifest-for=")}
    assert sorted(data) == sorted(SMALL_CLIENTS) and len(manifests) == len(SMALL_CLIENTS)
    assert len(lines) == len(SMALL_CLIENTS), lines
    for cid, line, entry in zip(SMALL_CLIENTS, lines, made["clients"], strict=True):
        snap = data[cid]
        manifest = manifests[snap["id"]]
        assert entry["snapshot_id"] == snap["id"] and entry["manifest_snapshot_id"] == manifest["id"]
        assert re.fullmatch(
            rf"{cid} \(杭州{cid}贸易有限公司\): 1 new, 0 changed, [0-9.]+ (B|KiB) added in [0-9.]+ s, "
            rf"snapshot {snap['short_id']}, manifest {manifest['short_id']}",
            line,
        ), line
        assert sum(cid + " (" in other for other in lines) == 1  # exactly once
        # the manifest describes the snapshot restic lists (with restic 0.18 it is known from the backup's summary,
        # without a listing): its host and time, its header's ID, host, time and paths
        assert manifest["hostname"] == snap["hostname"] == "books-hz01"
        assert manifest["time"][:19] == snap["time"][:19]
        header = json.loads(restic(repo, "dump", manifest["id"], manifest["paths"][0]).stdout.splitlines()[0])
        assert (header["snapshot"], header["hostname"], header["paths"]) == (snap["id"], "books-hz01", snap["paths"])
        assert header["snapshot_time"] == snap["time"]
    for line in lines:
        assert FILE_NAME_PART not in line and PASSWORD not in line
