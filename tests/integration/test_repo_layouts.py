"""Repositories as firms really make them (issue 17) and restic argument safety (issue 13 item 9).

The restic modules run as real module processes (``python -m ...modules.<name> args.json``, as Ansible runs them on a
managed host) against real restic 0.14 (Debian) and, when ``scripts/fetch-restic.sh`` can provide it, restic 0.18.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".collections"


def _restic_018() -> str | None:
    path = ROOT / ".cache" / "restic-newer" / "restic"
    if not path.exists():
        try:
            out = subprocess.run(
                ["bash", str(ROOT / "scripts" / "fetch-restic.sh")],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
    return str(path) if path.exists() else None


RESTIC_014 = shutil.which("restic")  # tests/bin/restic (tests/conftest.py puts it first on PATH), then Debian's
TEST_SHIM = ROOT / "tests" / "bin" / "restic"


def through_the_test_shim(binary: str, folder: Path) -> str:
    """A ``restic`` in ``folder`` that runs ``binary`` through tests/bin/restic, as every other restic of the suite
    runs (a key made with a cheaper derivation, Go on one OS thread): the shim runs the next ``restic`` on PATH, which
    here is ``binary``. Called directly, 0.18 made its repositories' keys with the calibration of the moment, so each
    later open cost what the machine's load at ``init`` decided: this file and test_snapshot_damage_layouts.py used
    69 and 27 CPU s in one clean-clone run, 163 and 56 in the next."""
    wrapper = folder / "restic"
    path = f"{shlex.quote(str(TEST_SHIM.parent))}:{shlex.quote(str(Path(binary).parent))}"
    wrapper.write_text(f'#!/bin/sh\nPATH={path}:"$PATH" exec {shlex.quote(str(TEST_SHIM))} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture(params=["0.14", "0.18"], scope="module")
def restic_bin(request, tmp_path_factory):
    binary = RESTIC_014 if request.param == "0.14" else _restic_018()
    if not binary:
        pytest.skip(f"restic {request.param} is not available here")
    if Path(binary) != TEST_SHIM:
        binary = through_the_test_shim(binary, tmp_path_factory.mktemp(f"restic-{request.param}"))
    return binary


def run_restic(binary: str, repo: str, pwfile: Path, *args: str, cwd=None, stdin: bytes | None = None, check=True):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C"}
    # A cache beside each repository: the tests' repositories are copies of one (same repository ID), which must not
    # share restic's cache under HOME.
    env.update(RESTIC_REPOSITORY=repo, RESTIC_PASSWORD_FILE=str(pwfile), RESTIC_CACHE_DIR=f"{repo}.cache")
    res = subprocess.run([binary, *args], env=env, capture_output=True, cwd=cwd, input=stdin, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f"restic {args} failed: {res.stderr.decode()}")
    return res


def run_module(name: str, args: dict, tmp_path: Path) -> dict:
    """One module run, the way Ansible runs it on a managed host (arguments in a JSON file)."""
    argfile = tmp_path / f"args-{name}-{os.urandom(4).hex()}.json"
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"_ansible_tmpdir": str(tmp_path), **args}}))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    res = subprocess.run(
        [sys.executable, "-m", f"ansible_collections.ledgerguard.recovery.plugins.modules.{name}", str(argfile)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    try:
        return json.loads(res.stdout)
    except ValueError:
        raise AssertionError(f"{name} printed no JSON: {res.stdout[-2000:]} {res.stderr[-2000:]}") from None


def sha_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def make_books(base: Path) -> Path:
    """/<base>/srv/ledgers with two clients (Chinese names included)."""
    ledgers = base / "srv" / "ledgers"
    for client in ("C001", "C002"):
        (ledgers / client / "凭证").mkdir(parents=True)
        (ledgers / client / "凭证" / "2026-01.csv").write_text(f"编号,金额\n1,{client}\n", encoding="utf-8")
        (ledgers / client / "ledger.db").write_bytes(os.urandom(70_000))
    return ledgers


@pytest.fixture(scope="module")
def pristine_repo(restic_bin, tmp_path_factory) -> Path:
    """One empty repository per restic version, initialised once: ``restic init`` derives its key with scrypt, a
    second and more of CPU each time, and this module needs about 20 empty repositories per version."""
    base = tmp_path_factory.mktemp("pristine-repo")
    pwfile = base / "pw"
    pwfile.write_text("layout-secret")
    pwfile.chmod(0o600)
    run_restic(restic_bin, str(base / "repo"), pwfile, "init")
    return base


@pytest.fixture
def repo(tmp_path, restic_bin, pristine_repo):
    """A fresh empty repository of its own for each test: a copy of the pristine one."""
    pwfile = tmp_path / "pw"
    shutil.copy2(pristine_repo / "pw", pwfile)
    path = str(tmp_path / "repo")
    shutil.copytree(pristine_repo / "repo", path, symlinks=True)
    return {"path": path, "pw": pwfile, "bin": restic_bin}


def common(repo: dict, tmp_path: Path) -> dict:
    return {
        "repository": repo["path"],
        "password_file": str(repo["pw"]),
        "restic_binary": repo["bin"],
        "cache_dir": str(tmp_path / "cache"),
    }


# -- issue 13 item 9 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("planted", ["--help", "-r/tmp/x", "--delete"])
def test_snapshot_value_that_is_an_option_is_refused(planted, repo, tmp_path):
    """A snapshot value starting with '-' is refused by name and never reaches restic as an option (a logging wrapper
    around the real binary records every argv restic is given)."""
    books = make_books(tmp_path / "live")
    run_restic(repo["bin"], repo["path"], repo["pw"], "backup", str(books))
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "restic-logged"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {repo["bin"]} "$@"\n')
    wrapper.chmod(0o755)
    args = dict(common(repo, tmp_path), restic_binary=str(wrapper))
    target = tmp_path / "restore"
    result = run_module("restic_restore", dict(args, snapshot=planted, target=str(target)), tmp_path)
    assert result.get("failed") and f"snapshot {planted!r} is not a restic snapshot ID" in result["msg"], result
    listed = run_module("restic_snapshots", dict(args, contains_path="/srv"), tmp_path)
    assert not listed.get("failed"), listed
    calls = log.read_text().splitlines() if log.exists() else []
    for line in calls:
        words = line.split()
        if len(words) == 2 and words[1] == "--help":
            continue  # the engine's own feature probe ('restic restore --help')
        options = words[: words.index("--")] if "--" in words else words
        assert planted not in options, line
    assert not target.exists() or not any(target.iterdir())


# -- issue 17: the layout is read from the snapshot -----------------------------------------------------------------


def backup(repo: dict, *args: str, cwd: Path | None = None, stdin: bytes | None = None) -> str:
    """Run the firm's own backup command; return the new snapshot's full ID."""
    run_restic(repo["bin"], repo["path"], repo["pw"], "backup", "-q", *args, cwd=cwd, stdin=stdin)
    out = run_restic(repo["bin"], repo["path"], repo["pw"], "snapshots", "--json", "latest")
    return json.loads(out.stdout)[0]["id"]


def restore(repo: dict, tmp_path: Path, snapshot: str, include: list[str], name: str, **extra) -> dict:
    target = tmp_path / name
    args = dict(common(repo, tmp_path), snapshot=snapshot, target=str(target), include_paths=include, **extra)
    return run_module("restic_restore", args, tmp_path)


# (how the firm's job ran, cwd relative to the tree's base, expected in-snapshot path of C001)
LAYOUTS = [
    ("absolute", lambda b: ([str(b / "srv" / "ledgers")], None), lambda b: str(b / "srv/ledgers/C001")),
    ("relative", lambda b: (["ledgers"], b / "srv"), lambda b: "/ledgers/C001"),
    ("dot", lambda b: (["."], b / "srv" / "ledgers"), lambda b: "/C001"),
    ("multi-path", lambda b: (["C001", "C002"], b / "srv" / "ledgers"), lambda b: "/C001"),
    ("dotted-relative", lambda b: (["./srv/ledgers/C001", "srv/ledgers/C002"], b), lambda b: "/srv/ledgers/C001"),
]


@pytest.fixture(scope="module")
def layout_snapshots(restic_bin, pristine_repo, tmp_path_factory) -> dict:
    """One snapshot per layout of LAYOUTS, all of the same books, in one repository per restic version (a copy of the
    pristine one): the tests of each layout only restore from it, each into its own folder with its own cache, so
    they share the books and the backups (issue 19: each made its own before)."""
    made = tmp_path_factory.mktemp("layout-snapshots")
    repo = {"path": str(made / "repo"), "pw": made / "pw", "bin": restic_bin}
    shutil.copy2(pristine_repo / "pw", repo["pw"])
    shutil.copytree(pristine_repo / "repo", repo["path"], symlinks=True)
    base = made / "live"
    books = make_books(base)
    snaps = {}
    for name, how, _expected in LAYOUTS:
        paths, cwd = how(base)
        snaps[name] = backup(repo, *paths, cwd=cwd)
    return {"repo": repo, "base": base, "books": books, "snaps": snaps}


@pytest.mark.parametrize("case", LAYOUTS, ids=[c[0] for c in LAYOUTS])
def test_restore_maps_the_live_path_into_the_snapshot(case, layout_snapshots, tmp_path):
    """restic_restore run directly on each way firms write their backup job: the client's live folder is restored
    byte-identical, lands where restored_paths says, and the module's own landing check passes."""
    name, _how, expected = case
    repo, base, books = layout_snapshots["repo"], layout_snapshots["base"], layout_snapshots["books"]
    snap = layout_snapshots["snaps"][name]
    live = str(books / "C001")
    result = restore(repo, tmp_path, snap, [live], "restore")
    assert not result.get("failed"), result.get("msg")
    assert result["snapshot_include_paths"] == [expected(base)]
    landed = Path(result["restored_paths"][0]["restored_to"])
    assert result["restored_paths"][0]["path"] == live
    assert result["restored_paths"][0]["snapshot_path"] == expected(base)
    assert landed == tmp_path / "restore" / expected(base).lstrip("/")
    assert sha_tree(landed) == sha_tree(books / "C001")
    assert result["files"] == 2 and result["changed"] is True
    # idempotent: a second run compares the landed copy with the snapshot and restores nothing
    again = restore(repo, tmp_path, snap, [live], "restore")
    assert not again.get("failed") and again["changed"] is False and again["comparison"]["matches"], again


