# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bookkeeping checks on restored voucher data (CSV files and SQLite ledgers), read-only.

Checks, per source (one CSV file or one SQLite table):
- ``unbalanced``: a voucher's debits do not equal its credits (借贷不平), in ``Decimal`` arithmetic.
- ``gap``: voucher numbers of a period and voucher word (凭证字) are not consecutive from ``number_start``.
- ``duplicate``: a voucher number reappears after other vouchers (two vouchers share a number).
- ``bad_amount`` / ``bad_voucher_no``: a value that is not a number.
- ``row_count``: the source holds fewer or more entry lines than the baseline says.
Plus, per client: ``missing_source`` (declared or in the baseline but not found), ``unreadable`` (cannot be parsed),
``integrity`` (SQLite ``PRAGMA integrity_check`` is not ``ok``).
"""

from __future__ import annotations

import codecs
import collections
import csv
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils import safe_fs

LOGICAL_COLUMNS = ("period", "voucher_word", "voucher_no", "date", "memo", "account", "debit", "credit")
REQUIRED_COLUMNS = ("voucher_no", "debit", "credit")

# Header names accepted by default for each logical column (first match wins), Chinese exports first.
CSV_DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "period": ("期间", "会计期间", "period"),
    "voucher_word": ("凭证字", "voucher_word"),
    "voucher_no": ("凭证号", "凭证编号", "voucher_no"),
    "date": ("日期", "凭证日期", "date"),
    "memo": ("摘要", "memo"),
    "account": ("科目编码", "科目代码", "account_code", "account"),
    "debit": ("借方金额", "借方", "debit"),
    "credit": ("贷方金额", "贷方", "credit"),
}
SQLITE_DEFAULT_TABLE = "voucher_entries"
SQLITE_DEFAULT_COLUMNS: dict[str, str] = {
    "period": "period",
    "voucher_word": "voucher_word",
    "voucher_no": "voucher_no",
    "date": "date",
    "memo": "memo",
    "account": "account_code",
    "debit": "debit",
    "credit": "credit",
}

_CURRENCY = re.compile(r"[,\s¥￥]|^RMB|^CNY", re.I)
_VOUCHER_NO = re.compile(r"^\s*(?P<word>\D*?)[\s\-_第#]*(?P<num>\d+)\s*号?\s*$")
_DATE = re.compile(r"^\s*(\d{4})[-/.年]?(\d{1,2})")


class SourceError(Exception):
    """A source cannot be read as vouchers (missing columns or table, bad encoding, not SQLite)."""


def parse_amount(value: Any, scale: int = 0) -> Decimal:
    """A money value as Decimal: '' / None -> 0; '1,234.50', '¥12.00' and '(12.00)' (negative) are accepted.

    ``scale``: integers are in units of 10**-scale (e.g. 2 for amounts stored in cents). Floats go through
    ``repr`` so 0.1 stays 0.1. Raises ValueError for anything else.
    """
    if value is None:
        return Decimal(0)
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return Decimal(value).scaleb(-scale) if scale else Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    text = str(value).strip()
    if not text or text in ("-", "—"):
        return Decimal(0)
    negative = text.startswith("(") and text.endswith(")")
    if negative:
        text = text[1:-1]
    text = _CURRENCY.sub("", text)
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return -amount if negative else amount


def split_voucher_no(value: Any, word: str = "") -> tuple[str, int]:
    """('记', 7) from ('记-0007'), ('记字第7号'), (7, '记') or ('0007', '记'). Raises ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (word or "").strip(), value
    match = _VOUCHER_NO.match(str(value if value is not None else ""))
    if not match:
        raise ValueError(f"not a voucher number: {value!r}")
    parsed_word = match.group("word").replace("字", "").strip(" -_")
    return (word or "").strip() or parsed_word, int(match.group("num"))


