"""The compliance checklist, grading and deadlines (pure functions in plugin_utils/compliance.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance as c

NOW = "2026-11-26T12:00:00+00:00"  # 20:00 in Asia/Shanghai


def _days_ago(days: float, base: str = NOW) -> str:
    return (dt.datetime.fromisoformat(base) - dt.timedelta(days=days)).isoformat()


POLICY = {
    "method": "restic incremental",
    "frequency": "daily",
    "medium": "S3 + local disk",
    "retention": {"keep_daily": 30, "keep_yearly": 31, "keep_tag": ["archive-permanent"]},
    "repositories": [{"name": "offsite", "offsite": True}, {"name": "local", "offsite": False}],
}
CLASSES = [
    {"id": "vouchers", "name": "原始凭证, 记账凭证", "years": 30},
    {"id": "annual_reports", "name": "年度财务会计报告", "years": None, "tag": "archive-permanent"},
]


def _data(**over):
    base = {
        "mode": "periodic",
        "now": NOW,
        "policy": POLICY,
        "record_classes": CLASSES,
        "clients": [{"id": "c001", "name": "甲公司", "contract_clause": "合同第7条"}],
        "drills": [{"drill_id": "d1", "host": "h1", "finished": _days_ago(3), "passed": True, "rto_seconds": 50}],
        "verifies": [
            {"time": _days_ago(0.1), "status": "OK", "repository": "offsite", "newest_snapshot_time": _days_ago(0.5)}
        ],
        "evidence": [{"pack": "/x/evidence/INC-1", "ok": True, "problems": []}],
    }
    base.update(over)
    return base


def _row(result, row_id):
    return next(r for r in result["rows"] if r["id"] == row_id)


def test_healthy_periodic_checklist_passes_every_automatic_row():
    result = c.build_checklist(_data(settings={"rto_target_seconds": 600}))
    assert {r["id"]: r["status"] for r in result["rows"]} == {
        "offsite_copy": "PASS",
        "snapshot_age": "PASS",
        "backups_verified": "PASS",
        "restore_test": "PASS",
        "rto_target": "PASS",
        "drill_yearly": "PASS",
        "policy_fields": "PASS",
        "retention": "PASS",
        "evidence_integrity": "PASS",
        "contract_clause": "PASS",
    }
    assert result["overall"] == "PASS"
    assert result["generated_at"] == "2026-11-26T20:00:00+08:00"
    json.dumps(result)  # the result must be plain JSON for the report and set_stats


def test_no_restore_test_in_40_days_fails_the_row():
    result = c.build_checklist(
        _data(drills=[{"drill_id": "d-old", "finished": _days_ago(40), "passed": True, "rto_seconds": 80}])
    )
    row = _row(result, "restore_test")
    assert row["status"] == "FAIL"
    assert row["evidence"]["en"] == (
        "last successful restore test 2026-10-17T20:00:00+08:00, 40 days ago (limit 30 days)"
    )
    assert row["evidence"]["zh"] == "最近一次成功的恢复测试 2026-10-17T20:00:00+08:00,已过 40 天(上限 30 天)"
    # The drill in the last 12 months still counts for the yearly-drill row.
    assert _row(result, "drill_yearly")["status"] == "PASS"
    assert result["overall"] == "FAIL"


def test_restore_test_window_is_configurable_and_failed_drills_do_not_count():
    drills = [
        {"drill_id": "d-old", "finished": _days_ago(40), "passed": True, "rto_seconds": 80},
        {"drill_id": "d-new", "finished": _days_ago(2), "passed": False, "rto_seconds": 80},
    ]
    assert _row(c.build_checklist(_data(drills=drills)), "restore_test")["status"] == "FAIL"
    ok = c.build_checklist(_data(drills=drills, settings={"restore_test_max_age_days": 45}))
    assert _row(ok, "restore_test")["status"] == "PASS"


def test_restore_test_without_measured_rto_fails():
    result = c.build_checklist(_data(drills=[{"drill_id": "d1", "finished": _days_ago(1), "passed": True}]))
    row = _row(result, "restore_test")
    assert row["status"] == "FAIL" and "recorded no measured RTO" in row["evidence"]["en"]


def test_no_drill_in_12_months_fails():
    result = c.build_checklist(
        _data(drills=[{"drill_id": "d1", "finished": _days_ago(370), "passed": True, "rto_seconds": 5}])
    )
    row = _row(result, "drill_yearly")
    assert row["status"] == "FAIL"
    assert row["evidence"]["en"] == "no drill since 2025-11-26T20:00:00+08:00"


def test_policy_keeping_vouchers_10_years_fails_the_retention_row():
    policy = {**POLICY, "retention": {"keep_daily": 30, "keep_yearly": 10}}
    result = c.build_checklist(_data(policy=policy, record_classes=None))
    row = _row(result, "retention")
    assert row["status"] == "FAIL"
    vouchers = next(x for x in row["classes"] if x["id"] == "vouchers")
    assert vouchers["status"] == "FAIL" and vouchers["years"] == 30
    assert "原始凭证, 记账凭证 (vouchers): the policy keeps a year-end snapshot only 9.0 years" in row["evidence"]["en"]
    assert "原始凭证, 记账凭证 (vouchers):最低 30 年,策略仅保证 9.0 年" in row["evidence"]["zh"]
    # The same policy still defines all four fields: that row passes, only retention fails.
    assert _row(result, "policy_fields")["status"] == "PASS"


def test_keep_within_10y_also_fails_vouchers():
    policy = {**POLICY, "retention": {"keep_within": "10y"}}
    row = _row(c.build_checklist(_data(policy=policy, record_classes=CLASSES)), "retention")
    assert row["status"] == "FAIL"
    assert [x["id"] for x in row["classes"] if x["status"] == "FAIL"] == ["vouchers", "annual_reports"]


def test_retention_undefined_and_keep_all():
    policy = {k: v for k, v in POLICY.items() if k != "retention"}
    result = c.build_checklist(_data(policy=policy))
    assert _row(result, "retention")["status"] == "FAIL"
    assert _row(result, "policy_fields")["evidence"]["en"] == "ledgerguard_backup_policy is missing: retention"
    keep_all = c.build_checklist(_data(policy={**POLICY, "retention": "keep-all"}))
    assert _row(keep_all, "retention")["status"] == "PASS"


def test_policy_fields_missing_are_named():
    result = c.build_checklist(_data(policy={"retention": {"keep_yearly": 31}}))
    row = _row(result, "policy_fields")
    assert row["status"] == "FAIL"
    assert row["missing"] == ["method", "frequency", "medium"]
    assert row["evidence"]["zh"] == "ledgerguard_backup_policy 缺少:备份方式、备份频度、存储介质"


def test_offsite_and_snapshot_age():
    no_offsite = {**POLICY, "repositories": [{"name": "local"}]}
    assert _row(c.build_checklist(_data(policy=no_offsite)), "offsite_copy")["status"] == "FAIL"
    unverified = _data(verifies=[{"time": _days_ago(0.1), "status": "OK", "repository": "local"}])
    result = c.build_checklist(unverified)
    assert _row(result, "offsite_copy")["status"] == "MANUAL"
    assert _row(result, "snapshot_age")["status"] == "FAIL"  # no snapshot time at all
    stale = _data(
        verifies=[
            {"time": _days_ago(0.1), "status": "OK", "repository": "offsite", "newest_snapshot_time": _days_ago(2)}
        ]
    )
    row = _row(c.build_checklist(stale), "snapshot_age")
    assert row["status"] == "FAIL" and row["evidence"]["en"].endswith("age 2 d (RPO 24 h)")


def test_verification_failed_since_last_pass_fails():
    verifies = [
        {"time": _days_ago(2), "status": "OK", "repository": "offsite", "newest_snapshot_time": _days_ago(0.5)},
        {"time": _days_ago(1), "status": "FAIL", "repository": "offsite"},
    ]
    row = _row(c.build_checklist(_data(verifies=verifies)), "backups_verified")
    assert row["status"] == "FAIL" and row["evidence"]["en"].endswith("; 1 failed since")


def test_rto_compared_per_client_with_its_own_target():
    drill = {
        "drill_id": "d1",
        "finished": _days_ago(1),
        "passed": False,
        "rto_seconds": 900,
        "clients": [
            {"id": "c001", "name": "甲公司", "rto_seconds": 900, "targets": {"rto_seconds": 600}},
            {"id": "c002", "name": "乙公司", "rto_seconds": 300, "targets": {"rto_seconds": 600}},
        ],
    }
    result = c.build_checklist(_data(drills=[drill]))
    row = _row(result, "rto_target")
    assert row["status"] == "FAIL"
    assert row["evidence"]["en"] == "drill d1: 甲公司: measured 900 s / target 600 s"
    view = c.client_view(result, {"id": "c002", "name": "乙公司"})
    mine = _row(view, "rto_target")
    assert mine["status"] == "PASS" and "甲公司" not in json.dumps(view, ensure_ascii=False)


def test_contract_clause_missing_is_named_and_client_view_hides_other_clients():
    clients = [
        {"id": "c001", "name": "甲公司", "contract_clause": "合同第7条"},
        {"id": "c002", "name": "乙公司"},
    ]
    result = c.build_checklist(_data(clients=clients))
    row = _row(result, "contract_clause")
    assert row["status"] == "FAIL" and row["evidence"]["zh"] == "以下客户未引用合同条款:乙公司"
    view = c.client_view(result, clients[0])
    assert _row(view, "contract_clause")["status"] == "PASS"
    assert "乙公司" not in json.dumps(view, ensure_ascii=False)
    assert view["client"] == {"id": "c001", "name": "甲公司"}


def test_evidence_row_names_the_failing_pack_and_problem():
    evidence = [
        {"pack": "/e/INC-1", "ok": True, "problems": []},
        {"pack": "/e/INC-2", "ok": False, "problems": ["file-changed: report.json: sha256 ab differs"]},
    ]
    row = _row(c.build_checklist(_data(evidence=evidence)), "evidence_integrity")
    assert row["status"] == "FAIL"
    assert row["evidence"]["en"] == "INC-2: file-changed: report.json: sha256 ab differs"
    assert _row(c.build_checklist(_data(evidence=[])), "evidence_integrity")["status"] == "MANUAL"


# ------------------------------------------------------------------------------------------- unconfirmed sources


def test_unconfirmed_sources_are_never_printed_as_law():
    for source_id, src in c.SOURCES.items():
        en, zh = c.source_text(source_id, "en"), c.source_text(source_id, "zh-CN")
        if src["confidence"] == "U":
            assert en.endswith(" (unconfirmed)") and zh.endswith("(未经确认)"), source_id
        elif src["confidence"] == "S":
            assert en.endswith(" (secondary source)") and zh.endswith("(二手来源)"), source_id
        else:
            assert "unconfirmed" not in en and "未经确认" not in zh, source_id
    result = c.build_checklist(_data())
    for row in result["rows"]:
        for s in row["sources"]:
            if s["confidence"] == "U":
                assert "(unconfirmed)" in s["en"] and "(未经确认)" in s["zh"]
    # Product defaults (RPO 24 h, 30-day restore test) are labelled as such, never as law.
    assert any(s["id"] == "product_default" for s in _row(result, "restore_test")["sources"])
    # The CSL renumbering (old Art. 42 -> 44) is unconfirmed and left out entirely.
    text = json.dumps(c.SOURCES, ensure_ascii=False)
    assert "Art. 44" not in text and "第四十四条" not in text


# ------------------------------------------------------------------------------------------------- grading


@pytest.mark.parametrize(
    ("persons", "loss", "grade", "reportable"),
    [
        (999_999, 4_999_999, "below_threshold", False),
        (1_000_000, 0, "relatively_major", True),
        (0, 5_000_000, "relatively_major", True),
        (10_000_000, 0, "major", True),
        (0, 20_000_000, "major", True),
        (100_000_000, 0, "especially_major", True),
        (0, 100_000_000, "especially_major", True),
    ],
)
def test_grade_thresholds(persons, loss, grade, reportable):
    out = c.grade_incident({"persons_affected": persons, "direct_loss_cny": loss, "cii": False})
    assert out["grade"] == grade and out["reportable"] is reportable and out["report_hours"] == 4


def test_grade_override_for_the_catch_all_clause_and_cii_hour():
    out = c.grade_incident(
        {
            "persons_affected": 500,
            "direct_loss_cny": 0,
            "cii": True,
            "grade_override": "relatively_major",
            "justification": "较大量个人信息被篡改(兜底条款)",
        }
    )
    assert out["computed_grade"] == "below_threshold" and out["grade"] == "relatively_major"
    assert out["overridden"] and out["reportable"] and out["report_hours"] == 1
    with pytest.raises(c.ComplianceInputError, match="'huge' is not one of"):
        c.grade_incident({"grade_override": "huge"})


# ----------------------------------------------------------------------------------------------- deadlines

INCIDENT = {
    "discoverer": "王会计",
    "detected_at": "2026-11-26T23:30:00+08:00",  # 15:30 UTC
    "place": "杭州办公室",
    "systems": ["books1 文件服务器"],
    "data_categories": ["记账凭证", "工资表(含身份证号)"],
    "persons_affected": 120,
    "law_enforcement_contacted": False,
    "personal_information_involved": True,
    "grading": {
        "persons_affected": 1_200_000,
        "direct_loss_cny": 0,
        "cii": False,
        "justification": "工资表涉及120万人",
        "graded_by": "李经理",
    },
}


def test_deadlines_for_an_incident_detected_at_2330_shanghai():
    # "now" given in UTC, 1 h after detection.
    out = c.incident_deadlines(INCIDENT, "2026-11-26T16:30:00Z")
    cac = out["cac_report"]
    assert cac["start"] == "2026-11-26T23:30:00+08:00"
    assert cac["due"] == "2026-11-27T03:30:00+08:00"  # next calendar day in Shanghai
    assert cac["due_utc"] == "2026-11-26T19:30:00Z"
    assert cac["state"] == "open" and cac["seconds_left"] == 3 * 3600
    assert cac["text_en"] == "due 2026-11-27T03:30:00+08:00, 3 h left"
    assert cac["text_zh"] == "截止 2026-11-27T03:30:00+08:00,剩余 3小时"


def test_same_instant_in_other_timezones_gives_the_same_deadline():
    for detected in ("2026-11-26T15:30:00Z", "2026-11-26T10:30:00-05:00", "2026-11-27T00:30:00+09:00"):
        out = c.incident_deadlines({**INCIDENT, "detected_at": detected}, "2026-11-27T04:00:00+08:00")
        cac = out["cac_report"]
        assert cac["due"] == "2026-11-27T03:30:00+08:00", detected
        assert cac["state"] == "overdue" and cac["seconds_overdue"] == 1800
        assert cac["text_en"] == "due 2026-11-27T03:30:00+08:00, overdue by 30 min"
        assert cac["text_zh"] == "截止 2026-11-27T03:30:00+08:00,已逾期 30分钟"


def test_cii_incident_has_one_hour_and_report_done_in_time():
    grading = {**INCIDENT["grading"], "cii": True, "reported_at": "2026-11-27T00:10:00+08:00"}
    out = c.incident_deadlines({**INCIDENT, "grading": grading}, "2026-11-27T08:00:00+08:00")
    assert out["cac_report"]["due"] == "2026-11-27T00:30:00+08:00"
    assert out["cac_report"]["state"] == "met"
    assert out["cac_report"]["text_en"] == "due 2026-11-27T00:30:00+08:00, done 2026-11-27T00:10:00+08:00 (in time)"
    late = {**grading, "reported_at": "2026-11-27T01:00:00+08:00"}
    rec = c.incident_deadlines({**INCIDENT, "grading": late}, "2026-11-27T08:00:00+08:00")["cac_report"]
    assert rec["state"] == "met_late" and rec["seconds_overdue"] == 1800


def test_below_threshold_has_no_cac_deadline():
    grading = {**INCIDENT["grading"], "persons_affected": 120}
    out = c.incident_deadlines({**INCIDENT, "grading": grading}, "2026-11-27T08:00:00+08:00")
    assert "cac_report" not in out


def test_30_day_summary_counts_calendar_days_in_the_report_timezone():
    closed = {**INCIDENT, "closed_at": "2026-11-28T23:30:00+08:00"}
    out = c.incident_deadlines(closed, "2026-12-01T00:00:00+08:00")
    assert out["summary_30d"]["due"] == "2026-12-28T23:30:00+08:00"
    assert out["summary_30d"]["state"] == "open"
    # Across a DST change (Europe/Berlin, 2026-10-25): 30 calendar days keep the wall-clock time.
    berlin = {**INCIDENT, "closed_at": "2026-10-10T10:00:00+02:00"}
    out = c.incident_deadlines(berlin, "2026-10-11T00:00:00+02:00", {"timezone": "Europe/Berlin"})
    assert out["summary_30d"]["due"] == "2026-11-09T10:00:00+01:00"


def test_gdpr_profile_72_hours_with_late_reason():
    incident = {**INCIDENT, "gdpr": {"enabled": True, "notified_at": "2026-11-30T00:00:00+08:00"}}
    out = c.incident_deadlines(incident, "2026-12-01T00:00:00+08:00")
    assert out["gdpr_72h"]["due"] == "2026-11-29T23:30:00+08:00"
    assert out["gdpr_72h"]["state"] == "met_late"
    result = c.build_checklist(
        {**_data(), "mode": "incident", "incident": incident, "now": "2026-12-01T00:00:00+08:00"}
    )
    row = _row(result, "gdpr_72h")
    assert row["status"] == "FAIL" and row["evidence"]["en"].endswith("late reason: NOT RECORDED")
    incident["gdpr"]["late_reason"] = "scope unknown until forensic image finished"
    result = c.build_checklist(
        {**_data(), "mode": "incident", "incident": incident, "now": "2026-12-01T00:00:00+08:00"}
    )
    assert _row(result, "gdpr_72h")["status"] == "MANUAL"


def test_naive_and_malformed_times_are_refused_with_the_field_named():
    with pytest.raises(c.ComplianceInputError) as err:
        c.incident_deadlines({**INCIDENT, "detected_at": "2026-11-26T23:30:00"}, NOW)
    assert str(err.value) == (
        "ledgerguard_incident_record.detected_at: '2026-11-26T23:30:00' has no timezone; add the offset, "
        "e.g. 2026-11-26T23:30:00+08:00 for Asia/Shanghai"
    )
    with pytest.raises(c.ComplianceInputError, match="'yesterday' is not an ISO 8601 time"):
        c.incident_deadlines({**INCIDENT, "detected_at": "yesterday"}, NOW)
    with pytest.raises(c.ComplianceInputError, match="timezone 'Mars/Olympus' is not a known IANA zone"):
        c.build_checklist(_data(settings={"timezone": "Mars/Olympus"}))


# ------------------------------------------------------------------------------------------ incident checklist


def _incident_result(incident, now="2026-11-27T00:30:00+08:00"):
    return c.build_checklist({**_data(), "mode": "incident", "incident": incident, "now": now})


def test_incident_rows_complete_record_and_open_cac_deadline():
    result = _incident_result(INCIDENT)
    assert _row(result, "incident_record")["status"] == "PASS"
    grading = _row(result, "grading")
    assert grading["status"] == "PASS" and grading["evidence"]["zh"].startswith("分级:较大(涉及 1200000 人")
    cac = _row(result, "cac_report")
    assert cac["status"] == "MANUAL" and cac["evidence"]["en"] == "due 2026-11-27T03:30:00+08:00, 3 h left"
    assert result["grading"]["grade"] == "relatively_major"
    assert _row(result, "pipl_notice_authority")["status"] == "FAIL"  # no notice record yet
    assert _row(result, "summary_30d")["status"] == "MANUAL"  # reportable, not closed yet


def test_incident_record_missing_fields_are_named():
    incident = {k: v for k, v in INCIDENT.items() if k not in ("place", "law_enforcement_contacted")}
    row = _row(_incident_result(incident), "incident_record")
    assert row["status"] == "FAIL"
    assert row["evidence"]["en"] == "ledgerguard_incident_record is missing: place, law enforcement contacted"
    assert row["evidence"]["zh"] == "事件记录缺少:地点、是否已联系执法机关"


NOTICE = {
    "data_categories": "工资表(姓名、身份证号、银行账号)",
    "cause": "勒索软件加密文件服务器",
    "possible_harm": "身份信息可能被滥用",
    "measures_taken": "隔离主机,从干净快照恢复",
    "individual_actions": "留意可疑来电,必要时挂失银行卡",
    "contact": "安全负责人 李经理 0571-00000000",
}


def test_pipl_notices_complete_sent_or_reason_recorded():
    incident = {
        **INCIDENT,
        "notices": {
            "authority": {**NOTICE, "sent_at": "2026-11-27T00:20:00+08:00", "recipient": "属地网信部门"},
            "individuals_not_notified_reason": "数据已加密且未外泄,措施能有效避免危害",
        },
    }
    result = _incident_result(incident)
    assert _row(result, "pipl_notice_authority")["status"] == "PASS"
    ind = _row(result, "pipl_notice_individuals")
    assert ind["status"] == "NOT-APPLICABLE"
    assert ind["evidence"]["en"].startswith("individuals not notified; recorded reason: 数据已加密")
    assert "authority may still require notice" in ind["evidence"]["en"]


def test_pipl_notice_missing_fields_and_unsent():
    partial = {k: v for k, v in NOTICE.items() if k != "individual_actions"}
    incident = {**INCIDENT, "notices": {"authority": partial, "individuals": NOTICE}}
    result = _incident_result(incident)
    auth = _row(result, "pipl_notice_authority")
    assert auth["status"] == "FAIL" and auth["evidence"]["en"] == "notice record is missing: what individuals can do"
    assert _row(result, "pipl_notice_individuals")["status"] == "MANUAL"  # complete, not sent yet


def test_no_personal_information_makes_pipl_rows_not_applicable():
    incident = {**INCIDENT, "personal_information_involved": False, "personal_information_reason": "仅凭证扫描件"}
    result = _incident_result(incident)
    assert _row(result, "pipl_notice_authority")["status"] == "NOT-APPLICABLE"
    undecided = {k: v for k, v in INCIDENT.items() if k != "personal_information_involved"}
    assert _row(_incident_result(undecided), "pipl_notice_authority")["status"] == "MANUAL"


def test_below_threshold_cac_not_applicable_with_reason():
    incident = {**INCIDENT, "grading": {**INCIDENT["grading"], "persons_affected": 120}}
    row = _row(_incident_result(incident), "cac_report")
    assert row["status"] == "NOT-APPLICABLE"
    assert row["evidence"]["en"] == (
        "graded below the 较大 (relatively major) threshold: the reporting threshold is not reached"
    )


def test_summary_overdue_fails_when_reportable():
    incident = {**INCIDENT, "closed_at": "2026-11-28T10:00:00+08:00"}
    row = _row(_incident_result(incident, now="2027-01-01T10:00:00+08:00"), "summary_30d")
    assert row["status"] == "FAIL"
    assert row["evidence"]["en"] == "due 2026-12-28T10:00:00+08:00, overdue by 4 d"


def test_drill_history_lines_and_verify_documents_are_read():
    text = '{"drill_id": "d1", "finished": "2026-11-25T00:00:00+00:00", "passed": true, "rto_seconds": 9}\n\n'
    assert c.parse_jsonl(text)[0]["drill_id"] == "d1"
    with pytest.raises(c.ComplianceInputError, match="history.jsonl line 2 is not valid JSON"):
        c.parse_jsonl('{"a": 1}\n{broken\n', "history.jsonl")
    doc = {"finished_at": "2026-11-26T00:00:00Z", "results": [{"repository": "r1", "status": "WARN"}]}
    assert c.verify_records(doc) == [{"repository": "r1", "status": "WARN", "time": "2026-11-26T00:00:00Z"}]
    assert c.normalize_verify(c.verify_records(doc)[0])["passed"] is True


def test_format_duration():
    assert c.format_duration(0) == "0 min"
    assert c.format_duration(90061, "en") == "1 d 1 h 1 min"
    assert c.format_duration(90061, "zh-CN") == "1天1小时1分钟"


def test_backup_verify_result_json_is_read():
    """The shape roles/backup_verify writes (filter backup_verify.bv_report, schema ledgerguard.backup_verify/1)."""
    doc = {
        "schema": "ledgerguard.backup_verify/1",
        "run_id": "20261126T100000Z",
        "generated_at": "2026-11-26T10:00:00Z",
        "status": "WARN",
        "repositories": [{"repository": "s3:http://127.0.0.1:9000/b/restic", "status": "OK", "checks": []}],
        "hosts": [
            {
                "host": "books1",
                "repository": "s3:http://127.0.0.1:9000/b/restic",
                "newest_snapshot": {"id": "ab", "time": "2026-11-26T09:00:00.123456789+08:00"},
                "status": "WARN",
                "checks": [],
            }
        ],
    }
    records = c.verify_records(doc)
    assert [r["status"] for r in records] == ["WARN", "OK"]
    norm = c.normalize_verify(records[0])
    assert norm["passed"] is True
    assert norm["newest_snapshot_time"].isoformat() == "2026-11-26T09:00:00.123456+08:00"
    policy = {**POLICY, "repositories": [{"url": "s3:http://127.0.0.1:9000/b/restic", "offsite": True}, {"name": "l"}]}
    result = c.build_checklist(_data(policy=policy, verifies=records))
    assert _row(result, "offsite_copy")["status"] == "PASS"
    assert _row(result, "snapshot_age")["evidence"]["en"].startswith("newest snapshot 2026-11-26T09:00:00+08:00")