def test_restore_of_a_parent_folder_and_whole_snapshots(repo, tmp_path):
    """A parent folder of several clients (backed up one path per client, relative), and whole-snapshot restores of
    a relative and a '.' backup: everything lands where restored_paths says and the landing check passes."""
    base = tmp_path / "live"
    books = make_books(base)
    multi = backup(repo, "C001", "C002", cwd=books)
    parent = restore(repo, tmp_path, multi, [str(books)], "parent")
    assert not parent.get("failed"), parent.get("msg")
    assert parent["snapshot_include_paths"] == ["/"]
    assert parent["restored_paths"] == [
        {"path": str(books), "snapshot_path": "/", "restored_to": str(tmp_path / "parent")}
    ]
    assert sha_tree(tmp_path / "parent") == sha_tree(books)
    relative = backup(repo, "ledgers", cwd=books.parent)
    whole = restore(repo, tmp_path, relative, [], "whole")
    assert not whole.get("failed"), whole.get("msg")
    assert whole["restored_paths"][0]["restored_to"] == str(tmp_path / "whole" / "ledgers")
    assert sha_tree(tmp_path / "whole" / "ledgers") == sha_tree(books)
    dot = backup(repo, ".", cwd=books)
    whole_dot = restore(repo, tmp_path, dot[:8], [], "whole-dot")
    assert not whole_dot.get("failed"), whole_dot.get("msg")
    assert sha_tree(tmp_path / "whole-dot") == sha_tree(books)


