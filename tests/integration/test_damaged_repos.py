"""restic's own kinds of damage (issue 17), built with real restic 0.14 and 0.18 the way restic's developers build
their test repositories (cmd/restic/testdata/repo-*): a data pack deleted, the index deleted, one index file deleted
(one snapshot's blobs unindexed), an unused pack deleted, duplicate blobs, and a cache restic cannot create.
restic_check runs on each as a real module process; the index repair is run on a copy of the index and the
repository is then restored byte-identical."""

# ruff: noqa: F811 (the restic_bin / pristine_repo fixtures come from test_repo_layouts; tests take them by name)
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_repo_layouts import common, make_books, restore, run_module, run_restic, sha_tree

# fixtures, taken by name
from test_repo_layouts import pristine_repo, restic_bin  # noqa: F401  # pylint: disable=unused-import


def files_of(repo: dict, kind: str) -> set[Path]:
    return {p for p in (Path(repo["path"]) / kind).rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def two_snapshot_repo(restic_bin, pristine_repo, tmp_path_factory) -> dict:
    """Two snapshots of different data, made once per restic version in a copy of the pristine repository (each test
    damages a copy of this one, issue 19): books (a) and a second folder (b), each in its own packs and index file.
    The books stay where they were backed up from (read only: the tests compare restores with them)."""
    base = tmp_path_factory.mktemp("two-snapshots")
    made = {"path": str(base / "repo"), "pw": base / "pw", "bin": restic_bin}
    shutil.copy2(pristine_repo / "pw", made["pw"])
    shutil.copytree(pristine_repo / "repo", made["path"], symlinks=True)
    books = make_books(base / "live")
    run_restic(restic_bin, made["path"], made["pw"], "backup", "-q", str(books / "C001"))
    (base / "live" / "b").mkdir()
    (base / "live" / "b" / "two.bin").write_bytes(os.urandom(300_000))
    before = files_of(made, "data")
    index_before = files_of(made, "index")
    run_restic(restic_bin, made["path"], made["pw"], "backup", "-q", str(base / "live" / "b"))
    root = Path(made["path"])
    out = run_restic(restic_bin, made["path"], made["pw"], "snapshots", "--json")
    return {
        "repo": made,
        "books": books,
        "snaps": [s["id"] for s in json.loads(out.stdout)],
        "second_packs": [
            p.relative_to(root) for p in sorted(files_of(made, "data") - before, key=lambda p: p.stat().st_size)
        ],
        "second_index": [p.relative_to(root) for p in sorted(files_of(made, "index") - index_before)],
    }


@pytest.fixture
def snapped(two_snapshot_repo, tmp_path) -> tuple[dict, Path, list[str]]:
    """A copy of the two-snapshot repository for one test to damage: (repo, books, snapshot IDs); repo also names the
    second snapshot's packs (smallest first) and index files in the copy."""
    made = two_snapshot_repo
    path = tmp_path / "repo"
    shutil.copytree(made["repo"]["path"], path, symlinks=True)
    pwfile = tmp_path / "pw"
    shutil.copy2(made["repo"]["pw"], pwfile)
    repo = {"path": str(path), "pw": pwfile, "bin": made["repo"]["bin"]}
    repo["second_packs"] = [path / rel for rel in made["second_packs"]]
    repo["second_index"] = [path / rel for rel in made["second_index"]]
    return repo, made["books"], made["snaps"]


def kinds(res: dict) -> list[str]:
    """The diagnosis kinds, without the cache notice (restic 0.14 cannot make its check cache in a cache_dir that
    does not exist yet; harmless, tested on its own below)."""
    return [f["kind"] for f in res["diagnosis"] if f["kind"] != "cache_warning"]


def check(repo: dict, tmp_path: Path, **extra) -> dict:
    return run_module("restic_check", dict(common(repo, tmp_path), fail_on_error=False, **extra), tmp_path)


def test_data_pack_missing_names_its_snapshot_and_is_never_repaired(snapped, tmp_path):
    repo, _books, snaps = snapped
    repo["second_packs"][-1].unlink()  # the data pack of the second snapshot's file
    res = check(repo, tmp_path, repair_index=True, index_backup_dir=str(tmp_path / "index-copy"))
    assert not res.get("failed"), res.get("msg")
    assert res["ok"] is False and kinds(res) == ["data_lost"]
    assert [s["id"] for s in res["damaged_snapshots"]] == [snaps[1]]
    assert res["diagnosis"][0]["snapshots"][0]["paths"]
    assert res["repair"]["ran"] is False and "data lost" in res["repair"]["reason"]
    assert not (tmp_path / "index-copy").exists() and res["changed"] is False
    failing = run_module("restic_check", common(repo, tmp_path), tmp_path)
    assert failing["failed"] and failing["error_kind"] == "check_failed" and "data_lost" in failing["msg"]


@pytest.mark.parametrize("which", ["all", "one"])
def test_index_missing_is_diagnosed_and_repaired_after_a_copy(which, snapped, tmp_path):
    """The packs are all there, the index (all of it, or the second snapshot's index file) is gone: diagnosed as an
    incomplete index, repaired only when asked, after a copy of the index; then the books restore byte-identical."""
    repo, books, snaps = snapped
    removed = files_of(repo, "index") if which == "all" else set(repo["second_index"])
    kept = files_of(repo, "index") - removed
    for path in removed:
        path.unlink()
    res = check(repo, tmp_path)
    assert res["ok"] is False and kinds(res) == ["index_incomplete"], res["diagnosis"]
    finding = res["diagnosis"][0]
    assert finding["repairable"] and finding["repair_command"] in ("restic rebuild-index", "restic repair index")
    assert "repair" not in res and res["changed"] is False  # never repaired unless asked
    fixed = check(repo, tmp_path, repair_index=True, index_backup_dir=str(tmp_path / "index-copy"))
    assert not fixed.get("failed"), fixed.get("msg")
    assert fixed["repair"]["ran"] is True and fixed["repair"]["ok_after"] is True, fixed["repair"]
    assert fixed["changed"] is True
    saved = fixed["repair"]["index_backup"]
    assert saved["index_files"] == len(kept) and len(saved["raw"]) == len(kept)
    assert oct((tmp_path / "index-copy").stat().st_mode & 0o777) == "0o700"
    assert run_module("restic_check", common(repo, tmp_path), tmp_path)["ok"] is True
    got = restore(repo, tmp_path, snaps[0], [str(books / "C001")], "restored")
    assert not got.get("failed"), got.get("msg")
    assert sha_tree(Path(got["restored_paths"][0]["restored_to"])) == sha_tree(books / "C001")


def test_unused_data_missing_and_duplicates_are_harmless(snapped, tmp_path):
    repo, _books, _snaps = snapped
    # duplicates: two backups of the same new data at once write the same blobs twice
    dup = tmp_path / "live" / "dup"
    dup.mkdir(parents=True)
    (dup / "d.bin").write_bytes(os.urandom(2_000_000))
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C"}
    env.update(RESTIC_REPOSITORY=repo["path"], RESTIC_PASSWORD_FILE=str(repo["pw"]))
    procs = [subprocess.Popen([repo["bin"], "backup", "-q", str(dup)], env=env) for _copy in range(2)]
    assert all(p.wait() == 0 for p in procs)
    res = check(repo, tmp_path)
    assert res["ok"] is True and kinds(res) == []
    # unused data missing: a forgotten snapshot's pack deleted (no prune)
    gone = tmp_path / "live" / "gone"
    gone.mkdir()
    (gone / "g.bin").write_bytes(os.urandom(300_000))
    before = files_of(repo, "data")
    run_restic(repo["bin"], repo["path"], repo["pw"], "backup", "-q", str(gone))
    run_restic(repo["bin"], repo["path"], repo["pw"], "forget", "latest")
    max(files_of(repo, "data") - before, key=lambda p: p.stat().st_size).unlink()
    res = run_module("restic_check", common(repo, tmp_path), tmp_path)  # fail_on_error: true
    assert not res.get("failed"), res.get("msg")
    assert res["ok"] is False and res["harmless"] is True
    assert kinds(res) == ["unused_data_missing"] and res["damaged_snapshots"] == []


def test_cache_notice_is_not_a_repository_error(snapped, tmp_path):
    """restic cannot create its temporary check cache (TMPDIR missing): the check is clean and says so."""
    repo, _books, _snaps = snapped
    args = dict(common(repo, tmp_path))
    args.pop("cache_dir")
    env_tmp = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp_path / "no-such-tmp")
    try:
        res = run_module("restic_check", args, tmp_path)
    finally:
        if env_tmp is None:
            os.environ.pop("TMPDIR")
        else:
            os.environ["TMPDIR"] = env_tmp
    assert not res.get("failed"), res.get("msg")
    assert res["ok"] is True and res["errors"] == []
    assert any("temporary directory for cache" in w for w in res["notices"]), res
    assert [f["kind"] for f in res["diagnosis"]] == ["cache_warning"]


