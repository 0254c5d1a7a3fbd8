"""A drill is an early warning: it assesses the backup it restores with the incident's signs and file validators.

The newest backup holds one client encrypted, one client's folder deleted and one client's SQLite ledger corrupted
in place; a fifth client's books use its own CSV and SQLite schema, declared once in ledgerguard_clients[].ledger.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from ledgerguard import sampledata
from ledgerguard.runner import PlaybookRun, run_playbook

from conftest import failed_messages, restic, write_inventory, write_password_file

pytestmark = pytest.mark.slow

NAMES = {
    "c001": "杭州示例贸易有限公司",
    "c002": "宁波海风餐饮管理有限公司",
    "c003": "温州三江五金制品厂",
    "c004": "绍兴示例纺织有限公司",
}

LEDGER = {
    "csv": {
        "sources": ["导出"],
        "columns": {"period": "会计期间", "voucher_no": "凭证编号", "debit": "借方本币", "credit": "贷方本币"},
        "encoding": "gbk",
        "delimiter": ";",
    },
    "sqlite": {
        "sources": ["账套/books.db"],
        "table": "gl_entries",
        "columns": {"period": "fperiod", "voucher_no": "vno", "debit": "dr_cents", "credit": "cr_cents"},
        "amount_scale": 2,
    },
    "baseline": {"导出/gl.csv": 6, "账套/books.db": 6},
}


def custom_books(root: Path) -> None:
    (root / "导出").mkdir(parents=True)
    lines = ["会计期间;凭证编号;借方本币;贷方本币"]
    for n in range(1, 4):
        lines += [f"2026-10;{n};{n}0.00;", f"2026-10;{n};;{n}0.00"]
    (root / "导出" / "gl.csv").write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    (root / "账套").mkdir()
    conn = sqlite3.connect(root / "账套" / "books.db")
    conn.execute("CREATE TABLE gl_entries (fperiod TEXT, vno INTEGER, dr_cents INTEGER, cr_cents INTEGER)")
    for n in range(1, 4):
        conn.execute("INSERT INTO gl_entries VALUES ('2026-10', ?, ?, 0)", (n, n * 1000))
        conn.execute("INSERT INTO gl_entries VALUES ('2026-10', ?, 0, ?)", (n, n * 1000))
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def drilled(tmp_path_factory):
    """One drill (module-scoped): both tests assert on its record and output; it used to run once per test."""
    tmp_path = tmp_path_factory.mktemp("drill-damage")
    restic_password_file = write_password_file(tmp_path / "restic-password")
    local_repo = str(tmp_path / "repo")
    restic(local_repo, restic_password_file, "init")
    prod = tmp_path / "prod"
    clients = []
    for n, (cid, name) in enumerate(NAMES.items(), start=1):
        info = sampledata.make_client_tree(prod, cid, name, periods=("2026-09", "2026-10"), pdfs=2, seed=n)
        clients.append({"id": cid, "name": name, "paths": info["client"]["paths"]})
    custom_books(prod / "c005")
    clients.append({"id": "c005", "name": "自定义格式客户", "paths": [str(prod / "c005")], "ledger": LEDGER})
    backup = ("backup", "--host", "books1", str(prod))
    restic(local_repo, restic_password_file, *backup, "--time", "2026-11-01 02:00:00")
    # Friday night's damage, still in the newest backup when the drill runs
    for path in sorted(p for p in (prod / "c002").rglob("*") if p.is_file()):
        path.write_bytes(os.urandom(max(path.stat().st_size, 256)))
        path.rename(path.with_name(path.name + ".locked"))
    (prod / "c002" / "HOW_TO_DECRYPT.txt").write_text("pay us\n")
    shutil.rmtree(prod / "c003")
    ledger = prod / "c004" / "账簿" / "ledger.sqlite"
    raw = bytearray(ledger.read_bytes())
    raw[4096 : 4096 + 64] = os.urandom(64)
    ledger.write_bytes(bytes(raw))
    restic(local_repo, restic_password_file, *backup, "--time", "2026-11-02 02:00:00")
    state = tmp_path / "state"
    inv = write_inventory(
        tmp_path / "inventory.json", {"ledgerguard_clients": clients, "ledgerguard_state_dir": str(state)}
    )
    run = PlaybookRun(
        playbook="drill.yml",
        private_data_dir=tmp_path / "runner",
        inventory=inv,
        extravars={
            "ledgerguard_repository": local_repo,
            "ledgerguard_password_file": str(restic_password_file),
            "ledgerguard_evidence_dir": str(tmp_path / "evidence"),
            "drill_sandbox_dir": str(tmp_path / "sandbox"),
            "drill_progress_interval": 0,
            "drill_id": "drill-damage",
            "drill_targets": {"rto_seconds": 0, "rpo_seconds": 0},
            # the old variable still works for a client without `ledger`, with a deprecation warning
            "drill_ledger_checks": {"c001": {"csv": ["凭证"]}},
        },
    )
    r = run_playbook(run)
    (rec,) = [json.loads(line) for line in (state / "drills" / "history.jsonl").read_text().splitlines()]
    return {"runner": r, "record": rec, "prod": prod}


def test_drill_names_the_clients_whose_newest_backup_holds_damage(drilled):
    r, rec = drilled["runner"], drilled["record"]
    assert r.status == "failed"
    by = {c["id"]: c for c in rec["clients"]}
    assert by["c001"]["checks"]["damage"]["ok"] is True and by["c001"]["passed"] is True
    assert by["c005"]["checks"]["damage"]["ok"] is True
    for cid in ("c002", "c003", "c004"):
        assert by[cid]["checks"]["damage"]["ok"] is False and not by[cid]["passed"], by[cid]["checks"]
    damaged = "\n".join(rec["damaged_backups"])
    assert [d.split(":")[0] for d in rec["damaged_backups"]] == ["c002", "c003", "c004"]
    assert "c002: the newest backup" in damaged and "ransom note" in damaged and ".locked" in damaged
    assert "c003: this client's folder is missing from the newest backup" in damaged
    # a folder missing from the backup is a finding, not a restore error
    assert "restore" not in by["c003"]["checks"]
    c004 = next(d for d in rec["damaged_backups"] if d.startswith("c004"))
    assert "ledger.sqlite fails validation in this snapshot" in c004 and "SQLite" in c004
    (msg,) = failed_messages(r)
    assert "Backups that already hold damage: c002: " in msg
    assert "this client's folder is missing from the newest backup" in msg


def test_declared_books_checked_in_the_drill_and_old_variable_deprecated(drilled):
    by = {c["id"]: c for c in drilled["record"]["clients"]}
    ledger = by["c005"]["checks"]["ledger"]
    assert ledger["ok"] is True and ledger["findings_count"] == 0, ledger
    assert by["c001"]["checks"]["ledger"]["ok"] is True
    out = drilled["runner"].stdout.read()
    assert "drill_ledger_checks (client c001) is deprecated" in " ".join(out.split())
