"""Realistic sample data for a bookkeeping agency's clients: voucher CSV files, a SQLite ledger, scanned PDFs.

Used by the demo, the tests and the benchmarks. Everything is deterministic for a given ``seed``.

CSV voucher format (the defaults of ``ledger_verify``; UTF-8, with a BOM as Excel and most Chinese bookkeeping
software export it): one row per entry line (分录), the lines of a voucher share 期间 + 凭证字 + 凭证号::

    期间,凭证字,凭证号,日期,分录号,摘要,科目编码,科目名称,借方金额,贷方金额
    2024-03,记,1,2024-03-01,1,销售商品 发票 No.00012345,1122,应收账款,11300.00,
    2024-03,记,1,2024-03-01,2,销售商品 发票 No.00012345,6001,主营业务收入,,10000.00
    2024-03,记,1,2024-03-01,3,销售商品 发票 No.00012345,22210102,应交税费-应交增值税(销项税额),,1300.00

SQLite ledger: table ``voucher_entries`` with columns period, voucher_word, voucher_no (INTEGER), date, line_no,
memo, account_code, account_name, debit, credit (TEXT decimal strings, as accounting software stores money to
avoid float) plus a small ``accounts`` table.
"""

from __future__ import annotations

import csv
import random
import sqlite3
import zlib
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

CSV_HEADER = ["期间", "凭证字", "凭证号", "日期", "分录号", "摘要", "科目编码", "科目名称", "借方金额", "贷方金额"]
SQLITE_TABLE = "voucher_entries"
SQLITE_COLUMNS = [
    "period",
    "voucher_word",
    "voucher_no",
    "date",
    "line_no",
    "memo",
    "account_code",
    "account_name",
    "debit",
    "credit",
]

ACCOUNTS = {
    "1001": "库存现金",
    "1002": "银行存款",
    "1122": "应收账款",
    "1405": "库存商品",
    "2202": "应付账款",
    "2211": "应付职工薪酬",
    "22210101": "应交税费-应交增值税(进项税额)",
    "22210102": "应交税费-应交增值税(销项税额)",
    "6001": "主营业务收入",
    "6401": "主营业务成本",
    "6602": "管理费用",
}

CENT = Decimal("0.01")
VAT = Decimal("0.13")


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return (Decimal(rng.randrange(low * 100, high * 100)) / 100).quantize(CENT)


def _voucher(rng: random.Random) -> tuple[str, list[tuple[str, Decimal, Decimal]]]:
    """(memo, [(account, debit, credit), ...]) for one balanced voucher."""
    kind = rng.randrange(5)
    if kind == 0:
        net = _money(rng, 500, 50000)
        tax = (net * VAT).quantize(CENT)
        memo = f"销售商品 发票 No.{rng.randrange(10**7, 10**8):08d}"
        return memo, [("1122", net + tax, Decimal(0)), ("6001", Decimal(0), net), ("22210102", Decimal(0), tax)]
    if kind == 1:
        amt = _money(rng, 500, 60000)
        return "收到货款", [("1002", amt, Decimal(0)), ("1122", Decimal(0), amt)]
    if kind == 2:
        net = _money(rng, 300, 30000)
        tax = (net * VAT).quantize(CENT)
        memo = f"采购商品 发票 No.{rng.randrange(10**7, 10**8):08d}"
        return memo, [("1405", net, Decimal(0)), ("22210101", tax, Decimal(0)), ("2202", Decimal(0), net + tax)]
    if kind == 3:
        amt = _money(rng, 50, 5000)
        memo = rng.choice(["报销办公用品", "支付房租", "支付水电费", "报销差旅费"])
        return memo, [("6602", amt, Decimal(0)), ("1002", Decimal(0), amt)]
    amt = _money(rng, 3000, 20000)
    return "计提工资", [("6602", amt, Decimal(0)), ("2211", Decimal(0), amt)]


def _fmt(amount: Decimal) -> str:
    return "" if amount == 0 else f"{amount:.2f}"


