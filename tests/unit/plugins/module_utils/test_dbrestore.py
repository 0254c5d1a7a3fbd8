"""dbrestore's pure parts: names (quarantine, limits), the row-count check, the restore mark, the filter that
renames a mariadb-dump's CREATE DATABASE / USE lines while the dump streams into the client, and the reading of a
ledger table through the SQL client (exact argv, quoting; MariaDB end to end with a fake client)."""

from __future__ import annotations

import io
import os
import stat
from decimal import Decimal

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import dbrestore as dr
from ansible_collections.ledgerguard.recovery.plugins.module_utils import ledger as lg


def test_quarantine_name_from_the_incident_id():
    assert dr.quarantine_name("ledger", "INC-20261205-001") == "ledger_damaged_inc_20261205_001"
    assert dr.quarantine_name("books", "  事件 #7 ") == "books_damaged_7"
    with pytest.raises(dr.RestoreError) as err:
        dr.quarantine_name("ledger", "事件——")
    assert str(err.value) == "incident '事件——' has no letter or digit to name the quarantined database with"


def test_names_checked_against_the_engine():
    assert dr.check_name("postgresql", "ledger_restored_inc_1", "target") == "ledger_restored_inc_1"
    with pytest.raises(dr.RestoreError) as err:
        dr.check_name("postgresql", "x" * 64, "target")
    assert str(err.value).startswith("target 'xxxxxxxx")
    assert str(err.value).endswith(
        "is 64 characters long; postgresql allows 63: give a shorter target (or a shorter incident id for the "
        "quarantine name)"
    )
    assert dr.check_name("mariadb", "x" * 64, "target") == "x" * 64
    with pytest.raises(dr.RestoreError, match=r"^database '账本' is not a database name this module handles"):
        dr.check_name("mariadb", "账本", "database")


def test_row_count_check_names_each_problem():
    counts = {"public.凭证": 300, "public.科目": 0}
    assert dr.check_counts(counts, 1, ["public.凭证"], {"public.凭证": 300}) == []
    assert dr.check_counts(counts, 3, ["public.余额"], {"public.科目": 1, "public.缺": 2}) == [
        "2 table(s) restored, at least 3 expected",
        "table public.余额 is missing",
        "table public.科目 has 0 rows, at least 1 expected",
        "table public.缺 is missing",
    ]
    assert dr.check_counts({}, 1, [], {}) == ["0 table(s) restored, at least 1 expected"]


def test_restore_mark_names_its_snapshot():
    snap = "4f2a91c0" + "0" * 56
    text = dr.marker(snap, "postgresql", "ledger", 2, 303)
    assert text.startswith(f"ledgerguard restore of snapshot {snap} (postgresql/ledger), checked 20")
    assert text.endswith(": 2 tables, 303 rows")
    assert dr.marked_snapshot(text) == snap
    assert dr.marked_snapshot("账套 application database") == ""
    assert dr.marked_snapshot(None) == ""


DUMP = (
    "-- MariaDB dump 10.19\n"
    "/*!40101 SET NAMES utf8mb4 */;\n"
    "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `books` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n"
    "\n"
    "USE `books`;\n"
    "INSERT INTO `科目` VALUES ('1001','USE `books`;');\n"
    "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `books` in data;\n"
).encode()


def test_mariadb_dump_restored_under_the_target_name(tmp_path):
    """The client is a script that stores what it receives: the header lines name the target, the rest is the
    dump byte for byte (a later line that looks like a header is data and stays)."""
    got = tmp_path / "received.sql"
    client = tmp_path / "fake-mariadb"
    client.write_text('#!/bin/sh\ncat > "$LG_OUT"\n')
    client.chmod(stat.S_IRWXU)
    srv = dr.MariaDB(str(client), str(client), {"socket": "/run/mysqld/mysqld.sock"}, {"LG_OUT": str(got)})
    with open(os.devnull, "wb") as err:
        proc = srv.pipe_into("books_drill_1", io.BytesIO(DUMP), err)
        assert proc.wait() == 0
    expected = DUMP.replace(b"IF NOT EXISTS*/ `books` /*!40100", b"IF NOT EXISTS*/ `books_drill_1` /*!40100").replace(
        b"\nUSE `books`;\nINSERT", b"\nUSE `books_drill_1`;\nINSERT"
    )
    assert got.read_bytes() == expected


