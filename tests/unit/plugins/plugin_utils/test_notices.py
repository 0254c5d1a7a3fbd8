"""Customer notices: the drafts planned per client / milestone / language, the index, the approval rules, the
milestone templates' rendering, and the compliance rows closing from the delivery records."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import jinja2
import pytest
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance as c
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import notices as n

TEMPLATES = Path(__file__).resolve().parents[4] / "roles" / "report" / "templates"

CONFIGURED = [
    {
        "id": "c001",
        "name": "杭州示例贸易有限公司",
        "paths": ["/srv/books/c001"],
        "contacts": [
            {
                "name": "张会计",
                "role": "财务负责人",
                "mail": "zhang@example.cn",
                "phone": "13800000000",
                "language": "zh-CN",
            },
            {"name": "Anna Li", "role": "CFO", "mail": "anna@example.com", "language": "en"},
            {"name": "王出纳", "role": "出纳", "phone": "13900000000", "language": "zh"},
        ],
    },
    {"id": "c002", "name": "宁波海风餐饮管理有限公司", "paths": ["/srv/books/c002"], "language": "en"},
    {"id": "c003", "name": "温州三江五金制品厂", "paths": ["/srv/books/c003"]},
]
RESULTS = [
    {"id": "c001", "name": "杭州示例贸易有限公司", "host": "books-a", "status": "ok"},
    {"id": "c002", "name": "宁波海风餐饮管理有限公司", "host": "books-a", "status": "failed"},
    {"id": "c003", "name": "温州三江五金制品厂", "host": "books-b", "status": "ok"},
]


def test_plan_per_client_milestone_and_contact_language():
    plan = n.plan(RESULTS, CONFIGURED, ["zh-CN", "en"])
    assert [e["id"] for e in plan] == [
        "c001.confirmed.zh-CN", "c001.confirmed.en", "c001.restored.zh-CN", "c001.restored.en",
        "c001.final.zh-CN", "c001.final.en",
        # c002 is not restored: confirmed and restoring, in its own language only (no contacts)
        "c002.confirmed.en", "c002.restoring.en",
        # c003 has neither contacts nor language: the report's default languages
        "c003.confirmed.zh-CN", "c003.confirmed.en", "c003.restored.zh-CN", "c003.restored.en",
        "c003.final.zh-CN", "c003.final.en",
    ]  # fmt: skip
    first = plan[0]
    assert first["path"] == "notices/c001.zh-CN.md"  # the confirmed notice keeps its historical name
    assert plan[4]["path"] == "notices/c001.final.zh-CN.md"
    # Recipients are the contacts of the draft's language ("zh" is zh-CN); a contact without mail is kept (phone).
    assert [r["name"] for r in first["recipients"]] == ["张会计", "王出纳"]
    assert [r["mail"] for r in plan[1]["recipients"]] == ["anna@example.com"]
    assert (first["status"], first["client_name"], first["host"]) == ("draft", "杭州示例贸易有限公司", "books-a")
    assert plan[6]["recipients"] == []


def test_plan_keeps_notices_that_are_no_longer_drafts():
    existing = {"notices": [{"id": "c001.confirmed.zh-CN", "status": "sent", "sha256": "ab" * 32, "sent_at": "x"}]}
    plan = n.plan(RESULTS[:1], CONFIGURED, ["zh-CN"], existing)
    kept = plan[0]
    assert kept["keep"] is True and kept["status"] == "sent" and kept["sha256"] == "ab" * 32
    assert all(e["keep"] is False for e in plan[1:])
    # A re-run for c002 only keeps c001's notices in the index (and does not rewrite them).
    rerun = n.plan(RESULTS[1:2], CONFIGURED, ["zh-CN"], existing)
    assert [(e["id"], e["keep"]) for e in rerun] == [
        ("c002.confirmed.en", False),
        ("c002.restoring.en", False),
        ("c001.confirmed.zh-CN", True),
    ]


@pytest.mark.parametrize(
    ("contact", "message"),
    [
        ({"name": "", "mail": "a@b.cn"}, "ledgerguard_clients[c009].contacts[0].name is empty"),
        ({"name": "李", "mail": "not-an-address"}, "contacts[0].mail 'not-an-address' is not a mail address"),
        ({"name": "李"}, "contacts[0] has neither mail nor phone"),
        ({"name": "李", "mail": "a@b.cn", "language": "fr"}, "contacts[0].language: 'fr' is not a supported language"),
        ({"name": "李", "mail": "a@b.cn", "wechat": "x"}, "contacts[0] has unknown keys wechat"),
    ],
)
def test_bad_contacts_are_named(contact, message):
    with pytest.raises(n.NoticeError, match=None) as err:
        n.plan([{"id": "c009", "status": "ok"}], [{"id": "c009", "contacts": [contact]}], ["zh-CN"])
    assert message in str(err.value)


def test_index_hashes_the_bytes_written(tmp_path):
    (tmp_path / "notices").mkdir()
    plan = n.plan(RESULTS[1:2], CONFIGURED, ["zh-CN"])
    for entry in plan:
        (tmp_path / entry["path"]).write_bytes(f"# 通知 {entry['id']}\n".encode("gbk"))
    doc = n.build_index("INC-20261126-001", plan, str(tmp_path), "2026-11-26T08:00:00Z")
    assert doc["incident_id"] == "INC-20261126-001" and "keep" not in doc["notices"][0]
    for entry in doc["notices"]:
        assert entry["sha256"] == hashlib.sha256((tmp_path / entry["path"]).read_bytes()).hexdigest()
    n.save_index(str(tmp_path), doc)
    assert n.load_index(str(tmp_path)) == doc
    assert (tmp_path / "notices" / "index.json").stat().st_mode & 0o777 == 0o600


FINISHED = "# 关于贵司会计资料安全事件的告知\n\n致：杭州示例贸易有限公司\n".encode()


def _entry(**kw):
    base = {
        "id": "c001.final.zh-CN",
        "client": "c001",
        "milestone": "final",
        "language": "zh-CN",
        "path": "notices/c001.final.zh-CN.md",
        "status": "draft",
        "recipients": [{"name": "张会计", "mail": "zhang@example.cn"}],
    }
    base.update(kw)
    return base


def test_approval_records_the_exact_text_and_send_rules():
    entry = _entry()
    with pytest.raises(n.NoticeError) as err:
        n.check_sendable(entry, n.sha256_bytes(FINISHED))
    assert str(err.value) == (
        "notice c001.final.zh-CN is not approved (status draft): nothing reaches a customer without a person's "
        "approval; review it with 'ledgerguard notices show c001.final.zh-CN', then 'ledgerguard notices approve "
        "c001.final.zh-CN --by NAME'"
    )
    assert n.approve(entry, "李经理", "2026-11-26T09:00:00Z", FINISHED) is True
    assert (entry["status"], entry["approved_by"], entry["approved_sha256"]) == (
        "approved",
        "李经理",
        hashlib.sha256(FINISHED).hexdigest(),
    )
    assert n.approve(entry, "李经理", "2026-11-26T09:05:00Z", FINISHED) is False  # same text: nothing new
    assert entry["approved_at"] == "2026-11-26T09:00:00Z"
    n.check_sendable(entry, n.sha256_bytes(FINISHED))
    changed = FINISHED + "补充一句。\n".encode()
    with pytest.raises(n.NoticeError, match=r"was changed after its approval by 李经理 \(approved sha256 "):
        n.check_sendable(entry, n.sha256_bytes(changed))
    n.record_delivery(entry, {"result": "failed", "at": "t1", "error": "refused"})
    assert entry["status"] == "failed"
    n.check_sendable(entry, n.sha256_bytes(FINISHED))  # a failed delivery may be retried
    n.record_delivery(entry, {"result": "sent", "at": "2026-11-26T09:10:00Z"})
    assert (entry["status"], entry["sent_at"], len(entry["deliveries"])) == ("sent", "2026-11-26T09:10:00Z", 2)
    with pytest.raises(n.NoticeError, match="was already sent at 2026-11-26T09:10:00Z; it is not sent twice"):
        n.check_sendable(entry, n.sha256_bytes(FINISHED))
    with pytest.raises(n.NoticeError, match="a sent notice cannot be approved again"):
        n.approve(entry, "李经理", "t", changed)


def test_unfinished_drafts_and_empty_names_are_not_approved():
    draft = "# 【草稿，须经人工审核后发送】最终通知\n\n[代理记账机构名称 / agency name]\n".encode()
    with pytest.raises(n.NoticeError) as err:
        n.approve(_entry(), "李经理", "t", draft)
    assert str(err.value) == (
        "notice c001.final.zh-CN is not ready to approve: notices/c001.final.zh-CN.md still holds "
        "'【草稿，须经人工审核后发送】'; '[代理记账机构名称 / agency name]'. Edit the file (remove the draft marker "
        "and footer, fill in the placeholders), then approve it"
    )
    with pytest.raises(n.NoticeError, match="--by is empty"):
        n.approve(_entry(), "  ", "t", FINISHED)
    with pytest.raises(n.NoticeError, match="has no mail recipient"):
        entry = _entry(recipients=[{"name": "王出纳", "phone": "139"}])
        n.approve(entry, "李经理", "t", FINISHED)
        n.check_sendable(entry, n.sha256_bytes(FINISHED))


# ------------------------------------------------------------------------------------------ rendering


def _render(name: str, client: dict, **more) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True)
    ctx = {
        "__client": client,
        "__notice": {"recipients": [{"name": "张会计"}, {"name": "王出纳"}]},
        "__report": {"incident": {"incident_id": "INC-20261126-001", "detected_at": "2026-11-26T08:30:00+08:00"}},
        "report_agency_name": "杭州记账有限公司",
        "report_contact": "李经理 0571-00000000",
    }
    ctx.update(more)
    return env.get_template(name).render(ctx)


RESTORED = {
    "id": "c001",
    "name": "杭州示例贸易有限公司",
    "status": "ok",
    "snapshot": {"time": "2026-11-25T23:00:00+08:00"},
    "restored": ["a", "b"],
    "replaced": ["c"],
    "data_loss_window": "9 h 30 min",
    "finished": "2026-11-26T10:00:00Z",
    "cause": {"cause": "ransomware"},
}


def test_milestone_templates_render_the_clients_own_results():
    zh = _render("notice_restored.zh-CN.md.j2", RESTORED)
    assert "致：杭州示例贸易有限公司（客户编号 c001）　张会计、王出纳 收" in zh
    assert (
        "已用 2026-11-25T23:00:00+08:00 的备份恢复，并逐一与该备份校验（恢复文件 3 个），完成时间 2026-11-26T10:00:00Z"
        in zh
    )
    assert "数据丢失窗口约 9 h 30 min" in zh
    en = _render("notice_final.en.md.j2", RESTORED)
    assert "ransomware encrypted or altered some files" in en
    assert "(data-loss window about 9 h 30 min)" in en and "(3 files put back)" in en
    assert en.endswith("It is not legal advice.\n")
    waiting = dict(RESTORED, status="failed")
    eta = _render("notice_restoring.en.md.j2", waiting, report_notice_eta="2026-11-27 18:00 (Beijing time)")
    assert "- Expected completion: 2026-11-27 18:00 (Beijing time)." in eta
    # The restore queue's ETA, in the firm's local time, and without a drill measurement a plain statement.
    [queued_zh] = n.plan(
        [dict(waiting, status="pending", eta="2026-11-26T07:12:30Z", eta_basis="drill d1", eta_utc_offset="+08:00")],
        CONFIGURED[:1],
        ["zh-CN"],
        milestones=["restoring"],
    )[:1]
    assert (queued_zh["eta"], queued_zh["eta_basis"]) == ("2026-11-26T07:12:30Z", "drill d1")
    with_eta = _render("notice_restoring.zh-CN.md.j2", waiting, __notice=queued_zh)
    assert "- 预计完成时间：约 2026-11-26 15:12（UTC+08:00），按我方恢复演练实测的恢复速度估算；" in with_eta
    [none_en] = n.plan([dict(waiting, eta="", eta_basis="no drill measurement")], [], ["en"], None, ["restoring"])
    no_eta = _render("notice_restoring.en.md.j2", waiting, __notice=none_en)
    assert (
        "- Expected completion: cannot be given yet (none of our recovery drills has measured how long restoring your "
        "records takes)." in no_eta
    )
    assert n.unfinished(no_eta) == ["[DRAFT — to be reviewed by a person before sending]", "This is a generated draft"]
    [none_zh] = n.plan([dict(waiting, eta="")], [], ["zh-CN"], None, ["restoring"])
    no_eta_zh = _render("notice_restoring.zh-CN.md.j2", waiting, __notice=none_zh)
    assert "- 预计完成时间：暂时无法给出（我方的恢复演练尚未测得贵司资料的恢复用时）；" in no_eta_zh
    assert n.unfinished(no_eta_zh) == ["【草稿，须经人工审核后发送】", "本函为系统生成的草稿"]


def test_each_milestone_drafts_only_its_own_notices_and_keeps_the_others():
    pending = [dict(r, status="pending") for r in RESULTS]
    confirmed = n.plan(pending, CONFIGURED, ["zh-CN", "en"], None, ["confirmed"])
    assert [e["id"] for e in confirmed] == [
        "c001.confirmed.zh-CN", "c001.confirmed.en", "c002.confirmed.en", "c003.confirmed.zh-CN", "c003.confirmed.en"
    ]  # fmt: skip
    index = {"notices": [dict(e, sha256="1" * 64) for e in confirmed]}
    index["notices"][0]["status"] = "approved"
    queued = [dict(r, eta="2026-11-26T02:00:00Z" if r["id"] == "c001" else "") for r in pending]
    restoring = n.plan(queued, CONFIGURED, ["zh-CN", "en"], index, ["restoring"])
    drafted = [e for e in restoring if not e["keep"]]
    assert [e["id"] for e in drafted] == [
        "c001.restoring.zh-CN", "c001.restoring.en", "c002.restoring.en", "c003.restoring.zh-CN", "c003.restoring.en"
    ]  # fmt: skip
    assert drafted[1]["eta_text"] == (
        "about 2026-11-26 10:00 (UTC+08:00), estimated from the restore speed our recovery drills measured"
    )
    assert drafted[2]["eta"] == "" and drafted[2]["eta_text"] == n.NO_ETA["en"]
    # The confirmed drafts are kept as written (their files are not rewritten), the approved one too.
    assert [e["id"] for e in restoring if e["keep"]] == [e["id"] for e in confirmed]
    # At the end every reached milestone is drafted again from the final results, the ETA kept from the first draft,
    # and a notice a person acted on is never rewritten.
    index = {"notices": [dict(e, sha256="1" * 64) for e in restoring]}
    end = {e["id"]: e for e in n.plan(RESULTS, CONFIGURED, ["zh-CN", "en"], index)}
    assert end["c001.confirmed.zh-CN"]["keep"] is True and end["c001.confirmed.zh-CN"]["status"] == "approved"
    assert end["c001.final.en"]["keep"] is False and end["c001.restoring.en"]["keep"] is True
    assert end["c002.restoring.en"]["keep"] is False and end["c002.restoring.en"]["eta_text"] == n.NO_ETA["en"]
    # A run without the restoring milestone (playbooks/restore.yml) estimated nothing: the draft does not blame drills.
    [alone] = n.plan([RESULTS[1]], CONFIGURED, ["zh-CN"], None, ["restoring"])
    assert (alone["eta"], alone["eta_basis"], alone["eta_text"]) == ("", "not estimated", "cannot be given yet")
    with pytest.raises(n.NoticeError, match="milestones: later unknown; expected some of confirmed, restoring"):
        n.plan(RESULTS, CONFIGURED, [], None, ["later"])


# ------------------------------------------------------------------------------------------ compliance rows

INCIDENT = {"detected_at": "2026-11-26T08:30:00+08:00", "personal_information_involved": True, "notices": {}}


def _records():
    plan = n.plan(RESULTS, CONFIGURED, ["zh-CN"])
    for e in plan:
        e.pop("keep")
        e["sha256"] = "0" * 64
    return plan


def _send(records, nid, at):
    for e in records:
        if e["id"] == nid:
            e.update(status="sent", sent_at=at)


def _rows(records, incident=None):
    return {r["id"]: r for r in c.rows_notices(incident or INCIDENT, {}, records)}


def test_customer_row_closes_when_every_clients_final_notice_is_sent():
    records = _records()
    rows = _rows(records)
    assert rows["customer_notices"]["status"] == "MANUAL"
    assert rows["customer_notices"]["evidence"]["en"].startswith("no client told yet; final notice not sent yet to")
    assert rows["pipl_notice_individuals"]["evidence"]["en"] == "no notice record"  # no records sent, no sent_at
    for nid, at in (
        ("c001.confirmed.zh-CN", "2026-11-26T09:00:00Z"),
        ("c001.final.zh-CN", "2026-11-26T12:00:00Z"),
        ("c003.final.zh-CN", "2026-11-26T12:05:00Z"),
    ):
        _send(records, nid, at)
    rows = _rows(records)
    cust = rows["customer_notices"]
    assert cust["status"] == "MANUAL"
    assert cust["evidence"]["en"] == (
        "c001 first told 2026-11-26T09:00:00Z, c003 first told 2026-11-26T12:05:00Z; final notice not sent yet to "
        "c002 (0 waiting for approval, 0 approved and not sent, 0 failed delivery); no final notice drafted yet for "
        "c002 (not restored yet)"
    )
    # c002 is restored on a later run: its final notice is drafted and sent.
    records.append(dict(records[-1], id="c002.final.en", client="c002", language="en", milestone="final"))
    _send(records, "c002.final.en", "2026-11-27T08:00:00Z")
    cust = _rows(records)["customer_notices"]
    assert cust["status"] == "PASS"
    assert cust["evidence"]["en"] == (
        "c001 first told 2026-11-26T09:00:00Z, c002 first told 2026-11-27T08:00:00Z, c003 first told "
        "2026-11-26T12:05:00Z; final notice sent to every client (c001 2026-11-26T12:00:00Z, c002 "
        "2026-11-27T08:00:00Z, c003 2026-11-26T12:05:00Z)"
    )


def test_pipl_row_closes_from_the_confirmed_notices_records_and_records_win_over_sent_at():
    records = _records()
    typed = dict(
        INCIDENT, notices={"individuals": {f: "x" for f in c.NOTICE_FIELDS} | {"sent_at": "2026-11-26T10:00:00Z"}}
    )
    # No record sent yet: the hand-typed sent_at still closes the row (fallback).
    assert _rows(records, typed)["pipl_notice_individuals"]["evidence"]["en"].startswith("sent 2026-11-26T10:00:00Z")
    _send(records, "c001.confirmed.zh-CN", "2026-11-26T09:00:00Z")
    row = _rows(records, typed)["pipl_notice_individuals"]
    assert row["status"] == "MANUAL"
    assert row["evidence"]["en"].startswith(
        "notice with the Art. 57 content sent to 1 of 3 clients; not yet: c002, c003"
    )
    _send(records, "c002.confirmed.en", "2026-11-26T09:30:00Z")
    _send(records, "c003.confirmed.zh-CN", "2026-11-26T09:40:00Z")
    row = _rows(records, typed)["pipl_notice_individuals"]
    assert row["status"] == "PASS" and row["sent_at"] == "2026-11-26T09:40:00Z"
    assert row["evidence"]["en"].startswith("sent 2026-11-26T09:40:00Z (last of 3 clients, delivery records in ")
    # No personal information: the PIPL rows stay NOT-APPLICABLE whatever was sent; the customer row is still kept.
    rows = _rows(records, dict(INCIDENT, personal_information_involved=False))
    assert rows["pipl_notice_individuals"]["status"] == "NOT-APPLICABLE" and "customer_notices" in rows


def test_refresh_recomputes_only_the_notice_rows_of_a_stored_checklist():
    records = _records()
    checklist = c.build_checklist(
        {"mode": "incident", "now": "2026-11-26T12:00:00Z", "incident": INCIDENT, "notices": records}
    )
    before = {r["id"]: r for r in checklist["rows"]}
    for e in records:
        if e["milestone"] in ("confirmed", "final"):
            e.update(status="sent", sent_at="2026-11-26T13:00:00Z")
    records.append(
        dict(records[0], id="c002.final.zh-CN", client="c002", milestone="final", status="sent", sent_at="t")
    )
    fresh = c.refresh_notice_rows(copy.deepcopy(checklist), records)
    after = {r["id"]: r for r in fresh["rows"]}
    assert [r["id"] for r in fresh["rows"]] == [r["id"] for r in checklist["rows"]]
    assert before["customer_notices"]["status"] == "MANUAL" and after["customer_notices"]["status"] == "PASS"
    assert after["pipl_notice_individuals"]["status"] == "PASS"
    assert {k: v for k, v in after.items() if k not in c.NOTICE_ROW_IDS} == {
        k: v for k, v in before.items() if k not in c.NOTICE_ROW_IDS
    }
    assert fresh["summary"]["PASS"] == checklist["summary"]["PASS"] + 2
