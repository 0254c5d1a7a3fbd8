"""Backup operations end to end on moto S3 with real restic: ``ledgerguard backup`` (check, run, refused), its
metrics and alert, backup_verify's per-client off-site copy check, and a drill restored from the copy; and the
retention preview per client in both repositories over a backdated history.

One site per test: every playbook run is shared by the assertions that follow it (the runs are what cost time).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ansible_collections.ledgerguard.recovery.plugins.module_utils.retention import DEFAULT_RECORD_CLASSES
from conftest import TEST_BIN, cli_environment, failed_messages, write_s3_credentials
from ledgerguard import sampledata

LEDGERGUARD = [sys.executable, "-m", "ledgerguard"]
NAME = "杭州西湖记账示例有限公司"
POLICY = {"keep_daily": 14, "keep_weekly": 8, "keep_monthly": 24, "keep_yearly": 31, "keep_tag": ["permanent"]}
CLASSES = [dict(c, tag="permanent") if c["years"] is None else c for c in DEFAULT_RECORD_CLASSES]
MANIFEST_TAG = "ledgerguard-manifest"


class Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LEDGERGUARD, *args], capture_output=True, text=True, env=cli_environment(), timeout=600, check=False
    )


def secret(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@dataclass
class Repositories:
    """The collection's repository and the off-site copy, each in its own moto bucket with its own password; one
    credentials file for both (as ledgerguard_s3_credentials_file)."""

    aws: dict
    main_bucket: str
    repo: str
    copy_repo: str
    pw: Path
    copy_pw: Path
    creds: Path

    def cli_args(self, tmp_path: Path, inv: Path, vars_file: Path) -> list[str]:
        """``ledgerguard backup``'s options for these repositories, the inventory and a vars file."""
        return [
            "--plain", "-i", str(inv), "--repository", self.repo, "--password-file", str(self.pw),
            "--s3-credentials-file", str(self.creds), "--private-data-dir", str(tmp_path / "runner"),
            "--evidence-dir", str(tmp_path / "evidence"), "-e", f"@{vars_file}",
        ]  # fmt: skip

    def policy_cli_args(self, tmp_path: Path, localhost_inventory, client: dict, state: Path) -> list[str]:
        """``cli_args`` for one client under the legal retention policy, with these repositories' off-site copy."""
        inv = localhost_inventory({"ledgerguard_clients": [{k: client[k] for k in ("id", "name", "paths")}],
                                   "ledgerguard_state_dir": str(state)})  # fmt: skip
        vars_file = tmp_path / "backup-vars.json"
        vars_file.write_text(json.dumps({
            "ledgerguard_backup_policy": {"retention": POLICY},
            "backup_verify_record_classes": CLASSES,
            "backup_copy_repository": self.copy_repo,
            "backup_copy_password_file": str(self.copy_pw),
        }))  # fmt: skip
        return self.cli_args(tmp_path, inv, vars_file)


def repositories(tmp_path: Path, s3_server, restic_cmd, prefix: str) -> Repositories:
    aws = s3_server.env()
    buckets = [f"{prefix}-main-{secrets.token_hex(3)}", f"{prefix}-copy-{secrets.token_hex(3)}"]
    for bucket in buckets:
        s3_server.create_bucket(bucket)
    out = Repositories(
        aws=aws,
        main_bucket=buckets[0],
        repo=s3_server.restic_url(buckets[0], "restic"),
        copy_repo=s3_server.restic_url(buckets[1], "restic"),
        pw=secret(tmp_path / "restic-password", secrets.token_hex(16) + "\n"),
        copy_pw=secret(tmp_path / "offsite-password", secrets.token_hex(16) + "\n"),
        creds=write_s3_credentials(tmp_path / "s3-credentials", s3_server),
    )
    restic_cmd(out.repo, out.pw, "init", env=aws)
    restic_cmd(out.copy_repo, out.copy_pw, "init", env=aws)
    return out


