"""Incident-mode checklist and the section the incident report includes, through ansible-runner."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import failed_messages

DRIVER = str(Path(__file__).resolve().parent / "files" / "compliance_incident_section.yml")

RECORD = {
    "discoverer": "王会计",
    "detected_at": "2026-11-26T23:30:00+08:00",
    "place": "杭州办公室",
    "systems": ["books1 文件服务器"],
    "data_categories": ["记账凭证", "工资表"],
    "persons_affected": 1_200_000,
    "law_enforcement_contacted": True,
    "personal_information_involved": True,
    "grading": {
        "persons_affected": 1_200_000,
        "direct_loss_cny": 0,
        "cii": False,
        "justification": "工资表涉及120万人",
        "graded_by": "李经理",
    },
    "notices": {"individuals_not_notified_reason": "数据未外泄且已加密"},
}


def _run(playbook, localhost_inventory, tmp_path, record, now):
    evidence = tmp_path / "evidence" / "INC-20261126-001"
    evidence.mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    inv = localhost_inventory(
        {
            "ledgerguard_evidence_dir": str(tmp_path / "evidence"),
            "ledgerguard_clients": [
                {"id": "c001", "name": "甲公司", "paths": ["/srv/c001"], "contract_clause": "第7条"}
            ],
        }
    )
    runner = playbook(
        DRIVER,
        inventory=str(inv),
        extravars={
            "ledgerguard_incident_record": record,
            "report_compliance_now": now,
            "incident_record": {"incident_id": "INC-20261126-001", "evidence_dir": str(evidence)},
            "out_dir": str(out),
        },
    )
    return runner, evidence, out


def test_incident_section_shows_deadline_left_in_shanghai_time(playbook, localhost_inventory, tmp_path):
    # Detected 23:30 Asia/Shanghai; the report runs at 17:00 UTC (01:00 next day in Shanghai).
    runner, evidence, out = _run(playbook, localhost_inventory, tmp_path, RECORD, "2026-11-26T17:00:00Z")
    assert runner.status == "successful", failed_messages(runner)
    doc = json.loads((evidence / "compliance.json").read_text(encoding="utf-8"))
    assert doc["mode"] == "incident"
    cac = doc["deadlines"]["cac_report"]
    assert (cac["due"], cac["due_utc"], cac["state"]) == ("2026-11-27T03:30:00+08:00", "2026-11-26T19:30:00Z", "open")
    rows = {r["id"]: r["status"] for r in doc["rows"]}
    assert rows["incident_record"] == "PASS"
    assert rows["grading"] == "PASS"
    assert rows["cac_report"] == "MANUAL"
    assert rows["pipl_notice_authority"] == "FAIL"
    assert rows["pipl_notice_individuals"] == "NOT-APPLICABLE"

    zh = (out / "section.zh-CN.html").read_text(encoding="utf-8")
    assert '<section class="lg-compliance" lang="zh-CN">' in zh
    assert "向主管部门报告(较大及以上)" in zh
    assert "截止 2026-11-27T03:30:00+08:00,剩余 2小时30分钟" in zh
    assert "分级:较大(涉及 1200000 人" in zh
    en = (out / "section.en.md").read_text(encoding="utf-8")
    assert "due 2026-11-27T03:30:00+08:00, 2 h 30 min left" in en
    assert "| Report to the authority within 4 h |" in en


def test_bad_incident_record_does_not_break_the_report(playbook, localhost_inventory, tmp_path):
    runner, evidence, out = _run(
        playbook,
        localhost_inventory,
        tmp_path,
        {**RECORD, "detected_at": "2026-11-26T23:30:00"},
        "2026-11-27T00:00:00Z",
    )
    # A naive detection time cannot be graded against a deadline: the section says why instead of failing the run.
    assert runner.status == "successful", failed_messages(runner)
    assert not (evidence / "compliance.json").exists()
    en = (out / "section.en.html").read_text(encoding="utf-8")
    assert (
        "Compliance checklist could not be computed: compliance_checklist: ledgerguard_incident_record.detected_at: "
        "&#39;2026-11-26T23:30:00&#39; has no timezone; add the offset, e.g. 2026-11-26T23:30:00+08:00 for "
        "Asia/Shanghai</p>"
    ) in en


SIGN_DRIVER = str(Path(__file__).resolve().parent / "files" / "compliance_sign.yml")


def test_sign_entry_point_signs_and_a_missing_key_fails_clearly(playbook, localhost_inventory, tmp_path):
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import timeline

    from ledgerguard import evidence

    folder = tmp_path / "evidence" / "INC-20261126-002"
    folder.mkdir(parents=True)
    timeline.append(str(folder / "timeline.jsonl"), {"time": "2026-11-26T15:30:00Z", "task": "declare"})
    (folder / "report.html").write_text("<p>报告</p>", encoding="utf-8")
    key = evidence.keygen(tmp_path / "keys" / "firm.key")
    inv = localhost_inventory()
    runner = playbook(
        SIGN_DRIVER,
        inventory=str(inv),
        extravars={"report_sign_folder": str(folder), "report_sign_key": key["key"], "report_sign_signer": "审计"},
    )
    assert runner.status == "successful", failed_messages(runner)
    report = evidence.verify(folder, key["public_key"])
    assert report.ok and report.signer == "审计" and report.files_checked == 2 and report.timelines_checked == 1

    missing = tmp_path / "keys" / "absent.key"
    runner = playbook(
        SIGN_DRIVER,
        inventory=str(inv),
        extravars={"report_sign_folder": str(folder), "report_sign_key": str(missing)},
        private_data_dir=tmp_path / "runner2",
    )
    assert runner.status == "failed"
    assert failed_messages(runner) == [
        f"evidence_pack: signing key {missing} does not exist: create one with "
        f"`ledgerguard evidence keygen --key {missing}` (it also writes {missing}.pub)"
    ]
