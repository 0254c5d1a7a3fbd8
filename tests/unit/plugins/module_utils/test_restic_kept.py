# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Listings kept from snapshot_damage's run for restic_restore's (module_utils/restic/kept, Restic.keep_listing /
load_listing, issue 19): a kept listing answers exactly as restic would, and one that cannot be trusted is ignored."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic as r
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import kept
from ansible_collections.ledgerguard.recovery.plugins.modules import snapshot_damage as sd

REPO = "/WORK/repo"
SID = "4f1e2a9c" + "0" * 56
SNAP = {
    "struct_type": "snapshot",
    "id": SID,
    "short_id": SID[:8],
    "time": "2026-11-26T08:00:00.5+08:00",
    "hostname": "books01",
    "username": "root",
    "paths": ["/srv/ledgers"],
    "tree": "ab" * 32,
}
MANIFEST = {
    **SNAP,
    "id": "9" * 64,
    "short_id": "9" * 8,
    "paths": ["/.ledgerguard-manifest/manifest.jsonl"],
    "tags": ["ledgerguard-manifest", f"ledgerguard-manifest-for={SID}"],
}
TREE = [
    ("/srv", "dir", 0),
    ("/srv/ledgers", "dir", 0),
    ("/srv/ledgers/C001", "dir", 0),
    ("/srv/ledgers/C001/总账.csv", "file", 5),
    ("/srv/ledgers/C001/sub", "dir", 0),
    ("/srv/ledgers/C001/sub/b.csv", "file", 7),
    ("/srv/ledgers/C002", "dir", 0),
    ("/srv/ledgers/C002/c.csv", "file", 9),
]


class FakeRestic:
    """restic ls of one snapshot as restic 0.14 prints it: the snapshot, then the nodes under the given paths
    (--recursive) or the given paths themselves."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, argv, env, timeout=None, cwd=None, **_):
        self.calls.append(list(argv))
        if argv[1] == "version":
            return r.ResticResult(argv, 0, "restic 0.14.0 compiled with go1.19.8 on linux/amd64\n", "")
        if argv[1] == "snapshots":
            return r.ResticResult(argv, 0, json.dumps([SNAP, MANIFEST]), "")
        assert argv[1] == "ls", argv
        after = argv[argv.index("--") + 1 :]
        sid, paths = after[0], after[1:]
        if not SID.startswith(sid):
            return r.ResticResult(argv, 1, "", f'Fatal: no matching ID found for prefix "{sid}"\n')
        recursive = "--recursive" in argv
        lines = [json.dumps(SNAP)]
        for path, kind, size in TREE:
            if not paths or (
                any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths) if recursive else path in paths
            ):
                lines.append(json.dumps({"struct_type": "node", "path": path, "type": kind, "size": size}))
        return r.ResticResult(argv, 0, "\n".join(lines) + "\n", "")

    def ls_calls(self) -> int:
        return sum(1 for c in self.calls if c[1] == "ls")


def kept_by_damage(folder: str, roots=("/srv/ledgers/C001", "/srv/ledgers/C002")) -> r.Restic:
    """What snapshot_damage does: the layout of the clients' paths, one recursive listing of their roots, kept."""
    engine = r.Restic("restic", REPO, "/pw", run=FakeRestic(), base_env={})
    engine.layout(SID, list(roots))
    text = engine.must("ls", "--json", "--recursive", "--", SID, *roots, action="list").stdout
    engine.keep_listing(folder, SID, list(roots), text)
    return engine


def test_a_kept_listing_answers_as_restic_without_running_it(tmp_path):
    folder = str(tmp_path / "listings")
    kept_by_damage(folder)
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"
    (name,) = os.listdir(folder)
    assert name == kept.file_name(REPO, SID) and oct(os.stat(os.path.join(folder, name)).st_mode & 0o777) == "0o600"

    fresh = FakeRestic()
    engine = r.Restic("restic", REPO, "/pw", run=fresh, base_env={})
    assert engine.load_listing(folder, SID)
    assert engine.map_path(SID, "/srv/ledgers/C001") == "/srv/ledgers/C001"
    got = engine.ls(SID, ["/srv/ledgers/C001"])
    assert fresh.ls_calls() == 0

    alone = r.Restic("restic", REPO, "/pw", run=FakeRestic(), base_env={})
    expected = alone.ls(SID, ["/srv/ledgers/C001"])
    assert got == expected
    assert [n.path for n in got.nodes] == [
        "/srv/ledgers/C001",
        "/srv/ledgers/C001/总账.csv",
        "/srv/ledgers/C001/sub",
        "/srv/ledgers/C001/sub/b.csv",
    ]
    assert engine.layout(SID, ["/srv/ledgers/C001"]).as_dict() == alone.layout(SID, ["/srv/ledgers/C001"]).as_dict()


