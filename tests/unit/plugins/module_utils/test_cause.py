"""Each client's cause of loss from what its restore found (module_utils/cause.py, filter incident_client_cause).

The reason sentences come from the real producers (damage.assess, damage.file_damage, clean_restore_point), so a
change of their wording fails here instead of silently turning a detected cause into the declared one.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.ledgerguard.recovery.plugins.filter.incident_cause import incident_client_cause
from ansible_collections.ledgerguard.recovery.plugins.filter.incident_report import incident_report
from ansible_collections.ledgerguard.recovery.plugins.filter.restore_point import clean_restore_point
from ansible_collections.ledgerguard.recovery.plugins.module_utils import cause, damage

ROOT = "/srv/books/c001"
CLEAN = [f"{ROOT}/凭证/2026-0{n}.csv" for n in range(1, 9)]


def node(path, size=100, kind="file"):
    return {"struct_type": "node", "type": kind, "path": path, "size": size}


def summary(*files, dirs=(ROOT,)):
    nodes = [node(d, kind="dir") for d in dirs] + [node(f) for f in files]
    return damage.ls_summary(nodes, [ROOT])


def skipped(reasons, short_id="9e3556b6"):
    return {"id": short_id + "0" * 56, "short_id": short_id, "time": "2026-11-26T02:00:00Z", "reasons": reasons}


# -- the damage sentences of damage.assess ---------------------------------------------------------------------------


def ransomware_reasons():
    locked = [p + ".locked" for p in CLEAN]
    cur = summary(*locked, f"{ROOT}/README_DECRYPT.txt")
    diff = {"added": locked + [f"{ROOT}/README_DECRYPT.txt"], "removed": CLEAN, "modified": [], "removed_dirs": []}
    clean, reasons = damage.assess(summary(*CLEAN), cur, diff, {p: 7.99 for p in locked[:4]})
    assert clean is False and len(reasons) == 4
    return reasons


def test_each_ransomware_sentence_is_ransomware_except_the_mass_modification():
    kinds = [cause.classify_sign(r) for r in ransomware_reasons()]
    assert kinds == [
        ("ransomware", "ransom_note"),
        ("ransomware", "ransom_extension"),
        ("corruption", "mass_modified"),
        ("ransomware", "encrypted_content"),
    ]


def test_vanished_folder_and_mass_drop_are_deletion():
    clean, reasons = damage.assess(summary(*CLEAN), summary(dirs=("/srv/books",)), None)
    assert clean is False
    assert [cause.classify_reason(r) for r in reasons] == ["deleted", "deleted", "deleted"]
    assert reasons[0] == f"client folder {ROOT} vanished (present in the previous snapshot)"
    assert reasons[1].startswith("file count fell by 100%") and reasons[2].startswith("data size fell by 100%")


def test_mass_modification_without_encryption_is_corruption():
    diff = {"added": [], "removed": [], "modified": CLEAN, "removed_dirs": []}
    clean, reasons = damage.assess(summary(*CLEAN), summary(*CLEAN), diff, {p: 4.5 for p in CLEAN[:4]})
    assert (clean, reasons) == (False, ["8 of 8 files (100%) modified or replaced since the previous snapshot"])
    assert cause.classify_reason(reasons[0]) == "corruption"


def test_high_entropy_alone_is_ransomware():
    diff = {"added": [], "removed": [], "modified": CLEAN[:1], "removed_dirs": []}
    clean, reasons = damage.assess(summary(*CLEAN), summary(*CLEAN), diff, {CLEAN[0]: 7.98})
    assert clean is False and len(reasons) == 1
    assert cause.classify_sign(reasons[0]) == ("ransomware", "encrypted_content")


# -- quarantine reasons (damage.file_damage) and non-damage reasons ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "current", "original", "expected"),
    [
        (f"{ROOT}/HOW_TO_DECRYPT.txt", b"pay us\n", None, "ransomware"),
        (f"{ROOT}/a.csv.locked", os.urandom(256), None, "ransomware"),
        (f"{ROOT}/a.bin", os.urandom(4096), b"\x00" * 4096, "ransomware"),
        (f"{ROOT}/scan.pdf", b"garbage-garbage", b"%PDF-1.7 ...", "corruption"),
        (f"{ROOT}/a.csv", b"", b"date,amount\n", "corruption"),
        (f"{ROOT}/a.csv", b"\x00\x01\x02 abc", b"date,amount\n", "corruption"),
    ],
    ids=["note", "extension", "entropy", "header", "truncated", "not-text"],
)
def test_quarantine_reasons(path, current, original, expected):
    reason = damage.file_damage(path, current, original)
    assert reason is not None
    assert cause.classify_reason(reason) == expected, reason


def test_silent_corruption_reason_of_restore_swap():
    reason = "content differs from the snapshot but the file was not modified after it (silent corruption)"
    assert cause.classify_reason(reason) == "corruption"


def test_reasons_that_are_not_damage_are_ignored():
    point = clean_restore_point(
        [
            {"id": "b" * 64, "short_id": "bbbbbbbb", "time": "2026-11-26T02:00:00Z", "clean": True, "assessed": True},
            {"id": "a" * 64, "short_id": "aaaaaaaa", "time": "2026-11-25T02:00:00Z", "clean": True, "assessed": True},
        ],
        "2026-11-26T00:00:00Z",
    )
    assert point["chosen"]["short_id"] == "aaaaaaaa" and len(point["skipped"]) == 1
    for text in point["skipped"][0]["reasons"] + ["the operator pinned 4f1e2a9c", "pack 1234abcd is missing"]:
        assert cause.classify_reason(text) is None, text


# -- one client's cause ------------------------------------------------------------------------------------------------


def test_ransomware_client_detected_with_evidence_and_weaker_signs():
    result = {"skipped": [skipped(ransomware_reasons())], "restored": [CLEAN[0]], "quarantined": []}
    got = cause.client_cause(result, "deleted")
    assert got["cause"] == "ransomware" and got["source"] == "detected" and got["declared"] == "deleted"
    assert got["signs"] == ["ransom_note", "ransom_extension", "encrypted_content"]
    assert got["evidence"][0] == "snapshot 9e3556b6: ransom note present: README_DECRYPT.txt"
    assert "live folder: 1 file was missing and put back from the snapshot" in got["other_signs"]
    assert any("modified or replaced" in s for s in got["other_signs"])


def test_deleted_folder_client_is_deletion_even_when_the_incident_says_ransomware():
    _clean, reasons = damage.assess(summary(*CLEAN), summary(dirs=("/srv/books",)), None)
    result = {"skipped": [skipped(reasons)], "restored": CLEAN, "quarantined": [], "replaced": []}
    got = incident_client_cause(result, "ransomware")
    assert (got["cause"], got["source"], got["declared"]) == ("deleted", "detected", "ransomware")
    assert got["signs"] == ["folder_vanished", "files_dropped", "files_missing"]
    assert got["evidence"][-1] == "live folder: 8 files were missing and put back from the snapshot"


def test_quarantine_only_corruption_counts_files_per_reason():
    reason = damage.file_damage(f"{ROOT}/账簿/ledger.sqlite", b"x" * 64, b"SQLite format 3\x00" + b"\x00" * 48)
    assert reason == "file header is not sqlite any more"
    result = {"skipped": [], "quarantined": [{"path": "a", "reason": reason}, {"path": "b", "reason": reason}]}
    got = cause.client_cause(result, "unknown")
    assert got == {
        "cause": "corruption",
        "source": "detected",
        "declared": "unknown",
        "signs": ["damaged_files"],
        "evidence": ["quarantine: 2 files: file header is not sqlite any more"],
        "other_signs": [],
    }


def test_pinned_snapshot_warnings_count():
    point = clean_restore_point(
        [
            {
                "id": "c" * 64,
                "short_id": "cccccccc",
                "time": "2026-11-26T02:00:00Z",
                "clean": False,
                "reasons": ["ransom note present: README.txt"],
            }
        ],
        None,
        "cccc",
    )
    got = cause.client_cause({"warnings": point["warnings"]}, "unknown")
    assert (got["cause"], got["evidence"]) == (
        "ransomware",
        ["pinned snapshot: pinned snapshot shows damage: ransom note present: README.txt"],
    )


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("corruption", ("corruption", "declared")),
        ("unknown", ("unknown", "undetermined")),
        ("bogus", ("unknown", "undetermined")),
    ],
)
def test_nothing_detected_falls_back_to_the_declared_cause(declared, expected):
    result = {"skipped": [skipped(["taken at 2026-11-26T02:00:00Z, not before 2026-11-26T01:00:00Z"])]}
    got = cause.client_cause(result, declared)
    assert (got["cause"], got["source"]) == expected
    assert got["evidence"] == [] and got["signs"] == []


def test_report_gives_each_client_its_own_cause():
    _clean, gone = damage.assess(summary(*CLEAN), summary(dirs=("/srv/books",)), None)
    record = {"incident_id": "INC-20261126-001", "cause": "ransomware", "declared_at": "2026-11-26T08:00:00Z"}
    hosts = {
        "books": {
            "restore_results": [
                {"id": "c001", "status": "ok", "priority": 10, "skipped": [skipped(ransomware_reasons())]},
                {"id": "c002", "status": "ok", "priority": 20, "skipped": [skipped(gone)], "restored": CLEAN},
                {"id": "c003", "status": "ok", "priority": 30, "skipped": []},
            ]
        }
    }
    report = incident_report(record, hosts, "2026-11-26T09:00:00Z", None)
    got = {c["id"]: (c["cause"]["cause"], c["cause"]["source"]) for c in report["clients"]}
    assert got == {
        "c001": ("ransomware", "detected"),
        "c002": ("deleted", "detected"),
        "c003": ("ransomware", "declared"),
    }
