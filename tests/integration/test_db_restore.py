"""db_restore against a real PostgreSQL cluster (the shared pg_cluster fixture) and real restic on a local repository.

One test, one dump, every path of the module in order: the drill's scratch restore (row counts equal the live
database's, the scratch database dropped), the incident's restore beside the damaged database with ``swap: false``
(stops before the swap, a re-run changes nothing), the swap by rename that keeps the damaged database as
``<name>_damaged_<incident>`` (a re-run changes nothing), check mode that plans only, and the exact errors. MariaDB
is exercised by the Molecule scenario ``backup`` (no MariaDB server on the CI machine).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import db_dump_backup, db_restore
from ledgerguard import sampledata
from conftest import failed_messages, module_result, task_result
from receivers import WebhookReceiver

INCIDENT = "INC-20261205-001"
QUARANTINE = "ledger_damaged_inc_20261205_001"


def databases(pg) -> set[str]:
    out = pg.psql("SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')")
    return set(out.splitlines())


def test_dump_restored_into_scratch_then_beside_and_swapped(postgres, local_repo, restic_password_file, capsys):
    pg = postgres
    pg.psql("CREATE DATABASE ledger")
    pg.psql("CREATE SCHEMA 账套", "ledger")
    pg.psql("CREATE TABLE public.凭证 (id serial PRIMARY KEY, 摘要 text, 金额 numeric(14,2))", "ledger")
    pg.psql("CREATE TABLE 账套.科目 (code text PRIMARY KEY, 名称 text)", "ledger")
    pg.psql(
        "INSERT INTO public.凭证 (摘要, 金额) SELECT '收到杭州贸易货款 ' || g, g * 1.5 FROM generate_series(1, 300) g",
        "ledger",
    )
    pg.psql(
        "INSERT INTO 账套.科目 VALUES ('1001', '库存现金'), ('1002', '银行存款'), ('6001', '主营业务收入')", "ledger"
    )
    repo = {"repository": local_repo, "password_file": str(restic_password_file)}
    dumped = module_result(
        db_dump_backup.main,
        {**repo, "engine": "postgresql", "database": "ledger", "connection": pg.conn, "host": "books1"},
        capsys,
    )
    assert dumped["snapshot_id"], dumped
    base = {**repo, "engine": "postgresql", "database": "ledger", "connection": pg.conn}
    expected = {"public.凭证": 300, "账套.科目": 3}

    # drill: check mode plans only, then restore into a scratch database, count, drop
    plan = module_result(db_restore.main, {**base, "target": "ledger_drill"}, capsys, check_mode=True)
    assert plan["state"] == "planned" and plan["changed"] is True
    assert plan["actions"] == [f"restore snapshot {dumped['short_id']} into new database ledger_drill, count its rows",
                               "drop ledger_drill"]  # fmt: skip
    assert databases(pg) == {"ledger"}
    drill = module_result(
        db_restore.main,
        {**base, "target": "ledger_drill", "expect_tables": ["public.凭证"], "min_rows": {"账套.科目": 3}},
        capsys,
    )
    assert drill["state"] == "checked_and_dropped" and drill["changed"] is False
    assert drill["tables"] == expected and drill["total_rows"] == 303 and drill["table_count"] == 2
    assert drill["snapshot_id"] == dumped["snapshot_id"] and drill["path"] == "/ledgerguard-db/postgresql/ledger.dump"
    assert databases(pg) == {"ledger"}

    # a check that does not pass: the restore is dropped and the message names the table
    failed = module_result(
        db_restore.main, {**base, "target": "ledger_drill", "min_rows": {"public.凭证": 301, "public.缺失": 1}}, capsys
    )
    assert failed["failed"] is True
    assert failed["msg"] == (
        f"the restore of postgresql database ledger from snapshot {dumped['short_id']} into ledger_drill does not "
        "check out: table public.凭证 has 300 rows, at least 301 expected; table public.缺失 is missing. The partial "
        "database ledger_drill was dropped; nothing else changed"
    )
    assert databases(pg) == {"ledger"}

    # the incident: the live database is damaged (rows deleted, a table emptied)
    pg.psql("DELETE FROM public.凭证 WHERE id > 100", "ledger")
    pg.psql("TRUNCATE 账套.科目", "ledger")
    beside = {**base, "target": "ledger_restored", "mode": "beside", "incident": INCIDENT}
    stop = module_result(db_restore.main, {**beside, "swap": False}, capsys)
    assert stop["state"] == "restored" and stop["changed"] is True and stop["swapped"] is False
    assert stop["tables"] == expected and stop["damaged_tables"] == {"public.凭证": 100, "账套.科目": 0}
    assert databases(pg) == {"ledger", "ledger_restored"}
    assert pg.psql("SELECT count(*) FROM public.凭证", "ledger") == "100"  # untouched
    again = module_result(db_restore.main, {**beside, "swap": False}, capsys)
    assert again["changed"] is False and again["state"] == "restored" and again["tables"] == expected

    pg.psql("CREATE DATABASE ledger_other")
    taken = module_result(db_restore.main, {**beside, "target": "ledger_other"}, capsys)
    assert taken["msg"] == (
        f"database ledger_other already exists and is not a checked ledgerguard restore of snapshot "
        f"{dumped['short_id']}; nothing was changed. Drop it (it may be a restore that stopped half-way) or give "
        "another target"
    )
    pg.psql("DROP DATABASE ledger_other")
    plan = module_result(db_restore.main, beside, capsys, check_mode=True)
    assert plan["actions"] == [f"rename ledger to {QUARANTINE} (kept) and ledger_restored to ledger"]
    assert databases(pg) == {"ledger", "ledger_restored"}

    swapped = module_result(db_restore.main, beside, capsys)
    assert swapped["state"] == "swapped" and swapped["changed"] is True and swapped["quarantine"] == QUARANTINE
    assert databases(pg) == {"ledger", QUARANTINE}
    assert pg.psql("SELECT count(*), sum(金额) FROM public.凭证", "ledger") == "300|67725.00"
    assert (
        pg.psql("SELECT string_agg(名称, ',' ORDER BY code) FROM 账套.科目", "ledger")
        == "库存现金,银行存款,主营业务收入"
    )
    assert pg.psql("SELECT count(*) FROM public.凭证", QUARANTINE) == "100"  # the damaged database, kept
    rerun = module_result(db_restore.main, beside, capsys)
    assert rerun["changed"] is False and rerun["state"] == "already_swapped" and rerun["tables"] == expected
    assert databases(pg) == {"ledger", QUARANTINE}

    # exact errors: a scratch target that exists, a snapshot of another database
    pg.psql("CREATE DATABASE ledger_other")
    scratch_taken = module_result(db_restore.main, {**base, "target": "ledger_other"}, capsys)
    assert scratch_taken["msg"].startswith("scratch database ledger_other already exists on the server")
    other = module_result(
        db_restore.main, {**base, "database": "books", "target": "x", "snapshot": dumped["snapshot_id"]}, capsys
    )
    assert other["msg"] == (
        f"snapshot {dumped['short_id']} is not a dump of postgresql database books: it holds "
        "/ledgerguard-db/postgresql/ledger.dump, not /ledgerguard-db/postgresql/books.dump. Give a snapshot tagged "
        "db-postgresql-books (or snapshot: latest)"
    )


LEDGER = {
    "table": "账务.凭证分录",
    "columns": {"period": "会计期间", "voucher_word": "凭证字", "voucher_no": "凭证号", "memo": "摘要",
                "account": "科目编码", "debit": "借方", "credit": "贷方"},
}  # fmt: skip


def make_books(pg, name: str = "books") -> None:
    """Database ``name``: the firm's ledger in schema 账务 under its software's Chinese names, three balanced vouchers
    (a memo holding a newline and quotes), and a second table."""
    pg.psql(f"CREATE DATABASE {name}")
    pg.psql("CREATE SCHEMA 账务", name)
    pg.psql(
        "CREATE TABLE 账务.凭证分录 (id serial PRIMARY KEY, 会计期间 text, 凭证字 text, 凭证号 integer, 摘要 text, "
        "科目编码 text, 借方 numeric(14,2), 贷方 numeric(14,2))",
        name,
    )
    pg.psql("CREATE TABLE public.科目 (code text PRIMARY KEY, 名称 text)", name)
    pg.psql(
        "INSERT INTO 账务.凭证分录 (会计期间, 凭证字, 凭证号, 摘要, 科目编码, 借方, 贷方) VALUES "
        "('2024-03', '记', 1, E'收到杭州示例贸易货款\n(第一笔, \"预收\")', '1002', 1130.00, NULL), "
        "('2024-03', '记', 1, '收到杭州示例贸易货款', '6001', NULL, 1000.00), "
        "('2024-03', '记', 1, '销项税额', '2221', NULL, 130.00), "
        "('2024-03', '记', 2, '支付三月房租', '6602', 500.00, 0), "
        "('2024-03', '记', 2, '支付三月房租', '1002', 0, 500.00), "
        "('2024-03', '记', 3, '提取备用金', '1001', 2000.00, 0), "
        "('2024-03', '记', 3, '提取备用金', '1002', 0, 2000.00)",
        name,
    )


def test_drill_checks_the_ledger_table_of_the_restore(postgres, local_repo, restic_password_file, capsys):
    """A firm's ledger in its own schema with its software's Chinese names: a balanced dump passes the ledger checks
    on the scratch restore (verdict in the result, the restore dropped); a dump with one voucher whose debits and
    credits differ fails the check with that voucher's exact problem, and its restore is dropped too."""
    pg = postgres
    make_books(pg)
    repo = {"repository": local_repo, "password_file": str(restic_password_file)}
    dump = {**repo, "engine": "postgresql", "database": "books", "connection": pg.conn, "host": "books1"}
    base = {**repo, "engine": "postgresql", "database": "books", "connection": pg.conn, "target": "books_drill"}
    balanced = module_result(db_dump_backup.main, dump, capsys)
    assert balanced["snapshot_id"], balanced

    plan = module_result(db_restore.main, {**base, "ledger": LEDGER}, capsys, check_mode=True)
    assert plan["ledger"] is None and databases(pg) == {"books"}
    passed = module_result(db_restore.main, {**base, "ledger": LEDGER}, capsys)
    assert passed["state"] == "checked_and_dropped" and "failed" not in passed, passed
    assert passed["tables"] == {"账务.凭证分录": 7, "public.科目": 0}
    assert passed["ledger"] == {
        "table": "账务.凭证分录", "ok": True, "rows": 7, "vouchers": 3, "periods": ["2024-03"], "findings_count": 0,
        "findings": [], "summary": "账务.凭证分录: ok (7 rows, 3 vouchers, balanced)",
    }  # fmt: skip
    assert "ledger 账务.凭证分录: ok (7 rows, 3 vouchers, balanced)" in passed["actions"]
    assert databases(pg) == {"books"}
    # the table named without its schema is found in the one schema holding it; a mapping the table cannot meet
    # fails naming the columns it has
    bare = module_result(db_restore.main, {**base, "ledger": {**LEDGER, "table": "凭证分录"}}, capsys)
    assert bare["ledger"]["ok"] is True and bare["ledger"]["table"] == "账务.凭证分录"
    wrong = module_result(db_restore.main, {**base, "ledger": {"table": "账务.凭证分录"}}, capsys)
    assert wrong["failed"] is True and wrong["ledger"]["findings"][0]["kind"] == "unreadable"
    assert wrong["ledger"]["summary"] == (
        "账务.凭证分录: 1 finding (1 unreadable): table '账务.凭证分录' lacks columns [\"voucher_no: 'voucher_no'\", "
        "\"debit: 'debit'\", \"credit: 'credit'\"] (has ['id', '会计期间', '凭证字', '凭证号', '摘要', '科目编码', "
        "'借方', '贷方']); map them with ledger.columns"
    )
    assert databases(pg) == {"books"}

    # one voucher's credit changed: the next dump's ledger does not balance. The updated row is stored last now (and
    # dumped last): read in primary key order it is still voucher 2's line, not a voucher number used again
    pg.psql("UPDATE 账务.凭证分录 SET 贷方 = 450.00 WHERE 凭证号 = 2 AND 科目编码 = '1002'", "books")
    unbalanced = module_result(db_dump_backup.main, dump, capsys)
    failed = module_result(db_restore.main, {**base, "ledger": LEDGER}, capsys)
    assert failed["failed"] is True and failed["state"] == "ledger_failed"
    problem = "voucher 记-2 of 2024-03 does not balance: debit 500.00 != credit 450.00 (difference 50.00)"
    assert failed["msg"] == (
        f"the ledger of the restore of postgresql database books from snapshot {unbalanced['short_id']} into "
        f"books_drill does not check out: 账务.凭证分录: 1 finding (1 unbalanced): {problem}. The restore books_drill "
        "was dropped; nothing else changed"
    )
    assert failed["ledger"]["ok"] is False and failed["ledger"]["findings_count"] == 1
    (finding,) = failed["ledger"]["findings"]
    assert finding == {
        "kind": "unbalanced", "source": "账务.凭证分录", "detail": problem, "period": "2024-03", "voucher": "记-2",
        "line": 4, "debit": "500.00", "credit": "450.00", "difference": "50.00",
    }  # fmt: skip
    assert failed["tables"] == {"账务.凭证分录": 7, "public.科目": 0} and failed["short_id"] == unbalanced["short_id"]
    assert databases(pg) == {"books"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"target": "ledger"}, "target 'ledger' is the database itself; restore into a new database"),
        ({"target": "a;drop"}, "target 'a;drop' is not a database name this module handles"),
    ],
)
def test_refuses_bad_names_before_touching_anything(args, message, local_repo, restic_password_file, capsys):
    base = {"repository": local_repo, "password_file": str(restic_password_file), "engine": "postgresql"}
    result = module_result(db_restore.main, {**base, "database": "ledger", **args}, capsys)
    assert result["failed"] is True and result["msg"].startswith(message), result["msg"]


