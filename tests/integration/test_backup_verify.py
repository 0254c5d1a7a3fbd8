"""playbooks/backup_verify.yml end to end: real restic 0.14 on a local repository, real playbooks through
ansible-runner, notifications received by a webhook server and an SMTP server started here on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import socketserver
import threading
import urllib.parse
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


from conftest import failed_messages
from ledgerguard import sampledata

# ---------------------------------------------------------------------------------------------------------------------
# local receivers
# ---------------------------------------------------------------------------------------------------------------------


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records POSTs and answers like each chat bot does."""

    ANSWERS = {
        "/dingtalk": {"errcode": 0, "errmsg": "ok"},
        "/wecom": {"errcode": 0, "errmsg": "ok"},
        "/feishu": {"code": 0, "msg": "success", "data": {}},
        "/generic": {"received": True},
        "/dingtalk-bad": {"errcode": 310000, "errmsg": "sign not match"},
    }

    def __init__(self):
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                split = urllib.parse.urlsplit(self.path)
                receiver.requests.append(
                    {"path": split.path, "query": urllib.parse.parse_qs(split.query), "body": json.loads(raw)}
                )
                if split.path == "/slack":
                    payload, ctype = b"ok", "text/plain"
                else:
                    payload, ctype = json.dumps(receiver.ANSWERS[split.path]).encode(), "application/json"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def by_path(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]