def period_of(period: Any, date: Any) -> str:
    """The accounting period: the period column if set, else YYYY-MM from the date ('' if neither)."""
    text = str(period).strip() if period not in (None, "") else ""
    if text:
        match = _DATE.match(text)
        return f"{match.group(1)}-{int(match.group(2)):02d}" if match and len(text) >= 6 else text
    match = _DATE.match(str(date or ""))
    return f"{match.group(1)}-{int(match.group(2)):02d}" if match else ""


def format_voucher(word: str, number: int) -> str:
    return f"{word}-{number}" if word else str(number)


@dataclass
class SourceResult:
    """What one source held: counts and findings (each a dict with kind, detail and location fields)."""

    source: str
    kind: str
    rows: int = 0
    vouchers: int = 0
    periods: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)


def check_rows(
    rows: Iterable[tuple[int, dict[str, Any]]], source: str, kind: str, number_start: int | None = 1, scale: int = 0
) -> SourceResult:
    """Run the voucher checks over (line number, logical row) pairs of one source."""
    result = SourceResult(source=source, kind=kind)
    totals: dict[tuple[str, str, int], list[Decimal]] = {}
    first_line: dict[tuple[str, str, int], int] = {}
    duplicates: set[tuple[str, str, int]] = set()
    last_key: tuple[str, str, int] | None = None

    def finding(kind_: str, detail: str, **where: Any) -> None:
        result.findings.append({"kind": kind_, "source": source, "detail": detail, **where})

    for lineno, row in rows:
        result.rows += 1
        period = period_of(row.get("period"), row.get("date"))
        try:
            word, number = split_voucher_no(row.get("voucher_no"), str(row.get("voucher_word") or ""))
        except ValueError:
            finding(
                "bad_voucher_no",
                f"line {lineno}: voucher number {row.get('voucher_no')!r} is not a number",
                line=lineno,
                period=period,
            )
            continue
        key = (period, word, number)
        if key != last_key and key in totals and key not in duplicates:
            duplicates.add(key)
            finding(
                "duplicate",
                f"voucher {format_voucher(word, number)} of {period or 'no period'} appears again at line {lineno} "
                f"after other vouchers (first at line {first_line[key]}): two vouchers share this number",
                period=period,
                voucher=format_voucher(word, number),
                line=lineno,
            )
        last_key = key
        sums = totals.setdefault(key, [Decimal(0), Decimal(0)])
        first_line.setdefault(key, lineno)
        for index, column in ((0, "debit"), (1, "credit")):
            try:
                sums[index] += parse_amount(row.get(column), scale)
            except ValueError:
                finding(
                    "bad_amount",
                    f"line {lineno}: {column} {row.get(column)!r} is not an amount",
                    line=lineno,
                    period=period,
                    voucher=format_voucher(word, number),
                )
    result.vouchers = len(totals)
    numbers: dict[tuple[str, str], list[int]] = {}
    for (period, word, number), (debit, credit) in totals.items():
        numbers.setdefault((period, word), []).append(number)
        if debit != credit:
            finding(
                "unbalanced",
                f"voucher {format_voucher(word, number)} of {period or 'no period'} does not balance: "
                f"debit {debit:.2f} != credit {credit:.2f} (difference {debit - credit:.2f})",
                period=period,
                voucher=format_voucher(word, number),
                line=first_line[(period, word, number)],
                debit=f"{debit:.2f}",
                credit=f"{credit:.2f}",
                difference=f"{debit - credit:.2f}",
            )
    for (period, word), nums in sorted(numbers.items()):
        present = set(nums)
        low = number_start if number_start is not None else min(present)
        missing = [n for n in range(low, max(present) + 1) if n not in present]
        if missing:
            finding(
                "gap",
                f"{period or 'no period'}{' ' + word if word else ''}: missing voucher numbers "
                f"{compress_ranges(missing)} (found {len(present)} vouchers numbered up to {max(present)})",
                period=period,
                voucher_word=word,
                missing=missing[:1000],
                missing_count=len(missing),
            )
    result.periods = sorted({p for p, _w in numbers})
    return result


