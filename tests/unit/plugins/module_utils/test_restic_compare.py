"""Target-vs-snapshot comparison and the landing rule, with a real `restic dump --archive tar` stream."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic as r
from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic_compare as c

FIX = Path(__file__).resolve().parents[3] / "unit" / "fixtures" / "restic"


@pytest.mark.parametrize(
    ("target", "path", "landed"),
    [
        ("/restore", "/srv/ledgers/C001", "/restore/srv/ledgers/C001"),
        ("/restore/", "/srv/ledgers/C001/2026.csv", "/restore/srv/ledgers/C001/2026.csv"),
        ("/restore", "/", "/restore/"),
    ],
)
def test_landing_rule(target, path, landed):
    # a path stored in the snapshot as /a/b lands at <target>/a/b: once, never doubled, never flattened
    assert c.landing_path(target, path) == landed


def listing_of(tmp_root: Path) -> r.Listing:
    return r.Listing(
        snapshot=None,
        nodes=[
            r.TreeNode("/srv/ledgers", "dir"),
            r.TreeNode("/srv/ledgers/C001", "dir"),
            r.TreeNode("/srv/ledgers/C001/a.csv", "file", size=5),
            r.TreeNode("/srv/ledgers/C001/b.csv", "file", size=3),
            r.TreeNode("/srv/ledgers/C001/cur", "symlink", linktarget="a.csv"),
        ],
    )


def build_target(root: Path) -> None:
    base = root / "srv" / "ledgers" / "C001"
    base.mkdir(parents=True)
    (base / "a.csv").write_bytes(b"hello")
    (base / "b.csv").write_bytes(b"abc")
    os.symlink("a.csv", base / "cur")


def test_metadata_match_then_content(tmp_path):
    build_target(tmp_path)
    listing = listing_of(tmp_path)
    comp = c.compare_metadata(listing, str(tmp_path))
    assert comp.matches and comp.files_compared == 2
    expected = {
        "/srv/ledgers/C001/a.csv": hashlib.sha256(b"hello").hexdigest(),
        "/srv/ledgers/C001/b.csv": hashlib.sha256(b"abc").hexdigest(),
    }
    c.compare_content(comp, expected, listing.files, str(tmp_path))
    assert comp.matches and comp.content_checked
    # same size, other bytes: only the sha256 notices
    (tmp_path / "srv/ledgers/C001/b.csv").write_bytes(b"abd")
    comp = c.compare_metadata(listing, str(tmp_path))
    assert comp.matches
    c.compare_content(comp, expected, listing.files, str(tmp_path))
    assert comp.wrong_content == ["/srv/ledgers/C001/b.csv"]
    assert comp.as_dict()["wrong_content"] == 1 and comp.as_dict()["matches"] is False


def test_metadata_differences(tmp_path):
    build_target(tmp_path)
    (tmp_path / "srv/ledgers/C001/a.csv").write_bytes(b"hello!")
    os.unlink(tmp_path / "srv/ledgers/C001/cur")
    os.symlink("b.csv", tmp_path / "srv/ledgers/C001/cur")
    (tmp_path / "srv/ledgers/C001/b.csv").unlink()
    (tmp_path / "srv/ledgers/C001/b.csv").mkdir()
    comp = c.compare_metadata(listing_of(tmp_path), str(tmp_path))
    assert comp.wrong_size == ["/srv/ledgers/C001/a.csv"]
    assert comp.wrong_type == ["/srv/ledgers/C001/b.csv"]
    assert comp.wrong_content == ["/srv/ledgers/C001/cur"]
    empty = c.compare_metadata(listing_of(tmp_path), str(tmp_path / "nothing"))
    assert len(empty.missing) == 5


def test_hash_tar_stream_of_real_restic_dump():
    data = (FIX / "dump_c001.tar").read_bytes()
    hashes = c.hash_tar_stream(io.BytesIO(data))
    [(path, digest)] = list(hashes.items())
    assert path.startswith("/") and path.endswith("/srv/ledgers/C001/2026.csv")
    assert digest == hashlib.sha256(b"voucher,debit,credit\n1,100,100\n").hexdigest()
    raw = (FIX / "dump_2026.csv").read_bytes()
    assert c.hash_raw_stream(io.BytesIO(raw)) == digest


def test_selection_roots(tmp_path):
    listing = listing_of(tmp_path)
    listing.snapshot = r.Snapshot("f" * 64, "ffffffff", None, "h", "u", ["/srv/ledgers"], [], "t")
    roots = c.selection_roots(listing, ["/srv/ledgers/C001/", "/srv/ledgers/C001/a.csv"])
    assert [n.path for n in roots] == ["/srv/ledgers/C001", "/srv/ledgers/C001/a.csv"]
    with pytest.raises(ValueError) as exc:
        c.selection_roots(listing, ["/srv/ledgers/C404"])
    assert str(exc.value).startswith(
        "include_paths ['/srv/ledgers/C404'] are not in snapshot ffffffff (it holds /srv/ledgers)."
    )
    assert c.within("/srv/ledgers/C001/a.csv", ["/srv/ledgers/C001"])
    assert not c.within("/srv/ledgers/C0010", ["/srv/ledgers/C001"])
