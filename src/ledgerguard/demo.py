"""`make demo`: a ransomware-and-deletion incident on this machine, answered by playbooks/incident_respond.yml.

Everything lives under ``demo-run/<timestamp>/`` in the working directory (``make demo``: the checkout, where
``demo-run/`` is git-ignored): the clients' books, the host state folder, the evidence (passed explicitly as
``ledgerguard_evidence_dir``), the inventory (this machine) and the ansible-runner folder. The restic repository is
in a bucket of the embedded S3 server (moto on 127.0.0.1). Steps:

1. three clients' books (CSV vouchers, a SQLite ledger, scanned PDFs) from ``ledgerguard.sampledata``;
2. three dated nightly snapshots (``restic backup --time``), with a little bookkeeping work between them, each
   followed by ``ledgerguard manifest record`` (the backup-time manifest a firm's own nightly job records);
3. the incident: ransomware encrypts and renames client c001's files and drops a ransom note, client c002's folder
   is deleted, client c004's SQLite ledger is corrupted in place (a page overwritten, same size: nothing to see by
   name, size or entropy, only the SQLite validator catches it), the next nightly backup runs after the damage, and
   staff add a file for client c003 in the morning;
4. the incident playbook through ansible-runner with live progress;
5. checks: every file of the clean snapshot is back byte-identical, the post-snapshot file is kept, the damaged
   files are in quarantine (c004's ledger caught by content, reason ``corrupt: ...``), each restore was compared
   with its snapshot's backup-time manifest before the swap; a
   summary names the skipped snapshot and why, and the path of report.html;
6. who was told: the on-call messages (declare, clients, end) that a local webhook receiver (a thread on
   127.0.0.1, the ``generic`` channel of ``ledgerguard_oncall``) received, the customer notices the report drafted
   from the clients' ``contacts`` (waiting for a person's approval, as ``ledgerguard notices list`` shows them, with
   the commands that approve and send one), and the restore queue by filing deadline (the clients' ``filings``
   against the shipped filing calendar; ``restore_queue`` of report.json).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import hashlib
import http.server
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ledgerguard import sampledata
from ledgerguard.embedded_s3 import EmbeddedS3
from ledgerguard.runner import PlaybookRun, run_playbook

# The filings make the restore order differ from the hand-set priorities: the nearest deadline comes first
# (docs/filing_calendar.md). The contacts are who each client's notice drafts are addressed to.
CLIENTS = [
    {
        "id": "c001",
        "name": "杭州示例贸易有限公司",
        "priority": 10,
        "seed": 1,
        "filings": ["cit_annual", "annual_report"],
        "contacts": [
            {"name": "王会计", "role": "财务负责人", "phone": "13800000001", "mail": "wang@hz-demo.example.cn"}
        ],
    },
    {
        "id": "c002",
        "name": "宁波海风餐饮管理有限公司",
        "priority": 20,
        "seed": 2,
        "filings": ["vat_quarterly", "cit_quarterly"],
        "contacts": [
            {"name": "陈总", "role": "总经理", "phone": "13800000002", "mail": "chen@nb-demo.example.cn"},
            {"name": "Anna Lee", "role": "CFO", "mail": "anna.lee@nb-demo.example.cn", "language": "en"},
        ],
    },
    {
        "id": "c003",
        "name": "温州三江五金制品厂",
        "priority": 30,
        "seed": 3,
        "filings": ["annual_report"],
        "contacts": [{"name": "林出纳", "role": "出纳", "phone": "13800000003"}],
    },
    {
        "id": "c004",
        "name": "嘉兴禾丰农产品有限公司",
        "priority": 40,
        "seed": 4,
        "filings": ["vat_monthly", "iit_monthly"],
        "contacts": [
            {"name": "周会计", "role": "财务负责人", "phone": "13800000004", "mail": "zhou@jx-demo.example.cn"}
        ],
    },
]
ONCALL_PERSON = "张伟"
RANSOM_NOTE = "README_DECRYPT_FILES.txt"
HOST = "localhost"


def say(text: str = "") -> None:
    print(text, flush=True)


def tree_hashes(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class WebhookReceiver:
    """The demo's on-call chat channel: a local HTTP server in a thread that keeps every message POSTed to it (the
    ``generic`` webhook's JSON: title, status, text, data)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    receiver.posts.append(json.loads(body.decode("utf-8")))
                except ValueError:
                    receiver.posts.append({"title": "(not JSON)", "text": body.decode("utf-8", "replace")})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/oncall"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Demo:
    def __init__(self, base: Path):
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.root = (base / stamp).resolve()
        self.books = self.root / "data" / "客户账套"
        self.state = self.root / "state"
        self.evidence = self.root / "evidence"
        self.expected = self.root / "expected"
        self.secrets = self.root / "secrets"
        self.s3 = EmbeddedS3(log_path=None)
        self.hooks: WebhookReceiver | None = None
        self.repo = ""
        self.password_file = self.secrets / "restic-password"
        self.credentials_file = self.secrets / "s3-credentials"
        self.clients: list[dict] = []
        self.inventory = self.root / "inventory.yml"
        self.seconds = 0.0  # the playbook's wall time, set by run()

    # -- set-up --------------------------------------------------------------------------------------------------
    def restic(self, *args: str) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LC_ALL": "C",
            "RESTIC_REPOSITORY": self.repo,
            "RESTIC_PASSWORD_FILE": str(self.password_file),
            "RESTIC_CACHE_DIR": str(self.root / "restic-cache"),
            **self.s3.env(),
        }
        return subprocess.run(["restic", *args], env=env, capture_output=True, text=True, check=True)

    def backup(self, when: dt.datetime, label: str) -> str:
        res = self.restic(
            "backup",
            "--json",
            "--host",
            HOST,
            "--tag",
            "nightly",
            "--time",
            when.strftime("%Y-%m-%d %H:%M:%S"),
            str(self.books),
        )
        summary = [json.loads(x) for x in res.stdout.splitlines() if '"summary"' in x][-1]
        short = summary["snapshot_id"][:8]
        say(f"   snapshot {short}  {when:%Y-%m-%d %H:%M}  {label}")
        self.record_manifest(short)
        return short

    def record_manifest(self, snapshot: str) -> None:
        """What a firm adds after its nightly `restic backup`: `ledgerguard manifest record` (same code path)."""
        from ledgerguard import cli

        out, err = io.StringIO(), io.StringIO()
        argv = ["manifest", "record", "--snapshot", snapshot, "--repository", self.repo]
        argv += ["--password-file", str(self.password_file), "--s3-credentials-file", str(self.credentials_file)]
        argv += ["--cache-dir", str(self.root / "restic-cache")]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
        if code != 0:
            raise RuntimeError(f"ledgerguard manifest record failed (exit {code}): {err.getvalue().strip()}")
        say(f"      ledgerguard manifest record: {out.getvalue().strip()}")

    def setup(self) -> None:
        for folder in (self.books, self.state, self.evidence, self.secrets):
            folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets, 0o700)
        self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        self.password_file.chmod(0o600)
        # This machine only; the interpreter that runs ansible-playbook (discovery may find a pyenv shim).
        self.inventory.write_text(
            "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
            "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n",
            encoding="utf-8",
        )
        self.s3.start()
        env = self.s3.env()
        self.credentials_file.write_text(
            f"[default]\naws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\n"
            f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\nregion = {env['AWS_DEFAULT_REGION']}\n"
        )
        self.credentials_file.chmod(0o600)
        self.s3.create_bucket("ledgerguard-demo")
        self.repo = self.s3.restic_url("ledgerguard-demo", "restic")
        self.restic("init")
        say(f"1. Embedded S3 on {self.s3.endpoint}, restic repository {self.repo}")
        self.hooks = WebhookReceiver().start()
        say(f"   on-call: {ONCALL_PERSON} (lead) on a local webhook receiver, {self.hooks.url}")
        for spec in CLIENTS:
            info = sampledata.make_client_tree(
                self.books,
                spec["id"],
                spec["name"],
                periods=("2026-08", "2026-09"),
                vouchers_per_period=15,
                pdfs=3,
                seed=spec["seed"],
            )
            client = dict(info["client"])
            client["priority"] = spec["priority"]
            client["filings"] = list(spec["filings"])
            client["contacts"] = [dict(c) for c in spec["contacts"]]
            self.clients.append(client)
            say(f"   client {client['id']} {client['name']}: {info['files']} files in {client['root']}")

    def history(self) -> None:
        today = dt.datetime.now().replace(hour=2, minute=0, second=0, microsecond=0)
        if today > dt.datetime.now():
            today -= dt.timedelta(days=1)
        self.today = today
        say("2. Nightly backups")
        self.backup(today - dt.timedelta(days=3), "nightly")
        for client in self.clients:
            sampledata.write_voucher_csv(Path(client["root"]) / "凭证" / "2026-10.csv", "2026-10", 10, 7)
        self.backup(today - dt.timedelta(days=2), "nightly (October vouchers added)")
        for client in self.clients:
            sampledata.write_fake_pdf(Path(client["root"]) / "扫描件" / "记-0004.pdf", "Voucher 记-0004")
        self.clean_id = self.backup(today - dt.timedelta(days=1), "nightly (last clean one)")
        # What the clean snapshot holds, to check the restore against.
        shutil.copytree(self.books, self.expected, symlinks=True)

    def incident(self) -> None:
        say("3. The incident")
        victim = Path(self.clients[0]["root"])
        count = 0
        for path in sorted(p for p in victim.rglob("*") if p.is_file()):
            data = path.read_bytes()
            key = secrets.token_bytes(len(data) or 1)
            path.write_bytes(bytes(a ^ b for a, b in zip(data, key, strict=False)) if data else key)
            path.rename(path.with_name(path.name + ".locked"))
            count += 1
        (victim / RANSOM_NOTE).write_text(
            "Your files are encrypted. Pay 2 BTC to recover them. 您的文件已被加密。\n", encoding="utf-8"
        )
        say(f"   ransomware encrypted and renamed {count} files of c001 and left {RANSOM_NOTE}")
        shutil.rmtree(self.clients[1]["root"])
        say(f"   the folder of c002 ({self.clients[1]['root']}) was deleted")
        ledger = Path(self.clients[3]["root"]) / "账簿" / "ledger.sqlite"
        data = bytearray(ledger.read_bytes())
        data[4096 : 4096 + 64] = os.urandom(64)  # page 2's b-tree header: same size, entropy hardly changes
        ledger.write_bytes(bytes(data))
        self.corrupted = ledger
        say(f"   c004's SQLite ledger {ledger.relative_to(self.books)} was corrupted in place (same size)")
        self.damaged_id = self.backup(self.today, "nightly, AFTER the damage")
        extra = Path(self.clients[2]["root"]) / "凭证" / "2026-11-补录.csv"
        sampledata.write_voucher_csv(extra, "2026-11", 3, 11)
        self.new_file = extra
        say(f"   this morning staff added {extra.relative_to(self.books)} for c003 (must be kept)")

    # -- the playbook --------------------------------------------------------------------------------------------
    def run(self):
        say("4. playbooks/incident_respond.yml through ansible-runner")
        handler = make_progress()
        run = PlaybookRun(
            playbook="incident_respond.yml",
            private_data_dir=self.root / "runner",
            inventory=str(self.inventory),
            extravars=self.extravars(),
        )
        started = time.monotonic()
        runner = run_playbook(run, event_handler=handler)
        if hasattr(handler, "stop"):
            handler.stop()
        self.seconds = time.monotonic() - started
        return runner

    def extravars(self) -> dict:
        """The incident's variables: this run's repository, secret files (by path), folders and clients."""
        return {
            "ledgerguard_repository": self.repo,
            "ledgerguard_password_file": str(self.password_file),
            "ledgerguard_s3_credentials_file": str(self.credentials_file),
            "ledgerguard_state_dir": str(self.state),
            "ledgerguard_evidence_dir": str(self.evidence),
            "ledgerguard_clients": self.clients,
            "ledgerguard_oncall": [
                {"name": ONCALL_PERSON, "role": "lead", "channels": [{"kind": "generic", "url": self.hooks.url}]}
            ]
            if self.hooks
            else [],
            "incident_cause": "ransomware",
            "incident_detected_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "incident_operator": "demo",
            "incident_summary": "Ransomware encrypted c001's books; c002's folder was deleted (demo).",
        }

    # -- checks --------------------------------------------------------------------------------------------------
    def check(self, runner) -> int:
        reports = sorted(self.evidence.glob("INC-*/report.json"))
        if not reports:
            say(f"FAILED: the playbook ended with status {runner.status} (rc {runner.rc}) and wrote no report")
            return 1
        report = json.loads(reports[-1].read_text(encoding="utf-8"))
        problems = []
        for client in self.clients[:2]:
            rel = Path(client["root"]).relative_to(self.books)
            want = tree_hashes(self.expected / rel)
            got = tree_hashes(Path(client["root"]))
            wrong = [p for p, h in want.items() if got.get(p) != h]
            if wrong:
                problems.append(f"{client['id']}: {len(wrong)} files differ from the clean snapshot, e.g. {wrong[0]}")
        c3 = Path(self.clients[2]["root"])
        want = tree_hashes(self.expected / c3.relative_to(self.books))
        got = tree_hashes(c3)
        if any(got.get(p) != h for p, h in want.items()):
            problems.append("c003: files differ from the clean snapshot")
        if not self.new_file.exists():
            problems.append(f"c003: {self.new_file} created after the snapshot was not kept")
        c4 = Path(self.clients[3]["root"])
        want = tree_hashes(self.expected / c4.relative_to(self.books))
        if any(tree_hashes(c4).get(p) != h for p, h in want.items()):
            problems.append("c004: files differ from the clean snapshot (the corrupted ledger was not replaced)")
        evidence = reports[-1].parent
        manifest_problems: list[str] = []
        say("")
        say("5. Result")
        say(
            f"   incident {report['incident']['incident_id']}: {report['status']}  "
            f"(playbook {runner.status}, rc {runner.rc}, {self.seconds:.0f} s)"
        )
        say(f"   achieved RTO (declared -> verified): {report['summary']['rto']}")
        for client in report["clients"]:
            say(f"   {client['id']} {client['name']}: {client['status']}")
            if client.get("status") == "ok":
                snap = client["snapshot"]
                say(f"      restored snapshot {snap['short_id']} ({snap['time']}): {client['why']}")
                say(
                    f"      {len(client['restored'])} files put back, {len(client['replaced'])} replaced, "
                    f"{len(client['quarantined'])} quarantined, "
                    f"{len(client['kept_new']) + len(client['kept_changed'])} kept for review"
                )
            else:
                say(f"      {client.get('msg')}")
            bm = client.get("backup_manifest") or {}
            if bm.get("compared"):
                verdict = "all files identical" if bm.get("identical_all") else "DISAGREES"
                say(
                    f"      backup-time manifest {bm.get('manifest_short_id')} compared before the swap: {verdict} "
                    f"({bm.get('identical')} of {bm.get('files')} identical, {bm.get('changed_since_manifest')} "
                    f"changed between backup and manifest, {bm.get('missing')} missing, "
                    f"{bm.get('differing')} differing)"
                )
                if not bm.get("identical_all"):
                    manifest_problems.append(f"{client['id']}: the restore disagrees with the backup-time manifest")
            else:
                say("      backup-time manifest: not compared (none recorded for the snapshot)")
                manifest_problems.append(f"{client['id']}: no backup-time manifest comparison")
            for moved in client.get("quarantined") or []:
                if str(moved.get("reason", "")).startswith("corrupt: "):
                    say(f"      caught by content: {moved['path']}: {moved['reason']}")
            for skipped in client.get("skipped", []):
                say(f"      skipped {skipped['short_id']} ({skipped['time']}): {'; '.join(skipped['reasons'])}")
        say(f"   every file of the clean snapshot byte-identical: {'yes' if not problems else 'NO'}")
        for problem in problems + manifest_problems:
            say(f"   PROBLEM: {problem}")
        say(f"   timeline: {evidence / 'timeline.jsonl'}")
        say(f"   report:   {evidence / 'report.html'}")
        told = self.who_was_told(report, evidence)
        failed = problems or manifest_problems or told or report["status"] != "restored" or runner.rc != 0
        return 1 if failed else 0

    def who_was_told(self, report: dict, evidence: Path) -> list[str]:
        """Step 6: the on-call messages received, the notice drafts waiting for approval, the restore queue.
        Returns what is missing (each also printed as a PROBLEM)."""
        missing = []
        say("")
        say("6. Who is told, and when (docs/runbook.md)")
        posts = self.hooks.posts if self.hooks else []
        milestones = [str((p.get("data") or {}).get("milestone", "?")) for p in posts]
        for post, milestone in zip(posts, milestones, strict=True):
            say(f"   on-call message ({milestone}) received by {ONCALL_PERSON}'s webhook: {post.get('title', '')}")
            for line in str(post.get("text", "")).splitlines():
                if line.strip():
                    say(f"      {line}")
        for wanted in ("declare", "end"):
            if wanted not in milestones:
                missing.append(f"no on-call message at {wanted} reached the webhook receiver")
        say(f"   on-call record: {evidence / 'oncall.jsonl'}")

        say("")
        incident_id = evidence.name
        index = evidence / "notices" / "index.json"
        drafts = []
        if index.is_file():
            drafts = list(json.loads(index.read_text(encoding="utf-8")).get("notices", []))
        say(f"   customer notices waiting for a person's approval ({len(drafts)} drafts; nothing was sent):")
        from ledgerguard import cli

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["notices", "list", "--incident-id", incident_id, "--evidence-dir", str(self.evidence)])
        for line in out.getvalue().splitlines():
            say(f"   {line}")
        if code != 0 or not drafts:
            missing.append(f"no customer notice drafts in {index}")
        else:
            first = drafts[0]["id"]
            where = f"--incident-id {incident_id} --evidence-dir {self.evidence}"
            say(
                f"   to send one, a person edits its draft ({evidence / drafts[0]['path']}: fill in the placeholders,"
                " remove the draft marker and footer), then (docs/cli.md):"
            )
            say(f"      ledgerguard notices show {first} {where}")
            say(f"      ledgerguard notices approve {first} --by 李经理 {where}")
            say(f"      ledgerguard notices send {first} {where} --smtp-config /etc/ledgerguard/smtp.yml")

        say("")
        queue = report.get("restore_queue") or []
        say("   restore order by filing deadline (report.json restore_queue; nearest deadline first, then priority):")
        for item in queue:
            deadline = item.get("next_deadline") or {}
            due = "none"
            if deadline:
                due = f"{deadline.get('filing')} {deadline.get('period')} due {deadline.get('date')}"
            say(
                f"   {item['position']}. {item['id']} {item.get('name', '')} (priority {item['priority']}): "
                f"next deadline {due}; restored {item.get('eta') or item.get('eta_basis', '')}"
            )
            for warning in item.get("warnings") or []:
                say(f"      warning: {warning}")
        if not queue:
            missing.append("report.json has no restore_queue")
        for problem in missing:
            say(f"   PROBLEM: {problem}")
        return missing

    def cleanup(self) -> None:
        if self.hooks:
            self.hooks.stop()
        self.s3.stop()


def make_progress():
    """The live progress display of ledgerguard.progress when present, else a minimal one."""
    try:
        from ledgerguard.progress import Progress
    except ImportError:  # pragma: no cover - only before the CLI work lands
        return _minimal_progress
    return Progress(title=None).start()


def _minimal_progress(event: dict) -> bool:
    if event.get("event") == "playbook_on_task_start":
        print(f"   - {event.get('event_data', {}).get('task', '')}", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledgerguard.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="demo-run", help="folder for the demo's runs (./demo-run)")
    args = parser.parse_args(argv)
    base = Path(args.base).resolve()
    if "demo-run" not in base.parts:
        print(f"refusing to run the demo in {base}: give a folder inside a 'demo-run' folder", file=sys.stderr)
        return 2
    demo = Demo(base)
    say(f"ledgerguard demo in {demo.root}")
    try:
        demo.setup()
        demo.history()
        demo.incident()
        runner = demo.run()
        return demo.check(runner)
    finally:
        demo.cleanup()


if __name__ == "__main__":
    sys.exit(main())
