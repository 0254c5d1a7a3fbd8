"""The periodic compliance report through ansible-runner: real playbook, real evidence folders, real signed pack."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from ansible_collections.ledgerguard.recovery.plugins.module_utils import timeline

from conftest import failed_messages

from ledgerguard import evidence

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _drill_line(drill_id: str, finished: dt.datetime, rto: float, passed: bool = True) -> str:
    """A history line shaped like roles/drill writes (module_utils/drill.drill_record)."""
    return json.dumps(
        {
            "drill_id": drill_id,
            "host": "books1",
            "started": _iso(finished - dt.timedelta(seconds=rto)),
            "finished": _iso(finished),
            "passed": passed,
            "rto_seconds": rto,
            "rpo_seconds": 3600.0,
            "clients": [
                {"id": "c001", "name": "杭州甲乙商贸有限公司", "rto_seconds": rto, "targets": {"rto_seconds": 600}}
            ],
        },
        ensure_ascii=False,
    )


@pytest.fixture
def evidence_root(tmp_path):
    root = tmp_path / "evidence"
    # A drill 40 days ago (the only restore test), copied into its evidence folder as the drill role does.
    drill_dir = root / "drill-20261017T020000Z" / "hosts" / "books1"
    drill_dir.mkdir(parents=True)
    (drill_dir / "history.jsonl").write_text(
        _drill_line("drill-20261017T020000Z", NOW - dt.timedelta(days=40), 95.5) + "\n", encoding="utf-8"
    )
    # A backup verification two hours ago that read the off-site repository, as roles/backup_verify writes it.
    verify_dir = root / "backup_verify" / "20261126T100000Z"
    verify_dir.mkdir(parents=True)
    (verify_dir / "result.json").write_text(
        json.dumps(
            {
                "schema": "ledgerguard.backup_verify/1",
                "run_id": "20261126T100000Z",
                "generated_at": _iso(NOW - dt.timedelta(hours=2)),
                "status": "OK",
                "repositories": [{"repository": "oss-offsite", "status": "OK", "checks": []}],
                "hosts": [
                    {
                        "host": "books1",
                        "repository": "oss-offsite",
                        "newest_snapshot": {"id": "4f1e2a9c", "time": _iso(NOW - dt.timedelta(hours=5))},
                        "status": "OK",
                        "checks": [],
                    }
                ],
            }
        )
    )
    # A signed incident evidence pack.
    pack = root / "INC-20261120-001"
    pack.mkdir()
    timeline.append(str(pack / "timeline.jsonl"), {"time": _iso(NOW), "task": "declare", "status": "ok"})
    (pack / "report.json").write_text("{}")
    return root


def _hostvars(root: Path, retention: dict) -> dict:
    return {
        "ledgerguard_evidence_dir": str(root),
        "ledgerguard_clients": [
            {
                "id": "c001",
                "name": "杭州甲乙商贸有限公司",
                "paths": ["/srv/books/c001"],
                "priority": 1,
                "contract_clause": "《代理记账委托合同》第七条 会计档案保管",
                "language": "zh-CN",
            },
            {"id": "c002", "name": "Northwind Ltd", "paths": ["/srv/books/c002"], "priority": 2, "language": "en"},
        ],
        "ledgerguard_backup_policy": {
            "method": "restic incremental, encrypted",
            "frequency": "daily 02:00",
            "medium": "S3 object storage (off-site) + local disk",
            "retention": retention,
            "repositories": [{"name": "oss-offsite", "offsite": True}, {"name": "nas-local", "offsite": False}],
        },
    }


def _run(playbook, localhost_inventory, root, retention, public_key, extravars=None, run_dir="runner"):
    inv = localhost_inventory(_hostvars(root, retention), hosts={"books1": {"ansible_host": "127.0.0.1"}})
    return playbook(
        "compliance_report.yml",
        inventory=str(inv),
        extravars={"report_compliance_now": _iso(NOW), "report_compliance_public_key": public_key, **(extravars or {})},
        private_data_dir=root.parent / run_dir,
    )


@pytest.fixture
def firm_key(tmp_path, evidence_root):
    """The firm's key; the incident pack in evidence_root is signed with it."""
    key = evidence.keygen(tmp_path / "keys" / "firm.key")
    evidence.sign(evidence_root / "INC-20261120-001", key["key"])
    return key


def _row(doc: dict, row_id: str) -> dict:
    return next(r for r in doc["rows"] if r["id"] == row_id)


