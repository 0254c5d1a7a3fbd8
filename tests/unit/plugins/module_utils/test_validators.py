"""File validators on real files built here: valid ones, truncated, bit-flipped, zeroed header, random, renamed."""

from __future__ import annotations

import os
import sqlite3
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import validators as v

# --------------------------------------------------------------------------------------------------- builders


def make_sqlite(path: Path, rows: int = 400) -> Path:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE voucher_entries (id INTEGER PRIMARY KEY, period TEXT, voucher_no INTEGER, memo TEXT,"
        " debit TEXT, credit TEXT)"
    )
    conn.execute("CREATE INDEX by_no ON voucher_entries(voucher_no)")
    for n in range(rows):
        conn.execute(
            "INSERT INTO voucher_entries (period, voucher_no, memo, debit, credit) VALUES (?, ?, ?, ?, ?)",
            (
                "2026-10",
                n // 2 + 1,
                f"摘要 {n} " + "x" * 40,
                "100.00" if n % 2 == 0 else "",
                "" if n % 2 == 0 else "100.00",
            ),
        )
    conn.commit()
    conn.close()
    return path


def make_xlsx(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/></Types>',
        )
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        z.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook><sheets><sheet name="凭证"/></sheets></workbook>')
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet>" + "<row><c><v>1</v></c></row>" * 500 + "</worksheet>")
    return path


def make_pdf(path: Path) -> Path:
    content = zlib.compress(b"BT /F1 12 Tf 72 720 Td (Voucher 2026-10 #7) Tj ET\n" * 40)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def make_png(path: Path) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes((x * 7 + y) % 256 for x in range(32)) for y in range(32))
    data = v.PNG_MAGIC + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 0, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def make_jpeg(path: Path) -> Path:
    def seg(code: int, body: bytes) -> bytes:
        return bytes((0xFF, code)) + struct.pack(">H", len(body) + 2) + body

    data = b"\xff\xd8" + seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00") + seg(0xDB, bytes(65))
    data += seg(0xC0, b"\x08\x00\x10\x00\x10\x01\x01\x11\x00") + seg(0xC4, bytes(29))
    data += seg(0xDA, b"\x01\x01\x00\x00\x3f\x00") + os.urandom(600).replace(b"\xff", b"\xfe") + b"\xff\xd9"
    path.write_bytes(data)
    return path


def make_ole2(path: Path, stream_name: str = "Workbook") -> Path:
    sector = 512
    end, free, fatsect = v.ENDOFCHAIN, v.FREESECT, v.FATSECT
    header = bytearray(512)
    header[0:8] = v.OLE2_MAGIC
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<I", header, 44, 1)  # FAT sectors
    struct.pack_into("<I", header, 48, 1)  # first directory sector
    struct.pack_into("<I", header, 56, 4096)  # mini stream cutoff
    struct.pack_into("<II", header, 60, end, 0)  # mini FAT
    struct.pack_into("<II", header, 68, end, 0)  # DIFAT
    struct.pack_into("<109I", header, 76, 0, *([free] * 108))
    fat = [fatsect, end] + list(range(3, 10)) + [end]
    fat += [free] * (sector // 4 - len(fat))
    fat_sector = struct.pack(f"<{sector // 4}I", *fat)

    def entry(name: str, kind: int, start: int, size: int, child: int = free) -> bytes:
        raw = bytearray(128)
        encoded = (name + "\x00").encode("utf-16-le")
        raw[: len(encoded)] = encoded
        struct.pack_into("<HBB", raw, 64, len(encoded), kind, 1)
        struct.pack_into("<III", raw, 68, free, free, child)
        struct.pack_into("<IQ", raw, 116, start, size)
        return bytes(raw)

    directory = entry("Root Entry", 5, end, 0, child=1) + entry(stream_name, 2, 2, 4096) + bytes(256)
    stream = bytes((n * 13) % 251 for n in range(4096))
    path.write_bytes(bytes(header) + fat_sector + directory + stream)
    return path


def make_mdb(path: Path) -> Path:
    page = bytearray(4096)
    page[: len(v.JET_MAGICS[0])] = v.JET_MAGICS[0]
    page[0x14] = 1
    path.write_bytes(bytes(page) + bytes(4096 * 3))
    return path


def make_csv(path: Path, encoding: str = "utf-8") -> Path:
    lines = ["期间,凭证号,摘要,科目编码,借方金额,贷方金额"]
    for n in range(1, 21):
        lines.append(f"2026-10,记-{n},收款 {n},1002,{n * 10}.00,")
        lines.append(f"2026-10,记-{n},收款 {n},1122,,{n * 10}.00")
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


BUILDERS = {
    "ledger.sqlite": make_sqlite,
    "book.xlsx": make_xlsx,
    "voucher.pdf": make_pdf,
    "scan.png": make_png,
    "scan.jpg": make_jpeg,
    "old.xls": make_ole2,
    "books.mdb": make_mdb,
    "vouchers.csv": make_csv,
}


def build(tmp_path: Path, name: str) -> Path:
    return BUILDERS[name](tmp_path / name)


def truncate(path: Path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def zero_header(path: Path, size: int = 16) -> None:
    data = bytearray(path.read_bytes())
    data[:size] = bytes(size)
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------------------- every format


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_valid_file_is_valid(tmp_path, name):
    verdict = v.validate(str(build(tmp_path, name)))
    assert verdict.status == v.VALID, verdict
    assert verdict.checker.startswith("builtin:") or verdict.checker == "qpdf"


@pytest.mark.parametrize("name", sorted(set(BUILDERS) - {"vouchers.csv"}))
def test_zeroed_header_is_invalid(tmp_path, name):
    path = build(tmp_path, name)
    zero_header(path)
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID, verdict
    assert verdict.reason


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_random_bytes_are_invalid(tmp_path, name):
    """Encrypted in place (same name, same size, random content)."""
    path = build(tmp_path, name)
    path.write_bytes(os.urandom(path.stat().st_size))
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID, verdict


@pytest.mark.parametrize("name", sorted(set(BUILDERS) - {"vouchers.csv"}))
def test_truncated_is_invalid(tmp_path, name):
    path = build(tmp_path, name)
    truncate(path)
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID, verdict


def test_truncated_csv_mid_row_is_invalid(tmp_path):
    path = build(tmp_path, "vouchers.csv")
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b",1122")])
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID
    assert "columns" in verdict.reason


