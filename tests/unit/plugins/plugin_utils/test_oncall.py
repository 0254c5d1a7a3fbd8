"""On-call messages (plugin_utils/oncall.py): rendering in zh-CN and en, masking, the hash-chained record, and
channels that are down (refused, silent) recorded as failed without raising."""

from __future__ import annotations

import json
import socket

import pytest

from ansible_collections.ledgerguard.recovery.plugins.action.oncall_notify import _step
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import verify_chain
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import oncall

REPORT = "/srv/evidence/INC-20261126-001/report.html"
HOSTS = {
    "books-hz01": {
        "clients": [{"id": "c001", "name": "杭州示例贸易有限公司"}, {"id": "c002", "name": "宁波海风餐饮管理有限公司"}],
        "results": [
            {
                "id": "c001",
                "name": "杭州示例贸易有限公司",
                "status": "ok",
                "verified": True,
                "snapshot": {"short_id": "2d3ee48c"},
            },
            {
                "id": "c002",
                "name": "宁波海风餐饮管理有限公司",
                "status": "ok",
                "verified": False,
                "snapshot": {"short_id": "2d3ee48c"},
            },
        ],
    },
    "books-nb02": {
        "clients": [{"id": "c003", "name": "温州三江五金制品厂"}],
        "results": [{"id": "c003", "name": "温州三江五金制品厂", "status": "failed", "msg": "no clean snapshot"}],
        "failed_step": "Check the repository before trusting it",
        "failed_msg": "connection refused",
    },
}
FACTS = {
    "incident_id": "INC-20261126-001",
    "cause": "ransomware",
    "summary": "勒索软件加密了账簿",
    "operator": "王会计",
    "detected_at": "2026-11-26T01:10:00Z",
    "lead": "张伟",
    "report_path": REPORT,
    "hosts": HOSTS,
}


def test_declare_in_chinese_names_what_where_who_and_the_report():
    msg = oncall.render("declare", "zh-CN", FACTS)
    assert msg["title"] == "事故 INC-20261126-001 已启动：客户数据恢复"
    assert msg["status"] == "WARN"
    assert msg["text"].splitlines() == [
        "- 事故编号：INC-20261126-001",
        "- 情况：勒索软件加密了账簿（初步原因：勒索软件）",
        "- 发现时间：2026-11-26 09:10:00（北京时间）",
        "- 负责人：张伟；执行人：王会计",
        "- 涉及主机与客户：",
        "- books-hz01：c001 杭州示例贸易有限公司、c002 宁波海风餐饮管理有限公司",
        "- books-nb02：c003 温州三江五金制品厂",
        f"- 完成后的报告：{REPORT}",
    ]


def test_declare_in_english():
    msg = oncall.render("declare", "en", FACTS)
    assert msg["title"] == "Incident INC-20261126-001 declared: client data recovery"
    assert "- Detected: 2026-11-26 01:10:00 UTC" in msg["text"].splitlines()
    assert "- Lead: 张伟; operator: 王会计" in msg["text"].splitlines()
    assert f"- Report (when done): {REPORT}" in msg["text"].splitlines()


@pytest.mark.parametrize(
    ("lang", "lines"),
    [
        (
            "zh-CN",
            [
                "- c001 杭州示例贸易有限公司（books-hz01）：已恢复并验证（快照 2d3ee48c）",
                "- c002 宁波海风餐饮管理有限公司（books-hz01）：已恢复，未能验证（快照 2d3ee48c），需人工复核",
                "- c003 温州三江五金制品厂（books-nb02）：失败，需人工处理：no clean snapshot",
                "失败的客户需要人工处理：修复原因后用同一事故编号重新运行。",
            ],
        ),
        (
            "en",
            [
                "- c001 杭州示例贸易有限公司 (books-hz01): restored and verified (snapshot 2d3ee48c)",
                "- c002 宁波海风餐饮管理有限公司 (books-hz01): restored, NOT verified (snapshot 2d3ee48c): "
                "a person must re-check",
                "- c003 温州三江五金制品厂 (books-nb02): FAILED, needs a person: no clean snapshot",
                "Failed clients need a person: fix the cause, then re-run with the same incident id.",
            ],
        ),
    ],
)
def test_each_clients_result(lang, lines):
    msg = oncall.render("clients", lang, FACTS)
    assert msg["text"].splitlines() == lines
    assert msg["status"] == "FAIL"
    assert ("2/3 已恢复" if lang == "zh-CN" else "2 of 3 restored") in msg["title"]


def test_failure_names_the_host_step_and_what_to_do():
    msg = oncall.render("failure", "zh-CN", FACTS)
    assert msg["status"] == "FAIL"
    assert msg["text"].splitlines() == [
        "- books-nb02：步骤「Check the repository before trusting it」失败：connection refused",
        f"解冻和报告仍会执行；主机锁保留，修复后用 ledgerguard_incident_id=INC-20261126-001 重新运行。报告：{REPORT}",
    ]


DB_FAILED = {
    "engine": "postgresql",
    "database": "hzbooks",
    "ok": False,
    "msg": "the ledger of the restore does not check out",
}


