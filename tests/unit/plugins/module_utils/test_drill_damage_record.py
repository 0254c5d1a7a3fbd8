"""The drill record names the clients whose drilled backup already holds damage (check `damage`)."""

from __future__ import annotations

from ansible_collections.ledgerguard.recovery.plugins.module_utils import drill


def test_damaged_backups_listed_one_sentence_each():
    missing = "this client's folder is missing from the newest backup (1a2b3c4d, 2026-11-02T02:00:00Z): /srv/c003"
    clients = [
        drill.client_result({"id": "c001"}, {}, 1, 1, 10, {"damage": {"ok": True, "message": "no sign"}}, {}),
        drill.client_result({"id": "c003"}, {}, 0, 0, 10, {"damage": {"ok": False, "message": missing}}, {}),
    ]
    rec = drill.drill_record({"drill_id": "d"}, clients)
    assert rec["damaged_backups"] == [f"c003: {missing}"]
    assert rec["failed_checks"] == ["c003: damage"] and rec["passed"] is False
    assert drill.summary(rec)["damaged_backups"] == [f"c003: {missing}"]