def compress_ranges(numbers: list[int]) -> str:
    """'3, 7-9, 12' from [3, 7, 8, 9, 12] (sorted input)."""
    parts: list[str] = []
    start = prev = None
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else str(start))
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------------- CSV


def open_source(path: str, mode: str = "rb", **kwargs):
    """Open a ledger source for reading only when it is a regular file (module_utils/safe_fs.open_regular: lstat,
    ``O_NOFOLLOW|O_NONBLOCK``, fstat): a FIFO named ``*.csv`` never blocks the check, a ``*.csv`` symbolic link
    (to /etc/passwd, say) is never followed. Raises :class:`SourceError` naming what the entry is."""
    parent, name = os.path.split(os.path.abspath(path))
    try:
        dfd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise SourceError("no such file") from exc
    try:
        fd, _st = safe_fs.open_regular(name, dfd)
    except safe_fs.NotRegularFile as exc:
        raise SourceError(f"{exc.strerror}; not read (only regular files are ledger sources)") from exc
    except FileNotFoundError as exc:
        raise SourceError("no such file") from exc
    finally:
        os.close(dfd)
    # The descriptor was opened O_NONBLOCK (against FIFOs); a regular file reads the same either way.
    return os.fdopen(fd, mode, **kwargs)


def detect_encoding(path: str, encoding: str) -> str:
    """'utf-8-sig' for UTF-8 (BOM or not); with 'auto', 'gb18030' when the bytes are not UTF-8."""
    if encoding.lower() not in ("auto", ""):
        return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open_source(path, "rb") as handle:
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def resolve_csv_columns(header: list[str], mapping: dict[str, str] | None) -> dict[str, int]:
    """Logical column -> index in ``header``. ``mapping`` (logical -> header name) overrides the defaults."""
    mapping = mapping or {}
    clean = [h.strip().lstrip("\ufeff") for h in header]
    out: dict[str, int] = {}
    for logical in LOGICAL_COLUMNS:
        candidates = (mapping[logical],) if logical in mapping else CSV_DEFAULT_COLUMNS[logical]
        for name in candidates:
            if name in clean:
                out[logical] = clean.index(name)
                break
    missing = [c for c in REQUIRED_COLUMNS if c not in out]
    if missing:
        wanted = "; ".join(
            f"{c}: {mapping[c]!r}" if c in mapping else f"{c}: one of {list(CSV_DEFAULT_COLUMNS[c])}" for c in missing
        )
        raise SourceError(f"header {clean} lacks required columns ({wanted}); map them with csv_columns")
    if "period" not in out and "date" not in out:
        raise SourceError(f"header {clean} has neither a period nor a date column; map one with csv_columns")
    return out