def test_paths_outside_the_kept_roots_are_listed_by_restic(tmp_path):
    folder = str(tmp_path / "listings")
    kept_by_damage(folder, roots=("/srv/ledgers/C001",))
    fresh = FakeRestic()
    engine = r.Restic("restic", REPO, "/pw", run=fresh, base_env={})
    assert engine.load_listing(folder, SID)
    got = engine.ls(SID, ["/srv/ledgers/C001", "/srv/ledgers/C002"])
    assert fresh.ls_calls() == 1
    assert "/srv/ledgers/C002/c.csv" in [n.path for n in got.nodes]


def _engine_after(folder: str) -> tuple[r.Restic, FakeRestic]:
    del folder
    fresh = FakeRestic()
    return r.Restic("restic", REPO, "/pw", run=fresh, base_env={}), fresh


@pytest.mark.parametrize(
    "spoil",
    [
        "folder_mode",
        "file_mode",
        "file_is_link",
        "other_repository",
        "other_snapshot_inside",
        "not_json",
        "short_id",
    ],
)
def test_a_kept_listing_that_cannot_be_trusted_is_ignored(tmp_path, spoil):
    folder = str(tmp_path / "listings")
    kept_by_damage(folder)
    path = os.path.join(folder, kept.file_name(REPO, SID))
    wanted, repository = SID, REPO
    if spoil == "folder_mode":
        os.chmod(folder, 0o755)
    elif spoil == "file_mode":
        os.chmod(path, 0o620)
    elif spoil == "file_is_link":
        os.rename(path, path + ".real")
        os.symlink(path + ".real", path)
    elif spoil == "other_repository":
        repository = "/WORK/other-repo"
    elif spoil == "other_snapshot_inside":
        data = json.loads(open(path, encoding="utf-8").read())
        data["snapshot"] = "f" * 64
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data))
    elif spoil == "not_json":
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("{not json")
    elif spoil == "short_id":
        wanted = SID[:8]
    fresh = FakeRestic()
    engine = r.Restic("restic", repository, "/pw", run=fresh, base_env={})
    assert not engine.load_listing(folder, wanted)
    engine.ls(SID, ["/srv/ledgers/C001"])
    assert fresh.ls_calls() == 1


def test_a_kept_listing_is_written_only_into_a_private_folder(tmp_path):
    folder = tmp_path / "listings"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    with pytest.raises(OSError, match="0755, not 0700"):
        kept_by_damage(str(folder))
    assert os.listdir(folder) == []
    with pytest.raises(ValueError, match="not a full 64-hex ID"):
        kept.save(str(tmp_path / "other"), REPO, SID[:8], {})


def _client(engine: r.Restic, path: str) -> SimpleNamespace:
    """What Shared reads of an assessor: its paths, pins and mapped roots."""
    return SimpleNamespace(paths=[path], pins={}, mapped_roots=lambda sid: {path: engine.map_path(sid, path)})


def test_snapshot_damage_keeps_the_shared_listing_for_the_restore(tmp_path):
    fake = FakeRestic()
    engine = r.Restic("restic", REPO, "/pw", run=fake, base_env={})
    warnings: list[str] = []
    shared = sd.Shared(engine, str(tmp_path / "listings"), warnings.append)
    shared.assessors = [_client(engine, "/srv/ledgers/C001"), _client(engine, "/srv/ledgers/C002")]
    assert [s.id for s in shared.snapshots()] == [SID]  # the manifest snapshot is no restore point
    assert shared.manifest_tags == sorted(MANIFEST["tags"])
    shared.warm(SID)
    shared.listing(SID)
    assert warnings == [] and sum(1 for c in fake.calls if "--recursive" in c) == 1  # one listing for both clients

    restore, fresh = _engine_after(str(tmp_path / "listings"))
    assert restore.load_listing(str(tmp_path / "listings"), SID)
    for client in ("/srv/ledgers/C001", "/srv/ledgers/C002"):
        assert restore.ls(SID, [restore.map_path(SID, client)]) == r.Restic(
            "restic", REPO, "/pw", run=FakeRestic(), base_env={}
        ).ls(SID, [client])
    assert fresh.ls_calls() == 0


def test_snapshot_damage_warns_once_when_it_cannot_keep_a_listing(tmp_path):
    folder = tmp_path / "listings"
    folder.symlink_to(tmp_path)
    engine = r.Restic("restic", REPO, "/pw", run=FakeRestic(), base_env={})
    warnings: list[str] = []
    shared = sd.Shared(engine, str(folder), warnings.append)
    shared.assessors = [_client(engine, "/srv/ledgers/C001")]
    shared.warm(SID)
    assert shared.listing(SID) is not None  # the assessment goes on
    shared.keep(SID, ["/srv/ledgers/C001"], "x")  # no second warning: nothing more is kept
    assert len(warnings) == 1
    assert f"listing_dir {folder}" in warnings[0] and "symbolic link" in warnings[0]
    assert "the restore lists the snapshot again" in warnings[0]
    assert sorted(os.listdir(tmp_path)) == ["listings"]