@pytest.mark.parametrize(
    "source,target", [("scan.png", "voucher.pdf"), ("voucher.pdf", "book.xlsx"), ("ledger.sqlite", "old.xls")]
)
def test_renamed_file_contradicts_its_extension(tmp_path, source, target):
    path = build(tmp_path, source)
    renamed = path.rename(tmp_path / target)
    verdict = v.validate(str(renamed))
    assert verdict.status == v.INVALID
    assert verdict.checker == "builtin:magic"
    assert "its name promises" in verdict.reason


def test_unknown_format_is_unknown_never_valid(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert v.validate(str(path)).status == v.UNKNOWN
    locked = tmp_path / "ledger.sqlite.locked"
    locked.write_bytes(os.urandom(4096))
    assert v.validate(str(locked)).status == v.UNKNOWN


def test_unknown_name_with_known_magic_is_checked(tmp_path):
    path = make_sqlite(tmp_path / "ledger.bak")
    verdict = v.validate(str(path))
    assert verdict.status == v.VALID and verdict.format == "sqlite"


# --------------------------------------------------------------------------------------------------- SQLite


def test_sqlite_page_overwritten_in_place_same_size(tmp_path):
    path = build(tmp_path, "ledger.sqlite")
    data = bytearray(path.read_bytes())
    page = struct.unpack(">H", data[16:18])[0]
    data[page * 2 : page * 2 + 200] = os.urandom(200)  # a b-tree page header and cell pointers
    path.write_bytes(bytes(data))
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID, verdict
    assert "SQLite" in verdict.reason


def test_sqlite_opened_without_side_files(tmp_path):
    path = build(tmp_path, "ledger.sqlite")
    before = sorted(os.listdir(tmp_path))
    mtime = path.stat().st_mtime_ns
    assert v.validate(str(path)).status == v.VALID
    assert sorted(os.listdir(tmp_path)) == before
    assert path.stat().st_mtime_ns == mtime


def test_sqlite_declared_ledger_with_bad_amount(tmp_path):
    path = build(tmp_path, "ledger.sqlite")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE voucher_entries SET debit = 'x!9' WHERE id = 3")
    conn.commit()
    conn.close()
    assert v.validate(str(path)).status == v.VALID  # structure alone is fine
    verdict = v.validate(str(path), ledger={"sqlite": {"table": "voucher_entries"}})
    assert verdict.status == v.INVALID
    assert "not an amount" in verdict.reason


def test_sqlite_custom_table_missing_columns_invalid(tmp_path):
    path = build(tmp_path, "ledger.sqlite")
    verdict = v.validate(str(path), ledger={"sqlite": {"table": "nope"}})
    assert verdict.status == v.INVALID and "nope" in verdict.reason


# --------------------------------------------------------------------------------------------------- PDF, OOXML


def test_pdf_trailer_cut(tmp_path):
    path = build(tmp_path, "voucher.pdf")
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"trailer")])
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID
    assert "%%EOF" in verdict.reason


