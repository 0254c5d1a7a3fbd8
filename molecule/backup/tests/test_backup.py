"""Verifier for the backup scenario: the drill's database restores against the live databases, check mode and the
second backup run."""

from __future__ import annotations

import json

LIVE_PG = {"public.凭证": 250, "账套.科目": 4}
LIVE_MARIADB = {"vouchers": 120, "科目": 3, "凭证分录": 4}


def read_json(host, path: str):
    f = host.file(path)
    assert f.exists, path
    return json.loads(f.content_string)


def pg(host, sql: str, db: str = "ledger") -> str:
    out = host.run(f'psql -X -A -t -h /var/run/postgresql -d {db} -c "{sql}"')
    assert out.rc == 0, out.stderr
    return out.stdout.strip()


def maria(host, sql: str) -> str:
    out = host.run(f'mariadb --batch --skip-column-names --default-character-set=utf8mb4 -e "{sql}"')
    assert out.rc == 0, out.stderr
    return out.stdout.strip()


def test_drill_restored_each_database_with_the_live_row_counts(host):
    lines = host.file("/var/lib/ledgerguard/drills/history.jsonl").content_string.splitlines()
    (rec,) = [json.loads(line) for line in lines]  # the check step recorded nothing
    assert rec["drill_id"] == "drill-molecule-backup" and rec["passed"] is True, rec["errors"]
    by_name = {f"{d['engine']}/{d['database']}": d for d in rec["databases"]}
    assert set(by_name) == {"postgresql/ledger", "mariadb/books"}
    assert by_name["postgresql/ledger"]["tables"] == LIVE_PG
    assert by_name["mariadb/books"]["tables"] == LIVE_MARIADB
    assert all(d["passed"] and d["scratch"].endswith("_drill_molecule_backup") for d in by_name.values())
    # the MariaDB books' ledger table, read through the mariadb client from the scratch restore, balances
    ledger = by_name["mariadb/books"]["ledger"]
    assert (ledger["ok"], ledger["rows"], ledger["vouchers"], ledger["findings"]) == (True, 4, 2, []), ledger
    assert ledger["summary"] == "凭证分录: ok (4 rows, 2 vouchers, balanced)"
    assert by_name["postgresql/ledger"]["ledger"] is None  # no ledger table mapped
    # the counts the drill recorded are the live databases' counts, table by table
    assert pg(host, "SELECT count(*) FROM public.凭证") == "250" and pg(host, "SELECT count(*) FROM 账套.科目") == "4"
    assert maria(host, "SELECT COUNT(*) FROM books.vouchers") == "120"  # after the incident's swap, as before
    assert maria(host, "SELECT COUNT(*) FROM books.科目") == "3"


def test_scratch_databases_dropped(host):
    names = pg(host, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database", "postgres")
    assert names == "ledger,postgres,template0,template1"
    # books_damaged_inc_mol_1 is the incident's quarantine (side_effect.yml), not a drill's scratch database
    assert maria(host, "SHOW DATABASES LIKE 'books%'").splitlines() == ["books", "books_damaged_inc_mol_1"]


def test_check_mode_made_no_snapshot_and_both_runs_backed_up_everything(host):
    assert read_json(host, "/root/lg-snapshots-before.json") == {"count": 0}
    first = read_json(host, "/root/lg-backup-1.json")
    second = read_json(host, "/root/lg-backup-2.json")
    names = [r.get("database") or r["client"] for r in first]
    assert names == ["c001", "postgresql/ledger", "mariadb/books"]
    assert [r.get("database") or r["client"] for r in second] == names
    assert all(r["snapshot_id"] for r in first + second)


def test_second_run_added_no_file_data(host):
    second = {r.get("database") or r["client"]: r for r in read_json(host, "/root/lg-backup-2.json")}
    assert int(second["c001"]["bytes_added"]) == 0
    # The dumps carry their creation time (pg_dump's archive header, mariadb-dump's "Dump completed on" line), so a
    # small dump (one restic chunk) is stored again whole: at most its size plus its snapshot's tree blob.
    for name in ("postgresql/ledger", "mariadb/books"):
        assert 0 <= int(second[name]["bytes_added"]) <= int(second[name]["bytes"]) + 4096, second[name]


def test_incident_restored_the_mariadb_books_beside_and_swapped_keeping_the_damaged(host):
    (first,) = read_json(host, "/root/lg-db-restore-1.json")
    assert first["state"] == "swapped" and first["changed"] is True and first["swapped"] is True
    assert first["quarantine"] == "books_damaged_inc_mol_1"
    # the ledger table was checked on the restore before the swap (a finding would have stopped the swap)
    verdict = first["ledger"]
    assert (verdict["ok"], verdict["rows"], verdict["vouchers"]) == (True, 4, 2), verdict
    assert first["tables"] == LIVE_MARIADB and first["damaged_tables"] == {"vouchers": 20, "科目": 0, "凭证分录": 4}
    # the live name holds the restore (every row, Chinese text intact), the damaged one is kept under its new name
    assert maria(host, "SELECT 摘要 FROM books.vouchers WHERE id = 120") == "支付房租 120"
    assert maria(host, "SELECT GROUP_CONCAT(名称 ORDER BY code) FROM books.科目") == "库存现金,银行存款,管理费用"
    assert maria(host, "SELECT COUNT(*) FROM books_damaged_inc_mol_1.vouchers") == "20"
    assert maria(host, "SELECT COUNT(*) FROM books_damaged_inc_mol_1.科目") == "0"
    (second,) = read_json(host, "/root/lg-db-restore-2.json")
    assert second["state"] == "already_swapped" and second["changed"] is False and second["tables"] == LIVE_MARIADB
    assert second["ledger"] is None  # nothing to swap, nothing checked
