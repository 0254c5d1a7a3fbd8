"""On-call messages of a real incident (issue 16, "Inside the firm"): playbooks/incident_respond.yml with
ledgerguard_oncall in the inventory, a local webhook receiver and a local SMTP server that record every message.

One dry run (nothing may be sent) and one real incident (ransomware on c001, c002's folder deleted) serve every
assertion, and test_review.py's too (people_incident.py runs them once per session). One channel points at a closed
port: it is recorded as failed and the restore still succeeds.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from people_incident import people_incident
from test_incident import NAMES, failed_msgs

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / ".collections"))

from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import verify_chain  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

MILESTONES = ["declare", "clients", "end"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, s3_server, worker_id):
    shared = people_incident(tmp_path_factory, s3_server, worker_id)  # the incident test_review.py reads too
    ev = shared["evidence"]
    return {
        **shared,
        "records": [json.loads(line) for line in (ev / "oncall.jsonl").read_text(encoding="utf-8").splitlines()],
        "report": json.loads((ev / "report.json").read_text(encoding="utf-8")),
    }


def test_restore_succeeds_although_a_channel_is_down(run):
    assert run["runner"].rc == 0, failed_msgs(run["runner"])
    assert run["report"]["status"] == "restored"
    # The evidence hashes still verify: oncall.jsonl keeps growing after SHA256SUMS (its own hash chain).
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=run["evidence"], check=True)
    assert verify_chain(str(run["evidence"] / "oncall.jsonl"))["ok"]


def test_dry_run_sends_nothing_and_shows_what_it_would_send(run):
    assert run["dry"].rc == 0, failed_msgs(run["dry"])
    assert run["sent_by_dry"] == (0, 0)
    shown = [
        d
        for ev in run["dry"].events
        if ev.get("event") == "runner_on_ok" and ev["event_data"].get("task", "").startswith("Tell the on-call")
        for d in ev["event_data"]["res"].get("deliveries", [])
    ]
    assert {d["milestone"] for d in shown} == {"declare", "clients", "end"}
    assert {d["status"] for d in shown} == {"would_send"}
    declare = next(d for d in shown if d["milestone"] == "declare" and d["person"] == "张伟")
    assert "演练（--check）" in declare["text"] and "负责人：张伟" in declare["text"]


def test_every_milestone_reached_each_working_channel(run):
    records = run["records"]
    ev = run["evidence"].name
    assert [r["milestone"] for r in records] == [m for m in MILESTONES for _channel in range(4)]
    assert {r["incident_id"] for r in records} == {ev}
    by = {(r["milestone"], r["person"], r["channel"]): r for r in records}
    for milestone in MILESTONES:
        for key in (("张伟", "generic"), ("张伟", "mail"), ("Li Na", "dingtalk")):
            assert by[(milestone, *key)]["status"] == "ok", by[(milestone, *key)]
        dead = by[(milestone, "Li Na", "wecom")]
        assert (dead["status"], dead["reason"]) == ("failed", "connection refused")
        assert dead["target"].startswith("http://127.0.0.1:") and dead["target"].endswith("/…")
    generic = [p for p in run["hooks"].posts if p["path"] == "/hook/generic"]
    assert [p["body"]["data"]["milestone"] for p in generic] == MILESTONES
    report_html = str(run["evidence"] / "report.html")
    declare = generic[0]["body"]["text"]
    needles = (f"事故编号：{ev}", "负责人：张伟", "勒索软件加密了客户账簿", NAMES["c001"], NAMES["c002"], report_html)
    for needle in needles:
        assert needle in declare, (needle, declare)
    clients = generic[1]["body"]["text"]
    for cid in NAMES:
        assert f"- {cid} {NAMES[cid]}（localhost）：已恢复并验证（快照 " in clients, clients
    summary = run["report"]["summary"]
    end = generic[2]["body"]["text"]
    assert f"实际恢复时间（RTO，宣布至验证）：{summary['rto']}" in end, end
    assert f"数据丢失窗口（最长）：{summary['max_data_loss_window']}" in end and report_html in end
    assert generic[2]["body"]["status"] == "OK" and generic[2]["body"]["title"] == f"事故 {ev} 结束：已全部恢复"


def test_english_dingtalk_messages_are_signed(run):
    posts = [p for p in run["hooks"].posts if p["path"] == "/robot/send"]
    assert len(posts) == 3
    for post in posts:
        assert post["query"]["access_token"] == [run["secret"]["token"]]
        assert post["query"]["sign"] and post["query"]["timestamp"]
    texts = [p["body"]["markdown"]["text"] for p in posts]
    assert f"Incident {run['evidence'].name} declared" in texts[0] and "Lead: 张伟" in texts[0]
    assert "- c002 宁波海风餐饮管理有限公司 (localhost): restored and verified (snapshot " in texts[1]
    assert f"RTO achieved (declared to verified): {run['report']['summary']['rto']}" in texts[2]


def test_mail_arrives_with_the_recorded_text(run):
    mails = run["smtp"].messages
    assert len(mails) == 3
    mail_records = [r for r in run["records"] if r["channel"] == "mail"]
    for mail, record in zip(mails, mail_records, strict=True):
        assert mail["to"] == ["zhangwei@example.cn"] and mail["from"] == "ledgerguard@example.cn"
        assert mail["auth"][1:] == [b"ledgerguard@example.cn", run["secret"]["password"].encode()]
        parsed = email.message_from_bytes(mail["data"], policy=email.policy.default)
        assert parsed["Subject"] == record["title"]
        body = parsed.get_content()
        assert hashlib.sha256(body.encode("utf-8")).hexdigest() == record["text_sha256"]
    assert record["target"] == f"smtp://127.0.0.1:{run['smtp'].port} -> zhangwei@example.cn"


def test_no_secret_in_the_record_the_timeline_or_the_events(run):
    timeline = (run["evidence"] / "timeline.jsonl").read_text(encoding="utf-8")
    places = {
        "oncall.jsonl": (run["evidence"] / "oncall.jsonl").read_text(encoding="utf-8"),
        "timeline": timeline,
        "events": json.dumps([ev.get("event_data", {}).get("res") for ev in run["runner"].events], ensure_ascii=False),
        "stdout": "".join(ev.get("stdout", "") for ev in run["runner"].events),
    }
    for name, text in places.items():
        for key, value in run["secret"].items():
            assert value not in text, f"{key} leaked into {name}"
    # The timeline names each delivery, the failed one with its reason.
    lines = [json.loads(line) for line in timeline.splitlines()]
    failed = [r for r in lines if (r.get("task") or "").startswith("On-call ") and r.get("status") == "failed"]
    assert [r["task"].split(":")[0] for r in failed] == [f"On-call {m}" for m in MILESTONES]
    assert {r["msg"] for r in failed} == {"connection refused"}
    print(f"on-call incident (dry run + real run): {run['seconds']:.0f} s")
