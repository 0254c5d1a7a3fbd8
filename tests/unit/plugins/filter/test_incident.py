"""Input validation and helpers of the incident path."""

from __future__ import annotations

import pytest

from ansible_collections.ledgerguard.recovery.plugins.filter import incident as f

CLIENTS = [
    {"id": "c002", "name": "宁波海风餐饮管理有限公司", "paths": ["/srv/books/c002"], "priority": 20},
    {"id": "c001", "name": "杭州示例贸易有限公司", "paths": ["/srv/books/c001"], "priority": 10},
]


def test_valid_input_has_no_errors():
    assert f.incident_input_errors(CLIENTS, ["c001"], ["/srv/books/c001/凭证"], "h1", "INC-20261126-001") == []


@pytest.mark.parametrize(
    ("selected", "paths", "incident_id", "message"),
    [
        (["c009"], [], "", "unknown client 'c009' on host h1: declared clients are c001, c002 (ledgerguard_clients)"),
        (["../c001"], [], "", "client id '../c001' is not valid: '/', '..' and other path characters are refused"),
        (
            ["c001"],
            ["/srv/books/c002/x"],
            "",
            "path /srv/books/c002/x is outside the declared paths of the selected "
            "clients on host h1 (c001: /srv/books/c001)",
        ),
        (["c001"], ["/srv/books/c001/../c002"], "", "path '/srv/books/c001/../c002' contains '..'"),
        (["c001"], ["srv/books/c001"], "", "path 'srv/books/c001' is not absolute"),
        ([], [], "INC-1/../x", "incident id 'INC-1/../x' is not valid: use INC-YYYYMMDD-NNN"),
    ],
)
def test_bad_input_messages(selected, paths, incident_id, message):
    errors = f.incident_input_errors(CLIENTS, selected, paths, "h1", incident_id)
    assert any(e.startswith(message) for e in errors), errors


def test_repository_with_credentials_and_pins_for_other_clients_are_refused():
    errors = f.incident_input_errors(
        CLIENTS,
        ["c001"],
        [],
        "h1",
        "",
        "ransomware",
        repository="s3:https://AKIAX:s3cr3t@s3.example.com/bucket",
        pins={"c001": "abc12345"},
        hosts=["h1", "h2"],
    )
    assert errors == [f.CREDENTIALS_ERROR]
    assert "s3cr3t" not in f.CREDENTIALS_ERROR
    pins = {"c002": "abc12345", "h2": "def67890", "c001": "0123abcd"}
    assert f.incident_input_errors(CLIENTS, ["c001"], [], "h1", pins=pins, hosts=["h1", "h2"]) == [
        "incident_pinned_snapshots names client(s) c002 that are not selected on this host; selected: c001"
    ]
    assert f.incident_input_errors(CLIENTS, [], [], "h1", pins=pins, hosts=["h1", "h2"]) == []
    # Pins are judged only once the clients themselves are valid (an unknown client is the first thing to fix).
    assert f.incident_input_errors(CLIENTS, ["c009"], [], "h1", pins={"c002": "x"}) == [
        "unknown client 'c009' on host h1: declared clients are c001, c002 (ledgerguard_clients)"
    ]


def test_bad_declared_clients():
    bad = [{"id": "../x", "name": "n", "paths": ["/a"]}, {"id": "c1", "name": "", "paths": ["rel"], "priority": "high"}]
    errors = f.incident_input_errors(bad, [], [], "h1")
    assert errors == [
        "host h1: client id '../x' is not valid: use letters, digits, '.', '_' or '-' (no '/', "
        "no '..', at most 64 characters); it names folders",
        "host h1: client c1 has no name",
        "host h1: client c1 path 'rel' is not absolute",
        "host h1: client c1 priority 'high' is not an integer",
    ]
    assert f.incident_input_errors([], [], [], "h1") == [
        "host h1 declares no clients: set ledgerguard_clients (list of {id, name, paths, priority}) in its inventory"
    ]


