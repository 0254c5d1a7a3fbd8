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
MODULE = "ansible_collections.ledgerguard.recovery.plugins.modules.restic_backup"
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


def run_module(args: dict, workdir: Path, watch: Path | None = None) -> tuple[dict, list[str], float]:
    """restic_backup as its own process; with ``watch``, every distinct content of that file while it runs."""
    args_file = workdir / f"args-{time.monotonic_ns()}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}, ensure_ascii=False), encoding="utf-8")
    args_file.chmod(0o600)
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
        [sys.executable, "-m", MODULE, str(args_file)], capture_output=True, text=True, env=env, check=False
    )
    seconds = time.monotonic() - started
    if poller:
        stop.set()
        poller.join()
        text = watch.read_text(encoding="utf-8")
        if not seen or seen[-1] != text:
            seen.append(text)
    out = proc.stdout
    return json.loads(out[out.index("{") :]), seen, seconds


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
    assert sorted(p.name for p in site["state"].iterdir()) == ["backup-progress.json"]

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
