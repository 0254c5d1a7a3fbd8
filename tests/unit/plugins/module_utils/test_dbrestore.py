"""dbrestore's pure parts: names (quarantine, limits), the row-count check, the restore mark, and the filter that
renames a mariadb-dump's CREATE DATABASE / USE lines while the dump streams into the client."""

from __future__ import annotations

import io
import os
import stat

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import dbrestore as dr


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
