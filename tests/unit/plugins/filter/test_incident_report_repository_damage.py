"""The incident report carries the repository damage the incident's check found (issue 7)."""

from __future__ import annotations

from ansible_collections.ledgerguard.recovery.plugins.filter.incident_report import incident_report

LOST = "7720a0c412cd9c17e47291dfd7b92cd844b1c9b0a195969c74e7b733a7a2cd85"
REASON = f"needs pack {LOST}, which the repository lost (restic check: pack {LOST}: does not exist)"
DAMAGE = {
    "checked_at": "2026-11-26T21:11:02Z",
    "repository": "/srv/repo",
    "errors": [f"pack {LOST}: does not exist"],
    "lost_packs": [{"id": LOST, "reason": f"pack {LOST}: does not exist", "trees": []}],
    "damaged_snapshots": [
        {"id": "529e5c8c" + "0" * 56, "short_id": "529e5c8c", "time": "2026-11-25T21:09:49Z", "reasons": [REASON]},
        {"id": "f1d98ec7" + "0" * 56, "short_id": "f1d98ec7", "time": "2026-11-26T21:10:07Z", "reasons": [REASON]},
    ],
    "located": True,
    "locate_errors": [],
}
RECORD = {
    "incident_id": "INC-20261126-001",
    "declared_at": "2026-11-26T21:09:53Z",
    "detected_at": "2026-11-26T21:10:35Z",
    "loss_started": "",
    "cause": "deleted",
}


def host(damage):
    return {
        "restore_results": [
            {
                "id": "c001",
                "name": "c001",
                "priority": 10,
                "status": "ok",
                "snapshot": {"id": "28dfb320" + "0" * 56, "short_id": "28dfb320", "time": "2026-11-24T21:09:49Z"},
                "skipped": [
                    {
                        "id": "529e5c8c" + "0" * 56,
                        "short_id": "529e5c8c",
                        "time": "2026-11-25T21:09:49Z",
                        "reasons": [REASON],
                        "unusable": True,
                        "lost_packs": [LOST],
                    }
                ],
                "finished": "2026-11-26T21:11:13Z",
            }
        ],
        "freeze": {"targets": [{"path": "/srv/books/c001"}]},
        "thaw": {"changed": True},
        "state_snapshot": {"short_id": "f1d98ec7"},
        "repository_damage": damage,
        "in_play": True,
    }


def test_repository_damage_is_reported_without_changing_the_status():
    report = incident_report(RECORD, {"books01": host(DAMAGE)}, "2026-11-26T21:11:17Z")
    assert report["status"] == "restored" and report["problems"] == []
    assert report["summary"]["repository_damaged"] is True
    damage = report["repository_damage"]
    assert damage["lost_packs"] == DAMAGE["lost_packs"] and damage["errors"] == DAMAGE["errors"]
    assert damage["skipped_by_clients"] == {"529e5c8c": ["books01/c001"]}
    assert [(s["short_id"], s["pre_restore_of"]) for s in damage["damaged_snapshots"]] == [
        ("529e5c8c", []),
        ("f1d98ec7", ["books01"]),
    ]
    assert "pre_restore_of" not in DAMAGE["damaged_snapshots"][0]  # the input is not changed


def test_no_damage_no_section():
    report = incident_report(RECORD, {"books01": host({})}, "2026-11-26T21:11:17Z")
    assert report["repository_damage"] == {} and report["summary"]["repository_damaged"] is False