def voucher_lines(
    period: str,
    vouchers: int,
    seed: int = 0,
    *,
    word: str = "记",
    unbalanced: Iterable[int] = (),
    missing: Iterable[int] = (),
) -> list[dict[str, str]]:
    """The entry lines of ``vouchers`` vouchers numbered 1..n in ``period`` (YYYY-MM), keyed by SQLITE_COLUMNS.

    ``unbalanced``: voucher numbers whose last credit is 0.01 short. ``missing``: voucher numbers left out (a gap).
    """
    rng = random.Random(f"{seed}:{period}:{word}")  # noqa: S311 - sample data, not security
    bad, skip = set(unbalanced), set(missing)
    year, month = (int(x) for x in period.split("-"))
    rows: list[dict[str, str]] = []
    for no in range(1, vouchers + 1):
        memo, lines = _voucher(rng)
        day = min(28, 1 + (no - 1) * 28 // max(1, vouchers))
        if no in skip:
            continue
        if no in bad:
            account, debit, credit = lines[-1]
            lines[-1] = (account, debit, credit - CENT)
        for line_no, (account, debit, credit) in enumerate(lines, start=1):
            rows.append(
                {
                    "period": period,
                    "voucher_word": word,
                    "voucher_no": str(no),
                    "date": f"{year:04d}-{month:02d}-{day:02d}",
                    "line_no": str(line_no),
                    "memo": memo,
                    "account_code": account,
                    "account_name": ACCOUNTS[account],
                    "debit": _fmt(debit),
                    "credit": _fmt(credit),
                }
            )
    return rows


def write_voucher_csv(
    path: str | Path,
    period: str = "2024-03",
    vouchers: int = 20,
    seed: int = 0,
    *,
    unbalanced: Iterable[int] = (),
    missing: Iterable[int] = (),
    bom: bool = True,
    encoding: str = "utf-8",
) -> dict:
    """Write one period's vouchers as CSV with the Chinese header CSV_HEADER. Returns {path, rows, vouchers}.

    ``encoding="gb18030"`` writes what older Windows software exports (no BOM then).
    """
    rows = voucher_lines(period, vouchers, seed, unbalanced=unbalanced, missing=missing)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = "utf-8-sig" if bom and encoding.lower().replace("_", "-") == "utf-8" else encoding
    with open(path, "w", encoding=enc, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        for r in rows:
            writer.writerow([r[c] for c in SQLITE_COLUMNS])
    return {"path": str(path), "rows": len(rows), "vouchers": len({r["voucher_no"] for r in rows})}


def write_sqlite_ledger(
    path: str | Path,
    periods: Iterable[str] = ("2024-01", "2024-02", "2024-03"),
    vouchers_per_period: int = 20,
    seed: int = 0,
    *,
    table: str = SQLITE_TABLE,
    unbalanced: Iterable[tuple[str, int]] = (),
    missing: Iterable[tuple[str, int]] = (),
) -> dict:
    """Write a SQLite ledger (replacing ``path``). ``unbalanced``/``missing`` are (period, voucher_no) pairs.

    Returns {path, table, rows, vouchers}.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    bad, skip = list(unbalanced), list(missing)
    conn = sqlite3.connect(path)
    try:
        cols = ", ".join(f'"{c}" INTEGER' if c in ("voucher_no", "line_no") else f'"{c}" TEXT' for c in SQLITE_COLUMNS)
        conn.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, {cols})')
        conn.execute("CREATE TABLE accounts (code TEXT PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany("INSERT INTO accounts VALUES (?, ?)", sorted(ACCOUNTS.items()))
        rows = 0
        vouchers = 0
        for period in periods:
            lines = voucher_lines(
                period,
                vouchers_per_period,
                seed,
                unbalanced=[n for p, n in bad if p == period],
                missing=[n for p, n in skip if p == period],
            )
            placeholders = ", ".join("?" for _ in SQLITE_COLUMNS)
            names = ", ".join(f'"{c}"' for c in SQLITE_COLUMNS)
            conn.executemany(
                f'INSERT INTO "{table}" ({names}) VALUES ({placeholders})',  # noqa: S608 - our own identifiers
                [
                    [int(r[c]) if c in ("voucher_no", "line_no") else (r[c] or "0.00") for c in SQLITE_COLUMNS]
                    for r in lines
                ],
            )
            rows += len(lines)
            vouchers += len({r["voucher_no"] for r in lines})
        conn.commit()
    finally:
        conn.close()
    return {"path": str(path), "table": table, "rows": rows, "vouchers": vouchers}


def write_fake_pdf(path: str | Path, title: str = "Scanned voucher", pages: int = 1) -> int:
    """A small valid PDF (a 'scanned' voucher page with a line of text and a compressed content stream).

    ``title`` goes into the document info as UTF-16 (Chinese works); the page text is its ASCII part.
    Returns the size in bytes.
    """
    text = title.encode("ascii", "ignore").decode() or "Scanned document"
    text = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    font_id = 3 + 2 * pages
    for i in range(pages):
        stream = zlib.compress(f"BT /F1 14 Tf 72 770 Td ({text} - page {i + 1}) Tj ET".encode())
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode() + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    title_hex = (b"\xfe\xff" + title.encode("utf-16-be")).hex().upper()
    objects.append(f"<< /Title <{title_hex}> /Producer (ledgerguard sampledata) >>".encode())
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{num} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return len(out)


def make_client_tree(
    root: str | Path,
    client_id: str = "c001",
    name: str = "杭州示例贸易有限公司",
    periods: Iterable[str] = ("2024-01", "2024-02", "2024-03"),
    vouchers_per_period: int = 20,
    pdfs: int = 3,
    seed: int = 0,
    *,
    unbalanced: Iterable[tuple[str, int]] = (),
    missing: Iterable[tuple[str, int]] = (),
) -> dict:
    """A client's folder as an agency keeps it::

        <root>/<client_id>/凭证/<period>.csv        vouchers per period (CSV, UTF-8 with BOM)
        <root>/<client_id>/账簿/ledger.sqlite        the same vouchers in a SQLite ledger
        <root>/<client_id>/扫描件/记-<n>.pdf          scanned original vouchers (small valid PDFs)

    ``unbalanced``/``missing`` ((period, voucher_no) pairs) damage both the CSV and the SQLite copies.
    Returns {"client": {id, name, paths, root, csv, sqlite}, "baseline": {relative source: rows}, "files": n}: the
    client dict fits ``ledgerguard_clients`` and ``ledger_verify``'s ``clients``; ``baseline`` its ``baseline``.
    """
    periods = list(periods)
    base = Path(root) / client_id
    bad, skip = list(unbalanced), list(missing)
    baseline: dict[str, int] = {}
    for period in periods:
        info = write_voucher_csv(
            base / "凭证" / f"{period}.csv",
            period,
            vouchers_per_period,
            seed,
            unbalanced=[n for p, n in bad if p == period],
            missing=[n for p, n in skip if p == period],
        )
        baseline[f"凭证/{period}.csv"] = info["rows"]
    info = write_sqlite_ledger(
        base / "账簿" / "ledger.sqlite", periods, vouchers_per_period, seed, unbalanced=bad, missing=skip
    )
    baseline["账簿/ledger.sqlite"] = info["rows"]
    for n in range(1, pdfs + 1):
        write_fake_pdf(base / "扫描件" / f"记-{n:04d}.pdf", f"Voucher 记-{n:04d} {name}")
    return {
        "client": {
            "id": client_id,
            "name": name,
            "paths": [str(base)],
            "root": str(base),
            "csv": [str(base / "凭证")],
            "sqlite": [str(base / "账簿" / "ledger.sqlite")],
        },
        "baseline": baseline,
        "files": len(periods) + 1 + pdfs,
    }
