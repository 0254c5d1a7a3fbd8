"""One real incident shared by test_oncall.py and test_review.py (issue 16, the people around an incident): one dry run
and one real run of playbooks/incident_respond.yml instead of one set per file.

The site: three clients with Chinese names (test_incident's Site, S3 repository), c001 hit by ransomware and c002's
folder deleted, c003 untouched; the firm's on-call list (a local webhook receiver, a local SMTP server and a channel
that is down); the clients' contacts (c001 English, c002 Chinese, c003 none); a drill of c001 with its RTO target in
the evidence root; a fixed incident id (INC-20261126-016) and operator 王会计.

pytest-xdist (``--dist loadfile``) may put the two files on different workers: the first one to ask runs the incident
under a lock in the session's shared temporary folder and writes what it recorded (the runs' events, the messages the
receivers got) to ``result.json``; the other one reads it. Without xdist it simply runs once.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from receivers import SMTPReceiver, WebhookReceiver, closed_port
from test_incident import NAMES, Site, evidence_dir

INCIDENT_ID = "INC-20261126-016"
OPERATOR = "王会计"
SUMMARY = "勒索软件加密了客户账簿"
# Each client's contacts: the languages of its notices and of its satisfaction follow-up form.
CONTACTS = {
    "c001": [{"name": "Anna Li", "role": "CFO", "mail": "anna@example.com", "language": "en"}],
    "c002": [{"name": "张会计", "role": "财务负责人", "phone": "13800000000", "language": "zh-CN"}],
}
# The drill the review compares against: c001's RTO and RPO targets (c002 and c003 have none).
DRILL = {"kind": "drill", "drill_id": "drill-20261101T020000Z", "host": "localhost", "passed": True,
         "started": "2026-11-01T02:00:00+00:00", "finished": "2026-11-01T02:01:00+00:00",
         "clients": [{"id": "c001", "name": NAMES["c001"], "rto_seconds": 41.5, "rpo_seconds": 3600.0,
                      "targets": {"rto_seconds": 14400.0, "rpo_seconds": 93600.0}}]}  # fmt: skip


class PeopleSite(Site):
    """The incident site with the firm's on-call list and the clients' contacts in its inventory."""

    oncall: list[dict] = []

    def inventory(self, clients=None) -> Path:
        with_contacts = [dict(c, contacts=CONTACTS[c["id"]]) if c["id"] in CONTACTS else c for c in self.clients]
        path = super().inventory(clients if clients is not None else with_contacts)
        inv = json.loads(path.read_text(encoding="utf-8"))
        inv["all"]["vars"] = {"ledgerguard_oncall": self.oncall}
        path.write_text(json.dumps(inv, ensure_ascii=False), encoding="utf-8")
        return path


def _run_incident(base: Path, s3_server) -> dict:
    bucket = "lg-people-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = PeopleSite(base, s3_server, bucket)
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
    site.backup(dt.datetime.now() - dt.timedelta(hours=3))
    for path in sorted(p for p in site.root("c001").rglob("*") if p.is_file()):
        path.write_bytes(os.urandom(max(path.stat().st_size, 256)))
        path.rename(path.with_name(path.name + ".locked"))
    (site.root("c001") / "HOW_TO_DECRYPT.txt").write_text("pay us\n")
    shutil.rmtree(site.root("c002"))
    drill = site.evidence / DRILL["drill_id"] / "hosts" / "localhost"
    drill.mkdir(parents=True)
    (drill / "history.jsonl").write_text(json.dumps(DRILL, ensure_ascii=False) + "\n", encoding="utf-8")
    common = {"incident_cause": "ransomware", "incident_operator": OPERATOR, "ledgerguard_incident_id": INCIDENT_ID}
    started = time.monotonic()
    dry = site.run(check=True, incident_summary="pytest: on-call dry run", **common)
    sent_by_dry = [len(hooks.posts), len(smtp.messages)]
    runner = site.run(incident_summary=SUMMARY, **common)
    seconds = time.monotonic() - started
    ev = evidence_dir(site)
    assert ev.name == INCIDENT_ID, ev
    return {
        "base": str(site.base),
        "evidence": str(ev),
        "root": str(site.evidence),
        "inventory": str(site.base / "inventory.json"),
        "dry": {"rc": dry.rc, "events": list(dry.events)},
        "runner": {"rc": runner.rc, "events": list(runner.events)},
        "sent_by_dry": sent_by_dry,
        "posts": hooks.posts,
        "mails": [
            {
                "auth": [base64.b64encode(part).decode() for part in mail["auth"] or []],
                "from": mail["from"],
                "to": mail["to"],
                "data": base64.b64encode(mail["data"]).decode(),
            }
            for mail in smtp.messages
        ],
        "smtp_port": smtp.port,
        "secret": secret,
        "seconds": seconds,
    }


def _loaded(raw: dict) -> dict:
    """The recorded run as the tests read it: runners with rc and events, the receivers with what they got."""
    mails = [
        dict(m, auth=[base64.b64decode(p) for p in m["auth"]], data=base64.b64decode(m["data"])) for m in raw["mails"]
    ]
    ev = Path(raw["evidence"])
    return {
        "evidence": ev,
        "root": Path(raw["root"]),
        "inventory": Path(raw["inventory"]),
        "dry": SimpleNamespace(**raw["dry"]),
        "runner": SimpleNamespace(**raw["runner"]),
        "sent_by_dry": tuple(raw["sent_by_dry"]),
        "hooks": SimpleNamespace(posts=raw["posts"]),
        "smtp": SimpleNamespace(messages=mails, port=raw["smtp_port"]),
        "secret": raw["secret"],
        "seconds": raw["seconds"],
    }


def people_incident(tmp_path_factory, s3_server, worker_id: str) -> dict:
    """The shared incident, run once per test session (across xdist workers)."""
    if worker_id == "master":  # no xdist: this process is the session
        shared = tmp_path_factory.getbasetemp()
    else:  # .../pytest-N/popen-gwK: the session's folder is shared by its workers
        shared = tmp_path_factory.getbasetemp().parent
    result = shared / "people-incident.json"
    with open(shared / "people-incident.lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits here until the incident is recorded
        if not result.exists():
            base = Path(tempfile.mkdtemp(prefix="people-incident-", dir=shared))  # a failed try leaves its own
            result.write_text(json.dumps(_run_incident(base, s3_server), ensure_ascii=False), encoding="utf-8")
    return _loaded(json.loads(result.read_text(encoding="utf-8")))