class SMTPReceiver:
    """A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) on 127.0.0.1."""

    def __init__(self):
        self.messages: list[dict] = []
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str):
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.reply("220 127.0.0.1 test SMTP")
                sender, rcpts = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.wfile.write(b"250-127.0.0.1\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    elif verb == "HELO":
                        self.reply("250 127.0.0.1")
                    elif verb == "MAIL":
                        sender, rcpts = cmd[10:].split(" ")[0].strip("<>"), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(cmd[8:].strip().strip("<>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = b""
                        while True:
                            chunk = self.rfile.readline()
                            if chunk in (b".\r\n", b".\n", b""):
                                break
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        receiver.messages.append({"from": sender, "to": rcpts, "data": data})
                        self.reply("250 OK queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("502 Command not implemented")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------------------------------
# data and helpers
# ---------------------------------------------------------------------------------------------------------------------


def make_clients(root: Path, seed: int) -> list[dict]:
    """Two clients with a few CSV files each (Chinese names included)."""
    rng = random.Random(seed)
    clients = []
    for cid, name in (("C001", "华东商贸有限公司"), ("C002", "客户二")):
        folder = root / cid
        (folder / "凭证").mkdir(parents=True)
        for i in range(6):
            rows = "\n".join(f"{n},{rng.randint(1, 99999)},借,贷" for n in range(80))
            (folder / "凭证" / f"记-{i:03d}.csv").write_text("编号,金额,借方,贷方\n" + rows + "\n", encoding="utf-8")
        (folder / "总账.csv").write_text("科目,借方,贷方\n1001,100.00,\n", encoding="utf-8")
        clients.append({"id": cid, "name": name, "paths": [str(folder)]})
    return clients


def backup(restic_cmd, repo, pw, path: Path, host: str, when: datetime | None = None):
    args = ["backup", "--host", host, str(path)]
    if when:
        args += ["--time", when.strftime("%Y-%m-%d %H:%M:%S")]
    restic_cmd(repo, pw, *args)


def ransomware(folder: Path):
    """Simulate an encryption run: every file replaced by random bytes under a .locked name, plus a ransom note."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = os.urandom(max(path.stat().st_size, 4096))
        path.unlink()
        path.with_name(path.name + ".locked").write_bytes(data)
    (folder / "README_DECRYPT.txt").write_text("Your files are encrypted. Pay 1 BTC.\n")


def corrupt_in_place(path: Path):
    """Overwrite bytes inside pages 2 and 3 of a SQLite file (same size, header intact): the in-place corruption."""
    data = bytearray(path.read_bytes())
    for offset in range(4096 + 100, min(len(data), 3 * 4096), 7):
        data[offset] = (data[offset] * 31 + 17) & 0xFF
    path.write_bytes(bytes(data))


def result_dir(evidence: Path) -> Path:
    runs = sorted((evidence / "backup_verify").iterdir())
    assert len(runs) >= 1
    return runs[-1]


def checks_of(report: dict, host: str) -> dict[tuple[str, str], dict]:
    item = next(h for h in report["hosts"] if h["host"] == host)
    return {(c["check"], c["subject"]): c for c in item["checks"]}


def statuses(report: dict, host: str, name: str) -> list[str]:
    return [c["status"] for (n, _s), c in checks_of(report, host).items() if n == name]


def base_hostvars(tmp_path: Path, repo: str, pw: Path, host: str, clients: list[dict]) -> dict:
    return {
        "ledgerguard_repository": repo,
        "ledgerguard_password_file": str(pw),
        "ledgerguard_evidence_dir": str(tmp_path / "evidence"),
        "ledgerguard_state_dir": str(tmp_path / "state" / host),
        "ledgerguard_clients": clients,
        "backup_verify_spot_check_files": 3,
    }


# ---------------------------------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------------------------------


def test_healthy_repository_passes(
    tmp_path, local_repo, restic_password_file, restic_cmd, localhost_inventory, playbook
):
    data = tmp_path / "data"
    clients = make_clients(data, 1)
    backup(restic_cmd, local_repo, restic_password_file, data, "books01")
    hv = base_hostvars(tmp_path, local_repo, restic_password_file, "books01", clients)
    hv.update(
        backup_verify_data_rolling_total=3,
        ledgerguard_backup_policy={"retention": {"keep_daily": 7, "keep_yearly": -1}},
    )
    inv = localhost_inventory(hosts={"books01": hv})

    runner = playbook("backup_verify.yml", inventory=inv)
    assert runner.rc == 0, failed_messages(runner)

    out = result_dir(tmp_path / "evidence")
    report = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert report["schema"] == "ledgerguard.backup_verify/1"
    assert report["status"] == "OK", report["problems"]
    assert report["counts"]["FAIL"] == 0 and report["counts"]["WARN"] == 0
    host = checks_of(report, "books01")
    assert {k[0] for k in host} == {"reachable", "freshness", "coverage", "damage", "spot_check"}
    assert host[("coverage", f"C001 华东商贸有限公司: {data}/C001")]["status"] == "OK"
    spot = host[("spot_check", "books01")]
    assert spot["status"] == "OK"
    assert spot["details"]["sampled"] == 3 and spot["details"]["matched"] == 3
    repo = report["repositories"][0]
    assert repo["repository"] == local_repo
    data_check = next(c for c in repo["checks"] if c["check"] == "data")
    assert data_check["status"] == "OK"
    assert data_check["details"]["subset"] == "1/3"
    assert next(c for c in repo["checks"] if c["check"] == "storage")["status"] == "SKIP"
    assert {c["status"] for c in repo["checks"] if c["check"] == "retention"} == {"OK"}

    # Markdown and HTML summaries, escaped Chinese names, metrics in textfile format.
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert md.startswith("# Backup verification — OK")
    assert "C001 华东商贸有限公司" in md
    html = (out / "summary.html").read_text(encoding="utf-8")
    assert "<!DOCTYPE html>" in html and "华东商贸有限公司" in html
    prom = (tmp_path / "evidence" / "metrics" / "ledgerguard_backup_verify.prom").read_text(encoding="utf-8")
    assert "ledgerguard_backup_verify_status 0\n" in prom
    assert 'ledgerguard_backup_coverage_ratio{host="books01"} 1.0\n' in prom
    assert f'ledgerguard_backup_data_read_coverage_ratio{{repository="{local_repo}"}} 0.3333\n' in prom
    ages = [line for line in prom.splitlines() if line.startswith("ledgerguard_backup_snapshot_age_seconds{")]
    assert len(ages) == 2 and all(0 <= int(line.rsplit(" ", 1)[1]) < 600 for line in ages)

    # The rolling position is kept on the controller: the next run reads part 2 of 3.
    state_files = list((tmp_path / "evidence" / "state" / "backup_verify").glob("rolling-*.json"))
    assert len(state_files) == 1
    state = json.loads(state_files[0].read_text())
    assert (state["t"], state["next"], state["read"]) == (3, 2, [1])
    assert oct(state_files[0].stat().st_mode & 0o777) == "0o600"

    # The sandbox is emptied; nothing is left on the host.
    sandbox = tmp_path / "state" / "books01" / "backup_verify" / "sandbox"
    assert not sandbox.exists() or not any(sandbox.iterdir())


# The checks of test_faults_are_found_and_notified's hosts that nothing there asserts, off on those hosts: each is a
# restore (spot check), a scan of a snapshot more (damage) or a listing of the whole repository (survey) per host.
# healthy keeps every check (all of them are asserted OK); the checks each case is about stay on.
UNASSERTED_CHECKS = {
    "stale": ("spot_check", "survey"),
    "gone": ("damage", "spot_check", "survey"),
    "ransom": ("spot_check", "survey"),
    "books": ("survey",),
}


def test_faults_are_found_and_notified(
    tmp_path, local_repo, restic_password_file, restic_cmd, localhost_inventory, playbook
):
    """One run, five hosts on one repository: healthy, stale, a removed client folder, a ransomware snapshot, and
    clients declaring their SQLite ledgers (ledgerguard_clients[].ledger), one corrupted in place in the newest
    snapshot."""
    pw, repo = restic_password_file, local_repo
    hosts = {}
    for index, name in enumerate(("healthy", "stale", "gone", "ransom", "books")):
        data = tmp_path / name
        clients = make_clients(data, index)
        hosts[name] = base_hostvars(tmp_path, repo, pw, name, clients)
        hosts[name].update({f"backup_verify_{check}_enabled": False for check in UNASSERTED_CHECKS.get(name, ())})
        if name == "books":
            for client in clients:
                ledger = Path(client["paths"][0]) / "账簿" / "总账.sqlite"
                sampledata.write_sqlite_ledger(ledger, [f"2024-{m:02d}" for m in range(1, 13)], 60, seed=index)
                client["ledger"] = {"sqlite": {"sources": ["账簿/总账.sqlite"]}}
        if name == "stale":
            backup(restic_cmd, repo, pw, data, name, when=datetime.now() - timedelta(days=3))
        else:
            backup(restic_cmd, repo, pw, data, name)
        if name == "gone":
            import shutil

            shutil.rmtree(data / "C002")
            backup(restic_cmd, repo, pw, data, name)
        if name == "ransom":
            ransomware(data / "C001")
            backup(restic_cmd, repo, pw, data, name)
        if name == "books":
            corrupt_in_place(data / "C001" / "账簿" / "总账.sqlite")
            backup(restic_cmd, repo, pw, data, name)

    secret = "SEC-test-signing"
    with WebhookReceiver() as hooks, SMTPReceiver() as smtp:
        common = {
            "ledgerguard_backup_policy": {"retention": {"keep_daily": 7, "keep_monthly": 12, "keep_yearly": 10}},
            "backup_verify_notify_webhooks": [
                {"url": hooks.url + "/dingtalk?access_token=tok", "kind": "dingtalk", "secret": secret},
                {"url": hooks.url + "/wecom?key=k", "kind": "wecom"},
                {"url": hooks.url + "/feishu", "kind": "feishu", "secret": secret},
                {"url": hooks.url + "/slack", "kind": "slack"},
                {"url": hooks.url + "/generic", "kind": "generic"},
            ],
            "backup_verify_notify_email": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "from": "ledgerguard@example.test",
                "to": ["ops@example.test"],
                "secure": "never",
            },
        }
        for hv in hosts.values():
            hv.update(common)
        inv = localhost_inventory(hosts=hosts)
        runner = playbook("backup_verify.yml", inventory=inv)

        # The play fails, so AWX and cron see it.
        assert runner.rc != 0
        msgs = failed_messages(runner)
        assert any(m.startswith("Backup verification FAILED (") for m in msgs), msgs

        report = json.loads((result_dir(tmp_path / "evidence") / "result.json").read_text(encoding="utf-8"))
        assert report["status"] == "FAIL"
        # healthy: every host check OK
        assert {c["status"] for c in checks_of(report, "healthy").values()} == {"OK"}
        # stale: freshness FAILs for both clients, with the age and the RPO in the reason
        stale = [c for (n, _s), c in checks_of(report, "stale").items() if n == "freshness"]
        assert [c["status"] for c in stale] == ["FAIL", "FAIL"]
        assert "h old, older than the RPO of 24 h" in stale[0]["reason"]
        assert 71 * 3600 < stale[0]["details"]["age_seconds"] < 73 * 3600
        assert statuses(report, "stale", "coverage") == ["OK", "OK"]
        # gone: C002's folder is missing from the newest snapshot
        gone = checks_of(report, "gone")
        c002 = gone[("coverage", f"C002 客户二: {tmp_path}/gone/C002")]
        assert c002["status"] == "FAIL"
        assert c002["reason"].startswith(f"{tmp_path}/gone/C002 is missing from the newest snapshot")
        assert gone[("coverage", f"C001 华东商贸有限公司: {tmp_path}/gone/C001")]["status"] == "OK"
        # ransom: the newest snapshot of C001 already holds the damage; the one before is clean
        damage = [c for (n, _s), c in checks_of(report, "ransom").items() if n == "damage" and "C001" in _s]
        assert [c["status"] for c in damage] == ["FAIL", "OK"]
        reasons = " ".join(damage[0]["details"]["reasons"])
        assert "ransom note present: README_DECRYPT.txt" in reasons
        assert "with ransomware extension .locked" in reasons
        assert statuses(report, "healthy", "damage") == ["OK", "OK"]
        # books: C001's declared SQLite ledger is corrupt in the newest snapshot. The ledger check names the file with
        # the validator's reason and ledger_verify's finding; the damage check skips that snapshot for the same file.
        books = checks_of(report, "books")
        sqlite_file = f"{tmp_path}/books/C001/账簿/总账.sqlite"
        ledger = books[("ledger", "C001 华东商贸有限公司")]
        assert ledger["status"] == "FAIL"
        newest = ledger["details"]["snapshot"]
        assert ledger["reason"].startswith(f"the books in the newest snapshot {newest} fail: {sqlite_file}: SQLite ")
        problems = ledger["details"]["problems"]
        assert problems[0].startswith(f"{sqlite_file}: SQLite quick_check") and problems[0].endswith("(builtin:sqlite)")
        assert any(
            p.startswith("账簿/总账.sqlite: PRAGMA integrity_check: ") and p.endswith("(ledger_verify integrity)")
            for p in problems
        ), problems
        assert [f["kind"] for f in ledger["details"]["findings"]][:1] == ["integrity"]
        assert books[("ledger", "C002 客户二")]["status"] == "OK"
        assert books[("ledger", "C002 客户二")]["reason"].startswith(
            f"restored from the newest snapshot {newest}: C002"
        )
        c001_damage = [c for (n, _s), c in books.items() if n == "damage" and "C001" in _s]
        assert [c["status"] for c in c001_damage] == ["FAIL", "OK"]
        assert f"{sqlite_file} fails validation in this snapshot: SQLite quick_check" in c001_damage[0]["reason"]
        assert statuses(report, "books", "spot_check") == ["OK"]
        # clients that declare no books get no ledger check
        assert statuses(report, "healthy", "ledger") == []
        # retention: keep_yearly 10 cannot hold 30-year and permanent classes
        retention = {c["subject"]: c for c in report["repositories"][0]["checks"] if c["check"] == "retention"}
        assert retention["原始凭证, 记账凭证 (vouchers)"]["status"] == "FAIL"
        assert retention["年度财务会计报告 (annual financial reports)"]["status"] == "FAIL"
        assert "keep_yearly: 31" in retention["原始凭证, 记账凭证 (vouchers)"]["reason"]

        # Notifications: one message per webhook in its bot's format, and one e-mail.
        ding = hooks.by_path("/dingtalk")
        assert len(ding) == 1
        assert ding[0]["body"]["msgtype"] == "markdown"
        assert ding[0]["body"]["markdown"]["title"] == "[FAIL] ledgerguard backup verification: FAIL"
        assert "stale" in ding[0]["body"]["markdown"]["text"]
        ts = ding[0]["query"]["timestamp"][0]
        expected = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest())
        assert ding[0]["query"]["sign"] == [expected.decode()]
        assert ding[0]["query"]["access_token"] == ["tok"]
        wecom = hooks.by_path("/wecom")[0]["body"]
        assert wecom["msgtype"] == "markdown" and "FAIL" in wecom["markdown"]["content"]
        feishu = hooks.by_path("/feishu")[0]["body"]
        assert feishu["msg_type"] == "interactive" and feishu["card"]["header"]["template"] == "red"
        fkey = f"{feishu['timestamp']}\n{secret}".encode()
        assert feishu["sign"] == base64.b64encode(hmac.new(fkey, b"", hashlib.sha256).digest()).decode()
        slack = hooks.by_path("/slack")[0]["body"]
        assert slack["text"] == "[FAIL] ledgerguard backup verification: FAIL"
        assert slack["blocks"][1]["text"]["type"] == "mrkdwn"
        generic = hooks.by_path("/generic")[0]["body"]
        assert generic["status"] == "FAIL" and generic["data"]["status"] == "FAIL"
        assert {h["host"] for h in generic["data"]["hosts"]} == {"healthy", "stale", "gone", "ransom", "books"}

        assert len(smtp.messages) == 1
        mail = smtp.messages[0]
        assert mail["to"] == ["ops@example.test"]
        parsed = message_from_bytes(mail["data"], policy=policy.default)
        assert parsed["Subject"] == "ledgerguard backup verification: FAIL"
        assert "客户二" in parsed.get_body().get_content()

        # No secret in any event the runner recorded.
        events = json.dumps(list(runner.events), ensure_ascii=False)
        assert secret not in events
        assert restic_password_file.read_text().strip() not in events


def test_corrupted_pack_is_found(tmp_path, local_repo, restic_password_file, restic_cmd, localhost_inventory, playbook):
    data = tmp_path / "data"
    clients = make_clients(data, 7)
    backup(restic_cmd, local_repo, restic_password_file, data, "books01")
    packs = sorted(p for p in (Path(local_repo) / "data").rglob("*") if p.is_file())
    victim = max(packs, key=lambda p: p.stat().st_size)
    victim.chmod(0o644)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    victim.write_bytes(bytes(raw))

    hv = base_hostvars(tmp_path, local_repo, restic_password_file, "books01", clients)
    hv.update(
        {
            "backup_verify_data_rolling_total": 1,
            "backup_verify_freshness_enabled": False,
            "backup_verify_coverage_enabled": False,
            "backup_verify_damage_enabled": False,
            "backup_verify_spot_check_enabled": False,
            "backup_verify_retention_enabled": False,
        }
    )
    runner = playbook("backup_verify.yml", inventory=localhost_inventory(hosts={"books01": hv}))
    assert runner.rc != 0
    report = json.loads((result_dir(tmp_path / "evidence") / "result.json").read_text(encoding="utf-8"))
    data_check = next(c for c in report["repositories"][0]["checks"] if c["check"] == "data")
    assert data_check["status"] == "FAIL"
    assert data_check["reason"].startswith("restic check --read-data-subset=1/1 failed:")
    assert "Pack ID does not match" in data_check["reason"]
    assert data_check["details"]["errors"]
    # the survey: each client path, the snapshot holding it, its host and in-snapshot path
    summary = (result_dir(tmp_path / "evidence") / "summary.md").read_text(encoding="utf-8")
    assert "#### Survey: which snapshots hold each client's books" in summary
    assert f"| C001 | {clients[0]['paths'][0]} | 1 | books01 |" in summary, summary
    # A failed read does not advance the rolling position.
    state = json.loads(next((tmp_path / "evidence" / "state" / "backup_verify").glob("rolling-*.json")).read_text())
    assert state["next"] == 1 and state["history"][-1]["ok"] is False


def test_invalid_input_is_refused(tmp_path, local_repo, restic_password_file, localhost_inventory, playbook):
    hv = base_hostvars(
        tmp_path, local_repo, restic_password_file, "books01", [{"id": "C1", "paths": ["relative/path"]}]
    )
    hv["backup_verify_data_mode"] = "sometimes"
    runner = playbook("backup_verify.yml", inventory=localhost_inventory(hosts={"books01": hv}))
    assert runner.rc != 0
    msgs = " ".join(failed_messages(runner))
    assert "backup_verify" in msgs and "sometimes" in msgs
    # what the argument spec lets through, the role's own check refuses with every expected value and what it got
    hv["backup_verify_data_mode"] = "rolling"
    hv["backup_verify_spot_check_files"] = 0
    runner = playbook("backup_verify.yml", inventory=localhost_inventory(hosts={"books01": hv}))
    assert runner.rc != 0
    msgs = " ".join(failed_messages(runner))
    assert msgs.startswith("backup_verify: invalid input. Expected backup_verify_data_mode in ")
    assert "backup_verify_spot_check_files >= 1 (got 0)" in msgs and "(clients: ['C1'])" in msgs
    assert "backup_verify_damage_snapshots >= 1 (got 3)" in msgs


def test_the_first_host_of_each_repository_runs_its_repository_wide_checks(
    tmp_path, restic_password_file, localhost_inventory, playbook
):
    """Four hosts on two repositories: the first host of each (in play order) owns its repository's checks."""
    repos = {"books01": "仓库甲", "books02": "仓库乙", "books03": "仓库甲", "books04": "仓库乙"}
    hosts = {
        host: {"ledgerguard_repository": str(tmp_path / repo), "ledgerguard_password_file": str(restic_password_file)}
        for host, repo in repos.items()
    }
    runner = playbook(
        str(Path(__file__).parent / "playbooks" / "backup_verify_owners.yml"),
        inventory=localhost_inventory(hosts=hosts),
    )
    assert runner.rc == 0, failed_messages(runner)
    shown = {
        ev["event_data"]["host"]: ev["event_data"]["res"]["msg"]
        for ev in runner.events
        if ev.get("event") == "runner_on_ok" and ev["event_data"].get("task") == "Show this host's choice"
    }
    assert shown == {
        "books01": {"repository": str(tmp_path / "仓库甲"), "owner": True},
        "books02": {"repository": str(tmp_path / "仓库乙"), "owner": True},
        "books03": {"repository": str(tmp_path / "仓库甲"), "owner": False},
        "books04": {"repository": str(tmp_path / "仓库乙"), "owner": False},
    }