def read_csv(
    path: str, mapping: dict[str, str] | None = None, encoding: str = "auto", delimiter: str = ","
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (line number, logical row) from a voucher CSV file. Raises SourceError on bad input."""
    enc = detect_encoding(path, encoding)
    try:
        with open_source(path, "r", encoding=enc, newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise SourceError("the file is empty (no header line)")
            columns = resolve_csv_columns(header, mapping)
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                row = {k: (record[i] if i < len(record) else "") for k, i in columns.items()}
                yield reader.line_num, row
    except UnicodeDecodeError as exc:
        raise SourceError(f"not valid {enc} text ({exc.reason} at byte {exc.start}); set csv_encoding") from exc
    except csv.Error as exc:
        raise SourceError(f"not valid CSV: {exc}") from exc


# --------------------------------------------------------------------------------------------------- SQLite


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect_ro(path: str) -> sqlite3.Connection:
    """Open a SQLite file read-only (never creates or modifies it; works on read-only media)."""
    open_source(path).close()  # a regular file, not a FIFO, device or symbolic link
    uri = "file:" + path.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    return sqlite3.connect(uri, uri=True)


def select_columns(table: str, have: list[str], mapping: dict[str, str] | None, option: str) -> dict[str, str]:
    """Logical column -> column of ``table`` (whose columns are ``have``): the defaults (SQLITE_DEFAULT_COLUMNS)
    overridden by ``mapping``, kept where the table has them. Raises SourceError naming ``option`` (where the user
    maps them) when a required column, or both period and date, are missing."""
    columns = dict(SQLITE_DEFAULT_COLUMNS)
    columns.update(mapping or {})
    selected = {k: v for k, v in columns.items() if v in have}
    missing = [f"{c}: {columns[c]!r}" for c in REQUIRED_COLUMNS if c not in selected]
    if missing:
        raise SourceError(f"table {table!r} lacks columns {missing} (has {have}); map them with {option}")
    if "period" not in selected and "date" not in selected:
        raise SourceError(f"table {table!r} has neither a period nor a date column; map one with {option}")
    return selected


def read_sqlite(
    conn: sqlite3.Connection, table: str, mapping: dict[str, str] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (rowid, logical row) from the voucher table, in rowid order. Raises SourceError."""
    try:
        found = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (table,))
        if found.fetchone() is None:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            raise SourceError(f"no table {table!r} (tables: {tables}); set sqlite_table")
        have = [r[1] for r in conn.execute(f"PRAGMA table_info({quote_ident(table)})")]
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"not a readable SQLite database: {exc}") from exc
    selected = select_columns(table, have, mapping, "sqlite_columns")
    keys = list(selected)
    # Identifiers are quoted (quote_ident) and were checked against the schema above.
    sql = f"SELECT {', '.join(quote_ident(selected[k]) for k in keys)} FROM {quote_ident(table)}"  # noqa: S608
    try:
        try:
            # rowid order is insertion order for a rowid table; views fall back to their natural order.
            cursor = conn.execute(sql + " ORDER BY rowid")
        except sqlite3.OperationalError:
            cursor = conn.execute(sql)
    except sqlite3.DatabaseError as exc:  # e.g. "database disk image is malformed"
        raise SourceError(f"reading table {table!r} failed: {exc}") from exc
    try:
        for index, values in enumerate(cursor, start=1):
            yield index, dict(zip(keys, values, strict=True))
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"reading table {table!r} failed: {exc}") from exc


def integrity_check(conn: sqlite3.Connection) -> list[str]:
    """Problems reported by ``PRAGMA integrity_check`` (empty when the database is ok)."""
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows


# --------------------------------------------------------------------------------------------------- databases

# A database's ledger table (``backup_databases[].ledger``, ``drill_databases[].ledger``): the same table + columns
# (+ amount_scale) a client declares for its SQLite ledgers (``ledgerguard_clients[].ledger.sqlite``), plus
# number_start. The rows are read through the engine's own client (module_utils/dbrestore.py).
DATABASE_LEDGER_KEYS = ("table", "columns", "amount_scale", "number_start")


def database_ledger(decl: Any, where: str) -> dict[str, Any]:
    """The checked ``ledger`` of a database entry: {table, columns, amount_scale, number_start}. Raises ValueError
    naming ``where`` (e.g. 'postgresql database ledger') and what was expected."""
    if not isinstance(decl, dict):
        raise ValueError(f"ledger of {where} must be a dict with keys {list(DATABASE_LEDGER_KEYS)}, got {decl!r}")
    unknown = sorted(set(decl) - set(DATABASE_LEDGER_KEYS))
    if unknown:
        raise ValueError(f"ledger of {where} has unknown keys {unknown}; known: {list(DATABASE_LEDGER_KEYS)}")
    table = decl.get("table")
    if not isinstance(table, str) or not table.strip():
        raise ValueError(
            f"ledger of {where} needs table, the table holding one row per voucher entry line "
            "(PostgreSQL schema.table, MariaDB table), e.g. {table: 账务.凭证分录, columns: {voucher_no: 凭证号}}"
        )
    columns = decl.get("columns") or {}
    if not isinstance(columns, dict):
        raise ValueError(f"ledger.columns of {where} must be a dict {{logical column: column name}}")
    bad = sorted(set(columns) - set(LOGICAL_COLUMNS))
    if bad:
        raise ValueError(f"ledger.columns of {where} has unknown keys {bad}; allowed: {list(LOGICAL_COLUMNS)}")
    out: dict[str, Any] = {"table": table, "columns": {k: str(v) for k, v in columns.items()}}
    for key, default in (("amount_scale", 0), ("number_start", 1)):
        value = decl.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"ledger.{key} of {where} must be a whole number, got {value!r}")
        out[key] = value
    return out


