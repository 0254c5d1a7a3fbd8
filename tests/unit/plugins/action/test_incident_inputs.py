"""The incident's input check for one host (plugins/action/incident_inputs.py): the one refusal message, the host's
selected clients, and the closed marker as ansible.builtin.slurp returns it."""

from __future__ import annotations

import base64
import json

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.ledgerguard.recovery.plugins.action import incident_inputs as ii

CLIENTS = [
    {"id": "c002", "name": "宁波海风餐饮管理有限公司", "paths": ["/srv/books/c002", "/srv/扫描/c002"], "priority": 20},
    {
        "id": "c001",
        "name": "杭州示例贸易有限公司",
        "paths": ["/srv/books/c001"],
        "priority": 10,
        "filings": "vat_monthly",
    },
]


def args(**more) -> dict:
    base = {name: spec.get("default") for name, spec in ii.ARGUMENT_SPEC.items()}
    base.update(clients=CLIENTS, host="账务01", inventory_hosts=["账务01", "files02"])
    base.update(more)
    return base


def test_sound_inputs_select_the_clients_in_restore_order():
    assert ii.refusal(args(selected="c002,c001", incident_id="INC-20261126-001", cause="ransomware")) is None
    result = ii.selection(CLIENTS, "c002,c001", [])
    assert result["client_ids"] == ["c001", "c002"]
    assert result["paths"] == ["/srv/books/c001", "/srv/books/c002", "/srv/扫描/c002"]
    assert result["clients"][0]["filings"] == ["vat_monthly"] and result["clients"][1]["priority"] == 20
    assert result["clients"][1]["declared_paths"] == ["/srv/books/c002", "/srv/扫描/c002"]
    narrowed = ii.selection(CLIENTS, [], ["/srv/books/c002/凭证"])
    assert narrowed["client_ids"] == ["c002"] and narrowed["paths"] == ["/srv/books/c002/凭证"]


def test_unknown_hosts_come_first_then_the_hosts_own_problems():
    assert ii.refusal(args(hosts=["files09"], selected=["c009"])) == (
        "Incident input refused, nothing was touched: host 'files09' is not in the inventory (known hosts: files02, "
        "账务01)"
    )
    assert ii.refusal(args(selected=["c009"], cause="fire", detected_at="2026-11-26T09:10:00")) == (
        "Incident input refused on 账务01, nothing was touched: incident_cause 'fire' is not one of deleted, "
        "ransomware, corruption, unknown; unknown client 'c009' on host 账务01: declared clients are c001, c002 "
        "(ledgerguard_clients); incident_detected_at '2026-11-26T09:10:00' has no timezone, so it is ambiguous; add "
        "one, e.g. 2026-11-26T09:10:00+08:00 or 2026-11-26T09:10:00Z"
    )
    assert "declares no clients" in ii.refusal(args(clients=None))
    pinned = ii.refusal(args(selected=["c001"], pins={"c002": "4f1e2a9c"}))
    assert pinned.endswith(
        "incident_pinned_snapshots names client(s) c002 that are not selected on this host; selected: c001"
    )


def test_closed_marker_read_by_slurp():
    record = {"incident_id": "INC-20261126-001", "closed_at": "2026-11-26T12:00:00Z", "clients": [{"id": "c001"}]}
    content = base64.b64encode(json.dumps(record, ensure_ascii=False).encode("utf-8")).decode()
    assert ii.closed_record("/s/closed.json", {"content": content, "encoding": "base64"}) == record
    assert ii.closed_record("/s/closed.json", {"failed": True, "msg": "file not found: /s/closed.json"}) is None
    with pytest.raises(AnsibleActionFail, match="Reading this incident's closed marker /s/closed.json failed: denied"):
        ii.closed_record("/s/closed.json", {"failed": True, "msg": "denied"})
    with pytest.raises(AnsibleActionFail, match="is not JSON"):
        ii.closed_record("/s/closed.json", {"content": base64.b64encode(b"{not json").decode()})
    with pytest.raises(AnsibleActionFail, match="holds no JSON object"):
        ii.closed_record("/s/closed.json", {"content": base64.b64encode(b"[1]").decode()})