@pytest.mark.parametrize(
    ("lang", "line"),
    [
        ("zh-CN", "- books-hz01：数据库 postgresql/hzbooks 恢复失败：the ledger of the restore does not check out"),
        ("en", "- books-hz01: database postgresql/hzbooks failed: the ledger of the restore does not check out"),
    ],
)
def test_failure_names_each_database_not_restored(lang, line):
    restored = {"engine": "mysql", "database": "payroll", "ok": True, "msg": ""}
    hosts = {"books-hz01": {"clients": [], "results": [], "databases": [restored, DB_FAILED]}}
    assert oncall.needs_a_person(hosts)
    assert not oncall.needs_a_person({"books-hz01": {"databases": [restored]}})
    msg = oncall.render("failure", lang, dict(FACTS, hosts=hosts))
    assert msg["status"] == "FAIL"
    assert msg["text"].splitlines()[0] == line
    assert len(msg["text"].splitlines()) == 2  # the database, then what to do


def test_end_gives_rto_window_and_report():
    report = {
        "status": "partial",
        "summary": {
            "clients_restored": 2,
            "clients_total": 3,
            "rto_seconds": None,
            "max_data_loss_window": "7 h 10 min",
        },
        "problems": ["books-nb02/c003: no clean snapshot"],
    }
    zh = oncall.render("end", "zh-CN", dict(FACTS, report=report))
    assert zh["title"] == "事故 INC-20261126-001 结束：部分恢复" and zh["status"] == "WARN"
    assert zh["text"].splitlines() == [
        "- 已恢复客户：2/3",
        "- 实际恢复时间（RTO，宣布至验证）：未达成（仍有客户未恢复）",
        "- 数据丢失窗口（最长）：7 h 10 min",
        f"- 报告：{REPORT}",
        "- 待处理：books-nb02/c003: no clean snapshot",
    ]
    done = dict(
        report, status="restored", problems=[], summary=dict(report["summary"], rto_seconds=754.0, rto="12 min 34 s")
    )
    en = oncall.render("end", "en", dict(FACTS, report=done))
    assert en["title"] == "Incident INC-20261126-001 ended: all restored" and en["status"] == "OK"
    assert "- RTO achieved (declared to verified): 12 min 34 s" in en["text"].splitlines()


def test_dry_run_says_so_first():
    msg = oncall.render("end", "en", dict(FACTS, check_mode=True))
    assert msg["text"].splitlines()[0] == "**Dry run (--check): nothing changed, nothing sent.**"
    assert msg["title"] == "Incident INC-20261126-001: dry run finished"


def test_unknown_milestone_or_language_is_refused():
    with pytest.raises(oncall.OncallError, match="milestone 'begin' is not one of declare, clients, failure, end"):
        oncall.render("begin", "en", FACTS)
    with pytest.raises(oncall.OncallError, match="language 'fr' is not one of zh-CN, en"):
        oncall.render("end", "fr", FACTS)


def test_urls_and_secrets_are_masked():
    url = "https://oapi.dingtalk.com/robot/send?access_token=abcdef123456"
    assert oncall.mask_url(url) == "https://oapi.dingtalk.com/…"
    assert oncall.mask_url("http://127.0.0.1:8080/hook/xyz") == "http://127.0.0.1:8080/…"
    channel = {"kind": "dingtalk", "url": url, "secret": "SECsigning"}
    text = f"failed posting to {url} (token abcdef123456) signed with SECsigning and pw hunter22"
    assert oncall.scrub(text, channel, "hunter22") == "failed posting to *** (token ***) signed with *** and pw ***"
    mail = {"kind": "mail", "host": "smtp.example.cn", "port": 587, "to": ["a@example.cn", "b@example.cn"]}
    assert oncall.target_of(mail) == "smtp://smtp.example.cn:587 -> a@example.cn, b@example.cn"


def test_channel_definitions_that_cannot_work_are_named():
    people = [
        {"name": "张伟", "channels": [{"kind": "mail", "host": "smtp.example.cn", "from": "x@example.cn"}]},
        {"name": "Li", "language": "fr", "channels": [{"kind": "slack", "url": "ftp://x/y"}, {"kind": "sms"}]},
        {"role": "lead"},
    ]
    assert oncall.person_errors(people) == [
        "ledgerguard_oncall[1] (张伟) channel 1: a mail channel needs to "
        "(SMTP host, sender address, recipient address)",
        "ledgerguard_oncall[2] (Li): language must be one of zh-CN, en",
        "ledgerguard_oncall[2] (Li) channel 1: a slack channel needs url starting with http:// or https:// (got "
        "ftp://x/…)",
        "ledgerguard_oncall[2] (Li) channel 2: kind 'sms' is not one of dingtalk, wecom, feishu, slack, generic, mail",
        "ledgerguard_oncall[3] needs a name",
    ]
    assert oncall.lead_of([{"name": "A"}, {"name": "B", "role": "lead"}]) == "B"
    assert oncall.lead_of([{"name": "A"}], "王会计") == "王会计"


