"""The full ID of a snapshot just saved, read from restic's cache instead of a second repository open (issue 15's
backup overhead): the pure lookup over a cache folder, and the engine against a real restic 0.14 backup."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import (
    Restic,
    snapshot_id_from_cache,
    snapshot_in_cache,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import parse_backup_summary
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import subprocess_run

A = "3f1c9e2a" + "0" * 56
B = "3f1c9e2a" + "1" * 56
C = "77aa0b1c" + "2" * 56


def cache(root: Path, repo_id: str, *ids: str, mtime: float | None = None) -> Path:
    folder = root / repo_id
    for full in ids:
        (folder / "snapshots" / full[:2]).mkdir(parents=True, exist_ok=True)
        (folder / "snapshots" / full[:2] / full).write_bytes(b"encrypted")
    folder.mkdir(parents=True, exist_ok=True)
    if mtime is not None:
        os.utime(folder, (mtime, mtime))
    return folder


def test_the_one_match_in_a_touched_cache_is_the_id(tmp_path):
    now = time.time()
    cache(tmp_path, "repo-账套", A, C, mtime=now)
    assert snapshot_id_from_cache(str(tmp_path), "3f1c9e2a", now - 2) == A
    assert snapshot_id_from_cache(str(tmp_path), "77aa0b1c", now - 2) == C


@pytest.mark.parametrize(
    ("short", "why"),
    [
        ("3f1c9e2a", "two touched repositories hold an ID with this prefix"),
        ("3f1c", "fewer than 8 hex digits"),
        ("3F1C9E2A", "not lower-case hex"),
        ("deadbeef", "no such snapshot"),
    ],
)
def test_anything_but_exactly_one_match_is_none(tmp_path, short, why):
    now = time.time()
    cache(tmp_path, "repo1", A, mtime=now)
    cache(tmp_path, "repo2", B, mtime=now)
    assert snapshot_id_from_cache(str(tmp_path), short, now - 2) is None, why


def test_caches_not_touched_since_the_backup_started_do_not_count(tmp_path):
    now = time.time()
    cache(tmp_path, "old", B, mtime=now - 3600)
    cache(tmp_path, "new", A, mtime=now)
    assert snapshot_id_from_cache(str(tmp_path), "3f1c9e2a", now - 2) == A
    assert snapshot_id_from_cache(str(tmp_path / "missing"), "3f1c9e2a", now - 2) is None


def test_the_repository_cache_that_held_it_is_named_and_can_be_looked_at_alone(tmp_path):
    now = time.time()
    cache(tmp_path, "repo-a", A, mtime=now)
    cache(tmp_path, "repo-b", B, mtime=now)
    assert snapshot_in_cache(str(tmp_path), "77aa0b1c", now - 2) is None
    assert snapshot_in_cache(str(tmp_path), "3f1c9e2a", now - 2) is None  # in both: not one match
    assert snapshot_in_cache(str(tmp_path), "3f1c9e2a", now - 2, only="repo-a") == (A, "repo-a")
    assert snapshot_in_cache(str(tmp_path), "3f1c9e2a1", now - 2, only="repo-a") is None
    cache(tmp_path, "repo-a", C, mtime=now - 3600)  # not touched since the backup started
    assert snapshot_in_cache(str(tmp_path), "77aa0b1c", now - 2, only="repo-a") is None


def test_the_next_client_of_a_run_looks_only_in_the_repository_cache_found_first(tmp_path, monkeypatch):
    now = time.time()
    cache(tmp_path, "repo-a", A, mtime=now)
    for i in range(5):
        cache(tmp_path, f"other-{i}", mtime=now)

    def no_restic(argv, **kw):
        raise AssertionError(f"restic run: {argv}")

    engine = Restic("restic", "/srv/repo", "/pw", cache_dir=str(tmp_path), run=no_restic)
    looked: list[str] = []
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: looked.append(str(path)) or listdir(path))
    assert engine.new_snapshot_id("3f1c9e2a", now - 2) == A
    assert sum(p.endswith("/snapshots/3f") for p in looked) == 6  # the first client: every repository cache
    looked.clear()
    cache(tmp_path, "repo-a", C, mtime=now)
    assert engine.new_snapshot_id("77aa0b1c", now - 2) == C
    assert looked == [str(tmp_path / "repo-a" / "snapshots" / "77")]  # the next: its repository's cache alone
    looked.clear()
    cache(tmp_path, "repo-b", B, mtime=now)  # not where the last one was: every cache again
    assert engine.new_snapshot_id("3f1c9e2a1", now - 2) == B
    assert len(looked) == 2 + 7  # the remembered folder, the root, then each of the seven caches
    assert engine.new_snapshot_id("3f1c9e2a0", now - 2) == A  # repo-b remembered now, A is not there: every cache


def test_engine_reads_the_new_id_from_the_cache_without_listing(tmp_path):
    repo, pw, data = tmp_path / "repo", tmp_path / "pw", tmp_path / "客户账套"
    pw.write_text("pw\n")
    data.mkdir()
    (data / "凭证.csv").write_text("2026-11,记,1\n", encoding="utf-8")
    env = dict(os.environ, RESTIC_REPOSITORY=str(repo), RESTIC_PASSWORD_FILE=str(pw))
    subprocess.run(["restic", "init"], env=env, check=True, capture_output=True)
    calls: list[list[str]] = []

    def run(argv, **kw):
        calls.append(argv)
        return subprocess_run(argv, **kw)

    engine = Restic("restic", str(repo), str(pw), cache_dir=str(tmp_path / "cache"), run=run)
    since = time.time() - 2
    res = engine.run("backup", "--json", "--", str(data))
    short = parse_backup_summary(res.stdout)["snapshot_id"]
    full = engine.new_snapshot_id(short, since)
    listed = subprocess.run(["restic", "snapshots", "--json"], env=env, check=True, capture_output=True, text=True)
    assert f'"id":"{full}"' in listed.stdout and len(full) == 64 and full.startswith(short)
    assert [c[3] for c in calls] == ["backup"]  # restic --cache-dir <dir> backup: no second repository open

    # no cache (a cache folder restic cannot have written): one listing finds it
    calls.clear()
    nocache = Restic("restic", str(repo), str(pw), cache_dir=str(tmp_path / "elsewhere"), run=run)
    assert nocache.new_snapshot_id(short, since) == full
    assert [c[3] for c in calls] == ["snapshots"]