def metrics(path: Path) -> dict[str, float]:
    """``name{labels}`` -> value of a textfile."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_cli_backup_metrics_copy_verified_and_drill_from_the_copy(
    tmp_path, s3_server, restic_cmd, localhost_inventory, playbook, postgres
):
    r = repositories(tmp_path, s3_server, restic_cmd, "lg-ops")
    aws, repo, copy_repo, pw, copy_pw, creds = r.aws, r.repo, r.copy_repo, r.pw, r.copy_pw, r.creds
    books = tmp_path / "客户账套"
    info = sampledata.make_client_tree(books, "c001", NAME, periods=["2026-10", "2026-11"], vouchers_per_period=4)
    clients = [{k: info["client"][k] for k in ("id", "name", "paths")}]
    state, textfile, evidence = tmp_path / "state", tmp_path / "textfile", tmp_path / "evidence"
    # one PostgreSQL database, dumped into the repository, copied off-site, and restored by the drill from the copy
    postgres.psql("CREATE DATABASE ledger")
    postgres.psql("CREATE TABLE 凭证 (id int PRIMARY KEY, 摘要 text)", "ledger")
    postgres.psql("INSERT INTO 凭证 SELECT g, '收到西湖货款 ' || g FROM generate_series(1, 120) g", "ledger")
    databases = [{"engine": "postgresql", "database": "ledger", "connection": postgres.conn}]
    inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(state)})
    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    Hook.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    vars_file = tmp_path / "backup-vars.json"
    vars_file.write_text(
        json.dumps(
            {
                "ledgerguard_backup_policy": {"retention": POLICY},
                "backup_verify_record_classes": CLASSES,
                "backup_copy_repository": copy_repo,
                "backup_copy_password_file": str(copy_pw),
                "backup_databases": databases,
                "backup_verify_notify_webhooks": [{"url": f"http://127.0.0.1:{server.server_port}/hook"}],
            }
        )
    )
    common = [*r.cli_args(tmp_path, inv, vars_file), "--metrics-dir", str(textfile)]
    try:
        # --check: the plan per client and the retention dry run; nothing is written, no metrics, no alert
        checked = cli("backup", "--check", *common)
        assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr
        assert re.search(
            rf"^localhost c001 \({NAME}\): \d+ new, 0 changed, .* snapshot \(check mode\)", checked.stdout, re.M
        )
        for subject in ("c001", "db-postgresql-ledger"):  # the database has no client: its dumps' own tag
            assert f"localhost {subject}: retention in the repository keeps 0, would forget 0" in checked.stdout
            assert f"localhost {subject}: retention in the off-site copy keeps 0, would forget 0" in checked.stdout
        assert json.loads(restic_cmd(repo, pw, "snapshots", "--json", env=aws).stdout) in ([], None)
        assert not textfile.exists()

        started = time.time()
        run = cli("backup", *common)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr
        snaps = json.loads(restic_cmd(repo, pw, "snapshots", "--json", env=aws).stdout)
        (data,) = [s for s in snaps if MANIFEST_TAG not in s["tags"] and "c001" in s["tags"]]
        (dump,) = [s for s in snaps if "db-postgresql-ledger" in s["tags"]]
        (manifest,) = [s for s in snaps if MANIFEST_TAG in s["tags"]]
        line = next(x for x in run.stdout.splitlines() if x.startswith("localhost c001 ("))
        files = len([p for p in Path(clients[0]["paths"][0]).rglob("*") if p.is_file()])
        assert re.fullmatch(
            rf"localhost c001 \({NAME}\): {files} new, 0 changed, [\d.]+ (B|KiB|MiB) added, [\d.]+ s, "
            rf"snapshot {data['short_id']}, manifest {manifest['id'][:8]}",
            line,
        ), line
        assert f"localhost c001: newest snapshot {data['id'][:8]} in the copy" in run.stdout
        for subject in ("c001", "db-postgresql-ledger"):
            assert f"localhost {subject}: retention in the repository keeps 1, would forget 0" in run.stdout
            assert f"localhost {subject}: retention in the off-site copy keeps 1, would forget 0" in run.stdout
        assert "ledgerguard backup: exit 0 (success)" in run.stdout

        # metrics: last success now, this run's duration and bytes, not failed, not late
        m = metrics(textfile / "ledgerguard_backup.prom")
        labels = '{host="localhost",client="c001"}'
        assert started - 1 <= m[f"ledgerguard_backup_last_success_timestamp_seconds{labels}"] <= time.time()
        assert m[f"ledgerguard_backup_failed{labels}"] == 0 and m[f"ledgerguard_backup_late{labels}"] == 0
        assert (
            m[f"ledgerguard_backup_bytes_added{labels}"] > 0 and m[f"ledgerguard_backup_duration_seconds{labels}"] > 0
        )
        assert Hook.received == []

        # backup_verify: the newest snapshot in both repositories, per client (only that check, to stay cheap)
        checks_off = {
            f"backup_verify_{c}_enabled": False
            for c in ("check", "freshness", "coverage", "damage", "spot_check", "storage", "retention", "survey")
        }
        verified = playbook(
            "backup_verify.yml",
            inventory=inv,
            extravars={
                "ledgerguard_repository": repo,
                "ledgerguard_password_file": str(pw),
                "ledgerguard_s3_credentials_file": str(creds),
                "ledgerguard_evidence_dir": str(evidence),
                "backup_verify_copy_repository": copy_repo,
                "backup_verify_copy_password_file": str(copy_pw),
                "backup_verify_notify_on": [],
                **checks_off,
            },
        )
        assert verified.rc == 0
        (result,) = evidence.rglob("result.json")
        (host,) = json.loads(result.read_text())["hosts"]
        (check,) = [c for c in host["checks"] if c["check"] == "offsite_copy"]
        copies = json.loads(restic_cmd(copy_repo, copy_pw, "snapshots", "--json", "--tag", "c001", env=aws).stdout)
        (copied,) = copies
        assert copied["original"] == data["id"]
        assert (check["subject"], check["status"]) == ("c001", "OK")
        assert check["reason"] == (
            f"newest snapshot {data['id'][:8]} ({data['time']}) is in the copy as {copied['id'][:8]}"
        )
        assert (check["details"]["both_id"], check["details"]["both_copy_id"]) == (data["id"], copied["id"])

        # the drill restores from the copy: the first repository is pointed at an empty bucket it cannot read
        s3_server.create_bucket(r.main_bucket + "-void")
        drill_vars = {
            "ledgerguard_repository": s3_server.restic_url(r.main_bucket + "-void", "restic"),
            "ledgerguard_password_file": str(pw),
            "ledgerguard_s3_credentials_file": str(creds),
            "ledgerguard_evidence_dir": str(evidence),
            "drill_sandbox_dir": str(tmp_path / "sandbox"),
            "drill_progress_interval": 0,
            "drill_copy_repository": copy_repo,
            "drill_copy_password_file": str(copy_pw),
            "drill_metrics_dir": str(tmp_path / "drill-textfile"),
            "drill_snapshot_tags": ["c001"],  # the client's snapshot, not the newer dump's
        }
        drilled = playbook(
            "drill.yml",
            inventory=inv,
            extravars={**drill_vars, "drill_id": "drill-offsite", "drill_databases": databases},
        )
        assert drilled.rc == 0, failed_messages(drilled)
        record = json.loads((state / "drills" / "history.jsonl").read_text())
        assert record["passed"] is True and record["snapshot"]["id"] == copied["id"]
        assert record["clients"][0]["files"] == files
        # ... and so does its database step: the dump's copy, restored into a scratch database with every row
        (dumped,) = json.loads(
            restic_cmd(copy_repo, copy_pw, "snapshots", "--json", "--tag", "db-postgresql-ledger", env=aws).stdout
        )
        assert dumped["original"] == dump["id"]
        (restored,) = record["databases"]
        assert (restored["passed"], restored["snapshot"], restored["tables"]) == (
            True, dumped["short_id"], {"public.凭证": 120}
        )  # fmt: skip
        assert restored["scratch"] == "ledger_drill_offsite" and restored["table_count"] == 1
        # the database in the drill's reports and metrics
        db_row = (f"| ledger | postgresql | {dumped['short_id']} | ledger_drill_offsite | public.凭证 120 | 120 | "
                  f"{restored['seconds']} | passed |")  # fmt: skip
        assert db_row in (evidence / "drill-offsite" / "report.md").read_text(encoding="utf-8").splitlines()
        html_report = (evidence / "drill-offsite" / "report.html").read_text(encoding="utf-8")
        assert "<h3>Databases</h3>" in html_report and "<td>public.凭证 120</td>" in html_report
        (reported,) = json.loads((evidence / "drill-offsite" / "report.json").read_text())["hosts"]
        assert reported["databases"] == record["databases"]
        db_labels = '{host="localhost",engine="postgresql",database="ledger"}'
        dm = metrics(tmp_path / "drill-textfile" / "ledgerguard_drill.prom")
        assert (
            dm[f"ledgerguard_drill_database_passed{db_labels}"] == 1
            and dm['ledgerguard_drill_passed{host="localhost"}'] == 1
        )
        assert dm[f"ledgerguard_drill_database_rows{db_labels}"] == 120
        assert dm[f"ledgerguard_drill_database_tables{db_labels}"] == 1
        assert dm[f"ledgerguard_drill_database_restore_seconds{db_labels}"] == restored["seconds"]

        # a database whose check fails (one row more expected than the dump holds) fails the drill, after its report
        # and metrics are written: the row FAILED with the reason, passed 0, no row count for it
        strict = [dict(databases[0], min_rows={"public.凭证": 121})]
        failing = playbook(
            "drill.yml",
            inventory=inv,
            extravars={**drill_vars, "drill_id": "drill-db-check", "drill_databases": strict},
        )
        assert failing.rc != 0
        last = json.loads((state / "drills" / "history.jsonl").read_text().splitlines()[-1])
        (checked_db,) = last["databases"]
        assert last["passed"] is False and checked_db["passed"] is False
        assert "public.凭证 has 120 rows, at least 121 expected" in checked_db["message"]
        assert last["clients"][0]["passed"] is True  # the client's files restored fine: the database failed it
        assert any(e.startswith("database postgresql/ledger: ") for e in last["errors"])
        report_md = (evidence / "drill-db-check" / "report.md").read_text(encoding="utf-8")
        assert "## localhost: FAILED" in report_md
        (row,) = [x for x in report_md.splitlines() if x.startswith("| ledger | postgresql |")]
        assert row.endswith(" | FAILED: " + checked_db["message"].replace("|", "/").replace("\n", " ") + " |")
        dm = metrics(tmp_path / "drill-textfile" / "ledgerguard_drill.prom")
        assert (
            dm[f"ledgerguard_drill_database_passed{db_labels}"] == 0
            and dm['ledgerguard_drill_passed{host="localhost"}'] == 0
        )
        assert f"ledgerguard_drill_database_rows{db_labels}" not in dm

        # refused under an incident lock: exit 1, failed in the metrics (and late with a tiny maximum age), one alert
        lock = {"incident_id": "INC-20261205-0001", "operator": "王芳", "created": "2026-12-05T01:00:00Z"}
        (state / "incident.lock").write_text(json.dumps(lock, ensure_ascii=False))
        refused = cli("backup", *common, "-e", "backup_max_age_hours=0.0001")
        assert refused.returncode == 1, refused.stdout[-3000:]
        assert "localhost: FAILED: Incident INC-20261205-0001 holds this host (operator 王芳" in refused.stdout
        assert "ledgerguard backup: exit 1 (a step failed)" in refused.stdout
        m = metrics(textfile / "ledgerguard_backup.prom")
        assert m[f"ledgerguard_backup_failed{labels}"] == 1 and m[f"ledgerguard_backup_late{labels}"] == 1
        assert f"ledgerguard_backup_bytes_added{labels}" not in m
        taken = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", data["time"])).timestamp()
        assert abs(m[f"ledgerguard_backup_last_success_timestamp_seconds{labels}"] - taken) < 0.001
        (alert,) = Hook.received
        assert alert["status"] == "FAIL" and alert["title"] == "ledgerguard backup FAILED or LATE: localhost"
        assert "the run failed: Incident INC-20261205-0001 holds this host" in alert["text"]
        assert "**localhost / c001**: failed in this run" in alert["text"]
        assert alert["data"]["kind"] == "backup" and alert["data"]["failed_hosts"] == ["localhost"]
    finally:
        server.shutdown()


def test_cli_backup_shows_each_clients_progress(
    tmp_path, restic_cmd, restic_password_file, local_repo, localhost_inventory
):
    """Issue 15: the clients without SQLite ledgers are backed up in one restic_backup run (an async job); the CLI
    shows a progress line per client from the job's progress file (job_progress polls), and while restic backs up
    a large client, lines with restic's percentage of it. A restic wrapper makes each `restic backup` wait 3 s
    before it starts, so each client's state outlasts several polls even on a loaded machine, and holds restic's
    uploads to 12 MiB/s, so c002's 120 MiB take about 10 s (its own statuses, one a second: the role asks for one
    per half poll interval, at least 1 s)."""
    books = tmp_path / "客户账套"
    clients = []
    for i, cid in enumerate(("c001", "c002", "c003")):
        info = sampledata.make_client_tree(books, cid, f"{NAME}{i}", periods=["2026-11"], vouchers_per_period=2)
        clients.append({k: info["client"][k] for k in ("id", "name", "paths")})
    archive = books / "c002" / "归档"
    archive.mkdir()
    for j in range(15):
        (archive / f"2025-{j:02d}.tar").write_bytes(os.urandom(8 << 20))
    slow = tmp_path / "bin"
    slow.mkdir()
    # the wrapper runs the restic that tests/bin/restic runs: exec'ing that shim would find this wrapper first on PATH
    # and run it again, for ever
    beyond = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if d and Path(d).resolve() != TEST_BIN)
    (slow / "restic").write_text(
        '#!/bin/sh\ncase " $* " in *" backup "*) sleep 3; exec "{0}" --limit-upload 12288 "$@";; esac\n'
        'exec "{0}" "$@"\n'.format(shutil.which("restic", path=beyond))
    )
    (slow / "restic").chmod(0o755)
    state = tmp_path / "state"
    inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(state)})
    env = cli_environment({"PATH": f"{slow}:{os.environ['PATH']}"})
    args = [
        "backup", "--plain", "-i", str(inv), "--repository", local_repo, "--password-file", str(restic_password_file),
        "--private-data-dir", str(tmp_path / "runner"), "--evidence-dir", str(tmp_path / "evidence"),
        "-e", "backup_progress_interval=0.3", "-e", "backup_retention_enabled=false",
    ]  # fmt: skip
    run = subprocess.run([*LEDGERGUARD, *args], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr

    # one line per step: the client being backed up (its name) with the clients done before it, then all done; in
    # between, restic's figures for the client being backed up
    shown = re.findall(r"^\[[\d:]+\]   progress backup (c\d+)(?: \(([^)]+)\))?(?:: (\d+) % of ([\d.]+ \w+)[^[]*)? "
                       r"\[[#-]+\]\s+([\d.]+)% (\d) clients/3 clients$", run.stdout, re.M)  # fmt: skip
    steps = [(cid, name, pct, done) for cid, name, figure, _size, pct, done in shown if not figure]
    assert steps == [
        ("c001", f"{NAME}0", "0.0", "0"),
        ("c002", f"{NAME}1", "33.3", "1"),
        ("c003", f"{NAME}2", "66.7", "2"),
        ("c003", "", "100.0", "3"),
    ], run.stdout[-3000:]
    in_flight = [(int(f), size, float(pct)) for cid, _n, f, size, pct, _d in shown if f and cid == "c002"]
    assert any(0 < figure < 100 and size == "120.0 MiB" for figure, size, _pct in in_flight), run.stdout[-3000:]
    for figure, _size, pct in in_flight:  # the bar: one client done and the share of c002
        assert 33.3 <= pct <= 66.7 and abs(pct - (100 + figure) / 3) < 1
    for cid in ("c001", "c002", "c003"):
        assert re.search(
            rf"^localhost {cid} \({NAME}\d\): \d+ new, 0 changed, .* snapshot [0-9a-f]{{8}}", run.stdout, re.M
        )
    data = [s for s in snapshots(restic_cmd, local_repo, restic_password_file, {}) if MANIFEST_TAG not in s["tags"]]
    assert sorted(t for s in data for t in s["tags"] if t in ("c001", "c002", "c003")) == ["c001", "c002", "c003"]
    # while the job ran, each client's one-line result exactly once, in order, with the snapshot restic lists for it
    short = {s["tags"][0]: s["short_id"] for s in data}
    line = r"^\[[\d:]+\]   localhost: (c\d+) \(" + NAME + r"\d\): \d+ new, \d+ changed, [\d.]+ \w+ added in [\d.]+ s, "
    finished = re.findall(line + r"snapshot ([0-9a-f]{8})", run.stdout, re.M)
    assert finished == [(cid, short[cid]) for cid in ("c001", "c002", "c003")], run.stdout[-3000:]
    # the progress file and its finished clients' file are gone after the run
    assert list(state.glob("backup-progress-*")) == []


def snapshots(restic_cmd, repo: str, pw: Path, env: dict) -> list[dict]:
    """A repository's snapshots, oldest first (restic run with the test's TZ, as the role's restic is)."""
    tz = {"TZ": os.environ["TZ"]} if os.environ.get("TZ") else {}
    out = json.loads(restic_cmd(repo, pw, "snapshots", "--json", env={**env, **tz}).stdout or "[]") or []
    return sorted(out, key=lambda s: s["time"])