def test_symlinked_paths(repo, tmp_path):
    """The client's folder is configured through a symlink (/base/books -> srv/ledgers) while the job backs up the
    real folder: mapped through the host's real path. A job that backed up the symlink itself stored no data: the
    message says so and how to pin."""
    base = tmp_path / "live"
    books = make_books(base)
    link = base / "books"
    link.symlink_to(books)
    real = backup(repo, str(books))
    via_link = restore(repo, tmp_path, real, [str(link / "C001")], "via-link")
    assert not via_link.get("failed"), via_link.get("msg")
    assert via_link["snapshot_include_paths"] == [str(books / "C001")]
    assert sha_tree(Path(via_link["restored_paths"][0]["restored_to"])) == sha_tree(books / "C001")
    through = backup(repo, str(link / "C001"))  # a path backed up THROUGH the symlink: stored under the link's name
    mapped = restore(repo, tmp_path, through, [str(books / "C001")], "through")
    assert not mapped.get("failed"), mapped.get("msg")
    assert mapped["snapshot_include_paths"] == [str(link / "C001")]
    assert sha_tree(Path(mapped["restored_paths"][0]["restored_to"])) == sha_tree(books / "C001")
    only_link = backup(repo, str(link))
    refused = restore(repo, tmp_path, only_link, [str(link / "C001")], "only-link")
    assert refused.get("failed")
    assert "as a symbolic link" in refused["msg"] and "snapshot_path" in refused["msg"], refused["msg"]