def test_periodic_report_fails_old_restore_test_and_short_retention(
    playbook, localhost_inventory, evidence_root, firm_key
):
    retention = {"keep_daily": 30, "keep_yearly": 10}
    runner = _run(playbook, localhost_inventory, evidence_root, retention, firm_key["public_key"])
    assert runner.status == "successful", failed_messages(runner)
    out = evidence_root / "compliance-2026-11"
    doc = json.loads((out / "compliance.json").read_text(encoding="utf-8"))
    assert doc["mode"] == "periodic" and doc["timezone"] == "Asia/Shanghai"
    assert doc["generated_at"] == "2026-11-26T20:00:00+08:00"

    restore = _row(doc, "restore_test")
    assert restore["status"] == "FAIL"
    assert restore["evidence"]["en"] == (
        "last successful restore test 2026-10-17T20:00:00+08:00, 40 days ago (limit 30 days)"
    )
    retention_row = _row(doc, "retention")
    assert retention_row["status"] == "FAIL"
    vouchers = next(c for c in retention_row["classes"] if c["id"] == "vouchers")
    assert vouchers["status"] == "FAIL" and vouchers["years"] == 30
    for row_id in (
        "offsite_copy",
        "snapshot_age",
        "backups_verified",
        "drill_yearly",
        "rto_target",
        "policy_fields",
        "evidence_integrity",
    ):
        assert _row(doc, row_id)["status"] == "PASS", _row(doc, row_id)
    assert _row(doc, "evidence_integrity")["evidence"]["en"] == "1 pack(s) verified: INC-20261120-001"
    contract = _row(doc, "contract_clause")
    assert contract["status"] == "FAIL" and contract["evidence"]["en"] == "no contract_clause for: Northwind Ltd"
    # Periodic mode has no incident rows.
    assert not {r["id"] for r in doc["rows"]} & {"incident_record", "cac_report", "pipl_notice_authority"}

    html_zh = (out / "compliance.zh-CN.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html_zh and '<meta charset="utf-8">' in html_zh
    assert "Noto Sans CJK SC" in html_zh
    assert "定期合规报告" in html_zh and "不通过" in html_zh
    assert "《会计档案管理办法》第十四条、第十五条及附表1" in html_zh
    # The article number of the agency-contract clause is unconfirmed: never printed as law.
    assert "《代理记账管理办法》该条款的条号(未经确认)" in html_zh
    html_en = (out / "compliance.en.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html_en and "Periodic compliance report" in html_en
    assert "the article number of that clause in the Agency Bookkeeping Measures (unconfirmed)" in html_en
    # Per-client copies in the client's language, naming no other client.
    client_zh = (out / "clients" / "c001.zh-CN.html").read_text(encoding="utf-8")
    assert "客户合规报告: 杭州甲乙商贸有限公司" in client_zh
    assert "《代理记账委托合同》第七条 会计档案保管" in client_zh
    assert "Northwind" not in client_zh
    client_en = (out / "clients" / "c002.en.html").read_text(encoding="utf-8")
    assert "Client compliance report: Northwind Ltd" in client_en and "杭州甲乙" not in client_en
    md = (out / "compliance.zh-CN.md").read_text(encoding="utf-8")
    assert re.search(r"\| \d+ \| 保存期不短于会计档案最低保管期限 \|.*\| \*\*不通过\*\* \|", md)


def test_fresh_drill_and_good_policy_pass_then_tampered_pack_is_named(
    playbook, localhost_inventory, evidence_root, firm_key
):
    retention = {"keep_daily": 30, "keep_yearly": 31, "keep_tag": ["archive-permanent"]}
    fresh = json.loads(_drill_line("drill-20261120T020000Z", NOW - dt.timedelta(days=6), 80.0))
    extravars = {
        "report_compliance_extra_drills": [fresh],
        "backup_verify_record_classes": [
            {"id": "vouchers", "name": "凭证", "years": 30},
            {"id": "annual_reports", "name": "年度财务会计报告", "years": None, "tag": "archive-permanent"},
        ],
        "report_compliance_period": "2026-Q4",
    }
    runner = _run(playbook, localhost_inventory, evidence_root, retention, firm_key["public_key"], extravars)
    assert runner.status == "successful", failed_messages(runner)
    doc = json.loads((evidence_root / "compliance-2026-Q4" / "compliance.json").read_text(encoding="utf-8"))
    assert _row(doc, "restore_test")["status"] == "PASS"
    assert _row(doc, "retention")["status"] == "PASS"

    # One byte of the signed report changes: the next report's evidence row names the pack, the file and why.
    (evidence_root / "INC-20261120-001" / "report.json").write_text("{ }")
    runner = _run(playbook, localhost_inventory, evidence_root, retention, firm_key["public_key"], extravars, "r2")
    assert runner.status == "successful", failed_messages(runner)
    doc = json.loads((evidence_root / "compliance-2026-Q4" / "compliance.json").read_text(encoding="utf-8"))
    row = _row(doc, "evidence_integrity")
    assert row["status"] == "FAIL"
    assert row["evidence"]["en"].startswith("INC-20261120-001: file-changed: report.json: sha256 ")


def test_gate_fails_the_play_naming_the_rows(playbook, localhost_inventory, evidence_root, firm_key):
    runner = _run(
        playbook,
        localhost_inventory,
        evidence_root,
        {"keep_yearly": 10},
        firm_key["public_key"],
        {"report_compliance_fail_on_fail": True},
    )
    assert runner.status == "failed"
    msgs = failed_messages(runner)
    assert any(
        m.startswith("Compliance checklist has FAIL rows: restore_test, retention, contract_clause.") for m in msgs
    ), msgs
