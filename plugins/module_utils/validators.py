# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File validators: is this file still a well-formed file of its format?

One registry, one answer per file: :class:`Verdict` with ``status`` ``valid`` / ``invalid`` / ``unknown``, a
one-sentence ``reason`` and the ``checker`` that ran (``builtin:<format>`` for the standard-library checks, ``qpdf``
when that tool is on the host). Unknown formats stay ``unknown``, never ``valid``.

Formats: SQLite, CSV ledgers (through :mod:`ledger`'s reader when the client declares its columns), PDF, OOXML
(``.xlsx/.docx/...``), plain ZIP, OLE2 (``.xls/.doc/...``), Access (``.mdb/.accdb``, Jet/ACE), JPEG, PNG; and any file
whose magic bytes contradict its extension.

Safety: a file is opened once with ``O_NOFOLLOW|O_NONBLOCK`` and checked with ``fstat`` to be a regular file (a FIFO,
device or symlink is ``unknown``, never read); at most ``max_bytes`` are read (larger files get the cheap structural
checks only, and say so). SQLite databases are opened read-only and ``immutable`` through ``/proc/self/fd`` (no
``-journal``/``-wal`` is created, no lock taken). Runs on managed hosts: standard library only; ``qpdf`` is used when
present.

:func:`changed_file_verdict` is the decision ``restore_swap`` needs for a file changed after the snapshot: ``damaged``
(the live file fails, the snapshot's version passes), ``keep`` (the live file passes) or ``unknown`` (today's rule).
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import shutil
import struct
import subprocess
import zipfile
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.safe_fs import NotRegularFile, open_regular


VALID = "valid"
INVALID = "invalid"
UNKNOWN = "unknown"

# Read no more than this from one file (overridable per call); larger files get the cheap checks only.
MAX_BYTES = 256 * 1024 * 1024
HEAD = 8192
TAIL = 4096
# ZIP members: skip the CRC pass when the members would expand to more than this (zip bombs).
MAX_UNZIPPED = 1024 * 1024 * 1024
SQLITE_ROW_LIMIT = 200000
QPDF_TIMEOUT = 30


@dataclass(frozen=True)
class Verdict:
    """One file's answer: ``status`` (valid / invalid / unknown), why, and which checker ran."""

    status: str
    reason: str
    checker: str
    format: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", " ".join(str(self.reason).split()))  # one line, whatever the checker said

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @property
    def sentence(self) -> str:
        return f"{self.reason} ({self.checker})"


class _Invalid(Exception):
    """Raised inside a checker: the file is not a well-formed file of its format."""


# --------------------------------------------------------------------------------------------------- formats

# Extension (lower case, with dot) -> the formats a file so named may hold.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    ".sqlite": ("sqlite",),
    ".sqlite3": ("sqlite",),
    ".db3": ("sqlite",),
    ".db": ("sqlite", "ole2"),  # Thumbs.db is OLE2
    ".pdf": ("pdf",),
    ".xlsx": ("ooxml",),
    ".xlsm": ("ooxml",),
    ".docx": ("ooxml",),
    ".docm": ("ooxml",),
    ".pptx": ("ooxml",),
    ".zip": ("zip",),
    ".xls": ("ole2",),
    ".doc": ("ole2",),
    ".ppt": ("ole2",),
    ".msg": ("ole2",),
    ".mdb": ("jet", "ole2"),
    ".accdb": ("jet",),
    ".jpg": ("jpeg",),
    ".jpeg": ("jpeg",),
    ".png": ("png",),
    ".csv": ("csv",),
    ".tsv": ("csv",),
}

FORMAT_NAMES = {
    "sqlite": "SQLite database",
    "pdf": "PDF",
    "ooxml": "Office Open XML document",
    "zip": "ZIP archive",
    "ole2": "OLE2 compound file",
    "jet": "Access (Jet/ACE) database",
    "jpeg": "JPEG image",
    "png": "PNG image",
    "csv": "CSV file",
    "gzip": "gzip stream",
}