def test_connection_keys_refused_before_anything_runs():
    with pytest.raises(ValueError, match="defaults_extra_file is for MariaDB"):
        dr.Postgres("psql", "pg_restore", {"defaults_extra_file": "/etc/my.cnf"}, {})
    with pytest.raises(ValueError, match=r"connection keys \['password'\] are not supported"):
        dr.MariaDB("mariadb", "mariadb", {"password": "秘密"}, {})


# ------------------------------------------------------------------------------------------ ledger tables


def test_ledger_select_quotes_every_identifier():
    """A firm's Chinese names, and names holding the quote character itself, reach the SQL quoted and doubled."""
    pg = dr.Postgres("/usr/bin/psql", "pg_restore", {"host": "/run/postgresql", "user": "postgres"}, {})
    cols = [pg.ident(c) for c in ("凭证号", '借"方', "贷方")]
    key = [pg.ident("期间"), pg.ident("id")]
    assert pg.ledger_select("ledger_drill_1", [pg.ident("账务"), pg.ident('凭证"分录')], cols, key) == [
        "/usr/bin/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "FETCH_COUNT=10000",
        "--host=/run/postgresql", "--username=postgres", "--no-password", "--dbname=ledger_drill_1", "-c",
        'SELECT json_build_array("凭证号", "借""方", "贷方") FROM "账务"."凭证""分录" ORDER BY "期间", "id"',
    ]  # fmt: skip
    assert pg.ledger_select("d", ['"s"', '"v"'], ['"a"'], [])[-1] == 'SELECT json_build_array("a") FROM "s"."v"'
    my = dr.MariaDB("/usr/bin/mariadb", "/usr/bin/mariadb", {"socket": "/run/mysqld/mysqld.sock", "user": "root"}, {})
    cols = [my.ident(c) for c in ("凭证号", "借`方")]
    assert my.ledger_select("books_drill_1", [my.ident("books_drill_1"), my.ident("凭证`分录")], cols, []) == [
        "/usr/bin/mariadb", "--socket=/run/mysqld/mysqld.sock", "--user=root", "--default-character-set=utf8mb4",
        "--batch", "--raw", "--skip-column-names", "--quick", "-e",
        "SELECT JSON_ARRAY(`凭证号`, `借``方`) FROM `books_drill_1`.`凭证``分录`",
    ]  # fmt: skip


FAKE_MARIADB = """#!/bin/sh
for last; do :; done
case "$last" in
  *information_schema.COLUMNS*"'凭证分录'"*) printf '%s\\n' '["id", "会计期间", "凭证号", "摘要", "借方", "贷方"]' ;;
  *information_schema.COLUMNS*) echo '[]' ;;
  *information_schema.TABLES*) echo '["凭证分录", "科目"]' ;;
  *'SELECT JSON_ARRAY(`会计期间`, `凭证号`, `摘要`, `借方`, `贷方`) FROM `books_drill_1`.`凭证分录`'*)
    cat "$LG_ROWS" ;;
  *) echo "unexpected: $last" >&2; exit 7 ;;
esac
"""


def mariadb_with_rows(tmp_path, rows: str):
    client = tmp_path / "fake-mariadb"
    client.write_text(FAKE_MARIADB)
    client.chmod(stat.S_IRWXU)
    (tmp_path / "rows").write_text(rows, encoding="utf-8")
    return dr.MariaDB(str(client), str(client), {}, {"LG_ROWS": str(tmp_path / "rows")})


def test_mariadb_ledger_read_through_the_client_and_checked(tmp_path):
    """Columns looked up in information_schema, mapped as a SQLite ledger is, the rows read as JSON arrays (a memo
    holding a tab and a newline stays one row; DECIMAL stays exact) and checked by module_utils/ledger."""
    srv = mariadb_with_rows(
        tmp_path,
        '["2024-03", "记-1", "收货款\\t杭州\\n示例", 1130.00, null]\n'
        '["2024-03", "记-1", "收货款", null, 1130.00]\n'
        '["2024-03", "记-2", "付房租", 500.10, 0]\n'
        '["2024-03", "记-2", "付房租", 0, 500.01]\n',
    )
    mapping = {"period": "会计期间", "voucher_no": "凭证号", "memo": "摘要", "debit": "借方", "credit": "贷方"}
    name, rows = srv.read_ledger("books_drill_1", "凭证分录", mapping)
    rows = list(rows)
    assert name == "凭证分录" and len(rows) == 4
    assert rows[0] == (1, {"period": "2024-03", "voucher_no": "记-1", "memo": "收货款\t杭州\n示例",
                           "debit": Decimal("1130.00"), "credit": None})  # fmt: skip
    checked = lg.verdict(lg.check_rows(iter(rows), name, "database"))
    assert checked["ok"] is False and checked["rows"] == 4 and checked["vouchers"] == 2
    assert checked["summary"] == (
        "凭证分录: 1 finding (1 unbalanced): voucher 记-2 of 2024-03 does not balance: debit 500.10 != credit "
        "500.01 (difference 0.09)"
    )


