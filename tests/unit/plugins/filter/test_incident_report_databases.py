"""The incident report carries the databases the incident restored (issue 15): the restore role's
restore_database_results of each host become the report's ``databases`` rows; a failed database and one stopped
before the swap are problems (the damaged database still serves), so the incident is not reported restored."""

from __future__ import annotations

from ansible_collections.ledgerguard.recovery.plugins.filter.incident_report import incident_report

RECORD = {
    "incident_id": "INC-20261205-007",
    "declared_at": "2026-12-05T02:00:00Z",
    "detected_at": "2026-12-05T01:30:00Z",
    "loss_started": "2026-12-05T01:00:00Z",
    "cause": "corruption",
}
CLIENT = {
    "id": "c001",
    "name": "宁波示例物流有限公司",
    "priority": 10,
    "status": "ok",
    "snapshot": {"short_id": "28dfb320", "time": "2026-12-04T15:00:00Z"},
    "finished": "2026-12-05T02:10:00Z",
}
SWAPPED = {
    "engine": "postgresql", "database": "账套库", "ok": True, "state": "swapped", "changed": True,
    "snapshot_id": "a1b2c3d4" + "0" * 56, "short_id": "a1b2c3d4", "snapshot_time": "2026-12-04T23:30:00.123456789Z",
    "target": "账套库_restored_inc_20261205_007", "quarantine": "账套库_damaged_inc_20261205_007", "swapped": True,
    "tables": {"public.凭证": 200, "public.科目": 3}, "total_rows": 203,
    "damaged_tables": {"public.凭证": 50, "public.科目": 3, "public.tmp_x": 1}, "actions": ["..."], "seconds": 4.2,
    "msg": "", "line": "postgresql/账套库: swapped ...",
}  # fmt: skip
STOPPED = {
    "engine": "mariadb", "database": "erp", "ok": True, "state": "restored", "snapshot_id": "e5f6a7b8" + "0" * 56,
    "short_id": "e5f6a7b8", "snapshot_time": "2026-12-04T22:00:00Z", "target": "erp_restored_inc_20261205_007",
    "quarantine": "erp_damaged_inc_20261205_007", "swapped": False, "tables": {"erp.orders": 10}, "total_rows": 10,
    "damaged_tables": None, "msg": "",
}  # fmt: skip
FAILED = {
    "engine": "postgresql", "database": "payroll", "ok": False, "state": "failed", "snapshot_id": "", "short_id": "",
    "snapshot_time": "", "target": "", "quarantine": "", "swapped": False, "tables": {}, "total_rows": 0,
    "damaged_tables": None, "msg": "no dump of postgresql database payroll in the repository",
}  # fmt: skip


def counts(summary):
    return tuple(summary[f"databases_{k}"] for k in ("total", "swapped", "stopped_before_swap", "failed"))


def report(*dbs):
    hosts = {"books1": {"restore_results": [CLIENT], "restore_database_results": list(dbs), "in_play": True}}
    return incident_report(RECORD, hosts, "2026-12-05T02:20:00Z", None)


def test_a_swapped_database_is_a_row_with_its_dump_swap_and_table_checks():
    out = report(SWAPPED)
    (db,) = out["databases"]
    assert db["host"] == "books1" and (db["engine"], db["database"]) == ("postgresql", "账套库")
    assert db["snapshot"] == {"id": "a1b2c3d4" + "0" * 56, "short_id": "a1b2c3d4",
                              "time": "2026-12-04T23:30:00.123456789Z"}  # fmt: skip
    assert (db["restored_into"], db["swapped"], db["stopped_before_swap"]) == (
        "账套库_restored_inc_20261205_007", True, False)  # fmt: skip
    assert db["quarantine"] == "账套库_damaged_inc_20261205_007"
    assert db["tables"] == [
        {"table": "public.凭证", "rows": 200, "damaged_rows": 50},
        {"table": "public.科目", "rows": 3, "damaged_rows": 3},
    ]
    assert db["extra_damaged_tables"] == ["public.tmp_x"] and db["damaged_readable"] is True
    assert db["data_loss_window_seconds"] == 5399.9 and db["data_loss_window_basis"] == "loss start"
    assert out["status"] == "restored" and out["problems"] == []
    assert counts(out["summary"]) == (1, 1, 0, 0)


