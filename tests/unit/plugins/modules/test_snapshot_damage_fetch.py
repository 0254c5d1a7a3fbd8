"""snapshot_damage reads a snapshot's files for validation in one ``restic restore`` per snapshot (not one
``restic dump`` per file), validates each file version once, and falls back to ``restic dump`` when the restore
fails. A fake restic restores real files (a SQLite ledger, a PDF with its trailer cut) from an in-memory snapshot."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

from ansible_collections.ledgerguard.recovery.plugins.modules import snapshot_damage as sd

ROOT = "/srv/books/客户甲"
LEDGER = f"{ROOT}/账簿/总账.sqlite"
SCAN = f"{ROOT}/扫描件/记-[0001]*.pdf"  # glob characters in the name: the include pattern must be escaped


class FakeRestic:
    """``restore --target T --include P ... -- SNAP`` copies the snapshot's files matching the (unescaped) patterns
    under T; ``rc`` makes it fail. ``argv`` (the dump fallback) runs a command that fails."""

    def __init__(self, files: dict[str, dict[str, bytes]], rc: int = 0):
        self.files, self.rc, self.runs = files, rc, []
        self.timeout, self.env = 30, dict(os.environ)

    def map_path(self, snapshot_id, live, pin=None):
        return live

    def run(self, *args):
        self.runs.append(args)
        assert args[0] == "restore" and args[-2] == "--"
        target = args[args.index("--target") + 1]
        patterns = [args[i + 1] for i, a in enumerate(args) if a == "--include"]
        for pattern in patterns:
            path = re.sub(r"\\(.)", r"\1", pattern)
            data = self.files[args[-1]].get(path)
            if data is not None:
                dest = Path(target + path)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
                dest.chmod(0o400)
        return SimpleNamespace(rc=self.rc, stdout="", stderr="")

    def argv(self, *args):
        self.runs.append(("dump-fallback", *args))
        return ["false"]


def sqlite_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "build.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE voucher_entries (period TEXT, voucher_no INTEGER, debit TEXT, credit TEXT)")
    conn.executemany(
        "INSERT INTO voucher_entries VALUES (?, ?, ?, ?)", [("2026-10", n, "100.00", "") for n in range(200)]
    )
    conn.commit()
    conn.close()
    return path.read_bytes()


CUT_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"0" * 400  # no xref, no trailer, no %%EOF


def assessor(restic: FakeRestic) -> sd.Assessor:
    params = {
        "paths": [ROOT],
        "thresholds": {},
        "ransom_note_patterns": [],
        "ransom_extensions": [],
        "unusable": [],
        "validate": True,
        "ledger": {},
        "ledger_paths": [f"{ROOT}/账簿"],
    }
    return sd.Assessor(SimpleNamespace(params=params), restic=restic)


def node(data: bytes, mtime: str = "2026-11-20T23:00:00Z") -> dict:
    return {"size": len(data), "mtime": mtime, "ctime": mtime}


def test_one_restore_per_snapshot_and_each_version_validated_once(tmp_path):
    ledger = sqlite_bytes(tmp_path)
    restic = FakeRestic({"s1": {LEDGER: ledger, SCAN: CUT_PDF}, "s2": {LEDGER: ledger}})
    a = assessor(restic)
    try:
        wanted = {LEDGER: node(ledger), SCAN: node(CUT_PDF)}
        a.prefetch("s1", wanted)
        assert len(restic.runs) == 1
        includes = [restic.runs[0][i + 1] for i, x in enumerate(restic.runs[0]) if x == "--include"]
        assert includes == [LEDGER, f"{ROOT}/扫描件/记-\\[0001]\\*.pdf"]
        assert restic.runs[0][-1] == "s1"
        ok, bad = a.verdict_of("s1", LEDGER, wanted[LEDGER]), a.verdict_of("s1", SCAN, wanted[SCAN])
        assert (ok.status, ok.checker) == ("valid", "builtin:sqlite")
        assert (bad.status, bad.checker) == ("invalid", "builtin:pdf")
        folder = a.private_dir()
        a.release()
        assert os.listdir(folder) == []  # the restored copies are gone; the verdicts stay
        # the same ledger version in the next snapshot: neither restored nor validated again
        assert a.verdict_of("s2", LEDGER, wanted[LEDGER]) is ok
        assert len(restic.runs) == 1
        # a new version (another ctime, same size and mtime: written back with the old mtime) is validated again
        rewritten = {**wanted[LEDGER], "ctime": "2026-11-21T02:00:00Z"}
        a.prefetch("s2", {LEDGER: rewritten})
        assert len(restic.runs) == 2 and a.verdict_of("s2", LEDGER, rewritten) == ok
        assert a.verdict_of("s2", LEDGER, rewritten) is not ok
    finally:
        a.cleanup()
    assert not os.path.exists(folder)


def test_a_failed_or_partial_restore_is_never_validated_restic_dump_reads_the_file_instead(tmp_path):
    ledger = sqlite_bytes(tmp_path)
    restic = FakeRestic({"s1": {LEDGER: ledger}}, rc=1)
    a = assessor(restic)
    try:
        a.prefetch("s1", {LEDGER: node(ledger)})
        assert a.local_copy("s1", LEDGER) is None
        verdict = a.verdict_of("s1", LEDGER, node(ledger))
        assert (verdict.status, verdict.reason) == ("unknown", "restic dump could not read it")
        assert restic.runs[-1] == ("dump-fallback", "dump", "--", "s1", LEDGER)
        # restic exited 0 but the file is not the listed size: not used either
        restic.rc = 0
        a.prefetch("s1", {LEDGER: {**node(ledger), "size": len(ledger) + 1}})
        assert a.local_copy("s1", LEDGER) is None
    finally:
        a.cleanup()