SQLITE_MAGIC = b"SQLite format 3\x00"
OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JET_MAGICS = (b"\x00\x01\x00\x00Standard Jet DB\x00", b"\x00\x01\x00\x00Standard ACE DB\x00")


def sniff(head: bytes) -> str | None:
    """The format the first bytes of a file announce (None when they announce none we know)."""
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(OLE2_MAGIC):
        return "ole2"
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if any(head.startswith(m) for m in JET_MAGICS):
        return "jet"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return None


def formats_for(path: str) -> tuple[str, ...]:
    """The formats a file's name promises (empty for names we have no validator for)."""
    name = posixpath.basename(str(path)).lower()
    return EXTENSIONS.get(os.path.splitext(name)[1], ())


def _name(fmt: str | None) -> str:
    return FORMAT_NAMES.get(fmt or "", "no format we recognise")


# --------------------------------------------------------------------------------------------------- opening


def _pread(fd: int, size: int, offset: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = os.pread(fd, size - len(out), offset + len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


class _Window(io.RawIOBase):
    """A read-only, seekable file object over an fd that never reads past ``limit`` bytes in total."""

    def __init__(self, fd: int, size: int, limit: int):
        super().__init__()
        self.fd, self.size, self.limit, self.pos, self.consumed = fd, size, limit, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        want = min(len(buffer), max(0, self.size - self.pos))
        if self.consumed + want > self.limit:
            raise _Invalid(f"would read more than {self.limit} bytes")
        data = os.pread(self.fd, want, self.pos)
        buffer[: len(data)] = data
        self.pos += len(data)
        self.consumed += len(data)
        return len(data)


# --------------------------------------------------------------------------------------------------- checkers


def _check_sqlite(fd: int, size: int, head: bytes, full: bool, ledger: dict[str, Any] | None) -> str:
    if len(head) < 100:
        raise _Invalid(f"SQLite header cut short ({size} bytes, a header is 100)")
    if not head.startswith(SQLITE_MAGIC):
        raise _Invalid("SQLite header damaged (no 'SQLite format 3' magic)")
    page = struct.unpack(">H", head[16:18])[0]
    page = 65536 if page == 1 else page
    if page < 512 or page > 65536 or page & (page - 1):
        raise _Invalid(f"SQLite header damaged (page size {page})")
    if size % page:
        raise _Invalid(f"SQLite file is not a whole number of {page}-byte pages ({size} bytes): truncated or padded")
    pages_in_header = struct.unpack(">I", head[28:32])[0]
    change, valid_for = struct.unpack(">I", head[24:28])[0], struct.unpack(">I", head[92:96])[0]
    if pages_in_header and change == valid_for and pages_in_header * page > size:
        raise _Invalid(
            f"SQLite file truncated: its header counts {pages_in_header} pages, the file holds {size // page}"
        )
    if not full:
        return f"SQLite header and size consistent (content not checked: larger than {MAX_BYTES} bytes)"
    where = f"/proc/self/fd/{fd}"
    if not os.path.exists(where):  # pragma: no cover - not Linux
        raise _Invalid("cannot open by file descriptor on this system")
    # Imported here, as csv, ElementTree and module_utils/ledger in their checkers: a module run pays for a format's
    # libraries only when it validates a file of that format (issue 19: module start-up).
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{where}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise _Invalid(f"SQLite cannot open it: {exc}") from exc
    try:
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            raise _Invalid(f"SQLite quick_check failed: {exc}") from exc
        if rows != ["ok"]:
            # one row may hold many newline-separated problems: the first three, and how many more (one sentence)
            problems = [line.strip() for r in rows for line in str(r).splitlines() if line.strip()]
            problems = [p for p in problems if p != "*** in database main ***"] or problems
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise _Invalid("SQLite quick_check: " + "; ".join(problems[:3]) + more)
        try:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                for _row in conn.execute(f"SELECT * FROM {quoted} LIMIT {SQLITE_ROW_LIMIT}"):  # noqa: S608
                    pass
        except sqlite3.DatabaseError as exc:
            raise _Invalid(f"SQLite rows unreadable: {exc}") from exc
        declared = (ledger or {}).get("sqlite") if isinstance((ledger or {}).get("sqlite"), dict) else ledger
        table = (declared or {}).get("table") or (declared or {}).get("sqlite_table")
        if table:
            from ansible_collections.ledgerguard.recovery.plugins.module_utils import ledger as _ledger

            mapping = (declared or {}).get("columns") or (declared or {}).get("sqlite_columns") or {}
            scale = int((declared or {}).get("amount_scale") or 0)
            try:
                bad = _bad_amounts(_ledger.read_sqlite(conn, str(table), mapping), scale)
            except _ledger.SourceError as exc:
                raise _Invalid(f"ledger table unreadable: {exc}") from exc
            if bad:
                raise _Invalid(f"ledger table {table!r}: {bad}")
        return f"SQLite quick_check ok, {len(tables)} table{'s' if len(tables) != 1 else ''} readable"
    finally:
        conn.close()


def _bad_amounts(rows, scale: int) -> str | None:
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import ledger as _ledger

    for lineno, row in rows:
        for column in ("debit", "credit"):
            try:
                _ledger.parse_amount(row.get(column), scale)
            except ValueError:
                return f"row {lineno}: {column} {row.get(column)!r} is not an amount"
    return None


def _check_csv(fd: int, size: int, head: bytes, full: bool, ledger: dict[str, Any] | None, path: str) -> str:
    if not full:
        raise _Unknown(f"CSV larger than {MAX_BYTES} bytes: not checked")
    data = _pread(fd, size, 0)
    if b"\x00" in data:
        raise _Invalid("CSV holds NUL bytes (binary content, not text)")
    declared = dict(ledger or {})
    if isinstance(declared.get("csv"), dict):
        declared = {**declared, **declared["csv"]}
    encoding = str(declared.get("encoding") or declared.get("csv_encoding") or "auto").lower()
    delimiter = declared.get("delimiter") or declared.get("csv_delimiter")
    if not delimiter:
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
    if encoding in ("auto", ""):
        candidates = ["utf-8-sig", "gb18030"]
    elif encoding.replace("_", "-") in ("utf-8", "utf8"):
        candidates = ["utf-8-sig"]
    else:
        candidates = [encoding]
    text = None
    errors = []
    for enc in candidates:
        try:
            text = data.decode(enc)
            break
        except (UnicodeDecodeError, LookupError) as exc:
            errors.append(f"{enc}: {getattr(exc, 'reason', exc)}")
    if text is None:
        raise _Invalid(f"CSV does not decode as {' or '.join(candidates)} ({'; '.join(errors)})")
    import csv

    from ansible_collections.ledgerguard.recovery.plugins.module_utils import ledger as _ledger

    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=str(delimiter), strict=True)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise _Invalid("CSV has no header line")
        width = len(header)
        rows = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != width:
                raise _Invalid(f"CSV line {reader.line_num} has {len(record)} columns, the header has {width}")
            rows.append((reader.line_num, record))
    except csv.Error as exc:
        raise _Invalid(f"not valid CSV: {exc}") from exc
    columns = declared.get("columns") or declared.get("csv_columns")
    try:
        index = _ledger.resolve_csv_columns(header, columns)
    except _ledger.SourceError as exc:
        if columns:
            raise _Invalid(f"ledger CSV: {exc}") from exc
        index = None  # not a voucher file in the default layout: structure only
    if index is not None:
        logical = ((n, {k: (r[i] if i < len(r) else "") for k, i in index.items()}) for n, r in rows)
        bad = _bad_amounts(logical, int(declared.get("amount_scale") or 0))
        if bad:
            raise _Invalid(f"ledger CSV {bad}")
        return f"CSV ledger: {len(rows)} rows of {width} columns, amounts parse"
    return f"CSV: {len(rows)} rows of {width} columns"


class _Unknown(Exception):
    """Raised inside a checker: this file cannot be judged (too large, encrypted PDF ...)."""


_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF", re.S)
_OBJ_AT = re.compile(rb"\s*\d+\s+\d+\s+obj\b")
_STREAM = re.compile(rb"<<(?:(?!>>\s*stream).){0,2048}?/FlateDecode(?:(?!stream).){0,2048}?>>\s*stream\r?\n", re.S)


def _check_pdf(fd: int, size: int, head: bytes, full: bool, _ledger_decl, path: str) -> str:
    start = head.find(b"%PDF-", 0, 1024)
    if start < 0:
        raise _Invalid("no %PDF- header")
    tail = _pread(fd, min(size, TAIL), max(0, size - TAIL))
    if b"%%EOF" not in tail[-1024:]:
        raise _Invalid("no %%EOF near the end: the PDF is truncated or its trailer was cut")
    found = list(_STARTXREF.finditer(tail))
    if not found:
        raise _Invalid("no startxref before the final %%EOF: the trailer is damaged")
    offset = int(found[-1].group(1)) + start
    if offset >= size:
        raise _Invalid(f"startxref points at byte {offset}, beyond the end of the file ({size} bytes)")
    at = _pread(fd, 64, offset)
    if not (at.lstrip().startswith(b"xref") or _OBJ_AT.match(at)):
        raise _Invalid(f"startxref points at byte {offset}, where there is no cross-reference table")
    if not full:
        return f"PDF header, trailer and cross-reference reachable (streams not checked: larger than {MAX_BYTES})"
    qpdf = shutil.which("qpdf")
    if qpdf:
        try:
            res = subprocess.run(  # noqa: S603
                [qpdf, "--check", f"/proc/self/fd/{fd}"],
                capture_output=True,
                text=True,
                timeout=QPDF_TIMEOUT,
                pass_fds=(fd,),
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            qpdf = None
        else:
            if res.returncode == 2:
                lines = [ln for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
                raise _Invalid("qpdf --check: " + (lines[0] if lines else "errors found"))
            return "qpdf --check passed" + (" with warnings" if res.returncode == 3 else "")
    data = _pread(fd, size, 0)
    if offset < size and data[offset:].lstrip().startswith(b"xref"):
        _check_xref_table(data, offset, start)
    if b"/Encrypt" in data:
        return "PDF structure ok (encrypted: streams not checked)"
    streams = 0
    for match in _STREAM.finditer(data):
        body = data[match.end() :]
        end = body.find(b"endstream")
        if end < 0:
            raise _Invalid(f"stream at byte {match.end()} has no endstream")
        try:
            zlib.decompressobj().decompress(body[:end], 64 * 1024 * 1024)
        except zlib.error as exc:
            raise _Invalid(f"compressed stream at byte {match.end()} is corrupt ({exc})") from exc
        streams += 1
    return f"PDF header, trailer, cross-reference and {streams} compressed stream{'s' if streams != 1 else ''} ok"


def _check_xref_table(data: bytes, offset: int, shift: int) -> None:
    lines = iter(data[offset:].lstrip()[4:].splitlines())
    checked = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith(b"trailer"):
            return
        parts = line.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise _Invalid(f"cross-reference table malformed near {line[:40]!r}")
        first, count = int(parts[0]), int(parts[1])
        for number in range(first, first + count):
            entry = next(lines, b"").split()
            if len(entry) != 3 or entry[2] not in (b"n", b"f"):
                raise _Invalid(f"cross-reference entry of object {number} malformed")
            if entry[2] == b"n":
                where = int(entry[0]) + shift
                if not re.match(rb"\s*%d\s+\d+\s+obj\b" % number, data[where : where + 40]):
                    raise _Invalid(f"cross-reference entry of object {number} points at byte {where}, not at it")
                checked += 1
    raise _Invalid("cross-reference table has no trailer")


_OOXML_MAIN = {
    ".xlsx": "xl/workbook.xml",
    ".xlsm": "xl/workbook.xml",
    ".docx": "word/document.xml",
    ".docm": "word/document.xml",
    ".pptx": "ppt/presentation.xml",
}


def _check_zip(fd: int, size: int, head: bytes, full: bool, _ledger_decl, path: str, ooxml: bool) -> str:
    window = _Window(fd, size, max(MAX_BYTES, 2 * size) if full else 16 * 1024 * 1024)
    try:
        archive = zipfile.ZipFile(io.BufferedReader(window))  # noqa: SIM115
    except zipfile.BadZipFile as exc:
        raise _Invalid(f"ZIP central directory unreadable ({exc}): truncated or overwritten") from exc
    except _Invalid as exc:
        raise _Unknown(f"ZIP too large to check ({exc})") from exc
    with archive:
        names = archive.namelist()
        parts = []
        if ooxml:
            ext = os.path.splitext(path.lower())[1]
            required = ["[Content_Types].xml", _OOXML_MAIN.get(ext, "")]
            missing = [p for p in required if p and p not in names]
            if missing:
                raise _Invalid(f"required part{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing")
            parts = [p for p in required if p]
        if not full:
            return f"ZIP central directory ok, {len(names)} members (CRCs not checked: larger than {MAX_BYTES})"
        if sum(i.file_size for i in archive.infolist()) > MAX_UNZIPPED:
            return f"ZIP central directory ok, {len(names)} members (CRCs not checked: expands beyond {MAX_UNZIPPED})"
        try:
            bad = archive.testzip()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise _Invalid(f"ZIP member data unreadable ({exc})") from exc
        if bad is not None:
            raise _Invalid(f"ZIP member {bad} fails its CRC check")
        from xml.etree import ElementTree

        for part in parts:
            try:
                ElementTree.fromstring(archive.read(part))  # noqa: S314 (our own parts, size-capped above)
            except ElementTree.ParseError as exc:
                raise _Invalid(f"part {part} is not well-formed XML ({exc})") from exc
    kind = "OOXML parts present, " if ooxml else ""
    return f"{kind}ZIP central directory and CRCs of {len(names)} members ok"


ENDOFCHAIN, FREESECT, FATSECT, DIFSECT = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFC
_OLE_MAIN = {".xls": ("Workbook", "Book"), ".doc": ("WordDocument",), ".ppt": ("PowerPoint Document",)}


def _check_ole2(fd: int, size: int, head: bytes, full: bool, _ledger_decl, path: str) -> str:
    if len(head) < 512:
        raise _Invalid(f"OLE2 header cut short ({size} bytes)")
    if not head.startswith(OLE2_MAGIC):
        raise _Invalid("OLE2 header damaged (no D0CF11E0A1B11AE1 magic)")
    major, order, shift, mini_shift = struct.unpack("<HHHH", head[26:34])
    if order != 0xFFFE or (major, shift) not in ((3, 9), (4, 12)) or mini_shift != 6:
        raise _Invalid(f"OLE2 header damaged (version {major}, byte order {order:#x}, sector shift {shift})")
    sector = 1 << shift
    n_fat, first_dir = struct.unpack("<II", head[44:52])
    first_difat, n_difat = struct.unpack("<II", head[68:76])
    n_sectors = (size - sector) // sector if size > sector else 0
    if n_sectors <= 0:
        raise _Invalid("OLE2 file holds no sectors")
    if n_fat == 0 or n_fat * (sector // 4) < n_sectors:
        raise _Invalid(f"OLE2 FAT of {n_fat} sectors cannot map the file's {n_sectors} sectors")

    def read_sector(number: int) -> bytes:
        if number >= n_sectors:
            raise _Invalid(f"OLE2 sector {number} lies beyond the end of the file ({n_sectors} sectors): truncated")
        data = _pread(fd, sector, (number + 1) * sector)
        if len(data) < sector:
            raise _Invalid(f"OLE2 sector {number} is cut short: truncated")
        return data

    fat_sectors = [s for s in struct.unpack("<109I", head[76:512]) if s not in (FREESECT, ENDOFCHAIN)]
    nxt, seen = first_difat, 0
    while nxt not in (ENDOFCHAIN, FREESECT) and seen <= n_difat:
        block = struct.unpack(f"<{sector // 4}I", read_sector(nxt))
        fat_sectors += [s for s in block[:-1] if s not in (FREESECT, ENDOFCHAIN)]
        nxt, seen = block[-1], seen + 1
    if len(fat_sectors) < n_fat:
        raise _Invalid(f"OLE2 header names {n_fat} FAT sectors, the DIFAT lists {len(fat_sectors)}")
    fat: list[int] = []
    for s in fat_sectors[:n_fat]:
        fat += struct.unpack(f"<{sector // 4}I", read_sector(s))
    for s in fat_sectors[:n_fat]:
        if s < len(fat) and fat[s] != FATSECT:
            raise _Invalid(f"OLE2 FAT sector {s} is not marked as FAT in the FAT: the FAT is damaged")

    def chain(start: int, what: str) -> list[int]:
        out, current = [], start
        while current != ENDOFCHAIN:
            if current >= n_sectors or current >= len(fat):
                raise _Invalid(f"OLE2 {what} chain reaches sector {current}, beyond the file: truncated or damaged")
            if len(out) > n_sectors:
                raise _Invalid(f"OLE2 {what} chain loops")
            out.append(current)
            current = fat[current]
            if current in (FREESECT, FATSECT, DIFSECT):
                raise _Invalid(f"OLE2 {what} chain runs into a {'free' if current == FREESECT else 'FAT'} sector")
        return out

    directory = b"".join(read_sector(s) for s in chain(first_dir, "directory"))
    entries = []
    for off in range(0, len(directory), 128):
        raw = directory[off : off + 128]
        name_len = struct.unpack("<H", raw[64:66])[0]
        kind = raw[66]
        if kind == 0:
            continue
        if name_len > 64 or name_len % 2:
            raise _Invalid(f"OLE2 directory entry {off // 128} damaged (name length {name_len})")
        name = raw[: max(0, name_len - 2)].decode("utf-16-le", "replace")
        start, stream_size = struct.unpack("<IQ", raw[116:128])
        entries.append((name, kind, start, stream_size))
    if not entries or entries[0][1] != 5:
        raise _Invalid("OLE2 directory has no root entry: damaged")
    cutoff = struct.unpack("<I", head[56:60])[0]
    for name, kind, start, stream_size in entries[1:]:
        if kind == 2 and stream_size >= cutoff and stream_size:
            sectors = chain(start, f"stream {name!r}")
            if len(sectors) * sector < stream_size:
                raise _Invalid(f"OLE2 stream {name!r} is shorter than its declared {stream_size} bytes")
    wanted = _OLE_MAIN.get(os.path.splitext(path.lower())[1])
    if wanted and not any(e[0] in wanted and e[1] == 2 for e in entries):
        raise _Invalid(f"OLE2 file lacks its main stream ({' or '.join(wanted)})")
    return f"OLE2 header, FAT and {len(entries)} directory entries ok"


def _check_jet(fd: int, size: int, head: bytes, full: bool, _ledger_decl, path: str) -> str:
    if not any(head.startswith(m) for m in JET_MAGICS):
        raise _Invalid("Access database header damaged (no 'Standard Jet DB'/'Standard ACE DB' magic)")
    page = 2048 if len(head) > 0x14 and head[0x14] == 0 else 4096
    if size < page or size % page:
        raise _Invalid(f"Access database is not a whole number of {page}-byte pages ({size} bytes): truncated")
    return f"Access database header ok, {size // page} pages of {page} bytes"


def _check_jpeg(fd: int, size: int, head: bytes, full: bool, _ledger_decl, path: str) -> str:
    if not head.startswith(b"\xff\xd8"):
        raise _Invalid("no JPEG start-of-image marker")
    tail = _pread(fd, min(size, 64), max(0, size - 64)).rstrip(b"\x00")
    if not tail.endswith(b"\xff\xd9"):
        raise _Invalid("no JPEG end-of-image marker at the end: truncated")
    pos, segments = 2, 0
    while True:
        marker = _pread(fd, 4, pos)
        if len(marker) < 4 or marker[0] != 0xFF:
            raise _Invalid(f"JPEG segment structure broken at byte {pos}")
        code = marker[1]
        if code == 0xFF:
            pos += 1
            continue
        if code == 0xD9:
            break
        if 0xD0 <= code <= 0xD7 or code == 0x01:
            pos += 2
            continue
        length = struct.unpack(">H", marker[2:4])[0]
        if length < 2 or pos + 2 + length > size:
            raise _Invalid(f"JPEG segment at byte {pos} runs past the end of the file")
        segments += 1
        if code == 0xDA:  # start of scan: entropy-coded data follows until EOI
            break
        pos += 2 + length
        if segments > 10000:
            raise _Invalid("JPEG has too many segments")
    if segments == 0:
        raise _Invalid("JPEG holds no segments")
    return f"JPEG markers ok ({segments} segments before the scan, ends with EOI)"


def _check_png(fd: int, size: int, head: bytes, full: bool, _ledger_decl, path: str) -> str:
    if not head.startswith(PNG_MAGIC):
        raise _Invalid("PNG signature damaged")
    pos, chunks, first = 8, 0, True
    limit = size if full else min(size, 16 * 1024 * 1024)
    while pos < limit:
        header = _pread(fd, 8, pos)
        if len(header) < 8:
            raise _Invalid(f"PNG chunk header at byte {pos} cut short: truncated")
        length, kind = struct.unpack(">I", header[:4])[0], header[4:8]
        if length > 0x7FFFFFFF or pos + 12 + length > size:
            raise _Invalid(f"PNG chunk {kind!r} at byte {pos} runs past the end of the file: truncated")
        if first and kind != b"IHDR":
            raise _Invalid("PNG does not start with IHDR")
        first = False
        data = _pread(fd, length + 4, pos + 8)
        if zlib.crc32(kind + data[:length]) != struct.unpack(">I", data[length:])[0]:
            raise _Invalid(f"PNG chunk {kind.decode('latin-1')} at byte {pos} fails its CRC")
        chunks += 1
        pos += 12 + length
        if kind == b"IEND":
            return f"PNG signature and {chunks} chunk CRCs ok, ends with IEND"
    if not full:
        return f"PNG signature and first {chunks} chunk CRCs ok (rest not checked: larger than {MAX_BYTES})"
    raise _Invalid("PNG has no IEND chunk: truncated")


def _check_gzip(fd: int, size: int, head: bytes, full: bool, _ledger_decl, path: str) -> str:
    raise _Unknown("gzip content not validated")


CHECKERS = {
    "sqlite": lambda fd, size, head, full, ledger, path: _check_sqlite(fd, size, head, full, ledger),
    "csv": _check_csv,
    "pdf": _check_pdf,
    "ooxml": lambda *a: _check_zip(*a, ooxml=True),
    "zip": lambda *a: _check_zip(*a, ooxml=False),
    "ole2": _check_ole2,
    "jet": _check_jet,
    "jpeg": _check_jpeg,
    "png": _check_png,
    "gzip": _check_gzip,
}


# --------------------------------------------------------------------------------------------------- entry points


def validate(
    path: str, ledger: dict[str, Any] | None = None, max_bytes: int | None = None, dir_fd: int | None = None
) -> Verdict:
    """Is the file at ``path`` a well-formed file of the format its name (or, failing that, its magic) says?

    ``ledger`` is the client's declared ledger format (``ledgerguard_clients[].ledger``: CSV ``columns``,
    ``encoding``, ``delimiter``; SQLite ``table``, ``columns``; ``amount_scale``), used for CSV and SQLite files.
    ``dir_fd``: ``path`` is a name relative to this open directory (a directory-fd walk, as restore_swap does).
    Never raises for a file problem; never follows a symlink or opens a FIFO/device.
    """
    cap = MAX_BYTES if max_bytes is None else int(max_bytes)
    promised = formats_for(path)
    try:
        fd, st = open_regular(path, dir_fd)
    except FileNotFoundError:
        return Verdict(UNKNOWN, "no such file", "open")
    except NotRegularFile as exc:
        return Verdict(UNKNOWN, exc.strerror or str(exc), "open")
    except OSError as exc:
        return Verdict(UNKNOWN, f"cannot be opened ({exc.strerror or exc})", "open")
    try:
        size = st.st_size
        head = _pread(fd, HEAD, 0)
        found = sniff(head)
        if found == "zip" and "ooxml" in promised:
            found = "ooxml"  # an OOXML package is a ZIP archive
        if promised:
            fmt = found if found in promised else promised[0]
            if promised[0] != "csv" and found not in promised:
                if size == 0:
                    return Verdict(INVALID, f"empty file, not a {_name(promised[0])}", f"builtin:{promised[0]}", fmt)
                return Verdict(
                    INVALID,
                    f"content is {'a ' + _name(found) if found else 'no format we recognise'}, "
                    f"not the {_name(promised[0])} its name promises",
                    "builtin:magic",
                    promised[0],
                )
            if promised[0] == "csv" and found not in (None, "pdf"):
                return Verdict(INVALID, f"content is a {_name(found)}, not a CSV file", "builtin:magic", "csv")
        elif found:
            fmt = found
        else:
            return Verdict(UNKNOWN, "no validator for this format", "none")
        checker = CHECKERS[fmt]
        try:
            reason = checker(fd, size, head, size <= cap, ledger, str(path))
        except _Invalid as exc:
            return Verdict(INVALID, str(exc), f"builtin:{fmt}", fmt)
        except _Unknown as exc:
            return Verdict(UNKNOWN, str(exc), f"builtin:{fmt}", fmt)
        except (OSError, ValueError, struct.error, IndexError, RecursionError, MemoryError) as exc:
            return Verdict(INVALID, f"{_name(fmt)} unreadable ({type(exc).__name__}: {exc})", f"builtin:{fmt}", fmt)
        return Verdict(VALID, reason, "qpdf" if reason.startswith("qpdf") else f"builtin:{fmt}", fmt)
    finally:
        os.close(fd)


def validate_bytes(name: str, data: bytes, ledger: dict[str, Any] | None = None) -> Verdict:
    """:func:`validate` for content held in memory (written to a private temporary file first)."""
    import tempfile

    suffix = os.path.splitext(posixpath.basename(name))[1]
    with tempfile.NamedTemporaryFile(prefix="lg-validate-", suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        return validate(handle.name, ledger)


def changed_file_verdict(
    live_path: str,
    snapshot_path: str,
    ledger: dict[str, Any] | None = None,
    live_dir_fd: int | None = None,
    snapshot_dir_fd: int | None = None,
) -> tuple[str, str]:
    """What to do with a file changed after the snapshot: ``damaged``, ``keep`` or ``unknown``, and why.

    - ``damaged``: the live file fails validation while the snapshot's version passes (quarantine it, restore the
      snapshot's version);
    - ``keep``: the live file passes (a legitimate edit: keep it for review);
    - ``unknown``: no validator for the format, or the snapshot's version fails too / cannot be judged (follow the
      rule used without validators).

    The ``damaged`` reason starts with ``corrupt: `` (module_utils/cause.py maps it to the cause ``corruption``).
    ``live_dir_fd`` / ``snapshot_dir_fd``: the paths are names relative to these open directories.
    """
    live = validate(live_path, ledger, dir_fd=live_dir_fd)
    if live.status == VALID:
        return "keep", f"changed after the snapshot and still a valid {_name(live.format)}: {live.sentence}"
    if live.status == UNKNOWN:
        return "unknown", f"format not validated: {live.reason}"
    old = validate(snapshot_path, ledger, dir_fd=snapshot_dir_fd)
    if old.status == VALID:
        return "damaged", f"corrupt: {live.reason} ({live.checker}); the snapshot's version passes"
    return "unknown", f"fails validation ({live.sentence}), but so does the snapshot's version ({old.sentence})"


def is_corruption_reason(text: str) -> bool:
    """Whether a sentence came from :func:`changed_file_verdict` / snapshot_damage's validator signs."""
    return str(text).startswith("corrupt: ") or " fails validation in this snapshot" in str(text)
