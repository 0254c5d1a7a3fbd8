"""db_restore against a real PostgreSQL cluster (the shared pg_cluster fixture) and real restic on a local repository.

One test, one dump, every path of the module in order: the drill's scratch restore (row counts equal the live
database's, the scratch database dropped), the incident's restore beside the damaged database with ``swap: false``
(stops before the swap, a re-run changes nothing), the swap by rename that keeps the damaged database as
``<name>_damaged_<incident>`` (a re-run changes nothing), check mode that plans only, and the exact errors. MariaDB
is exercised by the Molecule scenario ``backup`` (no MariaDB server on the CI machine).
"""

from __future__ import annotations

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import db_dump_backup, db_restore
from conftest import module_result

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