def json_rows(lines: Iterable[str | bytes], keys: list[str], table: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, logical row) from one JSON array per line (the values of ``keys`` in order), as the database
    clients print them: numbers with a fraction as Decimal (never float), integers as int, NULL as None. Raises
    SourceError for a line that is not such an array."""
    index = 0
    for line in lines:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        if not text.strip():
            continue
        index += 1
        try:
            values = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            raise SourceError(f"row {index} of table {table!r} was not read as JSON ({exc}): {text[:200]!r}") from exc
        if not isinstance(values, list) or len(values) != len(keys):
            raise SourceError(f"row {index} of table {table!r} has not the {len(keys)} values asked: {text[:200]!r}")
        yield index, dict(zip(keys, values, strict=True))


def findings_head(label: str, findings: list[dict[str, Any]]) -> str:
    """'<label>: 2 findings (1 gap, 1 unbalanced)', the start of a summary line."""
    kinds = collections.Counter(f["kind"] for f in findings)
    return (
        f"{label}: {len(findings)} finding{'s' if len(findings) != 1 else ''} ("
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + ")"
    )


def verdict(result: SourceResult, max_findings: int = 100) -> dict[str, Any]:
    """The ledger verdict of one source (a database table) as a result and a drill record show it."""
    findings = result.findings
    if findings:
        summary = (
            findings_head(result.source, findings)
            + ": "
            + "; ".join(f["detail"] for f in findings[:5])
            + ("; ..." if len(findings) > 5 else "")
        )
    else:
        summary = f"{result.source}: ok ({result.rows} rows, {result.vouchers} vouchers, balanced)"
    return {
        "table": result.source,
        "ok": not findings,
        "rows": result.rows,
        "vouchers": result.vouchers,
        "periods": result.periods,
        "findings_count": len(findings),
        "findings": findings[:max_findings],
        "summary": summary,
    }


# --------------------------------------------------------------------------------------------------- baselines


def compare_counts(counts: dict[str, int], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """row_count / missing_source findings for one client's {source: rows} against its baseline."""
    findings = []
    for source, expected in sorted(baseline.items()):
        try:
            expected_rows = int(expected)
        except (TypeError, ValueError):
            findings.append(
                {
                    "kind": "bad_baseline",
                    "source": source,
                    "detail": f"baseline row count {expected!r} for {source} is not a whole number",
                }
            )
            continue
        if source not in counts:
            findings.append(
                {
                    "kind": "missing_source",
                    "source": source,
                    "detail": f"{source} is in the baseline ({expected_rows} rows) but was not found",
                }
            )
        elif counts[source] != expected_rows:
            got = counts[source]
            word = "fewer" if got < expected_rows else "more"
            findings.append(
                {
                    "kind": "row_count",
                    "source": source,
                    "expected": expected_rows,
                    "found": got,
                    "detail": f"{source} has {got} rows, {abs(expected_rows - got)} {word} than the baseline's "
                    f"{expected_rows}",
                }
            )
    return findings


# --------------------------------------------------------------------------------------------------- declaration

# ``ledgerguard_clients[].ledger``: one declaration of a client's books, read by the incident (snapshot assessment,
# ledger checks), the drill and backup verification alike. Keys -> the ledger_verify option each one sets.
LEDGER_CSV_KEYS = {"sources": None, "columns": "csv_columns", "encoding": "csv_encoding", "delimiter": "csv_delimiter"}
LEDGER_SQLITE_KEYS = {
    "sources": None,
    "table": "sqlite_table",
    "columns": "sqlite_columns",
    "amount_scale": "sqlite_amount_scale",
    "integrity_check": "sqlite_integrity_check",
}
LEDGER_KEYS = ("csv", "sqlite", "number_start", "baseline")