def test_incident_restores_the_named_database_from_its_clean_dump(
    postgres, local_repo, restic_password_file, restic_cmd, localhost_inventory, playbook, tmp_path, capsys
):
    """The incident path's database step (restore entry point ``databases``): playbooks/db_restore.yml stops before
    the swap when told to (the damaged database untouched, the checked restore beside it), then
    playbooks/incident_respond.yml with ``incident_databases`` restores the CLEAN dump (made before the loss started,
    not the later dump of the damaged database) beside the damaged one and swaps by rename, keeping the damaged one
    under its quarantine name; the results are in the evidence."""
    pg = postgres
    pg.psql("CREATE DATABASE ledger")
    pg.psql("CREATE TABLE public.凭证 (id serial PRIMARY KEY, 摘要 text, 金额 numeric(14,2))", "ledger")
    pg.psql("INSERT INTO public.凭证 (摘要, 金额) SELECT '支付宁波运费 ' || g, g FROM generate_series(1, 200) g",
            "ledger")  # fmt: skip
    repo = {"repository": local_repo, "password_file": str(restic_password_file)}
    dump = {**repo, "engine": "postgresql", "database": "ledger", "connection": pg.conn, "host": "localhost"}
    clean = module_result(db_dump_backup.main, dump, capsys)
    # the module gives every dump its tag (dbcapture.dump_tag, the one place it is named)
    assert clean["tags"] == [clean["dump_tag"]] == ["db-postgresql-ledger"]
    (tagged,) = json.loads(
        restic_cmd(local_repo, restic_password_file, "snapshots", "--json", "--tag", "db-postgresql-ledger").stdout
    )
    assert tagged["id"] == clean["snapshot_id"]
    books = tmp_path / "books" / "c001"
    books.mkdir(parents=True)
    (books / "凭证.csv").write_text("2026-11,记,1,收到货款\n", encoding="utf-8")
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "localhost", str(books))
    time.sleep(1.1)
    loss = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)
    pg.psql("DELETE FROM public.凭证 WHERE id > 50", "ledger")  # the loss, and a later dump of it
    damaged = module_result(db_dump_backup.main, dump, capsys)
    assert damaged["snapshot_id"] != clean["snapshot_id"]
    (books / "凭证.csv").unlink()
    declared = [{"engine": "postgresql", "database": "ledger", "connection": pg.conn, "min_rows": {"public.凭证": 1}}]
    inv = localhost_inventory({
        "ledgerguard_clients": [{"id": "c001", "name": "宁波示例物流有限公司", "paths": [str(books)]}],
        "backup_databases": declared,
    })  # fmt: skip
    common = {"ledgerguard_repository": local_repo, "ledgerguard_password_file": str(restic_password_file),
              "ledgerguard_state_dir": str(tmp_path / "state")}  # fmt: skip

    stopped = playbook(
        "db_restore.yml",
        inventory=str(inv),
        extravars={
            **common,
            "db_restore_incident": "INC-20261205-900",
            "db_restore_swap": False,
            "db_restore_before": loss,
        },  # fmt: skip
    )
    assert stopped.status == "successful", failed_messages(stopped)
    assert databases(pg) == {"ledger", "ledger_restored_inc_20261205_900"}
    assert pg.psql("SELECT count(*) FROM public.凭证", "ledger") == "50"  # untouched
    assert pg.psql("SELECT count(*), sum(金额) FROM public.凭证", "ledger_restored_inc_20261205_900") == "200|20100.00"
    [held] = task_result(stopped, "Publish one result per database (restore_database_results)")["ansible_facts"][
        "restore_database_results"
    ]
    assert (held["state"], held["swapped"], held["snapshot_id"]) == ("restored", False, clean["snapshot_id"])
    assert held["damaged_tables"] == {"public.凭证": 50} and held["tables"] == {"public.凭证": 200}

    evidence = tmp_path / "evidence"
    runner = playbook(
        "incident_respond.yml",
        inventory=str(inv),
        extravars={
            **common,
            "ledgerguard_evidence_dir": str(evidence),
            "incident_operator": "pytest",
            "incident_cause": "deleted",
            "incident_loss_started": loss,
            "incident_databases": ["ledger"],
            "state_snapshot_journal_lines": 20,
            # what this test checks is the database step: no freeze, no damage assessment of the one tiny client
            "incident_freeze_enabled": False,
            "restore_detect_damage": False,
        },  # fmt: skip
    )
    assert runner.status == "successful", failed_messages(runner)
    [folder] = sorted(evidence.glob("INC-*"))
    quarantine = "ledger_damaged_" + folder.name.lower().replace("-", "_")
    assert databases(pg) == {"ledger", quarantine, "ledger_restored_inc_20261205_900"}
    assert pg.psql("SELECT count(*), sum(金额) FROM public.凭证", "ledger") == "200|20100.00"
    assert pg.psql("SELECT count(*), max(id) FROM public.凭证", quarantine) == "50|50"  # the damaged one, kept
    assert (books / "凭证.csv").read_text(encoding="utf-8") == "2026-11,记,1,收到货款\n"
    [kept] = json.loads((folder / "hosts" / "localhost" / "databases.json").read_text(encoding="utf-8"))
    assert (kept["state"], kept["swapped"], kept["quarantine"]) == ("swapped", True, quarantine)
    assert kept["snapshot_id"] == clean["snapshot_id"] and kept["tables"] == {"public.凭证": 200}
    assert kept["damaged_tables"] == {"public.凭证": 50}
    assert kept["line"].startswith(f"postgresql/ledger: swapped from dump {clean['short_id']} (200 rows), damaged ")
    assert "hosts/localhost/databases.json" in (folder / "SHA256SUMS").read_text(encoding="utf-8")
    # ... and in the report: report.json's databases rows, report.md's table and table checks
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    (row,) = report["databases"]
    restored_into = "ledger_restored_" + folder.name.lower().replace("-", "_")
    assert {k: row[k] for k in ("host", "engine", "database", "ok", "state", "restored_into", "swapped",
                                "stopped_before_swap", "quarantine", "tables", "total_rows")} == {
        "host": "localhost", "engine": "postgresql", "database": "ledger", "ok": True, "state": "swapped",
        "restored_into": restored_into, "swapped": True, "stopped_before_swap": False, "quarantine": quarantine,
        "tables": [{"table": "public.凭证", "rows": 200, "damaged_rows": 50}], "total_rows": 200,
    }  # fmt: skip
    assert row["snapshot"] == {"id": clean["snapshot_id"], "short_id": clean["short_id"], "time": kept["snapshot_time"]}
    assert 0 < row["data_loss_window_seconds"] < 600 and row["data_loss_window_basis"] == "loss start"
    assert report["status"] == "restored" and report["problems"] == []
    assert {k: report["summary"][f"databases_{k}"] for k in ("total", "swapped", "stopped_before_swap", "failed")} == {
        "total": 1, "swapped": 1, "stopped_before_swap": 0, "failed": 0}  # fmt: skip
    md = (folder / "report.md").read_text(encoding="utf-8").splitlines()
    assert "| Databases swapped in / stopped before the swap / failed | 1 / 0 / 0 of 1 |" in md
    assert (
        f"| localhost | ledger | postgresql | `{clean['short_id']}` {kept['snapshot_time']} | {restored_into} | "
        f"done, damaged kept as {quarantine} | 200 rows in 1 table(s) | {row['data_loss_window']} |"
    ) in md
    assert "- localhost postgresql/ledger: public.凭证 200 (damaged: 50)" in md


