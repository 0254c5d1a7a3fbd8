"""backup_verify's bookkeeping checks: which clients' books the spot check restores, and the per-client `ledger`
check built from ledger_verify's findings and the validators' verdicts (bv_ledger_plan, bv_ledger)."""

from __future__ import annotations

from ansible_collections.ledgerguard.recovery.plugins.filter.backup_verify import (
    bv_damage_plan,
    bv_ledger,
    bv_ledger_plan,
)

C001 = {
    "id": "C001",
    "name": "华东商贸有限公司",
    "paths": ["/srv/books/C001"],
    "ledger": {"sqlite": {"sources": ["账簿/总账.sqlite"], "table": "gl"}, "csv": {"sources": ["凭证/*.csv", "导出"]}},
}
C002 = {"id": "C002", "name": "客户二", "paths": ["/srv/books/C002"], "sqlite": ["/srv/other/c002.db"]}
C003 = {"id": "C003", "paths": ["/srv/books/C003"]}  # declares no books
SNAP = {"id": "ab" * 32, "short_id": "abababab"}
SANDBOX = "/var/lib/ledgerguard/backup_verify/sandbox/abababab-books"


def test_plan_restores_the_declared_books_of_the_clients_that_declare_them():
    plan = bv_ledger_plan([C001, C002, C003], SANDBOX)
    assert [c["id"] for c in plan["clients"]] == ["C001", "C002"]
    assert all(c["restored_under"] == SANDBOX for c in plan["clients"])
    assert plan["clients"][0]["ledger"] == C001["ledger"]  # ledger_verify reads the declaration itself
    # relative sources under the first path, absolute ones as they are, globs left out (as the restore does)
    assert plan["paths"] == ["/srv/books/C001/账簿/总账.sqlite", "/srv/books/C001/导出", "/srv/other/c002.db"]
    # the damage check gets the same declaration and files
    item = bv_damage_plan(
        [{**SNAP, "paths": ["/srv/books"], "hostname": "h", "time": "2026-12-01T02:00:00Z"}], [C001], "h", 1
    )[0]
    assert item["ledger"] == C001["ledger"] and item["ledger_paths"] == plan["paths"][:2]


def test_ledger_check_names_each_file_and_why():
    plan = bv_ledger_plan([C001, C002], SANDBOX)
    ledger = {
        "clients": {
            "C001": {
                "findings": [
                    {
                        "kind": "integrity",
                        "source": "账簿/总账.sqlite",
                        "detail": "PRAGMA integrity_check: row 7 missing",
                    }
                ]
            },
            "C002": {"findings": [], "summary": "C002 客户二: ok (1 source, 80 rows, 40 vouchers)"},
        }
    }
    damage = [
        {
            "item": {"client": "C001", "snapshot": SNAP["id"], "newest": True},
            "snapshots": [
                {
                    "id": SNAP["id"],
                    "validated": [
                        {
                            "path": "/srv/books/C001/账簿/总账.sqlite",
                            "status": "invalid",
                            "reason": "SQLite quick_check: Page 3: free space corruption",
                            "checker": "builtin:sqlite",
                        },
                        {
                            "path": "/srv/books/C001/凭证/a.csv",
                            "status": "valid",
                            "reason": "ok",
                            "checker": "builtin:csv",
                        },
                    ],
                }
            ],
        }
    ]
    checks = bv_ledger(ledger, plan, SNAP, {"snapshot_id": SNAP["id"]}, damage)
    by = {c["subject"]: c for c in checks}
    bad = by["C001 华东商贸有限公司"]
    assert bad["status"] == "FAIL"
    assert bad["reason"] == (
        "the books in the newest snapshot abababab fail: /srv/books/C001/账簿/总账.sqlite: SQLite quick_check: Page 3: "
        "free space corruption (builtin:sqlite); 账簿/总账.sqlite: PRAGMA integrity_check: row 7 missing "
        "(ledger_verify integrity)"
    )
    assert bad["details"]["findings"][0]["kind"] == "integrity"
    assert by["C002 客户二"]["status"] == "OK"
    assert (
        by["C002 客户二"]["reason"]
        == "restored from the newest snapshot abababab: C002 客户二: ok (1 source, 80 rows, 40 vouchers)"
    )


def test_books_that_cannot_be_restored_or_read_fail_and_check_mode_reports_nothing():
    plan = bv_ledger_plan([C001], SANDBOX)
    failed = {"failed": True, "msg": "include_paths ['/srv/books/C001/导出'] are not in snapshot abababab"}
    (check,) = bv_ledger({"skipped": True}, plan, SNAP, failed)
    assert check["status"] == "FAIL"
    assert check["reason"].endswith(
        "its books could not be restored from the newest snapshot abababab: include_paths "
        "['/srv/books/C001/导出'] are not in snapshot abababab"
    )
    (unread,) = bv_ledger(
        {"failed": True, "msg": "ledger.sqlite of client 'C001' has unknown keys ['tabel']"},
        plan,
        SNAP,
        {"snapshot_id": SNAP["id"]},
    )
    assert unread["reason"].endswith(
        "ledger_verify could not read its books: ledger.sqlite of client 'C001' has unknown keys ['tabel']"
    )
    assert bv_ledger({"skipped": True}, plan, SNAP, {"skipped": True}) == []
    assert bv_ledger(None, bv_ledger_plan([C003], SANDBOX), SNAP) == []