PEOPLE = [
    {
        "name": "张伟",
        "role": "lead",
        "channels": [
            {"kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1"},
            {"kind": "mail", "host": "smtp.example.cn", "from": "lg@example.cn", "to": ["zw@example.cn"]},
        ],
    },
    {
        "name": "Li Na",
        "language": "en",
        "channels": [{"kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"}],
    },
]


def test_deliveries_are_recorded_in_a_hash_chain_with_the_texts_hash(tmp_path):
    sent = []

    def sender(channel, message, timeout, data):
        sent.append((channel["kind"], message["text"], timeout, data))
        return (False, "connection refused") if channel["kind"] == "mail" else (True, "errcode 0")

    path = tmp_path / "oncall.jsonl"
    records = oncall.deliver(PEOPLE, "declare", FACTS, timeout=5, record_path=str(path), sender=sender)
    assert [(r["person"], r["channel"], r["status"], r["reason"]) for r in records] == [
        ("张伟", "wecom", "ok", "errcode 0"),
        ("张伟", "mail", "failed", "connection refused"),
        ("Li Na", "slack", "ok", "errcode 0"),
    ]
    zh, en = oncall.render("declare", "zh-CN", FACTS), oncall.render("declare", "en", FACTS)
    assert [s[1] for s in sent] == [zh["text"], zh["text"], en["text"]]
    assert {s[2] for s in sent} == {5} and sent[0][3] == {"incident_id": "INC-20261126-001", "milestone": "declare"}
    assert records[0]["text_sha256"] == oncall.text_sha256(zh["text"])
    assert records[2]["text_sha256"] == oncall.text_sha256(en["text"])
    assert records[0]["target"] == "https://qyapi.weixin.qq.com/…"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert {k: lines[1][k] for k in ("milestone", "person", "role", "channel", "status", "reason", "text_sha256")} == {
        "milestone": "declare",
        "person": "张伟",
        "role": "lead",
        "channel": "mail",
        "status": "failed",
        "reason": "connection refused",
        "text_sha256": oncall.text_sha256(zh["text"]),
    }
    assert verify_chain(str(path))["ok"]
    assert "K1" not in path.read_text(encoding="utf-8") and "services/T/B/X" not in path.read_text(encoding="utf-8")
    assert _step(records[1]) == {
        "task": "On-call declare: 张伟 (lead) via mail smtp://smtp.example.cn:25 -> zw@example.cn",
        "status": "failed",
        "changed": False,
        "msg": "connection refused",
    }


def test_check_mode_sends_and_records_nothing(tmp_path):
    def sender(*_args):
        raise AssertionError("check mode must not send")

    path = tmp_path / "oncall.jsonl"
    records = oncall.deliver(PEOPLE, "clients", FACTS, check_mode=True, record_path=str(path), sender=sender)
    assert {r["status"] for r in records} == {"would_send"} and not path.exists()
    assert records[2]["text"].startswith("**Dry run (--check): nothing changed, nothing sent.**\n- c001 ")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_channel_that_is_down_or_silent_is_a_reason_not_an_exception(monkeypatch):
    msg = oncall.render("declare", "en", FACTS)
    port = _closed_port()
    hook = {"kind": "dingtalk", "url": f"http://127.0.0.1:{port}/robot/send?access_token=TOKEN9", "secret": "SEC9"}
    assert oncall.send(hook, msg, 1) == (False, "connection refused")
    mail = {"kind": "mail", "host": "127.0.0.1", "port": port, "from": "a@x.cn", "to": ["b@x.cn"], "username": "a"}
    monkeypatch.delenv("LG_TEST_SMTP_PW", raising=False)
    assert oncall.send(dict(mail, password_env="LG_TEST_SMTP_PW"), msg, 1) == (
        False,
        "password_env LG_TEST_SMTP_PW is not set in the controller's environment",
    )
    monkeypatch.setenv("LG_TEST_SMTP_PW", "hunter22")
    assert oncall.send(dict(mail, password_env="LG_TEST_SMTP_PW"), msg, 1) == (False, "connection refused")
    with socket.socket() as silent:  # accepts the connection (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook?token=TOKEN9"
        assert oncall.send({"kind": "generic", "url": url}, msg, 0.3) == (False, "no answer within 0.3 s (timed out)")
        smtp = dict(mail, port=silent.getsockname()[1])
        assert oncall.send(smtp, msg, 0.3) == (False, "no answer within 0.3 s (timed out)")


def test_a_record_that_cannot_be_written_does_not_stop_the_deliveries(tmp_path):
    """oncall.jsonl cannot be written (its folder is a file): every message still goes out, each record says why it
    was not recorded, nothing raises (the incident goes on)."""
    sent = []

    def sender(channel, message, timeout, data):
        sent.append(channel["kind"])
        return True, "errcode 0"

    blocked = tmp_path / "证据"
    blocked.write_text("a file where the evidence folder should be", encoding="utf-8")
    path = blocked / "oncall.jsonl"
    records = oncall.deliver(PEOPLE, "declare", FACTS, timeout=5, record_path=str(path), sender=sender)
    assert sent == ["wecom", "mail", "slack"] and [r["status"] for r in records] == ["ok", "ok", "ok"]
    assert {r["record_error"] for r in records} == {f"not recorded in {path}: Not a directory"}
