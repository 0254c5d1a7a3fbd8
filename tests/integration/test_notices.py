"""`ledgerguard notices` against a real incident's evidence: one small incident (one client, contacts in zh-CN and
en) through playbooks/incident_respond.yml, then the CLI approves and sends its notices to a local SMTP server that
records every message. Asserts: no notice leaves without approval (exact error), the recorded sha256 is the sha256
of the body the server received, the timeline's hash chain still verifies, SHA256SUMS still matches, and the
compliance rows close from the delivery records."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from receivers import SMTPReceiver

from ledgerguard import cli, sampledata
from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

CLIENT, NAME = "c001", "杭州示例贸易有限公司"
CONTACTS = [
    {"name": "张会计", "role": "财务负责人", "phone": "13800000000", "mail": "zhang@example.cn", "language": "zh-CN"},
    {"name": "Anna Li", "role": "CFO", "mail": "anna@example.com", "language": "en"},
]


@pytest.fixture(scope="module")
def smtp():
    receiver = SMTPReceiver()  # a local SMTP server that records every message (tests/integration/receivers.py)
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


# ------------------------------------------------------------------------------------------ one incident


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    base = tmp_path_factory.mktemp("notices")
    books = base / "books"
    client = sampledata.make_client_tree(books, CLIENT, NAME, periods=("2026-10",), vouchers_per_period=3, pdfs=1)
    client = dict(client["client"], priority=10, contacts=CONTACTS)
    password = base / "restic-password"
    password.write_text("a notice test password\n")
    password.chmod(0o600)
    repo = str(base / "repo")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "RESTIC_PASSWORD_FILE": str(password)}
    subprocess.run(["restic", "-r", repo, "init"], env=env, check=True, capture_output=True)
    when = (dt.datetime.now() - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    subprocess.run(
        ["restic", "-r", repo, "backup", "--host", "localhost", "--time", when, str(books)],
        env=env,
        check=True,
        capture_output=True,
    )
    for path in [p for p in (books / CLIENT).rglob("*") if p.is_file()]:
        path.write_bytes(os.urandom(max(path.stat().st_size, 256)))
        path.rename(path.with_name(path.name + ".locked"))
    (books / CLIENT / "HOW_TO_DECRYPT.txt").write_text("pay us\n")
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ledgerguard_clients": [client],
    }
    inventory = base / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": host}}}, ensure_ascii=False), encoding="utf-8")
    evidence = base / "evidence"
    run = PlaybookRun(
        playbook="incident_respond.yml",
        private_data_dir=base / "runner",
        inventory=str(inventory),
        extravars={
            "ledgerguard_repository": repo,
            "ledgerguard_password_file": str(password),
            "ledgerguard_state_dir": str(base / "state"),
            "ledgerguard_evidence_dir": str(evidence),
            "incident_operator": "pytest",
            "incident_cause": "ransomware",
            "incident_detected_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "state_snapshot_journal_lines": 20,
            "ledgerguard_incident_record": {"personal_information_involved": True},
            "report_agency_name": "杭州记账有限公司",
            "report_contact": "李经理 0571-00000000 li@jizhang.example.cn",
        },
    )
    runner = run_playbook(run)
    assert runner.rc == 0, [
        str(ev["event_data"].get("res", {}).get("msg", ""))
        for ev in runner.events
        if ev.get("event") == "runner_on_failed" and not ev["event_data"].get("ignore_errors")
    ]
    (folder,) = sorted(evidence.glob("INC-*"))
    return {"evidence": evidence, "folder": folder, "id": folder.name, "base": base}


def ledgerguard(incident, capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["notices", *argv, "--incident-id", incident["id"], "--evidence-dir", str(incident["evidence"])])
    out = capsys.readouterr()
    return code, out.out, out.err


def index(incident) -> dict[str, dict]:
    doc = json.loads((incident["folder"] / "notices" / "index.json").read_text(encoding="utf-8"))
    return {e["id"]: e for e in doc["notices"]}


def rows(incident) -> dict[str, dict]:
    doc = json.loads((incident["folder"] / "compliance.json").read_text(encoding="utf-8"))
    return {r["id"]: r for r in doc["rows"]}


def finish(path: Path) -> bytes:
    """What the approving person does: drop the draft marker and footer (the rest of the text is theirs to check)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = [
        line.replace("[DRAFT — to be reviewed by a person before sending] ", "").replace(
            "【草稿，须经人工审核后发送】", ""
        )
        for line in lines
        if not line.startswith(("This is a generated draft", "本函为系统生成的草稿"))
    ]
    path.write_text("".join(keep), encoding="utf-8")
    return path.read_bytes()


def smtp_config(tmp_path: Path, port: int) -> str:
    cfg = tmp_path / f"smtp-{port}.yml"
    cfg.write_text(f"host: 127.0.0.1\nport: {port}\nsecurity: none\nfrom: notices@jizhang.example.cn\ntimeout: 5\n")
    return str(cfg)


