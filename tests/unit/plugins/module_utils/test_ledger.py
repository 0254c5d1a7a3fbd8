"""Unit tests for module_utils/ledger.py: amounts, voucher numbers, the checks, CSV and SQLite readers."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import ledger as lg
from ledgerguard import sampledata


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        ("1,234.50", 0, Decimal("1234.50")),
        ("¥12.00", 0, Decimal("12.00")),
        ("￥ 3", 0, Decimal("3")),
        ("(12.30)", 0, Decimal("-12.30")),
        ("", 0, Decimal(0)),
        (None, 0, Decimal(0)),
        (0.1, 0, Decimal("0.1")),
        (12345, 2, Decimal("123.45")),
        (7, 0, Decimal(7)),
    ],
)
def test_parse_amount(value, scale, expected):
    assert lg.parse_amount(value, scale) == expected


@pytest.mark.parametrize("bad", ["12.3.4", "abc", "NaN", "Infinity", True])
def test_parse_amount_rejects(bad):
    with pytest.raises(ValueError, match="not an amount"):
        lg.parse_amount(bad)


def test_decimal_not_float():
    # 0.1 + 0.2 != 0.3 in float; the balance check must not report this voucher.
    rows = [
        (2, {"period": "2024-03", "voucher_no": "1", "debit": "0.10", "credit": ""}),
        (3, {"period": "2024-03", "voucher_no": "1", "debit": "0.20", "credit": ""}),
        (4, {"period": "2024-03", "voucher_no": "1", "debit": "", "credit": "0.30"}),
    ]
    assert lg.check_rows(rows, "s", "csv").findings == []


@pytest.mark.parametrize(
    ("value", "word", "expected"),
    [
        ("记-0007", "", ("记", 7)),
        ("记字第7号", "", ("记", 7)),
        ("0007", "记", ("记", 7)),
        (12, "收", ("收", 12)),
        ("15", "", ("", 15)),
    ],
)
def test_split_voucher_no(value, word, expected):
    assert lg.split_voucher_no(value, word) == expected


def test_period_of():
    assert lg.period_of("2024-3", "") == "2024-03"
    assert lg.period_of("", "2024/03/15") == "2024-03"
    assert lg.period_of(None, "20240315") == "2024-03"
    assert lg.period_of("", "") == ""


def test_compress_ranges():
    assert lg.compress_ranges([3, 7, 8, 9, 12]) == "3, 7-9, 12"


def _rows(*spec):
    return [
        (i + 2, {"period": p, "voucher_word": "记", "voucher_no": n, "debit": d, "credit": c})
        for i, (p, n, d, c) in enumerate(spec)
    ]


def test_check_rows_findings():
    rows = _rows(
        ("2024-03", "1", "100.00", ""),
        ("2024-03", "1", "", "100.00"),
        ("2024-03", "2", "50.00", ""),
        ("2024-03", "2", "", "49.99"),
        ("2024-03", "4", "10", ""),
        ("2024-03", "4", "", "10"),
        ("2024-03", "1", "5", ""),
        ("2024-03", "1", "", "5"),
        ("2024-03", "6", "x", ""),
    )
    res = lg.check_rows(rows, "凭证/2024-03.csv", "csv")
    kinds = [(f["kind"], f.get("voucher")) for f in res.findings]
    assert kinds == [
        ("duplicate", "记-1"),
        ("bad_amount", "记-6"),
        ("unbalanced", "记-2"),
        ("gap", None),
    ]
    assert res.rows == 9 and res.vouchers == 4
    unbalanced = res.findings[2]
    assert (
        unbalanced["detail"]
        == "voucher 记-2 of 2024-03 does not balance: debit 50.00 != credit 49.99 (difference 0.01)"
    )
    gap = res.findings[-1]
    assert gap["missing"] == [3, 5]
    assert gap["detail"] == "2024-03 记: missing voucher numbers 3, 5 (found 4 vouchers numbered up to 6)"


def test_gap_from_min_when_number_start_none():
    rows = _rows(("2024-03", "5", "1", "1"), ("2024-03", "6", "1", "1"))
    assert lg.check_rows(rows, "s", "csv", number_start=None).findings == []
    assert lg.check_rows(rows, "s", "csv", number_start=1).findings[0]["missing"] == [1, 2, 3, 4]


def test_read_csv_sample_with_bom(tmp_path):
    info = sampledata.write_voucher_csv(tmp_path / "v.csv", "2024-03", 10, seed=1)
    assert (tmp_path / "v.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    res = lg.check_rows(lg.read_csv(str(tmp_path / "v.csv")), "v.csv", "csv")
    assert res.findings == [] and res.rows == info["rows"] and res.vouchers == 10


def test_read_csv_gb18030_detected(tmp_path):
    sampledata.write_voucher_csv(tmp_path / "g.csv", "2024-03", 5, encoding="gb18030", unbalanced=[2])
    res = lg.check_rows(lg.read_csv(str(tmp_path / "g.csv")), "g.csv", "csv")
    assert [f["kind"] for f in res.findings] == ["unbalanced"]


def test_read_csv_custom_mapping_and_missing_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("单据号,制单日期,借方本币,贷方本币\n记-1,2024-03-02,10.00,\n记-1,2024-03-02,,10.00\n", "utf-8")
    with pytest.raises(
        lg.SourceError, match=r"lacks required columns \(voucher_no: one of \['凭证号', '凭证编号', 'voucher_no'\]\)"
    ):
        list(lg.read_csv(str(path), {"debit": "借方本币", "credit": "贷方本币"}))
    mapping = {"voucher_no": "单据号", "date": "制单日期", "debit": "借方本币", "credit": "贷方本币"}
    res = lg.check_rows(lg.read_csv(str(path), mapping), "x.csv", "csv")
    assert res.rows == 2 and res.findings == [] and res.periods == ["2024-03"]


def test_read_sqlite_sample_and_cents(tmp_path):
    info = sampledata.write_sqlite_ledger(tmp_path / "l.sqlite", ["2024-01"], 8, missing=[("2024-01", 3)])
    conn = lg.connect_ro(str(tmp_path / "l.sqlite"))
    res = lg.check_rows(lg.read_sqlite(conn, "voucher_entries"), "l", "sqlite")
    assert res.rows == info["rows"] and [f["missing"] for f in res.findings] == [[3]]
    assert lg.integrity_check(conn) == []
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM voucher_entries")
    conn.close()
    db = tmp_path / "c.sqlite"
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE gl (vno INTEGER, fperiod TEXT, dr INTEGER, cr INTEGER)")
    raw.executemany("INSERT INTO gl VALUES (?, ?, ?, ?)", [(1, "2024-03", 1001, 0), (1, "2024-03", 0, 1000)])
    raw.commit()
    raw.close()
    conn = lg.connect_ro(str(db))
    mapping = {"voucher_no": "vno", "period": "fperiod", "debit": "dr", "credit": "cr"}
    res = lg.check_rows(lg.read_sqlite(conn, "gl", mapping), "c", "sqlite", scale=2)
    assert res.findings[0]["detail"].endswith("debit 10.01 != credit 10.00 (difference 0.01)")
    with pytest.raises(lg.SourceError, match=r"no table 'voucher_entries' \(tables: \['gl'\]\); set sqlite_table"):
        list(lg.read_sqlite(conn, "voucher_entries"))
    conn.close()


def test_not_sqlite(tmp_path):
    path = tmp_path / "x.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    conn = lg.connect_ro(str(path))
    with pytest.raises(lg.SourceError, match="not a readable SQLite database: file is not a database"):
        list(lg.read_sqlite(conn, "voucher_entries"))


def test_compare_counts():
    out = lg.compare_counts({"a.csv": 10, "b.csv": 12}, {"a.csv": 10, "b.csv": 15, "c.csv": 3})
    assert [(f["kind"], f["source"]) for f in out] == [("row_count", "b.csv"), ("missing_source", "c.csv")]
    assert out[0]["detail"] == "b.csv has 12 rows, 3 fewer than the baseline's 15"


def test_fake_pdf_is_valid(tmp_path):
    size = sampledata.write_fake_pdf(tmp_path / "s.pdf", "Voucher 记-0001", pages=2)
    data = (tmp_path / "s.pdf").read_bytes()
    assert len(data) == size and data.startswith(b"%PDF-1.4") and data.endswith(b"%%EOF\n")
    xref = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert data[xref:].startswith(b"xref\n0 9\n")
    # every xref offset points at "N 0 obj"
    entries = data[xref:].split(b"\n")[3:11]
    for num, line in enumerate(entries, start=1):
        off = int(line[:10])
        assert data[off:].startswith(f"{num} 0 obj".encode())


# --------------------------------------------------------------------------------------------------- databases


def test_database_ledger_declaration():
    where = "postgresql database ledger"
    assert lg.database_ledger({"table": "账务.凭证分录", "columns": {"voucher_no": "凭证号"}}, where) == {
        "table": "账务.凭证分录", "columns": {"voucher_no": "凭证号"}, "amount_scale": 0, "number_start": 1,
    }  # fmt: skip
    assert lg.database_ledger({"table": "t", "amount_scale": 2, "number_start": 0}, where)["amount_scale"] == 2
    bad = [
        (
            "账务.凭证分录",
            "ledger of postgresql database ledger must be a dict with keys ['table', 'columns', "
            "'amount_scale', 'number_start'], got '账务.凭证分录'",
        ),
        (
            {"table": "t", "sources": ["x"]},
            "ledger of postgresql database ledger has unknown keys ['sources']; known: "
            "['table', 'columns', 'amount_scale', 'number_start']",
        ),
        (
            {"columns": {"debit": "借方"}},
            "ledger of postgresql database ledger needs table, the table holding one row "
            "per voucher entry line (PostgreSQL schema.table, MariaDB table), e.g. "
            "{table: 账务.凭证分录, columns: {voucher_no: 凭证号}}",
        ),
        (
            {"table": "t", "columns": {"借方": "借方"}},
            "ledger.columns of postgresql database ledger has unknown keys "
            "['借方']; allowed: " + str(list(lg.LOGICAL_COLUMNS)),
        ),
        (
            {"table": "t", "amount_scale": "2"},
            "ledger.amount_scale of postgresql database ledger must be a whole number, got '2'",
        ),
    ]
    for decl, message in bad:
        with pytest.raises(ValueError) as err:
            lg.database_ledger(decl, where)
        assert str(err.value) == message


def test_json_rows_exact_and_typed():
    lines = [b'["2024-03", 7, 113000, 0.10, null]\n', b"\n", '["2024-03", 7, 0, 1130.00, "x"]\n']
    rows = list(lg.json_rows(lines, ["period", "voucher_no", "debit", "credit", "memo"], "t"))
    assert rows == [
        (1, {"period": "2024-03", "voucher_no": 7, "debit": 113000, "credit": Decimal("0.10"), "memo": None}),
        (2, {"period": "2024-03", "voucher_no": 7, "debit": 0, "credit": Decimal("1130.00"), "memo": "x"}),
    ]
    assert isinstance(rows[0][1]["credit"], Decimal)
    # integers scale as a SQLite ledger's do (cents)
    result = lg.check_rows(iter(rows), "t", "database", 7, 2)
    assert [f["detail"] for f in result.findings] == [
        "voucher 7 of 2024-03 does not balance: debit 1130.00 != credit 1130.10 (difference -0.10)"
    ]
    with pytest.raises(lg.SourceError, match=r"^row 1 of table 't' was not read as JSON"):
        list(lg.json_rows(["not json"], ["a"], "t"))
    with pytest.raises(lg.SourceError) as err:
        list(lg.json_rows(["[1, 2]"], ["a"], "t"))
    assert str(err.value) == "row 1 of table 't' has not the 1 values asked: '[1, 2]'"


def test_verdict_of_a_table():
    rows = [(1, {"period": "2024-03", "voucher_no": "记-1", "debit": "10", "credit": ""}),
            (2, {"period": "2024-03", "voucher_no": "记-1", "debit": "", "credit": "10"})]  # fmt: skip
    assert lg.verdict(lg.check_rows(iter(rows), "账务.凭证分录", "database")) == {
        "table": "账务.凭证分录", "ok": True, "rows": 2, "vouchers": 1, "periods": ["2024-03"], "findings_count": 0,
        "findings": [], "summary": "账务.凭证分录: ok (2 rows, 1 vouchers, balanced)",
    }  # fmt: skip
    many = [(i, {"period": "2024-03", "voucher_no": i, "debit": "1", "credit": ""}) for i in range(1, 8)]
    checked = lg.verdict(lg.check_rows(iter(many), "t", "database"), max_findings=2)
    assert checked["findings_count"] == 7 and len(checked["findings"]) == 2 and checked["ok"] is False
    assert checked["summary"].startswith("t: 7 findings (7 unbalanced): voucher 1 of 2024-03 does not balance: ")
    assert checked["summary"].endswith("; ...") and checked["summary"].count("does not balance") == 5