def test_stopped_before_the_swap_and_failed_are_problems_and_the_incident_is_partial():
    out = report(SWAPPED, STOPPED, FAILED)
    stopped = next(d for d in out["databases"] if d["database"] == "erp")
    assert (stopped["swapped"], stopped["stopped_before_swap"], stopped["quarantine"]) == (False, True, "")
    assert stopped["tables"] == [{"table": "erp.orders", "rows": 10, "damaged_rows": None}]
    assert stopped["damaged_readable"] is False
    failed = next(d for d in out["databases"] if d["database"] == "payroll")
    assert failed["ok"] is False and failed["msg"].startswith("no dump of postgresql database payroll")
    assert out["problems"] == [
        "books1/database mariadb/erp: restored from dump e5f6a7b8 into erp_restored_inc_20261205_007 and checked, but "
        "stopped before the swap (restore_database_swap=false): the damaged database is still the one in service; "
        "swap it in with playbooks/db_restore.yml (db_restore_swap=true, the same incident id).",
        "books1/database postgresql/payroll: restore FAILED: no dump of postgresql database payroll in the repository",
    ]
    assert out["status"] == "partial" and out["summary"]["rto"] == "not reached"
    assert counts(out["summary"]) == (3, 1, 1, 1)


def test_no_database_step_no_rows():
    out = incident_report(RECORD, {"books1": {"restore_results": [CLIENT], "in_play": True}}, "2026-12-05T02:20:00Z")
    assert out["databases"] == [] and out["summary"]["databases_total"] == 0 and out["status"] == "restored"


def test_a_restore_whose_ledger_does_not_check_out_is_not_swapped_and_the_incident_is_partial():
    """db_restore checks the ledger table before the swap; failing, it keeps the restore beside the damaged database
    and does not swap (state ledger_failed): the report's row names the check's message, the incident is partial."""
    msg = (
        "the ledger of the restore of postgresql database books from snapshot 9a8b7c6d into "
        "books_restored_inc_20261205_007 does not check out: 账务.凭证分录: 1 finding (1 unbalanced): voucher 记-2 of "
        "2024-03 does not balance: debit 500.00 != credit 450.00 (difference 50.00). Not swapped in: books is "
        "unchanged and still in service, the restore books_restored_inc_20261205_007 is kept beside it for "
        "inspection; drop it before restoring another dump"
    )
    ledger_failed = {
        "engine": "postgresql", "database": "books", "ok": False, "state": "ledger_failed",
        "snapshot_id": "9a8b7c6d" + "0" * 56, "short_id": "9a8b7c6d", "snapshot_time": "2026-12-04T23:00:00Z",
        "target": "books_restored_inc_20261205_007", "quarantine": "books_damaged_inc_20261205_007", "swapped": False,
        "tables": {"账务.凭证分录": 7}, "total_rows": 7, "damaged_tables": {"账务.凭证分录": 5}, "msg": msg,
        "ledger": {"table": "账务.凭证分录", "ok": False, "findings_count": 1},
    }  # fmt: skip
    out = report(SWAPPED, ledger_failed)
    row = next(d for d in out["databases"] if d["database"] == "books")
    assert (row["ok"], row["state"], row["swapped"], row["stopped_before_swap"], row["quarantine"]) == (
        False, "ledger_failed", False, False, ""
    )  # fmt: skip
    assert row["restored_into"] == "books_restored_inc_20261205_007" and row["msg"] == msg
    assert row["tables"] == [{"table": "账务.凭证分录", "rows": 7, "damaged_rows": 5}]
    assert out["problems"] == [f"books1/database postgresql/books: restore FAILED: {msg}"]
    assert out["status"] == "partial" and counts(out["summary"]) == (2, 1, 0, 1)