# -- restic's own damaged test repositories (tests/files/restic-testdata, from restic's cmd/restic/testdata) ---------

TESTDATA = Path(__file__).resolve().parents[1] / "files" / "restic-testdata"
# the one snapshot of repo-data-missing, the file that needs the deleted pack, and the pack
DATA_MISSING_SNAPSHOT = "d6f984f60d1449ecb15c64651c5ee766a1e67464eaccc83c6a42373de436dc35"
DATA_MISSING_PACK = "1959b7f2802f1d83c9eeda21f3d5c5f4ff6c4b122a59b5f5ca5e28a4970a37b4"
# repo-unused-data-missing: two packs deleted, one truncated to 0 bytes; no snapshot needs any of them
UNUSED_PACKS = {
    "b2a0e6762aeeb8205967f326929e7f07f4997eed540fc8a759604f4baba43027",
    "d05c81069fdf4616aaf89ddf530dd312633176e6ca8f24fd4c878e453aa57b81",
    "f6a0bdd2515a5fc8d4253a4ba50abe03649d710cd2f6142837c86c760b94a43a",
}


def restic_testdata(name: str, restic_bin: str, tmp_path: Path) -> dict:
    """restic's test repository ``name`` unpacked into tmp_path (password geheim), as the repo fixture's dict."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "xzf", str(TESTDATA / f"{name}.tar.gz"), "-C", str(tmp_path)], check=True)  # noqa: S607
    pwfile = tmp_path / "geheim"
    pwfile.write_text("geheim")
    pwfile.chmod(0o600)
    (tmp_path / "cache").mkdir()
    return {"path": str(tmp_path / "repo"), "pw": pwfile, "bin": restic_bin}


@pytest.mark.parametrize("read_data", [False, True], ids=["structure", "read-data"])
def test_restics_own_damaged_repositories_are_classified(read_data, restic_bin, tmp_path):
    """Every damaged repository restic's developers ship, unpacked and checked by restic_check (a real module process):
    each kind is told apart, and only lost data fails the check."""
    got = {}
    for name in ("repo-data-missing", "repo-index-missing", "repo-index-missing-blob", "repo-unused-data-missing",
                 "repo-duplicates", "repo-unreferenced-data"):  # fmt: skip
        repo = restic_testdata(name, restic_bin, tmp_path / name)
        got[name] = check(repo, tmp_path / name, read_data=read_data)
        assert not got[name].get("failed"), (name, got[name].get("msg"))

    lost = got["repo-data-missing"]
    assert lost["ok"] is False and lost["harmless"] is False and kinds(lost) == ["data_lost"]
    assert [s["id"] for s in lost["damaged_snapshots"]] == [DATA_MISSING_SNAPSHOT]
    assert lost["diagnosis"][0]["packs"] == [DATA_MISSING_PACK]
    assert lost["damaged_snapshots"][0]["paths"] == ["/home/thinkpad/data/test"]

    for name in ("repo-index-missing", "repo-index-missing-blob"):
        res = got[name]
        assert res["ok"] is False and res["harmless"] is False and kinds(res) == ["index_incomplete"], (name, res)
        finding = res["diagnosis"][0]
        assert finding["repairable"] is True and finding["extra_files"] == 2 and not res.get("damaged_snapshots")
        newer = tuple(int(x) for x in res["restic_version"].split(".")[:2]) >= (0, 16)
        assert finding["repair_command"] == ("restic repair index" if newer else "restic rebuild-index")

    unused = got["repo-unused-data-missing"]
    assert unused["ok"] is False and unused["harmless"] is True, unused
    assert kinds(unused) == ["unused_data_missing"] and unused["damaged_snapshots"] == []
    assert set(unused["diagnosis"][0]["packs"]) == UNUSED_PACKS  # the truncated pack included

    assert got["repo-duplicates"]["ok"] is True and kinds(got["repo-duplicates"]) == []
    unreferenced = got["repo-unreferenced-data"]
    assert unreferenced["ok"] is True and kinds(unreferenced) == ["unindexed_data"]
    assert unreferenced["diagnosis"][0]["harmless"] is True


def test_restics_own_repositories_repaired_on_request(restic_bin, tmp_path):
    """The opt-in repair on restic's repositories: lost data is never repaired; an incomplete index and missing
    unused packs are, after a copy of the index, and then every pack reads back intact (check --read-data)."""
    lost = restic_testdata("repo-data-missing", restic_bin, tmp_path / "lost")
    res = check(lost, tmp_path / "lost", repair_index=True, index_backup_dir=str(tmp_path / "lost-index"))
    assert res["repair"]["ran"] is False and "data lost" in res["repair"]["reason"]
    assert not (tmp_path / "lost-index").exists() and res["changed"] is False
    for name in ("repo-index-missing", "repo-index-missing-blob", "repo-unused-data-missing"):
        repo = restic_testdata(name, restic_bin, tmp_path / name)
        kept = files_of(repo, "index")
        res = check(repo, tmp_path / name, repair_index=True, index_backup_dir=str(tmp_path / name / "index-copy"))
        assert res["repair"]["ran"] is True and res["repair"]["ok_after"] is True, (name, res["repair"])
        assert res["changed"] is True and res["repair"]["index_backup"]["index_files"] == len(kept)
        again = check(repo, tmp_path / name, read_data=True)
        assert again["ok"] is True and kinds(again) in ([], ["unindexed_data"]), (name, again["diagnosis"])


def test_truncated_pack_a_snapshot_needs_is_data_lost(snapped, tmp_path):
    """The data pack of the second snapshot's file truncated to 0 bytes (restic: 'pack <id>: unexpected file size:
    got 0, expected N', as in restic's repo-unused-data-missing, where that pack is unused): data lost, naming the
    snapshot, and the check fails. Before: the line was not read as an error at all, the diagnosis was empty and the
    check passed as 'harmless'."""
    repo, _books, snaps = snapped
    pack = repo["second_packs"][-1]
    pack.write_bytes(b"")
    res = check(repo, tmp_path)
    assert res["ok"] is False and res["harmless"] is False and kinds(res) == ["data_lost"], res["diagnosis"]
    assert res["diagnosis"][0]["packs"] == [pack.name] and [s["id"] for s in res["damaged_snapshots"]] == [snaps[1]]
    failing = run_module("restic_check", common(repo, tmp_path), tmp_path)
    assert failing["failed"] and failing["error_kind"] == "check_failed" and "data_lost" in failing["msg"]
    assert "unexpected file size: got 0" in failing["msg"]
