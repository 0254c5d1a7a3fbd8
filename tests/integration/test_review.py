"""Issue 16, after the incident: the review built from a REAL incident's evidence, the action items' lifecycle, and the
overdue ones in the periodic compliance report.

The incident is the one test_oncall.py checks the on-call messages of (people_incident.py: one run for both files):
playbooks/incident_respond.yml through ansible-runner, real restic, the freeze on, three clients with Chinese names,
杭州示例贸易有限公司 (c001) hit by ransomware, 宁波海风餐饮管理有限公司 (c002) whose folder was deleted,
温州三江五金制品厂 (c003) untouched. The review commands read only its evidence folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from people_incident import INCIDENT_ID, people_incident
from test_incident import NAMES

from conftest import failed_messages
from ledgerguard import cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def local(text: str) -> str:
    return utc(text).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def incident(tmp_path_factory, s3_server, worker_id):
    shared = people_incident(tmp_path_factory, s3_server, worker_id)
    assert shared["runner"].rc == 0, failed_messages(shared["runner"])
    folder = shared["evidence"]
    assert folder.name == INCIDENT_ID
    return {
        "root": shared["root"],
        "folder": folder,
        "inventory": shared["inventory"],
        "incident": json.loads((folder / "incident.json").read_text(encoding="utf-8")),
        "report": json.loads((folder / "report.json").read_text(encoding="utf-8")),
    }


def review(*args: str, root: Path) -> int:
    return cli.main(["review", *args, "--evidence-dir", str(root)])


def test_draft_from_the_real_evidence(incident, capsys):
    root, folder, inc, rep = incident["root"], incident["folder"], incident["incident"], incident["report"]
    assert review("followup", "INC-20261126-016", root=root) == 0
    # One form per client, in its contact's language (recorded by the incident's notices/index.json); c003 has no
    # contacts: both languages.
    forms = folder / "review" / "followup"
    assert sorted(p.name for p in forms.iterdir()) == ["c001.en.md", "c002.zh-CN.md", "c003.en.md", "c003.zh-CN.md"]
    en_form = (forms / "c001.en.md").read_text(encoding="utf-8")
    assert en_form.startswith(f"# Satisfaction follow-up: {NAMES['c001']}\n") and "服务满意度" not in en_form
    form = (folder / "review" / "followup" / "c002.zh-CN.md").read_text(encoding="utf-8")
    assert form.startswith(f"# 服务满意度回访:{NAMES['c002']}\n")
    assert "ledgerguard review answer INC-20261126-016 c002 --score N" in form
    assert (
        review("answer", "INC-20261126-016", "c002", "--score", "4", "--comment", "恢复及时,通知清楚", root=root) == 0
    )
    assert review("draft", "INC-20261126-016", root=root) == 0
    zh = (folder / "review" / "review.zh-CN.md").read_text(encoding="utf-8")
    en = (folder / "review" / "review.en.md").read_text(encoding="utf-8")

    # The RTO: from the declaration (incident.json) to the last client verified (each client's finish in the report).
    declared = utc(inc["declared_at"])
    rto = max((utc(c["finished"]) - declared).total_seconds() for c in rep["clients"])
    assert rto == rep["summary"]["rto_seconds"]
    assert "- RTO achieved (declaration to the last client verified): " in en
    assert f"({rto:g} s)\n" in en and f"({rto:g} s)\n" in zh
    # The timeline: detection, declaration, the freeze, each client verified, in the firm's wall clock.
    assert f"| {local(inc['detected_at'])} | Loss detected |" in en
    assert f"| {local(inc['declared_at'])} | Incident declared, response started (operator 王会计) |" in en
    frozen = rep["hosts"][0]["frozen_at"]
    assert f"| {local(frozen)} | localhost: writes frozen (containment)" in en
    assert f"| {local(frozen)} | localhost:冻结写入(遏制)" in zh
    for c in rep["clients"]:
        assert f"| {local(c['finished'])} | {NAMES[c['id']]} ({c['id']}) (localhost): restored and verified |" in en
    # Each client's cause as detected from the evidence.
    causes = {c["id"]: c["cause"]["cause"] for c in rep["clients"] if c["cause"]["source"] == "detected"}
    assert causes == {"c001": "ransomware", "c002": "deleted"}
    for cid, cause in causes.items():
        section = en.split(f"### {NAMES[cid]} ({cid})\n", 1)[1].split("###", 1)[0]
        assert f"- cause: **{cause}** (detected from the evidence; " in section
    # Against the drills' target (c001 has one, c002 none).
    assert f"- {NAMES['c001']} (c001): RTO " in en.split("## What went well")[1].split("## What went badly")[0]
    assert "within the drills' target of 4 h" in en
    assert f"- {NAMES['c002']} (c002): no drill RTO target on record" in en
    assert "- All 3 clients restored and verified" in en
    assert "- 平均分 4.0(1 位客户回复)" in zh
    assert f"- 未回复:{NAMES['c001']} (c001)" in zh
    assert capsys.readouterr().err == ""


def test_draft_names_the_file_it_could_not_read(incident, tmp_path, capsys):
    copy = tmp_path / "evidence"
    shutil.copytree(incident["folder"], copy / "INC-20261126-016")
    (copy / "INC-20261126-016" / "report.json").unlink()
    assert review("draft", "INC-20261126-016", root=copy) == 2
    assert capsys.readouterr().err == (
        f"ledgerguard: cannot read {copy}/INC-20261126-016/report.json: no such file (the incident report; it is "
        "written at the end of the incident run)\n"
    )


def test_action_items_and_the_overdue_ones_in_the_compliance_report(incident, playbook, tmp_path, capsys):
    root = incident["root"]
    today = dt.datetime.now(SHANGHAI).date()
    soon, later = today + dt.timedelta(days=1), today + dt.timedelta(days=30)
    add = ("action", "add", "--incident", "INC-20261126-016")
    assert review(*add, "--text", "为 c002 启用不可变备份副本", "--owner", "李经理", "--due", str(soon), root=root) == 0
    assert review(*add, "--text", "每季度演练一次", "--owner", "王会计", "--due", str(later), root=root) == 0
    assert review(*add, "--text", "更新客户通讯录", "--owner", "张三", "--due", str(soon), root=root) == 0
    assert review("action", "done", "A-003", "--note", "已更新", root=root) == 0
    assert review("action", "done", "A-003", root=root) == 2
    out = capsys.readouterr()
    assert out.err.startswith("ledgerguard: action A-003 is already done (closed 20")
    actions = json.loads((root / "actions.json").read_text(encoding="utf-8"))["actions"]
    assert [(a["id"], a["status"], a["owner"], a["due"]) for a in actions] == [
        ("A-001", "open", "李经理", str(soon)),
        ("A-002", "open", "王会计", str(later)),
        ("A-003", "done", "张三", str(soon)),
    ]
    as_of = today + dt.timedelta(days=10)
    assert review("action", "list", "--overdue", "--as-of", str(as_of), "--json", root=root) == 0
    assert [a["id"] for a in json.loads(capsys.readouterr().out)] == ["A-001"]

    # The monthly compliance report, ten days on: A-001 is overdue by 9 days; A-002 is not due, A-003 is done.
    inv = tmp_path / "inventory.json"
    shutil.copy(incident["inventory"], inv)
    now = dt.datetime.combine(as_of, dt.time(12, 0), SHANGHAI).isoformat()
    runner = playbook(
        "compliance_report.yml",
        inventory=str(inv),
        extravars={
            "ledgerguard_evidence_dir": str(root),
            "report_compliance_now": now,
            "report_compliance_period": "t",
        },
    )
    assert runner.rc == 0, failed_messages(runner)
    out_dir = root / "compliance-t"
    listed = json.loads((out_dir / "overdue-actions.json").read_text(encoding="utf-8"))
    assert [a["id"] for a in listed] == ["A-001"]
    zh = (out_dir / "compliance.zh-CN.md").read_text(encoding="utf-8")
    assert f"| A-001 | INC-20261126-016 | 为 c002 启用不可变备份副本 | 李经理 | {soon} | 9 |" in zh
    assert "A-002" not in zh and "A-003" not in zh
    assert "<td>A-001</td><td>INC-20261126-016</td><td>为 c002 启用不可变备份副本</td><td>李经理</td>" in (
        out_dir / "compliance.en.html"
    ).read_text(encoding="utf-8")
    # Internal follow-up never reaches a client's copy.
    assert "A-001" not in (out_dir / "clients" / "c001.zh-CN.md").read_text(encoding="utf-8")