def test_mariadb_ledger_table_missing_or_unmapped(tmp_path):
    srv = mariadb_with_rows(tmp_path, "")
    with pytest.raises(lg.SourceError) as err:
        srv.read_ledger("books_drill_1", "分录", {})
    assert str(err.value) == "no table '分录' in the restore (tables: ['凭证分录', '科目']); set ledger.table"
    with pytest.raises(lg.SourceError) as err:
        srv.read_ledger("books_drill_1", "凭证分录", {"period": "会计期间"})
    assert str(err.value) == (
        "table '凭证分录' lacks columns [\"voucher_no: 'voucher_no'\", \"debit: 'debit'\", \"credit: 'credit'\"] "
        "(has ['id', '会计期间', '凭证号', '摘要', '借方', '贷方']); map them with ledger.columns"
    )


def test_a_failing_client_is_a_source_error_with_its_stderr(tmp_path):
    srv = mariadb_with_rows(tmp_path, "")
    rows = srv._stream([srv.client, "-e", "SELECT 1"], "read table t of database d")
    with pytest.raises(lg.SourceError, match=r"^mariadb could not read table t of database d: unexpected: SELECT 1$"):
        list(rows)


def test_published_results_from_the_db_restore_loop():
    """The restore role's restore_database_results: a swapped database with its line, and one whose ledger check
    failed (the failed item of the loop): not ok, its line and msg the task's message word for word."""
    swapped = {
        "ansible_loop_var": "__restore_db", "__restore_db": {"engine": "postgresql", "database": "books2"},
        "changed": True, "state": "swapped", "snapshot_id": "a" * 64, "short_id": "aaaaaaaa",
        "snapshot_time": "2026-12-06T03:00:00Z", "target": "books2_restored_inc_1",
        "quarantine": "books2_damaged_inc_1",
        "swapped": True, "tables": {"账务.凭证分录": 7}, "total_rows": 7, "damaged_tables": {"账务.凭证分录": 5},
        "actions": ["restored", "renamed"], "restore_seconds": 1.5, "ledger": {"ok": True},
    }  # fmt: skip
    reason = "the ledger of the restore of postgresql database books ... does not check out"
    failed = {
        "ansible_loop_var": "__restore_db", "__restore_db": {"engine": "postgresql", "database": "books"},
        "failed": True, "changed": True, "state": "ledger_failed", "short_id": "bbbbbbbb", "swapped": False,
        "target": "books_restored_inc_1", "msg": reason, "ledger": {"ok": False},
    }  # fmt: skip
    good, bad = dr.published_results([swapped, failed])
    assert good["ok"] is True and good["seconds"] == 1.5 and good["damaged_tables"] == {"账务.凭证分录": 5}
    assert good["line"] == (
        "postgresql/books2: swapped from dump aaaaaaaa (7 rows), damaged database kept as books2_damaged_inc_1: "
        "restored; renamed"
    )
    assert {k: bad[k] for k in ("engine", "database", "ok", "state", "swapped", "target", "msg", "quarantine")} == {
        "engine": "postgresql", "database": "books", "ok": False, "state": "ledger_failed", "swapped": False,
        "target": "books_restored_inc_1", "msg": reason, "quarantine": "",
    }  # fmt: skip
    assert bad["line"] == f"postgresql/books: FAILED: {reason}"
    # a loop item that failed before the module returned anything of its own
    (bare,) = dr.published_results([{"item": {"engine": "mariadb", "database": "erp"}, "failed": True}])
    assert (bare["state"], bare["line"]) == ("failed", "mariadb/erp: FAILED: restore failed")