def test_unmappable_paths_say_what_the_snapshot_holds(repo, tmp_path):
    """A --stdin snapshot and a snapshot of other folders: the message names the snapshot's top and how to pin; a
    pin (snapshot_paths) restores from a layout the mapping cannot guess."""
    base = tmp_path / "live"
    books = make_books(base)
    stdin = backup(repo, "--stdin", "--stdin-filename", "ledgers.sql", stdin=b"dump\n")
    res = restore(repo, tmp_path, stdin, [str(books / "C001")], "stdin")
    assert res.get("failed") and "--stdin" in res["msg"] and "ledgers.sql" in res["msg"], res
    assert res["error_kind"] == "path_not_in_snapshot"
    assert "snapshot_path" in res["msg"]
    moved = tmp_path / "old-share"
    shutil.copytree(books / "C001", moved / "C001")
    other = backup(repo, "old-share", cwd=tmp_path)
    res = restore(repo, tmp_path, other, [str(books / "C001")], "other")
    assert res.get("failed") and "holds at the top of its tree: old-share/" in res["msg"], res
    pinned = restore(
        repo, tmp_path, other, [str(books / "C001")], "pinned", snapshot_paths={str(books / "C001"): "/old-share/C001"}
    )
    assert not pinned.get("failed"), pinned.get("msg")
    assert sha_tree(tmp_path / "pinned" / "old-share" / "C001") == sha_tree(books / "C001")


def test_coverage_reads_each_snapshots_layout(repo, tmp_path):
    """restic_snapshots contains_path: the client's live folder is found in absolute, relative, '.', multi-path and
    symlinked backups (each at its own in-snapshot path), and not in a --stdin snapshot or one of another folder."""
    base = tmp_path / "live"
    books = make_books(base)
    (base / "books").symlink_to(books)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    expected = {
        backup(repo, str(books)): str(books / "C001"),
        backup(repo, "ledgers", cwd=books.parent): "/ledgers/C001",
        backup(repo, ".", cwd=books): "/C001",
        backup(repo, "C001", "C002", cwd=books): "/C001",
        backup(repo, str(base / "books" / "C001")): str(base / "books" / "C001"),
    }
    absent = [
        backup(repo, "--stdin", "--stdin-filename", "C001.sql", stdin=b"x\n"),
        backup(repo, "other", cwd=tmp_path),
    ]
    res = run_module("restic_snapshots", dict(common(repo, tmp_path), contains_path=str(books / "C001")), tmp_path)
    assert not res.get("failed"), res.get("msg")
    got = {s["id"]: s["contains_path_in_snapshot"] for s in res["snapshots"]}
    assert {sid: got[sid] for sid in expected} == expected
    assert all(got[sid] == "" for sid in absent)
    assert sorted(res["containing"]) == sorted(expected)
    pinned = run_module(
        "restic_snapshots",
        dict(common(repo, tmp_path), contains_path=str(books / "C001"), snapshot_path="/other"),
        tmp_path,
    )
    assert pinned["containing"] == [absent[1]]


def test_backup_manifest_compare_on_a_relative_backup(repo, tmp_path):
    """The backup-time manifest names files by their live paths; the restore of a relative backup puts them at the
    snapshot's own layout. compare_with_backup_manifest maps one onto the other: identical, nothing missing."""
    sys.path.insert(0, str(COLLECTIONS))
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import backup_manifest as bm
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic as rs

    books = make_books(tmp_path / "live")
    snap_id = backup(repo, "ledgers", cwd=books.parent)
    engine = rs.Restic(repo["bin"], repo["path"], str(repo["pw"]), cache_dir=str(tmp_path / "cache"))
    snap = engine.resolve_snapshot(snap_id)
    recorded = bm.record_manifest(engine, snap, [], tmpdir=str(tmp_path))
    assert recorded["files"] == 4
    live = str(books / "C001")
    result = restore(repo, tmp_path, snap_id, [live], "staging")
    assert not result.get("failed"), result.get("msg")
    got = bm.compare_with_backup_manifest(engine, snap_id, str(tmp_path / "staging"), [live], tmpdir=str(tmp_path))
    assert got["compared"] and got["identical_all"], got
    assert got["files"] == 2 and got["identical"] == 2 and got["missing"] == 0
    # a file lost from the restored copy is named by its live path
    Path(result["restored_paths"][0]["restored_to"], "ledger.db").unlink()
    got = bm.compare_with_backup_manifest(engine, snap_id, str(tmp_path / "staging"), [live], tmpdir=str(tmp_path))
    assert not got["identical_all"] and got["missing_paths"] == [live + "/ledger.db"], got


