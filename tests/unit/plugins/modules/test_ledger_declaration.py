"""One declaration of a client's books (ledgerguard_clients[].ledger) read by ledger_verify and the validators."""

from __future__ import annotations

import json
import sqlite3


from ansible_collections.ledgerguard.recovery.plugins.module_utils import ledger as lg
from ansible_collections.ledgerguard.recovery.plugins.module_utils import validators
from ansible_collections.ledgerguard.recovery.plugins.modules import ledger_verify
from conftest import module_result


def run(args: dict, capsys) -> dict:
    return module_result(ledger_verify.main, args, capsys)


def custom_books(root):
    """A firm whose software exports its own column names (GBK CSV with ';') and its own SQLite schema."""
    (root / "exports").mkdir(parents=True)
    lines = ["会计期间;凭证编号;借方本币;贷方本币"]
    for n in range(1, 4):
        lines += [f"2026-10;{n};{n}0.00;", f"2026-10;{n};;{n}0.00"]
    (root / "exports" / "gl.csv").write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    (root / "db").mkdir()
    conn = sqlite3.connect(root / "db" / "books.db")
    conn.execute("CREATE TABLE gl_entries (fperiod TEXT, vno INTEGER, dr_cents INTEGER, cr_cents INTEGER)")
    for n in range(1, 4):
        conn.execute("INSERT INTO gl_entries VALUES ('2026-10', ?, ?, 0)", (n, n * 1000))
        conn.execute("INSERT INTO gl_entries VALUES ('2026-10', ?, 0, ?)", (n, n * 1000))
    conn.commit()
    conn.close()


LEDGER = {
    "csv": {
        "sources": ["exports"],
        "columns": {"period": "会计期间", "voucher_no": "凭证编号", "debit": "借方本币", "credit": "贷方本币"},
        "encoding": "gbk",
        "delimiter": ";",
    },
    "sqlite": {
        "sources": ["db/books.db"],
        "table": "gl_entries",
        "columns": {"period": "fperiod", "voucher_no": "vno", "debit": "dr_cents", "credit": "cr_cents"},
        "amount_scale": 2,
    },
    "baseline": {"exports/gl.csv": 6, "db/books.db": 6},
}


def test_declared_books_are_read_per_client(tmp_path, capsys):
    root = tmp_path / "c009"
    custom_books(root)
    client = {"id": "c009", "name": "自定义格式", "paths": [str(root)], "ledger": LEDGER}
    out = run({"clients": [client]}, capsys)
    assert out["ok"] is True, out
    assert out["counts"]["c009"] == {"exports/gl.csv": 6, "db/books.db": 6}
    # the baseline declared with the books is used
    client["ledger"] = dict(LEDGER, baseline={"exports/gl.csv": 8})
    out = run({"clients": [client], "fail_on_findings": False}, capsys)
    assert [f["kind"] for f in out["clients"]["c009"]["findings"]] == ["row_count"]


def test_restored_under_reads_the_sandbox_copy(tmp_path, capsys):
    prod = tmp_path / "srv" / "c009"
    sandbox = tmp_path / "sandbox"
    custom_books(sandbox / str(prod).lstrip("/"))
    client = {"id": "c009", "paths": [str(prod)], "ledger": LEDGER, "restored_under": str(sandbox)}
    out = run({"clients": [client]}, capsys)
    assert out["ok"] is True and out["counts"]["c009"]["db/books.db"] == 6


def test_unknown_key_names_the_client(tmp_path, capsys):
    out = run({"clients": [{"id": "c1", "ledger": {"csv": {"colums": {}}}}]}, capsys)
    assert out["failed"] and "ledger.csv of client 'c1' has unknown keys ['colums']" in out["msg"]


def test_deprecated_notice_is_a_deprecation(tmp_path, capsys, monkeypatch):
    # Once any controller code is imported in this pytest process (filter tests do), ansible-core routes a module's
    # deprecate() to the controller's display instead of the module result; a module on a host never is controller.
    from ansible.module_utils import _internal

    monkeypatch.setattr(_internal, "is_controller", False)
    out = run({"clients": [{"id": "c1"}], "deprecated_notice": "drill_ledger_checks is deprecated"}, capsys)
    assert "drill_ledger_checks is deprecated" in json.dumps(out["deprecations"])


def test_legacy_drill_checks_fold_into_the_declaration():
    legacy = {"csv": ["凭证"], "sqlite_table": "gl", "sqlite_amount_scale": 2, "csv_encoding": "gbk", "baseline": {}}
    decl = lg.legacy_drill_checks(legacy)
    assert decl["csv"] == {"sources": ["凭证"], "encoding": "gbk"}
    assert decl["sqlite"] == {"sources": [], "table": "gl", "amount_scale": 2}
    eff = lg.ledger_declaration({"id": "c1", "ledger": decl}, {"sqlite_table": "voucher_entries"})
    assert (eff["sqlite_table"], eff["sqlite_amount_scale"], eff["csv"]) == ("gl", 2, ["凭证"])


def test_validators_read_the_same_declaration(tmp_path):
    root = tmp_path / "c009"
    custom_books(root)
    assert validators.validate(str(root / "exports" / "gl.csv"), LEDGER).status == validators.VALID
    assert validators.validate(str(root / "db" / "books.db"), LEDGER).status == validators.VALID
    bad = dict(LEDGER, sqlite=dict(LEDGER["sqlite"], columns={"debit": "nope"}))
    assert validators.validate(str(root / "db" / "books.db"), bad).status == validators.INVALID