def test_pdf_bit_flip_inside_page_stream(tmp_path):
    path = build(tmp_path, "voucher.pdf")
    data = bytearray(path.read_bytes())
    at = data.index(b"stream\n") + 7 + 20
    data[at] ^= 0x10
    path.write_bytes(bytes(data))
    verdict = v.validate(str(path))
    if verdict.checker == "qpdf":  # pragma: no cover - qpdf is optional
        assert verdict.status in (v.INVALID, v.VALID)
    else:
        assert verdict.status == v.INVALID
        assert "stream" in verdict.reason


def test_pdf_startxref_pointing_elsewhere(tmp_path):
    path = build(tmp_path, "voucher.pdf")
    data = path.read_bytes()
    head, _sep, _tail = data.rpartition(b"startxref\n")
    path.write_bytes(head + b"startxref\n20\n%%EOF\n")
    assert v.validate(str(path)).status == v.INVALID


def test_xlsx_truncated_and_crc(tmp_path):
    path = build(tmp_path, "book.xlsx")
    truncate(path, 0.9)
    assert "central directory" in v.validate(str(path)).reason
    path = build(tmp_path, "book.xlsx")
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml")
    data[info.header_offset + 30 + len(info.filename) + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID
    assert "sheet1.xml" in verdict.reason or "unreadable" in verdict.reason


def test_xlsx_without_workbook_part(tmp_path):
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID and "xl/workbook.xml" in verdict.reason


def test_ole2_missing_main_stream(tmp_path):
    path = make_ole2(tmp_path / "old.doc", stream_name="Workbook")
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID and "WordDocument" in verdict.reason


def test_png_bit_flip_fails_crc(tmp_path):
    path = build(tmp_path, "scan.png")
    data = bytearray(path.read_bytes())
    data[60] ^= 0x01
    path.write_bytes(bytes(data))
    verdict = v.validate(str(path))
    assert verdict.status == v.INVALID and "CRC" in verdict.reason


def test_jpeg_segment_length_flipped(tmp_path):
    path = build(tmp_path, "scan.jpg")
    data = bytearray(path.read_bytes())
    data[4] = 0xFF  # APP0 length now runs past the end
    path.write_bytes(bytes(data))
    assert v.validate(str(path)).status == v.INVALID


# --------------------------------------------------------------------------------------------------- CSV


def test_csv_gbk_declared_and_auto(tmp_path):
    path = make_csv(tmp_path / "vouchers.csv", encoding="gbk")
    assert v.validate(str(path)).status == v.VALID
    assert v.validate(str(path), ledger={"csv": {"encoding": "gbk"}}).status == v.VALID
    verdict = v.validate(str(path), ledger={"csv": {"encoding": "utf-8"}})
    assert verdict.status == v.INVALID and "decode" in verdict.reason


def test_csv_bad_amount_and_custom_columns(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Per;No;Dr;Cr\n2026-10;1;12,50;\n2026-10;1;;abc\n", encoding="utf-8")
    ledger = {
        "csv": {"delimiter": ";", "columns": {"period": "Per", "voucher_no": "No", "debit": "Dr", "credit": "Cr"}}
    }
    verdict = v.validate(str(path), ledger=ledger)
    assert verdict.status == v.INVALID and "abc" in verdict.reason
    path.write_text("Per;No;Dr;Cr\n2026-10;1;12.50;\n2026-10;1;;12.50\n", encoding="utf-8")
    assert v.validate(str(path), ledger=ledger).status == v.VALID


# --------------------------------------------------------------------------------------------------- safety


def test_fifo_symlink_and_directory_are_unknown_without_blocking(tmp_path):
    fifo = tmp_path / "ledger.sqlite"
    os.mkfifo(fifo)
    verdict = v.validate(str(fifo))
    assert verdict.status == v.UNKNOWN and verdict.reason == "not a regular file (fifo): not opened"
    real = make_pdf(tmp_path / "real.pdf")
    link = tmp_path / "link.pdf"
    link.symlink_to(real)
    verdict = v.validate(str(link))
    assert verdict.status == v.UNKNOWN and verdict.reason == "not a regular file (symlink): not opened"
    assert v.validate(str(tmp_path)).status == v.UNKNOWN
    assert v.validate(str(tmp_path / "absent.pdf")).status == v.UNKNOWN


def test_large_file_gets_cheap_checks_only(tmp_path):
    path = build(tmp_path, "book.xlsx")
    verdict = v.validate(str(path), max_bytes=10)
    assert verdict.status == v.VALID and "CRCs not checked" in verdict.reason


# --------------------------------------------------------------------------------------------------- decision


def test_changed_file_verdict(tmp_path):
    snap = make_sqlite(tmp_path / "snap.sqlite")
    live = make_sqlite(tmp_path / "live.sqlite", rows=410)
    decision, why = v.changed_file_verdict(str(live), str(snap))
    assert decision == "keep" and "valid" in why
    data = bytearray(live.read_bytes())
    data[4096 : 4096 + 300] = os.urandom(300)
    live.write_bytes(bytes(data))
    decision, why = v.changed_file_verdict(str(live), str(snap))
    assert decision == "damaged" and why.startswith("corrupt: ") and "snapshot's version passes" in why
    zero_header(snap)
    assert v.changed_file_verdict(str(live), str(snap))[0] == "unknown"
    text = tmp_path / "notes.txt"
    text.write_text("x")
    assert v.changed_file_verdict(str(text), str(text))[0] == "unknown"


# --------------------------------------------------------------------------------------------------- cause


def test_validator_findings_are_corruption_with_evidence():
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import cause

    sign = (
        "/srv/books/c001/账簿/ledger.sqlite fails validation in this snapshot: SQLite quick_check failed: database "
        "disk image is malformed (builtin:sqlite); it passed in snapshot 1a2b3c4d"
    )
    result = {"skipped": [{"short_id": "9f8e7d6c", "reasons": [sign, "still carries the damage first seen in x"]}]}
    found = cause.client_cause(result, "ransomware")
    assert (found["cause"], found["source"]) == ("corruption", "detected")
    assert found["evidence"] == [f"snapshot 9f8e7d6c: {sign}"]
    assert cause.classify_sign("client folder /srv/books/c002 is missing from this snapshot (it cannot be ...)") == (
        "deleted",
        "folder_vanished",
    )
    swap = {
        "quarantined": [{"path": "/x.pdf", "reason": "corrupt: no %%EOF (builtin:pdf); the snapshot's version passes"}]
    }
    assert cause.client_cause(swap)["cause"] == "corruption"


def test_changed_file_verdict_through_directory_fds(tmp_path):
    live_dir, snap_dir = tmp_path / "live", tmp_path / "staging"
    live_dir.mkdir()
    snap_dir.mkdir()
    make_pdf(snap_dir / "记-0001.pdf")
    make_pdf(live_dir / "记-0001.pdf")
    data = (live_dir / "记-0001.pdf").read_bytes()
    (live_dir / "记-0001.pdf").write_bytes(data[: data.rindex(b"trailer")])
    live_fd = os.open(live_dir, os.O_RDONLY | os.O_DIRECTORY)
    snap_fd = os.open(snap_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        decision, why = v.changed_file_verdict(
            "记-0001.pdf", "记-0001.pdf", live_dir_fd=live_fd, snapshot_dir_fd=snap_fd
        )
    finally:
        os.close(live_fd)
        os.close(snap_fd)
    assert decision == "damaged" and "%%EOF" in why


def test_sqlite_many_problems_make_one_sentence(tmp_path):
    """Bytes overwritten across two pages (the incident's in-place corruption): quick_check lists dozens of problems
    in one row; the reason names the first three and counts the rest."""
    from ledgerguard import sampledata

    path = tmp_path / "总账.sqlite"
    sampledata.write_sqlite_ledger(path, [f"2024-{m:02d}" for m in range(1, 13)], 60, seed=3)
    data = bytearray(path.read_bytes())
    for offset in range(4096 + 100, 3 * 4096, 7):
        data[offset] = (data[offset] * 31 + 17) & 0xFF
    path.write_bytes(bytes(data))
    verdict = v.validate(str(path))
    assert verdict.status == "invalid" and verdict.checker == "builtin:sqlite"
    assert verdict.reason.startswith("SQLite quick_check: ") and "\n" not in verdict.reason
    head, _sep, more = verdict.reason.partition(" (and ")
    assert len(head.split("; ")) == 3 and "*** in database main ***" not in head
    assert more.endswith(" more)") and int(more.split(" ")[0]) > 0