def test_survey_lists_hosts_tags_and_in_snapshot_paths(repo, tmp_path):
    """Two hosts back up the same client folder (one absolute, one relative, resticprofile-style tags), plus a
    stdin dump: the survey names for each client path every snapshot that holds it, its host and tags, and where
    inside the snapshot the books are; a client no snapshot holds shows none."""
    books = make_books(tmp_path / "live")
    a = backup(repo, "--host", "web01", "--tag", "daily", str(books))
    b = backup(repo, "--host", "nas-job", "--tag", "profile:ledgers", "ledgers", cwd=books.parent)
    backup(repo, "--host", "web01", "--stdin", "--stdin-filename", "db.sql", stdin=b"x\n")
    clients = [
        {"id": "C001", "name": "甲公司", "paths": [str(books / "C001")]},
        {"id": "C009", "name": "乙公司", "paths": [str(tmp_path / "live" / "srv" / "other" / "C009")]},
    ]
    res = run_module("restic_snapshots", dict(common(repo, tmp_path), clients=clients), tmp_path)
    assert not res.get("failed"), res.get("msg")
    c001, c009 = res["survey"]
    assert c001["client"] == "C001" and c001["snapshots"] == 2 and c001["hosts"] == ["nas-job", "web01"]
    assert {c["id"]: c["snapshot_path"] for c in c001["covering"]} == {a: str(books / "C001"), b: "/ledgers/C001"}
    assert c001["newest"]["id"] == b and c001["newest"]["tags"] == ["profile:ledgers"]
    assert c009["snapshots"] == 0 and c009["newest"] is None
    only_web01 = run_module(
        "restic_snapshots", dict(common(repo, tmp_path), clients=clients, hosts=["web01"]), tmp_path
    )
    assert [c["id"] for c in only_web01["survey"][0]["covering"]] == [a]


@pytest.mark.parametrize("case", LAYOUTS, ids=[c[0] for c in LAYOUTS])
def test_landing_live_puts_books_at_their_live_path(case, layout_snapshots, tmp_path):
    """landing: live - whatever the layout, the client's books land at <target>/<live path> (what the restore
    role's hashing and swap expect), byte-identical; a second run finds them there and restores nothing."""
    repo, books = layout_snapshots["repo"], layout_snapshots["books"]
    snap = layout_snapshots["snaps"][case[0]]
    live = str(books / "C001")
    for fast in (True, False):  # full ID into an empty target (fast path), then a short ID (compare first)
        result = restore(repo, tmp_path, snap if fast else snap[:8], [live], "staging", landing="live")
        assert not result.get("failed"), result.get("msg")
        landed = tmp_path / "staging" / live.lstrip("/")
        assert result["restored_paths"][0]["restored_to"] == str(landed)
        assert sha_tree(landed) == sha_tree(books / "C001")
        assert not [p for p in (tmp_path / "staging").iterdir() if p.name.startswith(".lg-landing-")]
        assert result["changed"] is fast, result["comparison"]


def test_backup_manifest_compare_after_a_live_landing(repo, tmp_path):
    """The same comparison finds the books where restic_restore landing: live put them (a '.' backup)."""
    sys.path.insert(0, str(COLLECTIONS))
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import backup_manifest as bm
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic as rs

    books = make_books(tmp_path / "live")
    snap_id = backup(repo, ".", cwd=books)
    engine = rs.Restic(repo["bin"], repo["path"], str(repo["pw"]), cache_dir=str(tmp_path / "cache"))
    bm.record_manifest(engine, engine.resolve_snapshot(snap_id), [], tmpdir=str(tmp_path))
    live = str(books / "C002")
    result = restore(repo, tmp_path, snap_id, [live], "staging", landing="live")
    assert not result.get("failed"), result.get("msg")
    got = bm.compare_with_backup_manifest(engine, snap_id, str(tmp_path / "staging"), [live], tmpdir=str(tmp_path))
    assert got["compared"] and got["identical_all"] and got["identical"] == 2, got
