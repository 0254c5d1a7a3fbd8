"""drill_damage_clients: every drilled client in one damage assessment, each one's books read exactly as the
incident's restore reads them (drill_ledger, one ledger_paths)."""

from __future__ import annotations

import pytest

from ansible_collections.ledgerguard.recovery.plugins.filter.drill import (
    FilterModule,
    drill_damage_clients,
    drill_ledger,
    drill_snapshot_pin,
)
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import restore_clients as rc

ROOT = "/srv/账套/杭州示例贸易"


@pytest.mark.parametrize(
    "client",
    [
        {"ledger": {"sqlite": "账簿/总账.sqlite", "csv": {"sources": ["凭证/2026-09.csv", "凭证/*.csv"]}}},
        {"ledger": {"csv": ["/mnt/共享/凭证.csv", "凭证/[ab].csv"]}, "root": "/srv/根"},
        {"csv": "凭证/2026-10.csv", "sqlite": ["账簿/a.sqlite", "账簿/b?.sqlite"]},
        {},
    ],
)
def test_the_drill_and_the_incident_find_the_same_ledger_files(client):
    client = {"id": "c001", "name": "杭州示例贸易有限公司", "paths": [ROOT], **client}
    got = drill_ledger(client, {})
    assert got["paths"] == rc.ledger_paths({**client, "declared_paths": [ROOT]})
    assert got["ledger"] == (client.get("ledger") or {})
    assert not any(c in p for p in got["paths"] for c in "*?[")


def test_a_deprecated_drill_ledger_checks_entry_becomes_the_declaration():
    client = {"id": "c002", "name": "宁波示例会计服务有限公司", "paths": [ROOT]}
    legacy = {
        "c002": {
            "csv": ["凭证/2026-09.csv"],
            "csv_encoding": "gbk",
            "csv_delimiter": ";",
            "sqlite": ["/data/账簿.sqlite"],
            "sqlite_table": "凭证",
            "sqlite_amount_scale": 2,
        },
        "other": {"csv": ["x.csv"]},
    }
    assert drill_ledger(client, legacy) == {
        "ledger": {
            "csv": {"sources": ["凭证/2026-09.csv"], "encoding": "gbk", "delimiter": ";"},
            "sqlite": {"sources": ["/data/账簿.sqlite"], "table": "凭证", "amount_scale": 2},
        },
        "paths": ["/data/账簿.sqlite", f"{ROOT}/凭证/2026-09.csv"],
    }
    # the client's own declaration wins over the deprecated entry
    own = {**client, "ledger": {"csv": "凭证/own.csv"}}
    assert drill_ledger(own, legacy) == {"ledger": {"csv": "凭证/own.csv"}, "paths": [f"{ROOT}/凭证/own.csv"]}


def test_a_client_without_paths_has_no_ledger_files():
    assert drill_ledger({"id": "h1", "name": "h1", "paths": []}, {"h1": {"csv": ["a.csv"]}})["paths"] == []


def test_the_clients_of_one_assessment_with_their_books_pins_and_the_snapshot():
    clients = [
        {"id": "c001", "name": "杭州示例贸易有限公司", "paths": [ROOT], "ledger": {"sqlite": "账簿/总账.sqlite"}},
        {"id": "h1", "name": "无目录客户", "paths": []},
        {"id": 7, "name": "宁波示例", "paths": ["/srv/宁波", "/srv/宁波2"], "snapshot_path": "/stdin/宁波.tar"},
    ]
    got = drill_damage_clients(clients, {"7": {"csv": ["x.csv"]}}, "9e3556b6f00d")
    assert got == [
        {
            "id": "c001",
            "paths": [ROOT],
            "ledger": {"sqlite": "账簿/总账.sqlite"},
            "ledger_paths": [f"{ROOT}/账簿/总账.sqlite"],
            "snapshot_paths": {},
            "snapshot": "9e3556b6f00d",
        },
        {
            "id": "7",
            "paths": ["/srv/宁波", "/srv/宁波2"],
            "ledger": {},
            "ledger_paths": [],
            "snapshot_paths": {"/srv/宁波": "/stdin/宁波.tar"},
            "snapshot": "9e3556b6f00d",
        },
    ]
    assert "snapshot" not in drill_damage_clients(clients[:1])[0]
    assert drill_damage_clients(None) == []
    assert FilterModule().filters()["drill_damage_clients"] is drill_damage_clients
    assert "drill_ledger" not in FilterModule().filters()


def test_the_pin_of_a_clients_first_path_one_rule_for_the_restore_and_the_assessment():
    stdin = {"id": "7", "paths": ["/srv/宁波", "/srv/宁波2"], "snapshot_path": "/stdin/宁波.tar"}
    assert drill_snapshot_pin(stdin) == {"/srv/宁波": "/stdin/宁波.tar"}
    assert drill_snapshot_pin(dict(stdin, snapshot_path="")) == {}
    assert drill_snapshot_pin(dict(stdin, snapshot_path=None)) == {}
    assert drill_snapshot_pin(dict(stdin, paths=[])) == {}
    assert drill_snapshot_pin({"id": "c001", "paths": [ROOT]}) == {}
    assert drill_snapshot_pin(None) == {}
    assert drill_damage_clients([stdin])[0]["snapshot_paths"] == drill_snapshot_pin(stdin)
    assert FilterModule().filters()["drill_snapshot_pin"] is drill_snapshot_pin


def test_whether_the_listed_snapshots_hold_the_snapshots_manifest():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.ledgerguard.recovery.plugins.filter.drill import drill_manifest_recorded

    data = "9e3556b60f7f1177cd26a96c4a0e32c5ee50c7f6091216a4b61fed84040e0878"
    listed = ["ledgerguard-manifest", f"ledgerguard-manifest-for={data}"]
    assert drill_manifest_recorded(listed, data) is True
    assert drill_manifest_recorded(listed, "1" * 64) is False
    assert drill_manifest_recorded([], data) is False
    assert drill_manifest_recorded(None, data) is None  # no list known: the caller reads the repository
    with pytest.raises(AnsibleFilterError, match="cannot be used in a restic tag"):
        drill_manifest_recorded(listed, "a,b")
    assert FilterModule().filters()["drill_manifest_recorded"] is drill_manifest_recorded