def test_drafts_per_milestone_and_contact_language_with_their_index(incident):
    notices = index(incident)
    assert sorted(notices) == sorted(
        f"c001.{m}.{lang}" for m in ("confirmed", "restoring", "restored", "final") for lang in ("zh-CN", "en")
    )
    for entry in notices.values():
        data = (incident["folder"] / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["status"] == "draft"
    assert [r["mail"] for r in notices["c001.final.zh-CN"]["recipients"]] == ["zhang@example.cn"]
    assert [r["name"] for r in notices["c001.final.en"]["recipients"]] == ["Anna Li"]
    zh = (incident["folder"] / "notices" / "c001.restored.zh-CN.md").read_text(encoding="utf-8")
    assert "致：杭州示例贸易有限公司（客户编号 c001）　张会计 收" in zh and "数据丢失窗口约" in zh
    assert "杭州记账有限公司" in (incident["folder"] / "notices" / "c001.en.md").read_text(encoding="utf-8")
    # Drafted when the restore started (before the restored one): no drill measured c001, and the draft says so.
    restoring = notices["c001.restoring.en"]
    assert (restoring["eta"], restoring["eta_basis"]) == ("", "no drill measurement")
    en = (incident["folder"] / "notices" / "c001.restoring.en.md").read_text(encoding="utf-8")
    assert "- Expected completion: cannot be given yet (none of our recovery drills has measured how long" in en
    assert "预计完成时间：暂时无法给出（我方的恢复演练尚未测得贵司资料的恢复用时）；" in (
        incident["folder"] / "notices" / "c001.restoring.zh-CN.md"
    ).read_text(encoding="utf-8")
    assert "[ETA" not in en
    # Each milestone's drafts were written when it happened: the timeline's index writes around the restore; the
    # final drafts by the report's one task at the end (ledgerguard.recovery.incident_report).
    tasks = [
        str(json.loads(line).get("task") or "")
        for line in (incident["folder"] / "timeline.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    writes = [i for i, t in enumerate(tasks) if "Write notices/index.json" in t]
    restore = [i for i, t in enumerate(tasks) if "Restore the chosen snapshot into staging" in t or "Swap the" in t]
    report = next(
        i
        for i, t in enumerate(tasks)
        if t.endswith("Write the report, the notice drafts, the compliance checklist and the evidence hashes")
    )
    assert len(writes) == 3 and writes[0] < writes[1] < min(restore) <= max(restore) < writes[2] < report
    assert rows(incident)["customer_notices"]["status"] == "MANUAL"
    assert rows(incident)["pipl_notice_individuals"]["evidence"]["en"] == "no notice record"


def test_approve_then_send_records_what_the_server_received(incident, smtp, capsys, tmp_path):
    folder = incident["folder"]
    nid = "c001.confirmed.zh-CN"
    config = smtp_config(tmp_path, smtp.port)

    # 1. Never sent without approval: refused before any SMTP connection.
    code, _out, err = ledgerguard(incident, capsys, "send", nid, "--smtp-config", config)
    assert (code, smtp.messages) == (2, [])
    assert err == (
        "ledgerguard notices: notice c001.confirmed.zh-CN is not approved (status draft): nothing reaches a customer "
        "without a person's approval; review it with 'ledgerguard notices show c001.confirmed.zh-CN', then "
        "'ledgerguard notices approve c001.confirmed.zh-CN --by NAME'\n"
    )
    # 2. The draft as written still carries its marker: not approvable until a person finishes it.
    code, _out, err = ledgerguard(incident, capsys, "approve", nid, "--by", "李经理")
    assert code == 2 and err.startswith(
        "ledgerguard notices: notice c001.confirmed.zh-CN is not ready to approve: notices/c001.zh-CN.md still holds "
        "'【草稿，须经人工审核后发送】'; '本函为系统生成的草稿'."
    )
    text = finish(folder / "notices" / "c001.zh-CN.md")
    code, out, _err = ledgerguard(incident, capsys, "approve", nid, "--by", "李经理")
    approved = index(incident)[nid]
    assert code == 0 and out.startswith(f"approved {nid} by 李经理 at {approved['approved_at']}")
    assert approved["approved_sha256"] == hashlib.sha256(text).hexdigest()

    # 3. A text changed after its approval is refused at send.
    (folder / "notices" / "c001.zh-CN.md").write_bytes(text + "另：请尽快回复。\n".encode())
    code, _out, err = ledgerguard(incident, capsys, "send", nid, "--smtp-config", config)
    assert code == 2 and err.startswith(
        f"ledgerguard notices: notice {nid} was changed after its approval by 李经理 (approved sha256 "
        f"{approved['approved_sha256']}, now "
    )
    (folder / "notices" / "c001.zh-CN.md").write_bytes(text)

    # 4. Sent: the body the server received hashes to the approved sha256.
    code, out, _err = ledgerguard(incident, capsys, "send", nid, "--smtp-config", config)
    assert code == 0, out
    (msg,) = smtp.messages
    parsed = email.message_from_bytes(msg["data"], policy=email.policy.default)
    body = parsed.get_payload(decode=True)
    sent = index(incident)[nid]
    assert hashlib.sha256(body).hexdigest() == sent["approved_sha256"] == sent["deliveries"][-1]["sha256"]
    assert body == text and msg["to"] == ["zhang@example.cn"]
    assert parsed["To"] == "张会计 <zhang@example.cn>" and parsed["Subject"].startswith(
        "关于贵司会计资料安全事件的告知"
    )
    assert sent["status"] == "sent" and sent["sent_at"] == sent["deliveries"][-1]["at"]

    # 5. Not twice.
    code, _out, err = ledgerguard(incident, capsys, "send", nid, "--smtp-config", config)
    assert (
        code == 2
        and err == f"ledgerguard notices: notice {nid} was already sent at {sent['sent_at']}; it is not sent twice\n"
    )

    # 6. A delivery that fails is recorded and may be retried (a closed port).
    final = "c001.final.zh-CN"
    finish(folder / "notices" / "c001.final.zh-CN.md")
    assert ledgerguard(incident, capsys, "approve", final, "--by", "李经理")[0] == 0
    code, _out, err = ledgerguard(incident, capsys, "send", final, "--smtp-config", smtp_config(tmp_path, 1))
    assert code == 1 and "sending c001.final.zh-CN via 127.0.0.1:1 failed: ConnectionRefusedError" in err
    failed = index(incident)[final]
    assert failed["status"] == "failed" and failed["deliveries"][-1]["error"].startswith("ConnectionRefusedError")
    assert rows(incident)["customer_notices"]["status"] == "MANUAL"

    # 7. The compliance rows close from the delivery records.
    assert rows(incident)["pipl_notice_individuals"]["status"] == "PASS"
    assert rows(incident)["pipl_notice_individuals"]["sent_at"] == sent["sent_at"]
    code, out, _err = ledgerguard(incident, capsys, "send", "--all-approved", "--smtp-config", config)
    assert code == 0 and out == "no approved notice waiting to be sent in " + str(folder / "notices") + "\n"
    assert ledgerguard(incident, capsys, "send", final, "--smtp-config", config)[0] == 0
    customer = rows(incident)["customer_notices"]
    assert customer["status"] == "PASS" and customer["records"] == [final]
    assert len(smtp.messages) == 2

    # 8. The timeline's chain holds and carries every approval and delivery; SHA256SUMS matches the files again.
    assert cli.main(["timeline", "verify", str(folder)]) == 0
    lines = [json.loads(x) for x in (folder / "timeline.jsonl").read_text(encoding="utf-8").splitlines()]
    events = [(x["event"], x.get("notice")) for x in lines if str(x.get("event", "")).startswith("notice_")]
    assert events == [
        ("notice_approved", nid),
        ("notice_sent", nid),
        ("notice_approved", final),
        ("notice_send_failed", final),
        ("notice_sent", final),
    ]
    approved_final = index(incident)[final]["approved_sha256"]
    assert lines[-1]["text_sha256"] == lines[-1]["delivery"]["sha256"] == approved_final
    check = subprocess.run(
        ["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    capsys.readouterr()


def test_awx_send_step_sends_only_the_approved_notices(incident, smtp, capsys, tmp_path):
    # The playbook AWX runs after its approval node (playbooks/notices_send.yml): every approved notice, nothing else.
    finish(incident["folder"] / "notices" / "c001.en.md")
    assert ledgerguard(incident, capsys, "approve", "c001.confirmed.en", "--by", "Li Na")[0] == 0
    before = len(smtp.messages)
    runner = run_playbook(
        PlaybookRun(
            playbook="notices_send.yml",
            private_data_dir=tmp_path / "runner",
            inventory=None,
            extravars={
                "ledgerguard_incident_id": incident["id"],
                "ledgerguard_evidence_dir": str(incident["evidence"]),
                "ledgerguard_smtp_config": smtp_config(tmp_path, smtp.port),
            },
        )
    )
    assert runner.rc == 0, runner.stdout.read() if hasattr(runner.stdout, "read") else runner.status
    assert [m["to"] for m in smtp.messages[before:]] == [["anna@example.com"]]
    status = {k: v["status"] for k, v in index(incident).items()}
    assert status == {
        "c001.confirmed.zh-CN": "sent",
        "c001.confirmed.en": "sent",
        "c001.restoring.zh-CN": "draft",
        "c001.restoring.en": "draft",
        "c001.restored.zh-CN": "draft",
        "c001.restored.en": "draft",
        "c001.final.zh-CN": "sent",
        "c001.final.en": "draft",
    }
