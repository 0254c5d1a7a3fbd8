"""On-call messages of a real incident (issue 16, "Inside the firm"): playbooks/incident_respond.yml with
ledgerguard_oncall in the inventory, a local webhook receiver and a local SMTP server that record every message.

One dry run (nothing may be sent) and one real incident (ransomware on c001, c002's folder deleted) serve every
assertion. One channel points at a closed port: it is recorded as failed and the restore still succeeds.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import hashlib
import http.server
import json
import os
import secrets
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
from test_incident import NAMES, Site, evidence_dir, failed_msgs

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / ".collections"))

from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import verify_chain  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

MILESTONES = ["declare", "clients", "end"]


class WebhookReceiver:
    """Records every POST (path, query, JSON body) and answers like a bot that accepted it (errcode 0)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                parts = urllib.parse.urlsplit(self.path)
                receiver.posts.append(
                    {
                        "path": parts.path,
                        "query": urllib.parse.parse_qs(parts.query),
                        "body": json.loads(self.rfile.read(length).decode("utf-8")),
                    }
                )
                answer = b'{"errcode": 0, "errmsg": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class SMTPReceiver:
    """A minimal SMTP server (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode("ascii") + b"\r\n")

            def handle(self) -> None:
                self.reply("220 localhost ESMTP test")
                auth, sender, rcpts = None, None, []
                while raw := self.rfile.readline():
                    line = raw.decode("utf-8").rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.wfile.write(b"250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
                    elif verb == "AUTH":
                        auth = base64.b64decode(line.split()[2]).split(b"\0")
                        self.reply("235 2.7.0 Authentication successful")
                    elif verb == "MAIL":
                        sender, rcpts = line[10:].split(">")[0].strip("<"), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(line[8:].split(">")[0].strip("<"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                        receiver.messages.append({"auth": auth, "from": sender, "to": rcpts, "data": b"".join(data)})
                        self.reply("250 OK queued")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("250 OK")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OncallSite(Site):
    """The incident site with the firm's on-call list in its inventory."""

    oncall: list[dict] = []

    def inventory(self, clients=None) -> Path:
        path = super().inventory(clients)
        inv = json.loads(path.read_text(encoding="utf-8"))
        inv["all"]["vars"] = {"ledgerguard_oncall": self.oncall}
        path.write_text(json.dumps(inv, ensure_ascii=False), encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, s3_server):
    bucket = "lg-oncall-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = OncallSite(tmp_path_factory.mktemp("oncall"), s3_server, bucket)
    hooks, smtp = WebhookReceiver(), SMTPReceiver()
    secret = {
        "token": "tok-" + secrets.token_hex(12),
        "sign": "SEC" + secrets.token_hex(12),
        "dead": "dead-" + secrets.token_hex(12),
        "password": "pw-" + secrets.token_hex(12),
    }
    password_file = site.base / "smtp-password"
    password_file.write_text(secret["password"] + "\n")
    password_file.chmod(0o600)
    site.oncall = [
        {
            "name": "张伟",
            "role": "lead",
            "channels": [
                {"kind": "generic", "url": f"http://127.0.0.1:{hooks.port}/hook/generic?token={secret['token']}"},
                {
                    "kind": "mail",
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "from": "ledgerguard@example.cn",
                    "to": ["zhangwei@example.cn"],
                    "secure": "never",
                    "username": "ledgerguard@example.cn",
                    "password_file": str(password_file),
                },
            ],
        },
        {
            "name": "Li Na",
            "role": "oncall",
            "language": "en",
            "channels": [
                {
                    "kind": "dingtalk",
                    "url": f"http://127.0.0.1:{hooks.port}/robot/send?access_token={secret['token']}",
                    "secret": secret["sign"],
                },
                {"kind": "wecom", "url": f"http://127.0.0.1:{closed_port()}/cgi-bin/webhook/send?key={secret['dead']}"},
            ],
        },
    ]
    site.restic("init")
    now = dt.datetime.now()
    site.backup(now - dt.timedelta(days=1))
    for path in sorted(p for p in site.root("c001").rglob("*") if p.is_file()):
        path.write_bytes(os.urandom(max(path.stat().st_size, 256)))
        path.rename(path.with_name(path.name + ".locked"))
    (site.root("c001") / "HOW_TO_DECRYPT.txt").write_text("pay us\n")
    shutil.rmtree(site.root("c002"))
    started = dt.datetime.now()
    dry = site.run(check=True, incident_cause="ransomware", incident_summary="pytest: on-call dry run")
    sent_by_dry = (len(hooks.posts), len(smtp.messages))
    runner = site.run(incident_cause="ransomware", incident_summary="勒索软件加密了客户账簿")
    seconds = (dt.datetime.now() - started).total_seconds()
    ev = evidence_dir(site)
    return {
        "site": site,
        "dry": dry,
        "sent_by_dry": sent_by_dry,
        "runner": runner,
        "hooks": hooks,
        "smtp": smtp,
        "secret": secret,
        "evidence": ev,
        "records": [json.loads(line) for line in (ev / "oncall.jsonl").read_text(encoding="utf-8").splitlines()],
        "report": json.loads((ev / "report.json").read_text(encoding="utf-8")),
        "seconds": seconds,
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
