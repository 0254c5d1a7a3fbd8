"""``ledgerguard review`` on a synthetic evidence folder shaped like the incident path writes it (incident.json,
report.json, timeline.jsonl, a drill's history): the draft's figures and judgements, the files it could not read,
action items and their validation, the satisfaction follow-up. Exact texts, real files, no hosts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ledgerguard import cli

IID = "INC-20261126-001"
SCORE_HELP = "expected a whole number from 1 (very dissatisfied) to 5 (very satisfied)"
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def client(cid, name, host, status="ok", finished="2026-11-26T16:10:00Z", cause="ransomware", **more):
    return {
        "id": cid, "name": name, "host": host, "status": status, "verified": status == "ok",
        "started": "2026-11-26T15:50:00Z", "finished": finished, "data_loss_window_seconds": 30600.0,
        "cause": {"cause": cause, "declared": "ransomware", "source": "detected", "signs": ["ransom_note"],
                  "evidence": [f"snapshot 34671621: ransom note present in {name}"], "writers": []},
        "containment": {"writers_stopped": []}, "late_writers": [], "skipped": [], **more,
    }  # fmt: skip


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "evidence"
    folder = root / IID
    folder.mkdir(parents=True)
    incident = {
        "version": 1, "incident_id": IID, "declared_at": "2026-11-26T15:40:00Z", "detected_at": "2026-11-26T15:30:00Z",
        "loss_started": "", "cause": "ransomware", "operator": "王会计", "summary": "勒索软件加密了两家客户的账套",
        "hosts": ["books1", "books2"], "clients": {"books1": ["c001", "c002"], "books2": ["c003"]},
        "runs": ["2026-11-26T15:40:00Z"], "pinned": {}, "evidence_dir": str(folder),
    }  # fmt: skip
    report = {
        "status": "partial",
        "generated_at": "2026-11-26T16:40:00Z",
        "clients": [
            client("c001", "杭州示例贸易有限公司", "books1", finished="2026-11-26T15:55:00Z"),
            client("c002", "宁波海风餐饮管理有限公司", "books1", finished="2026-11-26T16:30:00Z", cause="deleted"),
            client("c003", "温州三江五金制品厂", "books2", status="failed", msg="no clean snapshot before the loss"),
        ],
        "hosts": [
            {"host": "books1", "frozen": True, "frozen_at": "2026-11-26T15:45:00Z", "thawed": True,
             "thawed_at": "2026-11-26T16:35:00Z"},
            {"host": "books2", "frozen": True, "frozen_at": "2026-11-26T15:46:00Z", "thawed": False,
             "thaw_msg": "umount busy"},
        ],  # fmt: skip
        "containment": [
            {"host": "books1", "pid": 4242, "comm": "encryptor", "user": "www-data", "role": "writer",
             "action": "stopped", "acted_at": "2026-11-26T15:45:02Z"},
        ],  # fmt: skip
        "files_to_review": [{"client": "c002", "path": "/srv/books/c002/凭证/2026-11-补录.csv"}],
        "problems": [],
        "summary": {"rto_seconds": 3000.0, "max_data_loss_window_seconds": 30600.0, "clients_restored": 2,
                    "clients_total": 3, "files_restored": 17, "files_quarantined": 9, "files_to_review": 1,
                    "containment": {"writers_found": 1, "stopped": 1, "killed": 0, "still_running": 0}},
    }  # fmt: skip
    (folder / "incident.json").write_text(json.dumps(incident, ensure_ascii=False), encoding="utf-8")
    (folder / "report.json").write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    events = [
        {"event": "run_start", "time": "2026-11-26T15:40:00Z"},
        {"event": "task", "host": "books2", "task": "restore : Swap the client's folder", "status": "failed",
         "time": "2026-11-26T16:20:00Z"},
        {"event": "run_end", "time": "2026-11-26T16:41:00Z"},
    ]  # fmt: skip
    (folder / "timeline.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    drill = root / "drill-20261101T020000Z" / "hosts" / "books1"
    drill.mkdir(parents=True)
    rec = {
        "kind": "drill",
        "drill_id": "drill-20261101T020000Z",
        "finished": "2026-11-01T02:03:00+00:00",
        "clients": [
            {"id": "c001", "rto_seconds": 181.0, "targets": {"rto_seconds": 1800, "rpo_seconds": 93600}},
            {"id": "c002", "rto_seconds": 200.0, "targets": {"rto_seconds": 1800, "rpo_seconds": 3600}},
        ],
    }
    (drill / "history.jsonl").write_text(json.dumps(rec) + "\n", encoding="utf-8")  # fmt: skip
    return root


def run(root: Path, *args: str) -> int:
    return cli.main(["review", *args, "--evidence-dir", str(root)])


def draft(root: Path, lang: str) -> str:
    return (root / IID / "review" / f"review.{lang}.md").read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_draft_figures_timeline_and_judgements(root, capsys):
    assert run(root, "draft", IID) == 0
    out = capsys.readouterr()
    assert out.out == f"wrote {root}/{IID}/review/review.zh-CN.md\nwrote {root}/{IID}/review/review.en.md\n"
    en, zh = draft(root, "en"), draft(root, "zh-CN")
    assert section(en, "Timeline").splitlines()[3:] == [
        "| 1 | 2026-11-26 23:30:00 | Loss detected |",
        "| 2 | 2026-11-26 23:40:00 | Incident declared, response started (operator 王会计) |",
        "| 3 | 2026-11-26 23:45:00 | books1: writes frozen (containment); 1 writer(s) found, 1 stopped |",
        "| 4 | 2026-11-26 23:45:02 | books1: writer encryptor (pid 4242, www-data) stopped |",
        "| 5 | 2026-11-26 23:46:00 | books2: writes frozen (containment); 0 writer(s) found, 0 stopped |",
        "| 6 | 2026-11-26 23:50:00 | 杭州示例贸易有限公司 (c001) (books1): restore started |",
        "| 7 | 2026-11-26 23:50:00 | 宁波海风餐饮管理有限公司 (c002) (books1): restore started |",
        "| 8 | 2026-11-26 23:50:00 | 温州三江五金制品厂 (c003) (books2): restore started |",
        "| 9 | 2026-11-26 23:55:00 | 杭州示例贸易有限公司 (c001) (books1): restored and verified |",
        "| 10 | 2026-11-27 00:10:00 | 温州三江五金制品厂 (c003) (books2): restore failed: "
        "no clean snapshot before the loss |",
        "| 11 | 2026-11-27 00:20:00 | books2: step failed: restore : Swap the client's folder |",
        "| 12 | 2026-11-27 00:30:00 | 宁波海风餐饮管理有限公司 (c002) (books1): restored and verified |",
        "| 13 | 2026-11-27 00:35:00 | books1: thawed |",
        "| 14 | 2026-11-27 00:40:00 | Incident report written |",
        "| 15 | 2026-11-27 00:41:00 | Response run ended |",
    ]  # fmt: skip
    assert "- RTO achieved (declaration to the last client verified): 50 min (3000 s)\n" in en
    assert "- 实际RTO(宣布到最后一个客户校验通过): 50分 (3000 s)\n" in zh
    row = "| 杭州示例贸易有限公司 (c001) | restored and verified | 15 min | 30 min | 3 min 1 s "
    assert row + "(drill-20261101T020000Z) | 8 h 30 min | 1 d 2 h |" in en
    assert section(en, "What went well").strip().splitlines() == [
        "- 杭州示例贸易有限公司 (c001): RTO 15 min, within the drills' target of 30 min",
        "- 杭州示例贸易有限公司 (c001): data-loss window 8 h 30 min, within the RPO target of 1 d 2 h",
        "- All 1 writer(s) found were stopped at the freeze",
    ]
    assert section(en, "What went badly").strip().splitlines() == [
        "- 宁波海风餐饮管理有限公司 (c002): RTO 50 min, over the drills' target of 30 min",
        "- 宁波海风餐饮管理有限公司 (c002): data-loss window 8 h 30 min, over the RPO target of 1 h",
        "- 温州三江五金制品厂 (c003): not restored (no clean snapshot before the loss)",
        "- 宁波海风餐饮管理有限公司 (c002): 1 file(s) left for a person to review",
        "- books2: not thawed (umount busy)",
    ]
    assert "- 宁波海风餐饮管理有限公司 (c002):RTO 50分,超过演练目标 30分\n" in zh
    assert "### 宁波海风餐饮管理有限公司 (c002)\n\n- 原因: **deleted** (根据证据检测; ransom_note)\n" in zh
    # Re-running on an unchanged draft is fine; an edited one is kept unless --force.
    assert run(root, "draft", IID) == 0
    path = root / IID / "review" / "review.en.md"
    path.write_text(en + "\n会议补充:备份密码交由两人保管。\n", encoding="utf-8")
    capsys.readouterr()
    assert run(root, "draft", IID) == 2
    assert capsys.readouterr().err == (
        f"ledgerguard: {path} exists and differs from a new draft (edited?); give --force to replace it\n"
    )
    assert run(root, "draft", IID, "--force") == 0
    assert path.read_text(encoding="utf-8") == en


def test_draft_names_the_files_it_could_not_read(root, capsys):
    (root / IID / "timeline.jsonl").unlink()
    (root / IID / "timeline.jsonl").mkdir()
    assert run(root, "draft", IID, "--lang", "en") == 0
    assert (
        capsys.readouterr().err == f"ledgerguard review: could not read {root}/{IID}/timeline.jsonl: Is a directory\n"
    )
    assert f"**Files that could not be read:**\n\n- {root}/{IID}/timeline.jsonl: Is a directory\n" in draft(root, "en")
    (root / IID / "report.json").write_text("{不是 JSON", encoding="utf-8")
    assert run(root, "draft", IID) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ledgerguard: cannot read {root}/{IID}/report.json: not valid JSON (Expecting")
    (root / IID / "incident.json").unlink()
    assert run(root, "draft", IID) == 2
    assert capsys.readouterr().err == (
        f"ledgerguard: cannot read {root}/{IID}/incident.json: no such file (the incident object)\n"
    )
    assert run(root, "draft", "INC-20261126-009") == 2
    assert capsys.readouterr().err == (
        f"ledgerguard: no evidence folder {root}/INC-20261126-009 for incident INC-20261126-009; check the id and "
        f"--evidence-dir (the folders there: {IID})\n"
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--owner", "李经理", "--due", "2026-02-30"],
         "--due 2026-02-30: no such day in the calendar; write a real date as YYYY-MM-DD"),
        (["--owner", "李经理", "--due", "31.12.2026"],
         "--due '31.12.2026': not a date; write it as YYYY-MM-DD, e.g. 2026-12-31"),
        (["--owner", "李经理", "--due", "2020-01-01"],
         f"--due 2020-01-01: the date is past (today is {TODAY} in Asia/Shanghai); give today or a later date"),
        (["--owner", "  ", "--due", "2099-01-01"], "--owner is empty; give a non-empty text"),
        (["--owner", "__", "--due", "2099-01-01"],
         "--owner '__': name a person (letters or characters), e.g. --owner 王会计"),
        (["--owner", "李\t经理", "--due", "2099-01-01"],
         "--owner holds a control character ('\\t'); write it on one line without tabs"),
        (["--owner", "李" * 65, "--due", "2099-01-01"], "--owner is 65 characters long; keep it to 64"),
    ],
)  # fmt: skip
def test_action_add_validation(root, capsys, args, error):
    assert run(root, "action", "add", "--incident", IID, "--text", "启用不可变备份", *args) == 2
    assert capsys.readouterr().err == f"ledgerguard: {error}\n"
    assert not (root / "actions.json").exists()


def test_action_lifecycle_and_overdue(root, capsys):
    soon, later = TODAY + dt.timedelta(days=2), TODAY + dt.timedelta(days=40)
    assert run(root, "action", "add", "--incident", "INC-20261126-777", "--text", "x", "--owner", "李经理",
               "--due", str(soon)) == 2  # fmt: skip
    assert capsys.readouterr().err == (
        f"ledgerguard: --incident INC-20261126-777: no {root}/INC-20261126-777/incident.json; an action belongs to an "
        "incident with evidence (check the id and --evidence-dir)\n"
    )
    for text, owner, due in (("启用不可变备份副本", "李经理", soon), ("每季度演练", "王会计", later)):
        assert run(root, "action", "add", "--incident", IID, "--text", text, "--owner", owner, "--due", str(due)) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        f"added A-002 ({IID}): 每季度演练 -- 王会计, due {later} ({root}/actions.json)"
    )
    assert run(root, "action", "done", "A-009") == 2
    assert capsys.readouterr().err == (
        f"ledgerguard: no action A-009 in {root}/actions.json (known: A-001, A-002); 'ledgerguard review action list'\n"
    )
    assert run(root, "action", "done", "A-002", "--note", "已排期") == 0
    data = json.loads((root / "actions.json").read_text(encoding="utf-8"))
    assert data["version"] == 1
    a1, a2 = data["actions"]
    assert {k: a1[k] for k in ("id", "incident", "text", "owner", "due", "status", "closed_at")} == {
        "id": "A-001", "incident": IID, "text": "启用不可变备份副本", "owner": "李经理", "due": str(soon),
        "status": "open", "closed_at": None,
    }  # fmt: skip
    assert (a2["status"], a2["note"]) == ("done", "已排期")
    assert dt.datetime.fromisoformat(a2["closed_at"].replace("Z", "+00:00")) >= dt.datetime.fromisoformat(
        a2["created_at"].replace("Z", "+00:00")
    )
    capsys.readouterr()
    as_of = soon + dt.timedelta(days=3)
    assert run(root, "action", "list", "--overdue", "--as-of", str(as_of)) == 0
    assert capsys.readouterr().out == f"A-001  open  due {soon}  李经理  {IID}  启用不可变备份副本  OVERDUE by 3 d\n"
    assert run(root, "action", "list", "--overdue") == 0
    assert capsys.readouterr().out == f"no action items match in {root}/actions.json\n"
    # The draft lists the incident's items.
    assert run(root, "draft", IID, "--lang", "en", "--stdout") == 0
    assert f"| A-001 | 启用不可变备份副本 | 李经理 | {soon} | open |" in capsys.readouterr().out
    (root / "actions.json").write_text('{"actions": [{"id": "A-001"}]}', encoding="utf-8")
    assert run(root, "action", "list") == 2
    assert capsys.readouterr().err == (
        f"ledgerguard: cannot read {root}/actions.json: action #1 lacks incident, text, owner, due, status; "
        "fix the file\n"
    )


def test_followup_forms_in_each_clients_contact_language(root, capsys):
    # The notices' index records each client's contacts' languages: c001 has a zh-CN contact, c002 an English one,
    # c003 none (its drafts took the report's default languages, both).
    (root / IID / "notices").mkdir()
    entries = [("c001", "zh-CN"), ("c001", "zh-CN"), ("c002", "en"), ("c003", "zh-CN"), ("c003", "en")]
    index = {
        "notices": [{"id": f"{c}.{i}.{lang}", "client": c, "language": lang} for i, (c, lang) in enumerate(entries)]
    }
    (root / IID / "notices" / "index.json").write_text(json.dumps(index), encoding="utf-8")
    assert run(root, "followup", IID) == 0
    forms = root / IID / "review" / "followup"
    assert sorted(p.name for p in forms.iterdir()) == ["c001.zh-CN.md", "c002.en.md", "c003.en.md", "c003.zh-CN.md"]
    en = (forms / "c002.en.md").read_text(encoding="utf-8")
    assert en.startswith("# Satisfaction follow-up: 宁波海风餐饮管理有限公司\n") and "尊敬的" not in en
    assert (forms / "c001.zh-CN.md").read_text(encoding="utf-8").startswith("# 服务满意度回访:杭州示例贸易有限公司\n")
    # --lang still chooses for every client.
    assert run(root, "followup", IID, "--client", "c002", "--lang", "zh-CN") == 0
    assert (forms / "c002.zh-CN.md").is_file()
    (root / IID / "notices" / "index.json").write_text("[]", encoding="utf-8")
    assert run(root, "followup", IID) == 2
    assert capsys.readouterr().err == (
        f"ledgerguard: cannot read {root}/{IID}/notices/index.json: expected an object with a 'notices' list (the "
        "customer notices' index)\n"
    )


def test_followup_forms_and_answers(root, capsys):
    assert run(root, "followup", IID) == 0
    forms = root / IID / "review" / "followup"
    assert sorted(p.name for p in forms.iterdir()) == [
        f"{c}.{lang}.md" for c in ("c001", "c002", "c003") for lang in ("en", "zh-CN")
    ]
    zh = (forms / "c001.zh-CN.md").read_text(encoding="utf-8")
    assert zh.splitlines()[:5] == [
        "# 服务满意度回访:杭州示例贸易有限公司", "", "尊敬的杭州示例贸易有限公司:", "",
        f"关于事件 {IID},贵公司的账套数据已于 2026-11-26 23:55 (Asia/Shanghai) 恢复并校验完成。"
        "为改进我们的服务,请您抽出一分钟回答以下问题:",
    ]  # fmt: skip
    en = (forms / "c003.en.md").read_text(encoding="utf-8")
    assert "your books could not be fully restored yet; we are still working on it." in en
    assert f"ledgerguard review answer {IID} c003 --score N" in en
    for args, error in (
        (["c009", "--score", "5"], f"c009: not a client of {IID} (its clients: c001, c002, c003)"),
        (["c001", "--score", "6"], f"--score 6: {SCORE_HELP}"),
        (["c001", "--score", "0"], f"--score 0: {SCORE_HELP}"),
    ):  # fmt: skip
        assert run(root, "answer", IID, *args) == 2
        assert capsys.readouterr().err == f"ledgerguard: {error}\n"
    assert run(root, "answer", IID, "c001", "--score", "5", "--comment", "处理迅速", "--by", "王会计") == 0
    assert run(root, "answer", IID, "c002", "--score", "2", "--comment", "通知太晚") == 0
    answers = json.loads((forms / "answers.json").read_text(encoding="utf-8"))
    assert sorted(answers) == ["c001", "c002"]
    assert {k: answers["c001"][0][k] for k in ("score", "comment", "recorded_by")} == {
        "score": 5, "comment": "处理迅速", "recorded_by": "王会计"
    }  # fmt: skip
    capsys.readouterr()
    assert run(root, "draft", IID, "--lang", "zh-CN", "--stdout") == 0
    text = section(capsys.readouterr().out, "客户满意度回访")
    assert text.strip().splitlines() == [
        "- 平均分 3.5(2 位客户回复)",
        "- 杭州示例贸易有限公司 (c001): 评分 5/5; 意见: 处理迅速",
        "- 宁波海风餐饮管理有限公司 (c002): 评分 2/5; 意见: 通知太晚",
        "- 未回复:温州三江五金制品厂 (c003)",
    ]
