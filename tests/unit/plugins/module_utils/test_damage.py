"""Damage detection on restic's JSON output and on byte samples."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import damage, restic

ROOT = "/srv/books/c001"


def node(path, size=100, kind="file"):
    return {"struct_type": "node", "type": kind, "path": path, "size": size}


def listing(*files, dirs=(ROOT,)):
    return [{"struct_type": "snapshot", "id": "x"}] + [node(d, kind="dir") for d in dirs] + [node(f) for f in files]


CLEAN = [f"{ROOT}/凭证/2026-0{n}.csv" for n in range(1, 9)]


def summary(nodes):
    return damage.ls_summary(nodes, [ROOT])


def test_parse_json_lines_skips_noise():
    text = 'scan...\n{"a": 1}\n[1,2]\n{"b": 2}\nnot json {\n'
    assert restic.parse_json_lines(text) == [{"a": 1}, {"b": 2}]


def test_ls_summary_counts_only_under_roots():
    nodes = listing(*CLEAN, "/srv/books/c002/x.csv", dirs=(ROOT, "/srv/books/c002"))
    result = summary(nodes)
    assert (result["files"], result["bytes"], result["roots_present"], result["roots_missing"]) == (8, 800, [ROOT], [])


def test_ls_summary_notes_a_missing_root():
    assert summary(listing(dirs=("/srv/books",)))["roots_missing"] == [ROOT]


def test_diff_summary_splits_changes():
    changes = [
        {"message_type": "change", "path": f"{ROOT}/a.csv", "modifier": "M"},
        {"message_type": "change", "path": f"{ROOT}/b.csv", "modifier": "-"},
        {"message_type": "change", "path": f"{ROOT}/b.csv.locked", "modifier": "+"},
        {"message_type": "change", "path": f"{ROOT}/old/", "modifier": "-"},
        {"message_type": "change", "path": "/srv/books/c002/z.csv", "modifier": "M"},
        {"message_type": "statistics", "changed_files": 1},
    ]
    assert damage.diff_summary(changes, [ROOT]) == {
        "added": [f"{ROOT}/b.csv.locked"],
        "removed": [f"{ROOT}/b.csv"],
        "modified": [f"{ROOT}/a.csv"],
        "removed_dirs": [f"{ROOT}/old"],
    }


def test_clean_change_is_clean():
    prev = summary(listing(*CLEAN))
    cur = summary(listing(*CLEAN, f"{ROOT}/凭证/2026-09.csv"))
    diff = {"added": [f"{ROOT}/凭证/2026-09.csv"], "removed": [], "modified": [CLEAN[0]], "removed_dirs": []}
    assert damage.assess(prev, cur, diff, {CLEAN[0]: 4.9}) == (True, [])


def test_ransomware_signs():
    prev = summary(listing(*CLEAN))
    locked = [p + ".locked" for p in CLEAN]
    cur = summary(listing(*locked, f"{ROOT}/README_DECRYPT.txt"))
    diff = {"added": locked + [f"{ROOT}/README_DECRYPT.txt"], "removed": CLEAN, "modified": [], "removed_dirs": []}
    clean, reasons = damage.assess(prev, cur, diff, {p: 7.99 for p in locked[:4]})
    assert clean is False
    assert reasons == [
        "ransom note present: README_DECRYPT.txt",
        "8 files with ransomware extension .locked (e.g. 2026-01.csv.locked)",
        "8 of 8 files (100%) modified or replaced since the previous snapshot",
        "4 of 4 sampled changed files look encrypted or random (entropy >= 7.2 bits/byte, e.g. 2026-01.csv.locked)",
    ]


def test_vanished_client_folder():
    prev = summary(listing(*CLEAN))
    cur = summary(listing(dirs=("/srv/books",)))
    diff = {"added": [], "removed": CLEAN, "modified": [], "removed_dirs": [ROOT]}
    clean, reasons = damage.assess(prev, cur, diff)
    assert not clean
    assert reasons == [
        f"client folder {ROOT} vanished (present in the previous snapshot)",
        "file count fell by 100% (8 -> 0)",
        "data size fell by 100% (800 -> 0 bytes)",
    ]


def test_partial_drop_below_threshold_is_clean_and_above_is_not():
    prev = summary(listing(*CLEAN))
    assert damage.assess(prev, summary(listing(*CLEAN[:6])), None)[0] is True  # 25% fewer files
    clean, reasons = damage.assess(prev, summary(listing(*CLEAN[:5])), None)  # 37.5%
    assert not clean and reasons[0] == "file count fell by 38% (8 -> 5)"


def test_thresholds_can_be_raised():
    prev = summary(listing(*CLEAN))
    assert damage.assess(prev, summary(listing(*CLEAN[:5])), None, thresholds={"max_file_drop": 0.5})[0] is True


def test_mass_modification():
    prev = summary(listing(*CLEAN))
    diff = {"added": [], "removed": [], "modified": CLEAN[:5], "removed_dirs": []}
    clean, reasons = damage.assess(prev, summary(listing(*CLEAN)), diff)
    assert reasons == ["5 of 8 files (62%) modified or replaced since the previous snapshot"]


@pytest.mark.parametrize(
    ("name", "note"),
    [("README_DECRYPT.txt", True), ("HOW_TO_DECRYPT.txt", True), ("恢复文件说明.txt", True), ("readme.txt", False)],
)
def test_ransom_note_names(name, note):
    assert damage.is_ransom_note(f"{ROOT}/{name}") is note


def test_ransom_extension():
    assert damage.ransom_extension("/x/a.csv.LOCKED") == ".locked"
    assert damage.ransom_extension("/x/a.csv") is None
    assert damage.ransom_extension("/x/.locked") is None


def test_entropy():
    assert damage.shannon_entropy(b"") == 0.0
    assert damage.shannon_entropy(b"aaaa") == 0.0
    assert damage.shannon_entropy(bytes(range(256)) * 4) == pytest.approx(8.0)
    assert damage.shannon_entropy("期间,凭证字,凭证号\n2026-09,记,1\n".encode() * 50) < 5


def test_pick_samples_skips_compressed_formats_and_notes():
    diff = {"modified": ["/a/x.zip", "/a/y.csv"], "added": ["/a/README_DECRYPT.txt", "/a/z.pdf"]}
    assert damage.pick_samples(diff, 5) == ["/a/y.csv", "/a/z.pdf"]


SQLITE = b"SQLite format 3\x00" + b"\x00" * 200
CSV = "期间,凭证字,凭证号\n2026-09,记,1\n".encode() * 20


@pytest.mark.parametrize(
    ("path", "current", "original", "reason"),
    [
        ("/a/ledger.sqlite", os.urandom(216), SQLITE, "file header is not sqlite any more"),
        ("/a/v.csv", os.urandom(4096), CSV, "content looks encrypted or random"),
        ("/a/v.csv", b"", CSV, "truncated to 0 bytes"),
        ("/a/v.csv", b"\x00\x01\x02" * 10, CSV, "text file no longer decodes as text"),
        ("/a/v.csv.locked", CSV, None, "ransomware extension .locked"),
        ("/a/HOW_TO_DECRYPT.txt", b"pay", None, "ransom note name"),
        ("/a/v.csv", CSV + b"2026-09,\xe8\xae\xb0,2\n", CSV, None),
        ("/a/new.csv", CSV, None, None),
        ("/a/photo.jpg", b"\xff\xd8\xff" + os.urandom(4096), None, None),
        ("/a/scan.pdf", os.urandom(4096), None, "file header is not pdf any more"),
    ],
)
def test_file_damage(path, current, original, reason):
    got = damage.file_damage(path, current, original)
    if reason is None:
        assert got is None
    else:
        assert got is not None and got.startswith(reason), got


def test_real_restic_fixture_listing_parses():
    """The ls fixture captured from restic 0.14 by the restic engine's capture script."""
    fixture = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "restic", "ls_json.stdout")
    if not os.path.exists(fixture):
        pytest.skip("restic fixtures not captured")
    with open(fixture, encoding="utf-8") as handle:
        nodes = restic.parse_json_lines(handle.read())
    files = [n for n in nodes if n.get("type") == "file"]
    assert files, "fixture has files"
    roots = sorted({os.path.dirname(files[0]["path"])})
    assert damage.ls_summary(nodes, roots)["files"] >= 1
    assert json.dumps(nodes)
