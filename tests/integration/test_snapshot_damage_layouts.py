"""snapshot_damage reads each snapshot's layout (issue 17).

A firm whose job runs ``cd /srv && restic backup books`` has snapshots that store /srv/books/C001 as /books/C001.
snapshot_damage runs as a real module process against real restic 0.14 (Debian) and 0.18 (``scripts/fetch-restic.sh``)
and must find the damage there, and treat a night without the client's folder as never clean.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path

import pytest

import test_repo_layouts as layouts
from test_repo_layouts import backup, common, run_module

# the real-restic fixtures of test_repo_layouts (restic 0.14 and 0.18, a fresh repository)
restic_bin = layouts.restic_bin
pristine_repo = layouts.pristine_repo
repo = layouts.repo


def make_client(folder: Path, count: int = 8) -> None:
    """A client folder of plain bookkeeping files (low entropy, CSV ledgers)."""
    (folder / "凭证").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rows = "".join(f"{n},2026-01-{(n % 28) + 1:02d},管理费用,{n * 10}.00,0.00\n" for n in range(1, 60))
        (folder / "凭证" / f"2026-{i + 1:02d}.csv").write_text("编号,日期,科目,借方,贷方\n" + rows, encoding="utf-8")


NIGHT = itertools.count(1)  # distinct snapshot times, in order, without waiting for the clock


def night(books: Path, repo: dict) -> str:
    """One nightly relative backup (cwd is the parent of the books folder), a minute after the one before; return
    the snapshot ID."""
    when = dt.datetime.now() - dt.timedelta(days=1) + dt.timedelta(minutes=next(NIGHT))
    return backup(repo, "--time", when.strftime("%Y-%m-%d %H:%M:%S"), books.name, cwd=books.parent)


def encrypt(folder: Path) -> None:
    for path in sorted(folder.rglob("*.csv")):
        path.write_bytes(os.urandom(path.stat().st_size))
    (folder / "README_DECRYPT.txt").write_text("your files are encrypted\n")


def assess(repo: dict, tmp_path: Path, live: Path, **extra) -> dict:
    args = dict(common(repo, tmp_path), paths=[str(live)], mode="all", **extra)
    result = run_module("snapshot_damage", args, tmp_path)
    assert not result.get("failed"), result.get("msg")
    return result


def by_id(result: dict) -> dict[str, dict]:
    return {item["id"]: item for item in result["snapshots"]}


@pytest.fixture
def books(tmp_path) -> Path:
    books = tmp_path / "live" / "srv" / "books"
    make_client(books / "C001")
    make_client(books / "C002")
    return books


def test_relative_backup_encrypted_night_flagged_previous_night_clean(repo, books, tmp_path):
    n1 = night(books, repo)
    (books / "C001" / "凭证" / "2026-13.csv").write_text("编号,日期\n1,2026-02-01\n", encoding="utf-8")
    n2 = night(books, repo)
    encrypt(books / "C001")
    n3 = night(books, repo)
    live = books / "C001"
    result = assess(repo, tmp_path, live)
    items = by_id(result)
    assert set(items) == {n1, n2, n3}, result["snapshots"]
    assert items[n3]["clean"] is False, items[n3]
    assert any("README_DECRYPT.txt" in r for r in items[n3]["reasons"]), items[n3]["reasons"]
    assert items[n3]["stats"]["roots_missing"] == []
    # the files are counted where they live (the snapshot stores them as /books/C001/...)
    assert items[n3]["stats"]["files"] == 10
    assert items[n2]["clean"] is True, items[n2]
    assert items[n2]["stats"]["files"] == 9 and items[n2]["stats"]["added"] == 1
    assert result["clean"][0] == n2
    # the encrypted content was read with restic dump at the in-snapshot path
    assert items[n3]["stats"]["sampled"] > 0 and items[n3]["stats"]["max_entropy"] > 7.0, items[n3]["stats"]
    # the default walk stops at the newest clean night
    fast = run_module("snapshot_damage", dict(common(repo, tmp_path), paths=[str(live)]), tmp_path)
    assert not fast.get("failed"), fast.get("msg")
    assert fast["clean"] == [n2] and fast["snapshots"][0]["id"] == n3
    # Several clients in one run (restore_clients' batch): each assessed exactly as alone, one snapshot list, one
    # search, one listing per snapshot and one diff shared; a client whose pin names no snapshot fails alone, with its
    # reason.
    other = assess(repo, tmp_path, books / "C002")
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "restic-logged"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {repo["bin"]} "$@"\n')
    wrapper.chmod(0o755)
    batch = run_module(
        "snapshot_damage",
        dict(
            common(repo, tmp_path),
            restic_binary=str(wrapper),
            mode="all",
            clients=[
                {"id": "客户甲", "paths": [str(live)]},
                {"id": "c002", "paths": [str(books / "C002")]},
                {"id": "c003", "paths": [str(books / "C002")], "snapshot": "deadbeef"},
            ],
        ),
        tmp_path,
    )
    assert not batch.get("failed"), batch.get("msg")
    assert list(batch["clients"]) == ["客户甲", "c002", "c003"]
    assert batch["clients"]["客户甲"] == {"failed": False, "snapshots": result["snapshots"], "clean": result["clean"]}
    assert batch["clients"]["c002"] == {"failed": False, "snapshots": other["snapshots"], "clean": [n3, n2, n1]}
    assert batch["clients"]["c003"]["failed"] is True
    assert batch["clients"]["c003"]["msg"].startswith("snapshot_damage: snapshot 'deadbeef' was not found among the 3 ")
    calls = [f" {line} " for line in log.read_text().splitlines()]
    assert sum(1 for c in calls if " snapshots --json " in c) == 1, calls
    # one search (restic find) for every client path (alone: one per client), issue 19
    assert sum(1 for c in calls if " find --json " in c) == 1, calls
    # one recursive listing per snapshot for all the clients (alone: one per client and snapshot)
    listed = [c.split(" -- ")[1].split()[0] for c in calls if " ls --json --recursive " in c]
    assert sorted(listed) == sorted([n1, n2, n3]), calls


def test_night_without_the_client_folder_is_never_clean(repo, books, tmp_path):
    n1 = night(books, repo)
    n2 = night(books, repo)
    aside = books.parent / "C001.moved"
    (books / "C001").rename(aside)
    n3 = night(books, repo)
    live = books / "C001"
    aside.rename(live)  # the live folder is back (restored by hand): it must not make night 3 clean
    result = assess(repo, tmp_path, live)
    items = by_id(result)
    assert set(items) == {n1, n2, n3}, result["snapshots"]
    assert items[n3]["clean"] is False
    assert items[n3]["stats"]["roots_missing"] == [str(live)]
    assert any("missing from this snapshot" in r or "vanished" in r for r in items[n3]["reasons"]), items[n3]
    assert items[n2]["clean"] is True and items[n2]["stats"]["files"] == 8
    assert result["clean"][0] == n2
    # the other client is untouched in every night
    other = assess(repo, tmp_path, books / "C002")
    assert other["clean"] == [n3, n2, n1]


def test_pinned_snapshot_path(repo, books, tmp_path):
    """A pin (snapshot_paths, from ledgerguard_clients[].snapshot_path) names where the snapshot stores the client."""
    n1 = night(books, repo)
    live = tmp_path / "elsewhere" / "C001"  # the client now lives elsewhere; the snapshots have /books/C001
    result = assess(repo, tmp_path, live, snapshot_paths={str(live): "/books/C001"})
    assert result["clean"] == [n1], result["snapshots"]
    assert result["snapshots"][0]["stats"]["files"] == 8
    bad = run_module(
        "snapshot_damage",
        dict(common(repo, tmp_path), paths=[str(live)], snapshot_paths={"C001": "/books/C001"}),
        tmp_path,
    )
    assert bad.get("failed") and "must map an absolute live path" in bad["msg"]