def ledger_declaration(client: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The effective ledger_verify settings of one client: ``defaults`` (the module's options) overridden by the
    client's ``ledger`` declaration, plus its ``csv`` / ``sqlite`` sources and ``baseline``.

    ``ledger`` looks like::

        ledger:
          csv: {sources: [凭证], columns: {voucher_no: 凭证编号, debit: 借方本币, credit: 贷方本币}, encoding: gbk,
                delimiter: ","}
          sqlite: {sources: [账簿/ledger.sqlite], table: gl_entries, columns: {voucher_no: vno}, amount_scale: 2}
          number_start: 1
          baseline: {"凭证/2024-03.csv": 60}

    ``csv`` / ``sqlite`` may also be plain source lists; without ``sources`` the client's top-level ``csv`` /
    ``sqlite`` lists are used. Raises ValueError naming an unknown key.
    """
    out = dict(defaults)
    out["csv"] = client.get("csv") or []
    out["sqlite"] = client.get("sqlite") or []
    out["baseline"] = None
    decl = client.get("ledger") or {}
    if not isinstance(decl, dict):
        raise ValueError(f"ledger of client {client.get('id')!r} must be a dict (keys {list(LEDGER_KEYS)})")
    unknown = sorted(set(decl) - set(LEDGER_KEYS))
    if unknown:
        raise ValueError(
            f"ledger of client {client.get('id')!r} has unknown keys {unknown}; known: {list(LEDGER_KEYS)}"
        )
    for kind, keys in (("csv", LEDGER_CSV_KEYS), ("sqlite", LEDGER_SQLITE_KEYS)):
        part = decl.get(kind)
        if part is None:
            continue
        if isinstance(part, (list, str)):
            out[kind] = [part] if isinstance(part, str) else list(part)
            continue
        if not isinstance(part, dict):
            raise ValueError(f"ledger.{kind} of client {client.get('id')!r} must be a dict or a list of sources")
        bad = sorted(set(part) - set(keys))
        if bad:
            raise ValueError(
                f"ledger.{kind} of client {client.get('id')!r} has unknown keys {bad}; known: {list(keys)}"
            )
        for key, option in keys.items():
            if key not in part:
                continue
            if option is None:
                sources = part[key]
                out[kind] = [sources] if isinstance(sources, str) else list(sources or [])
            else:
                out[option] = part[key]
    if "number_start" in decl:
        out["number_start"] = decl["number_start"]
    if decl.get("baseline") is not None:
        if not isinstance(decl["baseline"], dict):
            raise ValueError(f"ledger.baseline of client {client.get('id')!r} must be {{source: rows}}")
        out["baseline"] = dict(decl["baseline"])
    for option in ("csv_columns", "sqlite_columns"):
        unknown = sorted(set(out.get(option) or {}) - set(LOGICAL_COLUMNS))
        if unknown:
            raise ValueError(
                f"client {client.get('id')!r}: {option} has unknown keys {unknown}; allowed: {list(LOGICAL_COLUMNS)}"
            )
    return out


def legacy_drill_checks(entry: dict[str, Any]) -> dict[str, Any]:
    """A ``drill_ledger_checks[<client>]`` entry (ledger_verify option names) as a ``ledger`` declaration."""
    entry = dict(entry or {})
    csv_part = {"sources": entry.get("csv") or []}
    sqlite_part = {"sources": entry.get("sqlite") or []}
    for key, option in LEDGER_CSV_KEYS.items():
        if option and option in entry:
            csv_part[key] = entry[option]
    for key, option in LEDGER_SQLITE_KEYS.items():
        if option and option in entry:
            sqlite_part[key] = entry[option]
    out: dict[str, Any] = {"csv": csv_part, "sqlite": sqlite_part}
    if "number_start" in entry:
        out["number_start"] = entry["number_start"]
    if "baseline" in entry:
        out["baseline"] = entry["baseline"]
    return out
