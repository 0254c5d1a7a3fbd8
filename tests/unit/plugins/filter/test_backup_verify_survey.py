"""backup_verify's survey section (issue 17): carried through bv_report into the Markdown summary."""

from __future__ import annotations

from ansible_collections.ledgerguard.recovery.plugins.filter import backup_verify as bv

SURVEY = [
    {
        "client": "C001",
        "path": "/srv/ledgers/C001",
        "snapshots": 2,
        "hosts": ["nas-job", "web01"],
        "snapshot_paths": ["/ledgers/C001", "/srv/ledgers/C001"],
        "newest": {"short_id": "0f254756", "time": "2026-11-26T18:01:25Z", "hostname": "nas-job", "tags": ["daily"]},
        "covering": [],
    },
    {"client": "C009", "path": "/srv/ledgers/C009", "snapshots": 0, "hosts": [], "snapshot_paths": [], "newest": None},
]


def test_survey_reaches_the_markdown_summary():
    result = {"repository": "/repo", "checks": [bv.check("coverage", "OK", "present", "C001")], "survey": SURVEY}
    report = bv.bv_report(["web01"], {"web01": result}, run_id="r1")
    assert report["hosts"][0]["survey"] == SURVEY
    text = bv.bv_markdown(report)
    assert "#### Survey: which snapshots hold each client's books" in text
    assert "| C001 | /srv/ledgers/C001 | 2 | nas-job, web01 | /ledgers/C001, /srv/ledgers/C001 | 0f254756" in text
    assert "| C009 | /srv/ledgers/C009 | 0 |" in text and "would find no restore point" in text


def test_no_survey_no_key():
    report = bv.bv_report(["web01"], {"web01": {"repository": "/repo", "checks": []}}, run_id="r1")
    assert "survey" not in report["hosts"][0]


def test_check_result_names_the_diagnosis_and_harmless_damage_warns():
    lost = {
        "ok": False,
        "errors": ["pack 88: does not exist"],
        "harmless": False,
        "diagnosis": [
            {"kind": "data_lost", "harmless": False, "summary": "1 pack(s) lost", "what_to_do": "Do not prune."}
        ],
    }
    [item] = bv.bv_check_result(lost, None)
    assert item["status"] == "FAIL" and "data_lost: 1 pack(s) lost. Do not prune." in item["reason"]
    unused = {
        "ok": False,
        "errors": ["pack 77: does not exist"],
        "harmless": True,
        "diagnosis": [
            {"kind": "unused_data_missing", "harmless": True, "summary": "1 unused", "what_to_do": "No snapshot."}
        ],
    }
    [item] = bv.bv_check_result(unused, None)
    assert item["status"] == "WARN" and item["details"]["diagnosis"][0]["kind"] == "unused_data_missing"