def test_times():
    now = "2026-11-26T10:00:00Z"
    assert f.incident_time_errors("2026-11-26T17:00:00+08:00", "2026-11-25T08:00:00+08:00", now) == []
    assert f.incident_time_errors("", "2026-11-25 08:00", now) == [
        "incident_loss_started '2026-11-25 08:00' has no timezone, so it is ambiguous; add one, "
        "e.g. 2026-11-25T08:00+08:00 or 2026-11-25T08:00Z"
    ]
    assert f.incident_time_errors("", "2026-11-27T08:00:00Z", now) == [
        "incident_loss_started 2026-11-27T08:00:00Z is in the future (controller clock: "
        "2026-11-26T10:00:00Z); give the time the loss was first possible"
    ]
    assert f.incident_time_errors("2026-11-26T01:00:00Z", "2026-11-26T02:00:00Z", now) == [
        "incident_loss_started 2026-11-26T02:00:00Z is after incident_detected_at "
        "2026-11-26T01:00:00Z; the loss cannot start after it was detected"
    ]
    assert f.incident_time("2026-11-26T09:00:00+0800") == "2026-11-26T01:00:00Z"


def test_select_clients_in_priority_order_with_paths():
    chosen = f.incident_select_clients(CLIENTS, [], ["/srv/books/c002/a"])
    assert [c["id"] for c in chosen] == ["c002"] and chosen[0]["restore_paths"] == ["/srv/books/c002/a"]
    assert [c["id"] for c in f.incident_select_clients(CLIENTS)] == ["c001", "c002"]


def test_next_id_and_hosts_and_duration():
    assert f.incident_next_id([], "20261126") == "INC-20261126-001"
    assert (
        f.incident_next_id(["/e/INC-20261126-001", "/e/INC-20261126-007", "/e/INC-20261125-009"], "20261126")
        == "INC-20261126-008"
    )
    assert f.incident_host_errors(["h1", "h9"], ["h1", "h2"]) == [
        "host 'h9' is not in the inventory (known hosts: h1, h2)"
    ]
    assert f.incident_host_errors("h1, h2", ["h1", "h2"]) == []
    assert [f.incident_duration(s) for s in (12, 200, 3900, 90000)] == [
        "12 s",
        "3 min 20 s",
        "1 h 05 min",
        "1 d 1 h 00 min",
    ]


def test_fractional_times_keep_their_zone():
    assert f.incident_time("2026-11-26T09:00:00.123456789+08:00") == "2026-11-26T01:00:00.123456Z"


def test_outcome_names_the_failed_database_and_keeps_the_host_not_done():
    """A database that was not restored keeps the host from being done (the lock stays) even when every client was
    restored and no step failed; the verdict names it with its reason. A dry run asks clients for a restore point."""
    clients = [{"id": "c001", "status": "ok", "msg": "restored"}]
    reason = "the ledger of the restore of postgresql database books does not check out: 账务.凭证分录: 1 finding"
    databases = [
        {"engine": "postgresql", "database": "books", "ok": False, "msg": reason},
        {"engine": "sqlite", "database": "ledger", "ok": True, "msg": ""},
    ]
    args = ("Incident", "INC-20261206-001", "h1", "/ev/INC-20261206-001")
    frozen = {"frozen_at": "2026-12-06T04:00:00Z"}
    assert f.incident_outcome(frozen, clients, databases, False, *args) == {
        "done": False,
        "msg": "Incident INC-20261206-001 on h1 is not fully restored: database postgresql/books failed: "
        f"{reason}. Writes were thawed; the lock stays so a re-run with ledgerguard_incident_id=INC-20261206-001 "
        "continues. Report: /ev/INC-20261206-001/report.html",
    }
    assert f.incident_outcome(frozen, clients, databases[1:], False, *args) == {
        "done": True,
        "msg": "Incident INC-20261206-001: every client on h1 restored. Report: /ev/INC-20261206-001/report.html",
    }
    failed = {"failed_step": "Keep the damaged state", "failed_msg": "disk full"}
    bad_client = [{"id": "c002", "status": "failed", "msg": "no clean snapshot"}]
    assert f.incident_outcome(failed, bad_client, [], False, "Restore", "INC-1", "h1", "/ev")["msg"] == (
        'Restore INC-1 on h1 is not fully restored: step "Keep the damaged state" failed: disk full. client c002 '
        "failed: no clean snapshot. The lock stays so a re-run with ledgerguard_incident_id=INC-1 continues. Report: "
        "/ev/report.html"
    )
    assert f.incident_outcome({}, [{"id": "c001", "status": "planned"}], [], True, *args)["done"] is True
    assert f.incident_outcome({}, clients, [], True, *args) == {
        "done": False,
        "msg": "Dry run of incident INC-20261206-001 on h1: a real run would not restore everything: client c001: "
        "restored. Nothing was changed.",
    }