def test_retention_preview_per_client_in_the_repository_and_the_offsite_copy_forgets_nothing(
    tmp_path, s3_server, restic_cmd, localhost_inventory
):
    """A backdated history of one client in the repository (five snapshots of June 2025, the newest tagged
    permanent as the year-end tagging would have) and in the off-site copy (restic copy before the newest was made):
    ``ledgerguard backup --check`` prints, per repository, each snapshot the legal policy keeps with the rules that
    keep it and each it would forget; then a real nightly run (retention in its default dry-run mode) prints the same
    with the new snapshot, and neither run forgets anything in either repository."""
    r = repositories(tmp_path, s3_server, restic_cmd, "lg-pv")
    aws, repo, copy_repo, pw, copy_pw = r.aws, r.repo, r.copy_repo, r.pw, r.copy_pw
    tz = {"TZ": os.environ["TZ"]} if os.environ.get("TZ") else {}
    info = sampledata.make_client_tree(tmp_path / "客户账套", "c001", NAME, periods=["2025-06"], vouchers_per_period=3)
    path = info["client"]["paths"][0]
    history = ["2025-06-10 10:00:00", "2025-06-10 11:00:00", "2025-06-10 12:00:00", "2025-06-11 12:00:00"]
    for when in history:
        restic_cmd(repo, pw, "backup", "--host", "localhost", "--tag", "c001", "--tag", "ledgerguard-backup",
                   "--time", when, path, env={**aws, **tz})  # fmt: skip
    restic_cmd(copy_repo, copy_pw, "copy", "--from-repo", repo, "--from-password-file", str(pw), env=aws)
    restic_cmd(repo, pw, "backup", "--host", "localhost", "--tag", "c001", "--tag", "ledgerguard-backup",
               "--tag", "permanent", "--time", "2025-06-12 12:00:00", path, env={**aws, **tz})  # fmt: skip
    a, b, c, d, e = main_before = snapshots(restic_cmd, repo, pw, aws)
    ca, cb, cc, cd = copy_before = snapshots(restic_cmd, copy_repo, copy_pw, aws)
    assert [x["original"] for x in copy_before] == [x["id"] for x in (a, b, c, d)]

    common = r.policy_cli_args(tmp_path, localhost_inventory, info["client"], tmp_path / "state")

    def line(verb: str, snap: dict, why: str) -> str:
        return f"  {verb:<6} {snap['short_id']} {snap['time']} ({why})"

    every = "daily snapshot, weekly snapshot, monthly snapshot, yearly snapshot"
    forget = "no rule of the policy keeps it"

    def block(out: str, where: str) -> list[str]:
        lines = out.splitlines()
        start = lines.index(next(x for x in lines if x.startswith(f"localhost c001: retention in {where} ")))
        end = start + 1
        while end < len(lines) and lines[end].startswith("  "):
            end += 1
        return lines[start:end]

    # the preview: per repository, every kept snapshot with its rules, every one that would be forgotten
    checked = cli("backup", "--check", *common)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr
    assert block(checked.stdout, "the repository") == [
        "localhost c001: retention in the repository keeps 3, would forget 2",
        line("keep", c, "daily snapshot"),
        line("keep", d, "daily snapshot"),
        line("keep", e, "has tags [permanent], " + every),
        line("forget", a, forget),
        line("forget", b, forget),
    ]
    assert f"localhost c001: newest snapshot {e['short_id']} NOT in the copy" in checked.stdout  # check mode: no copy
    assert block(checked.stdout, "the off-site copy") == [
        "localhost c001: retention in the off-site copy keeps 2, would forget 2",
        line("keep", cc, "daily snapshot"),
        line("keep", cd, every),
        line("forget", ca, forget),
        line("forget", cb, forget),
    ]
    assert snapshots(restic_cmd, repo, pw, aws) == main_before
    assert snapshots(restic_cmd, copy_repo, copy_pw, aws) == copy_before

    # the nightly run (retention's default mode is the dry run): backed up and copied, the same preview with the new
    # snapshot, and nothing forgotten in either repository
    run = cli("backup", *common)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    main_after = snapshots(restic_cmd, repo, pw, aws)
    (new,) = [s for s in main_after if "c001" in s["tags"] and s["id"] not in {x["id"] for x in main_before}]
    (manifest,) = [s for s in main_after if MANIFEST_TAG in s["tags"]]
    assert [s["id"] for s in main_after] == [s["id"] for s in main_before] + [new["id"], manifest["id"]]
    copy_after = snapshots(restic_cmd, copy_repo, copy_pw, aws)
    assert copy_after[:4] == copy_before
    assert sorted(s.get("original") for s in copy_after[4:]) == sorted([e["id"], new["id"], manifest["id"]])
    ce, cnew = (next(s for s in copy_after if s.get("original") == x["id"]) for x in (e, new))
    assert block(run.stdout, "the repository") == [
        "localhost c001: retention in the repository keeps 4, would forget 2",
        line("keep", c, "daily snapshot"),
        line("keep", d, "daily snapshot"),
        line("keep", e, "has tags [permanent], " + every),
        line("keep", new, every),
        line("forget", a, forget),
        line("forget", b, forget),
    ]
    assert block(run.stdout, "the off-site copy") == [
        "localhost c001: retention in the off-site copy keeps 4, would forget 2",
        line("keep", cc, "daily snapshot"),
        line("keep", cd, "daily snapshot"),
        line("keep", ce, "has tags [permanent], " + every),
        line("keep", cnew, every),
        line("forget", ca, forget),
        line("forget", cb, forget),
    ]


