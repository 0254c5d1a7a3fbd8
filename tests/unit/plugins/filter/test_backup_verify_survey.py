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