def test_drill_role_records_reports_and_exports_the_ledger_verdict(
    postgres, local_repo, restic_password_file, restic_cmd, localhost_inventory, playbook, tmp_path, capsys
):
    """The drill playbook with a database whose entry maps its ledger table: a balanced dump passes (the record's
    ledger verdict, the report's line, the metrics); the same ledger with one credit changed fails the database and
    the drill with the voucher's exact problem."""
    make_books(postgres)
    prod = tmp_path / "prod"
    client = sampledata.make_client_tree(prod, "c001", "杭州示例贸易有限公司", pdfs=1)["client"]
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "books1", str(prod))
    repo = {"repository": local_repo, "password_file": str(restic_password_file)}
    dump = {**repo, "engine": "postgresql", "database": "books", "connection": postgres.conn, "host": "books1"}
    balanced = module_result(db_dump_backup.main, dump, capsys)
    state = tmp_path / "state"
    clients = [{"id": "c001", "name": client["name"], "paths": client["paths"], "priority": 1}]
    inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(state)})
    database = {"engine": "postgresql", "database": "books", "connection": postgres.conn, "ledger": LEDGER}
    drill_vars = {
        "ledgerguard_repository": local_repo,
        "ledgerguard_password_file": str(restic_password_file),
        "ledgerguard_evidence_dir": str(tmp_path / "evidence"),
        "drill_sandbox_dir": str(tmp_path / "sandbox"),
        "drill_progress_interval": 0,
        "drill_metrics_dir": str(tmp_path / "textfile"),
        "drill_databases": [database],
    }
    labels = '{host="localhost",engine="postgresql",database="books"}'

    def prom() -> str:
        return (tmp_path / "textfile" / "ledgerguard_drill.prom").read_text(encoding="utf-8")

    passed = playbook("drill.yml", inventory=inv, extravars={**drill_vars, "drill_id": "drill-ledger-ok"})
    assert passed.status == "successful", failed_messages(passed)
    record = json.loads((state / "drills" / "history.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    (db,) = record["databases"]
    assert record["passed"] is True and db["passed"] is True and db["snapshot"] == balanced["short_id"]
    assert db["scratch"] == "books_drill_ledger_ok" and db["tables"] == {"账务.凭证分录": 7, "public.科目": 0}
    assert (db["ledger"]["ok"], db["ledger"]["rows"], db["ledger"]["vouchers"], db["ledger"]["findings"]) == (
        True, 7, 3, []
    )  # fmt: skip
    md = (tmp_path / "evidence" / "drill-ledger-ok" / "report.md").read_text(encoding="utf-8").splitlines()
    assert "- postgresql/books: ok: 账务.凭证分录: ok (7 rows, 3 vouchers, balanced)" in md
    text = prom()
    for line in (f"ledgerguard_drill_database_passed{labels} 1", f"ledgerguard_drill_database_ledger_ok{labels} 1",
                 f"ledgerguard_drill_database_ledger_findings{labels} 0",
                 f"ledgerguard_drill_database_ledger_vouchers{labels} 3"):  # fmt: skip
        assert line in text.splitlines(), line

    postgres.psql("UPDATE 账务.凭证分录 SET 贷方 = 450.00 WHERE 凭证号 = 2 AND 科目编码 = '1002'", "books")
    unbalanced = module_result(db_dump_backup.main, dump, capsys)
    failed = playbook("drill.yml", inventory=inv, extravars={**drill_vars, "drill_id": "drill-ledger-bad"})
    assert failed.status != "successful"
    record = json.loads((state / "drills" / "history.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    (db,) = record["databases"]
    problem = "voucher 记-2 of 2024-03 does not balance: debit 500.00 != credit 450.00 (difference 50.00)"
    message = (
        f"the ledger of the restore of postgresql database books from snapshot {unbalanced['short_id']} into "
        f"books_drill_ledger_bad does not check out: 账务.凭证分录: 1 finding (1 unbalanced): {problem}. The restore "
        "books_drill_ledger_bad was dropped; nothing else changed"
    )
    assert record["passed"] is False and db["passed"] is False and db["message"] == message
    assert db["ledger"]["ok"] is False and [f["detail"] for f in db["ledger"]["findings"]] == [problem]
    assert f"database postgresql/books: {message}" in record["errors"]
    assert record["clients"][0]["passed"] is True  # the client's files restored fine: the ledger failed the drill
    md = (tmp_path / "evidence" / "drill-ledger-bad" / "report.md").read_text(encoding="utf-8").splitlines()
    assert f"- postgresql/books: FAILED: 账务.凭证分录: 1 finding (1 unbalanced): {problem}" in md
    text = prom().splitlines()
    assert f"ledgerguard_drill_database_passed{labels} 0" in text
    assert f"ledgerguard_drill_database_ledger_ok{labels} 0" in text
    assert f"ledgerguard_drill_database_ledger_findings{labels} 1" in text
    assert "books_drill" not in postgres.psql("SELECT string_agg(datname, ',') FROM pg_database")


def test_incident_checks_the_ledger_before_the_swap(
    postgres, local_repo, restic_password_file, localhost_inventory, playbook, tmp_path, capsys
):
    """The incident path's database step (restore entry point ``databases``, through playbooks/db_restore.yml) with
    two databases whose entries map their ledger table: the dump of ``books`` holds a voucher whose debits and credits
    differ, so its restore is checked before the swap and NOT swapped in (the damaged database still serves, the
    restore kept beside it, the database failed with the check's message); ``books2``'s dump balances and is swapped
    in, in the same run. A re-run checks the kept restore again and still does not swap it."""
    pg = postgres
    incident = "INC-20261206-007"
    suffix = "inc_20261206_007"
    for name in ("books", "books2"):
        make_books(pg, name)
    pg.psql("UPDATE 账务.凭证分录 SET 贷方 = 450.00 WHERE 凭证号 = 2 AND 科目编码 = '1002'", "books")
    repo = {"repository": local_repo, "password_file": str(restic_password_file)}
    conn = {"engine": "postgresql", "connection": pg.conn}
    dumps = {
        name: module_result(db_dump_backup.main, {**repo, **conn, "database": name, "host": "localhost"}, capsys)
        for name in ("books", "books2")
    }
    for name in ("books", "books2"):  # the damage, after the dumps: voucher 3 deleted
        pg.psql("DELETE FROM 账务.凭证分录 WHERE 凭证号 = 3", name)
    declared = [{**conn, "database": name, "ledger": LEDGER} for name in ("books", "books2")]
    inv = localhost_inventory({"backup_databases": declared})
    extravars = {
        "ledgerguard_repository": local_repo,
        "ledgerguard_password_file": str(restic_password_file),
        "ledgerguard_state_dir": str(tmp_path / "state"),
        "db_restore_incident": incident,
    }

    run = playbook("db_restore.yml", inventory=str(inv), extravars=extravars)
    assert run.status != "successful"
    restored, quarantine = f"books_restored_{suffix}", f"books2_damaged_{suffix}"
    # books: not swapped - the live database is still the damaged one, the restore beside it holds the dump's rows
    assert databases(pg) == {"books", "books2", restored, quarantine}
    count = "SELECT count(*) FROM 账务.凭证分录"
    assert pg.psql(count, "books") == "5"
    assert pg.psql(count, restored) == "7"
    assert pg.psql("SELECT sum(贷方) FROM 账务.凭证分录", restored) == "3580.00"  # the unbalanced dump
    # books2: checked and swapped, the damaged one kept under its quarantine name
    assert pg.psql(count, "books2") == "7" and pg.psql(count, quarantine) == "5"
    problem = "voucher 记-2 of 2024-03 does not balance: debit 500.00 != credit 450.00 (difference 50.00)"
    message = (
        f"the ledger of the restore of postgresql database books from snapshot {dumps['books']['short_id']} into "
        f"{restored} does not check out: 账务.凭证分录: 1 finding (1 unbalanced): {problem}. Not swapped in: books is "
        f"unchanged and still in service, the restore {restored} is kept beside it for inspection; drop it before "
        "restoring another dump"
    )
    results = task_result(run, "Publish one result per database (restore_database_results)")["ansible_facts"][
        "restore_database_results"
    ]
    by = {r["database"]: r for r in results}
    bad, good = by["books"], by["books2"]
    assert (bad["ok"], bad["state"], bad["swapped"], bad["target"], bad["msg"]) == (
        False, "ledger_failed", False, restored, message
    )  # fmt: skip
    assert bad["line"] == f"postgresql/books: FAILED: {message}"
    assert bad["ledger"]["ok"] is False and [f["detail"] for f in bad["ledger"]["findings"]] == [problem]
    assert bad["tables"] == {"账务.凭证分录": 7, "public.科目": 0} and bad["damaged_tables"]["账务.凭证分录"] == 5
    assert (good["ok"], good["state"], good["swapped"], good["quarantine"]) == (True, "swapped", True, quarantine)
    assert good["ledger"]["summary"] == "账务.凭证分录: ok (7 rows, 3 vouchers, balanced)"
    assert good["snapshot_id"] == dumps["books2"]["snapshot_id"]
    assert f"Database restore failed on localhost: postgresql/books: FAILED: {message}" in failed_messages(run)

    # a re-run: the kept restore is the marked restore of the same dump; its ledger is checked again, still no swap
    beside = {**repo, **conn, "database": "books", "target": restored, "mode": "beside", "incident": incident,
              "ledger": LEDGER}  # fmt: skip
    again = module_result(db_restore.main, beside, capsys)
    assert (again["failed"], again["changed"], again["state"], again["msg"]) == (True, False, "ledger_failed", message)
    plan = module_result(db_restore.main, beside, capsys, check_mode=True)
    assert plan["actions"] == [
        f"check the ledger table 账务.凭证分录 of {restored} before the swap",
        f"rename books to books_damaged_{suffix} (kept) and {restored} to books",
    ]
    assert databases(pg) == {"books", "books2", restored, quarantine} and pg.psql(count, "books") == "5"


@pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")
def test_incident_with_a_failed_database_is_partial_and_finishes_the_rest(
    postgres, local_repo, restic_password_file, restic_cmd, localhost_inventory, playbook, tmp_path, capsys
):
    """playbooks/incident_respond.yml with a client folder and a database on one host, the freeze on: the database's
    clean dump holds an unbalanced voucher, so its ledger check fails before the swap. The database does not fail the
    recovery block: the folder is restored byte-identical, the post-swap rescan runs, the freeze is thawed, the
    restored notices are drafted for the client alone, and the report says partial naming the database and the exact
    reason; the on-call lead is told the failure naming the database right after the clients' results; the run ends
    failed (the lock stays) naming the database."""
    pg = postgres
    make_books(pg, "hzbooks")
    pg.psql("UPDATE 账务.凭证分录 SET 贷方 = 450.00 WHERE 凭证号 = 2 AND 科目编码 = '1002'", "hzbooks")
    repo = {"repository": local_repo, "password_file": str(restic_password_file)}
    conn = {"engine": "postgresql", "database": "hzbooks", "connection": pg.conn}
    dump = module_result(db_dump_backup.main, {**repo, **conn, "host": "localhost"}, capsys)
    books = tmp_path / "books"
    client = sampledata.make_client_tree(books, "c001", "杭州示例贸易有限公司", periods=("2026-10",), pdfs=1)["client"]
    contacts = [{"name": "张会计", "mail": "zhang@example.cn", "language": "zh-CN"}]
    root = books / "c001"
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "localhost", str(books))
    time.sleep(1.1)
    loss = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)
    pg.psql("DELETE FROM 账务.凭证分录 WHERE 凭证号 = 3", "hzbooks")  # the loss: in the database and the folder
    for path in (root / "凭证").iterdir():
        path.unlink()
    inv = localhost_inventory({
        "ledgerguard_clients": [{**client, "priority": 1, "contacts": contacts}],
        "backup_databases": [{**conn, "ledger": LEDGER}],
    })  # fmt: skip
    evidence = tmp_path / "evidence"
    hooks = WebhookReceiver()
    lead = {
        "name": "张伟",
        "role": "lead",
        "channels": [{"kind": "generic", "url": f"http://127.0.0.1:{hooks.port}/h"}],
    }
    run = playbook(
        "incident_respond.yml",
        inventory=str(inv),
        extravars={
            "ledgerguard_repository": local_repo,
            "ledgerguard_password_file": str(restic_password_file),
            "ledgerguard_state_dir": str(tmp_path / "state"),
            "ledgerguard_evidence_dir": str(evidence),
            "ledgerguard_oncall": [lead],
            "incident_operator": "pytest",
            "incident_cause": "deleted",
            "incident_loss_started": loss,
            "incident_databases": ["hzbooks"],
            "state_snapshot_journal_lines": 20,
            "restore_detect_damage": False,
        },  # fmt: skip
    )
    assert run.status != "successful"
    [folder] = sorted(evidence.glob("INC-*"))
    incident = folder.name
    restored = "hzbooks_restored_" + incident.lower().replace("-", "_")
    problem = "voucher 记-2 of 2024-03 does not balance: debit 500.00 != credit 450.00 (difference 50.00)"
    reason = (
        f"the ledger of the restore of postgresql database hzbooks from snapshot {dump['short_id']} into {restored} "
        f"does not check out: 账务.凭证分录: 1 finding (1 unbalanced): {problem}. Not swapped in: hzbooks is unchanged "
        f"and still in service, the restore {restored} is kept beside it for inspection; drop it before restoring "
        "another dump"
    )
    # the failures: the database's item and its loop (ignored: the step goes on), then the incident's verdict at the
    # very end; the recovery block itself did not fail
    assert failed_messages(run) == [
        reason,
        "One or more items failed",
        f"Incident {incident} on localhost is not fully restored: database postgresql/hzbooks failed: {reason}. "
        f"Writes were thawed; the lock stays so a re-run with ledgerguard_incident_id={incident} continues. Report: "
        f"{folder}/report.html",
    ]
    assert (tmp_path / "state" / "incident.lock").exists()
    # the database: not swapped, the damaged one still serves, the restore kept beside it
    assert databases(pg) == {"hzbooks", restored}
    assert pg.psql("SELECT count(*) FROM 账务.凭证分录", "hzbooks") == "5"
    # the folder: restored byte-identical, then re-scanned after the swap, then thawed (no freeze mount left)
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert str(books) not in Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
    events = [json.loads(line) for line in (folder / "timeline.jsonl").read_text(encoding="utf-8").splitlines()]

    def after(start: int, task: str, status: str) -> int:
        """The index of the first event after ``start`` of the task named ``task`` that ended ``status``."""
        return next(i for i, e in enumerate(events) if i > start and str(e.get("task")).endswith(task)
                    and e.get("status") == status)  # fmt: skip

    db_step = after(-1, "Restore each database beside the damaged one, check it, swap by rename", "failed")
    assert events[db_step]["ignored"] is True  # the other databases would still run
    rescan = after(db_step, "Re-scan the frozen folders for writers", "ok")
    after(rescan, "Thaw the incident's targets on this host", "ok")
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "partial" and report["summary"]["all_thawed"] is True
    assert report["hosts"][0]["thawed"] is True and report["hosts"][0]["failed_step"] == ""
    [c001] = report["clients"]
    assert (c001["id"], c001["status"]) == ("c001", "ok")
    [row] = report["databases"]
    assert (row["database"], row["ok"], row["state"], row["swapped"], row["msg"]) == (
        "hzbooks", False, "ledger_failed", False, reason
    )  # fmt: skip
    assert report["problems"] == [f"localhost/database postgresql/hzbooks: restore FAILED: {reason}"]
    assert (folder / "compliance.json").exists()
    # the restored notices: drafted for the client, none names the database
    notices = json.loads((folder / "notices" / "index.json").read_text(encoding="utf-8"))["notices"]
    assert "c001.restored.zh-CN" in {n["id"] for n in notices}
    assert all("hzbooks" not in (folder / n["path"]).read_text(encoding="utf-8") for n in notices)
    # the on-call lead: the failure, naming the database and the exact reason, right after the clients' results
    assert [p["body"]["data"]["milestone"] for p in hooks.posts] == ["declare", "clients", "failure", "end"]
    failure = hooks.posts[2]["body"]
    assert (failure["title"], failure["status"]) == (f"事故 {incident}：步骤失败，需人工处理", "FAIL")
    assert failure["text"].startswith(f"- localhost：数据库 postgresql/hzbooks 恢复失败：{reason}\n"), failure["text"]