def blobs(restic_cmd, repo: str, pw: Path, env: dict) -> set[str]:
    """The IDs of a repository's data blobs, as its index lists them (what prune removes, forget does not)."""
    out = restic_cmd(repo, pw, "list", "blobs", env=env).stdout.split("\n")
    return {line.split()[1] for line in out if line.startswith("data ")}


def test_prune_frees_the_forgotten_data_in_the_repository_and_the_offsite_copy(
    tmp_path, s3_server, restic_cmd, localhost_inventory
):
    """Three snapshots of one June 2025 day, each with an attachment of its own, in the repository and (restic copy)
    the off-site copy; the legal policy keeps the day's newest. ``backup_entry=forget`` in apply mode forgets the two
    older ones in both repositories but frees nothing; ``ledgerguard backup --prune`` is refused under an incident
    (nothing pruned), prunes the repository while a restic lock on the copy (a drill restoring from it) refuses the
    copy's prune, and once the copy is free prunes the copy too: the forgotten attachments' data is gone from both,
    the kept snapshot still restores whole."""
    r = repositories(tmp_path, s3_server, restic_cmd, "lg-pr")
    aws, repo, copy_repo, pw, copy_pw = r.aws, r.repo, r.copy_repo, r.pw, r.copy_pw
    tz = {"TZ": os.environ["TZ"]} if os.environ.get("TZ") else {}
    info = sampledata.make_client_tree(tmp_path / "客户账套", "c001", NAME, periods=["2025-06"], vouchers_per_period=3)
    path = Path(info["client"]["paths"][0])
    # an attachment under restic's 512 KiB minimum chunk size is one data blob whose ID is the file's SHA-256
    attachment = {}
    for label, when in (("a", "2025-06-10 10:00:00"), ("b", "2025-06-10 11:00:00"), ("c", "2025-06-10 12:00:00")):
        extra = path / f"附件-{label}.bin"
        content = secrets.token_bytes(200_000)
        extra.write_bytes(content)
        restic_cmd(repo, pw, "backup", "--host", "localhost", "--tag", "c001", "--tag", "ledgerguard-backup",
                   "--time", when, str(path), env={**aws, **tz})  # fmt: skip
        extra.unlink()
        attachment[label] = hashlib.sha256(content).hexdigest()
    restic_cmd(copy_repo, copy_pw, "copy", "--from-repo", repo, "--from-password-file", str(pw), env=aws)
    both = ((repo, pw), (copy_repo, copy_pw))
    for where in both:
        assert set(attachment.values()) <= blobs(restic_cmd, *where, aws)

    state = tmp_path / "state"
    common = r.policy_cli_args(tmp_path, localhost_inventory, info["client"], state)

    # retention alone, applied: the two older snapshots forgotten in both repositories, their data still there
    forgot = cli("backup", *common, "-e", "backup_entry=forget", "-e", "backup_forget_mode=apply")
    assert forgot.returncode == 0, forgot.stdout[-3000:] + forgot.stderr
    kept = {}
    for where in both:
        (kept[where[0]],) = snapshots(restic_cmd, *where, aws)
        assert kept[where[0]]["time"].startswith("2025-06-10T12:00:00")
        assert set(attachment.values()) <= blobs(restic_cmd, *where, aws)
    packs_before = {where[0]: len(restic_cmd(*where, "list", "packs", env=aws).stdout.split()) for where in both}

    # refused while an incident holds the host: nothing pruned in either repository
    lock = {"incident_id": "INC-20261205-0002", "operator": "王芳", "created": "2026-12-05T01:00:00Z"}
    (state / "incident.lock").write_text(json.dumps(lock, ensure_ascii=False))
    refused = cli("backup", "--prune", *common)
    assert refused.returncode == 1, refused.stdout[-3000:]
    assert "localhost: FAILED: Incident INC-20261205-0002 holds this host (operator 王芳" in refused.stdout
    assert "prune of the" not in refused.stdout
    for where in both:
        assert set(attachment.values()) <= blobs(restic_cmd, *where, aws)
    (state / "incident.lock").unlink()

    # a drill restoring from the copy holds the copy's restic lock (here: a backup reading stdin): the repository is
    # pruned, the copy's prune is refused by restic and the run fails naming it
    holder_env = {**os.environ, **aws, "RESTIC_REPOSITORY": copy_repo, "RESTIC_PASSWORD_FILE": str(copy_pw)}
    holder = subprocess.Popen(["restic", "backup", "--stdin", "--stdin-filename", "hold"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=holder_env)  # fmt: skip
    try:
        deadline = time.time() + 60
        while not restic_cmd(copy_repo, copy_pw, "list", "locks", "--no-lock", env=aws).stdout.strip():
            assert time.time() < deadline and holder.poll() is None, "the lock holder never locked the copy"
            time.sleep(0.5)
        half = cli("backup", "--prune", *common)
    finally:
        holder.send_signal(signal.SIGINT)
        holder.wait(timeout=60)
        restic_cmd(copy_repo, copy_pw, "unlock", env=aws)
    assert half.returncode == 1, half.stdout[-3000:]
    assert "localhost: FAILED: prune of the off-site copy failed: " in half.stdout
    assert "prune of the repository failed" not in half.stdout
    assert "localhost: prune of the repository (restic's last lines):" in half.stdout
    assert not {attachment["a"], attachment["b"]} & blobs(restic_cmd, repo, pw, aws)
    assert set(attachment.values()) <= blobs(restic_cmd, copy_repo, copy_pw, aws)

    # the copy free again: pruned too, with the same lines per repository; the forgotten data gone from both, the
    # kept snapshot's still there, fewer packs, and the kept snapshot restores whole from each repository
    pruned = cli("backup", "--prune", *common)
    assert pruned.returncode == 0, pruned.stdout[-3000:] + pruned.stderr
    out = pruned.stdout.splitlines()
    first, second = (
        out.index(f"localhost: prune of {w} (restic's last lines):") for w in ("the repository", "the off-site copy")
    )
    assert first < second and out[first + 1].startswith("  ") and out[second + 1].startswith("  ")
    for where in both:
        left = blobs(restic_cmd, *where, aws)
        assert attachment["c"] in left and not {attachment["a"], attachment["b"]} & left
        assert len(restic_cmd(*where, "list", "packs", env=aws).stdout.split()) < packs_before[where[0]]
        restic_cmd(*where, "check", env=aws)
        target = tmp_path / ("restored-" + secrets.token_hex(3))
        restic_cmd(*where, "restore", kept[where[0]]["id"], "--target", str(target), env=aws)
        back = target / str(path).lstrip("/")
        assert hashlib.sha256((back / "附件-c.bin").read_bytes()).hexdigest() == attachment["c"]
        live = {p.relative_to(path) for p in path.rglob("*") if p.is_file()}
        assert {p.relative_to(back) for p in back.rglob("*") if p.is_file()} == live | {Path("附件-c.bin")}
