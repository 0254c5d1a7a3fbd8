"""The drill playbook against a real restic repository: healthy drill, history and reports, sandbox refusal,
damaged books found (ledger_verify, SQLite integrity) with a failure notification to a local webhook."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import manifest
from ledgerguard import sampledata

from conftest import failed_messages

pytestmark = pytest.mark.slow


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def books(tmp_path, local_repo, restic_password_file, restic_cmd):
    """Two clients' books under <tmp>/prod, backed up into a local restic repository."""

    def make(damage: bool = False):
        prod = tmp_path / "prod"
        c1 = sampledata.make_client_tree(
            prod, "c001", "杭州示例贸易有限公司", pdfs=2, unbalanced=[("2024-02", 7)] if damage else ()
        )
        c2 = sampledata.make_client_tree(prod, "c002", "宁波示例餐饮有限公司", pdfs=2, seed=2)
        if damage:  # a torn write in the middle of c002's SQLite ledger
            db = Path(c2["client"]["sqlite"][0])
            raw = bytearray(db.read_bytes())
            raw[4096 : 4096 + 64] = b"\xff" * 64
            db.write_bytes(bytes(raw))
        restic_cmd(local_repo, restic_password_file, "backup", "--host", "books1", str(prod))
        clients = [
            {"id": c["client"]["id"], "name": c["client"]["name"], "paths": c["client"]["paths"], "priority": 1}
            for c in (c1, c2)
        ]
        return prod, clients

    return make


def drill_vars(tmp_path, local_repo, restic_password_file, **extra):
    return {
        "ledgerguard_repository": local_repo,
        "ledgerguard_password_file": str(restic_password_file),
        "ledgerguard_evidence_dir": str(tmp_path / "evidence"),
        "drill_sandbox_dir": str(tmp_path / "sandbox"),
        "drill_progress_interval": 0,
        **extra,
    }


def test_healthy_drill_passes_and_keeps_history_reports_and_metrics(
    tmp_path, books, local_repo, restic_password_file, localhost_inventory, playbook
):
    prod, clients = books()
    before = tree_digest(prod)
    state = tmp_path / "state"
    inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(state)})
    extravars = drill_vars(
        tmp_path,
        local_repo,
        restic_password_file,
        drill_metrics_dir=str(tmp_path / "textfile"),
        drill_ledger_checks={"c001": {"csv": ["凭证"], "sqlite": ["账簿/ledger.sqlite"]}},
        drill_targets={"rto_seconds": 600, "rpo_seconds": 3600},
        drill_progress_interval=1,  # the default path: each restore an async job, polled for its progress
        drill_keep_sandbox="false",  # as `-e drill_keep_sandbox=false` gives it: a string, still false
    )
    # A drill from last week is already on record: the new one is appended and both are charted.
    history_file = state / "drills" / "history.jsonl"
    history_file.parent.mkdir(parents=True)
    previous = {"kind": "drill", "drill_id": "drill-a", "host": "localhost", "passed": False,
                "started": "2026-11-19T02:00:00+00:00", "finished": "2026-11-19T02:04:00+00:00",
                "rto_seconds": 240.0, "rpo_seconds": 30000.0, "clients": []}  # fmt: skip
    history_file.write_text(json.dumps(previous) + "\n")
    r = playbook("drill.yml", inventory=inv, extravars={**extravars, "drill_id": "drill-b"})
    assert r.status == "successful", failed_messages(r)
    history = [json.loads(line) for line in history_file.read_text().splitlines()]
    assert [h["drill_id"] for h in history] == ["drill-a", "drill-b"]
    last = history[-1]
    assert last["passed"] is True and last["host"] == "localhost" and last["selection"] == "latest"
    assert last["kept_sandbox"] is False and last["sandbox"] and not Path(last["sandbox"]).exists()
    assert [c["id"] for c in last["clients"]] == ["c001", "c002"]
    c001 = last["clients"][0]
    # The restored tree holds exactly the production files: counts and bytes measured by the manifest walk.
    prod_c001 = [p for p in (prod / "c001").rglob("*") if p.is_file()]
    assert c001["files"] == len(prod_c001) == 6
    assert c001["bytes"] == sum(p.stat().st_size for p in prod_c001)
    assert c001["checks"]["restore"]["verified"] is True
    assert c001["checks"]["sqlite"] == {
        "ok": True,
        "files": [str(prod / "c001" / "账簿" / "ledger.sqlite")],
        "problems": [],
    }
    assert c001["checks"]["ledger"]["ok"] is True and c001["checks"]["ledger"]["findings_count"] == 0
    assert "ledger" not in last["clients"][1]["checks"]  # configured for c001 only
    assert 0 < c001["rto_seconds"] < 600 and c001["rto_seconds"] == pytest.approx(
        c001["restore_seconds"] + c001["verify_seconds"], abs=0.002
    )
    assert 0 < c001["rpo_seconds"] < 3600
    assert c001["targets"] == {"rto_seconds": 600.0, "rpo_seconds": 3600.0, "min_throughput_bytes_per_second": None}

    # Each restore ran as an async job; the poll that saw its end reported the client's bytes and collected it,
    # leaving no async status file behind.
    polls = [
        ev["event_data"]
        for ev in r.events
        if ev.get("event") == "runner_on_ok"
        and ev["event_data"].get("task") in ("Start the restore", "Wait for the restore (progress)")
    ]
    assert [p["task"] for p in polls] == ["Start the restore", "Wait for the restore (progress)"] * 2
    # One damage assessment for both clients; its listing gave the progress totals, so no restore was sized apart.
    ran = [ev["event_data"]["task"] for ev in r.events if ev.get("event") == "runner_on_ok"]
    assert ran.count("Assess the drilled snapshot for damage, every client in one run") == 1
    assert not [t for t in ran if t.startswith("Size the restore")]
    # Its snapshot list showed no backup-time manifest (this backup recorded none): the repository was not read again
    # for one, and no such check was added.
    assert "Compare the restored tree with the snapshot's backup-time manifest" not in ran
    assert "backup_manifest" not in c001["checks"]
    jobs = list(zip(polls[::2], polls[1::2], strict=True))
    for client, (start, end) in zip(last["clients"], jobs, strict=True):
        assert end["res"]["finished"] is True and not end["res"]["result"].get("failed")
        assert end["res"]["ledgerguard_progress"] == {
            "done": client["bytes"], "total": client["bytes"], "unit": "bytes", "label": f"restore {client['id']}"
        }  # fmt: skip
        assert not Path(start["res"]["results_file"]).exists()

    # Production untouched, sandbox gone.
    assert tree_digest(prod) == before
    assert list((tmp_path / "sandbox").iterdir()) == []

    # Evidence: the history copy is byte-identical; reports in three formats; the HTML trend has both drills.
    ev = tmp_path / "evidence" / "drill-b"
    assert (ev / "hosts" / "localhost" / "history.jsonl").read_bytes() == (
        state / "drills" / "history.jsonl"
    ).read_bytes()
    report = json.loads((ev / "report.json").read_text())
    assert report["passed"] is True and report["hosts"][0]["drill_id"] == "drill-b"
    md = (ev / "report.md").read_text()
    assert "# Recovery drill drill-b: PASSED" in md and "| c001 | 杭州示例贸易有限公司 |" in md
    html = (ev / "report.html").read_text()
    assert html.count("<svg") == 2 and html.count("<circle") == 4  # RTO and RPO charts, two drills each
    assert html.count('fill="#c0392b"') == 2 and html.count('fill="#2a8a3e"') == 2  # last week's failed, today passed
    assert "<script" not in html and "cdn" not in html.lower()

    # Prometheus textfile metrics.
    prom = (tmp_path / "textfile" / "ledgerguard_drill.prom").read_text()
    assert 'ledgerguard_drill_passed{host="localhost"} 1\n' in prom
    assert 'ledgerguard_drill_rto_seconds{host="localhost",client="c001"} ' in prom
    assert "# TYPE ledgerguard_drill_rpo_seconds gauge" in prom


def test_without_the_damage_assessment_each_restore_is_sized_for_its_progress(
    tmp_path, books, local_repo, restic_password_file, localhost_inventory, playbook
):
    prod, clients = books()
    state = tmp_path / "state"
    inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(state)})
    extravars = drill_vars(
        tmp_path, local_repo, restic_password_file, drill_assess_damage=False, drill_progress_interval=1
    )
    r = playbook("drill.yml", inventory=inv, extravars=extravars)
    assert r.status == "successful", failed_messages(r)
    [record] = [json.loads(line) for line in (state / "drills" / "history.jsonl").read_text().splitlines()]
    assert [c["id"] for c in record["clients"]] == ["c001", "c002"]
    assert all("damage" not in c["checks"] for c in record["clients"])
    ok = [ev["event_data"] for ev in r.events if ev.get("event") == "runner_on_ok"]
    sized = [e for e in ok if e["task"].startswith("Size the restore")]
    assert [e["res"]["bytes"] for e in sized] == [c["bytes"] for c in record["clients"]]
    ends = [e["res"]["ledgerguard_progress"] for e in ok if e["task"] == "Wait for the restore (progress)"]
    assert [(p["done"], p["total"]) for p in ends] == [(c["bytes"], c["bytes"]) for c in record["clients"]]


def test_sandbox_inside_production_is_refused_before_anything_runs(
    tmp_path, books, local_repo, restic_password_file, localhost_inventory, playbook
):
    prod, clients = books()
    before = tree_digest(prod)
    state = tmp_path / "state"
    inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(state)})
    sandbox = prod / "c002" / "drill"
    r = playbook(
        "drill.yml",
        inventory=inv,
        extravars=drill_vars(tmp_path, local_repo, restic_password_file, drill_sandbox_dir=str(sandbox)),
    )
    assert r.status == "failed"
    assert failed_messages(r) == [
        f"drill_sandbox_dir '{sandbox}' is inside production path '{prod / 'c002'}' of client c002 "
        "(宁波示例餐饮有限公司); "
        "a drill must restore outside every path declared in ledgerguard_clients"
    ]
    assert tree_digest(prod) == before and not sandbox.exists()
    assert not (state / "drills" / "history.jsonl").exists()


def test_a_sandbox_that_cannot_be_made_is_the_drills_error_and_still_recorded(
    tmp_path, books, local_repo, restic_password_file, localhost_inventory, playbook
):
    prod, clients = books()
    state = tmp_path / "state"
    inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(state)})
    sandbox = tmp_path / "sandbox-file"
    sandbox.write_text("a file where the sandbox should be")
    r = playbook(
        "drill.yml",
        inventory=inv,
        extravars=drill_vars(
            tmp_path, local_repo, restic_password_file, drill_sandbox_dir=str(sandbox), drill_id="drill-nofolder"
        ),
    )
    reason = (
        f"drill_sandbox: {sandbox} is not a folder, so the drill's folder {sandbox / 'drill-nofolder'} cannot be "
        "made under it; fix the folder's owner or mode, or choose another drill_sandbox_dir"
    )
    assert r.status == "failed"
    [message] = failed_messages(r)
    assert message.startswith(f"Drill drill-nofolder on localhost FAILED: {reason} (targets missed: False")
    [record] = [json.loads(line) for line in (state / "drills" / "history.jsonl").read_text().splitlines()]
    assert record["errors"] == [reason] and record["passed"] is False and record["clients"] == []
    report = json.loads((tmp_path / "evidence" / "drill-nofolder" / "report.json").read_text())
    assert report["passed"] is False
    assert sandbox.read_text() == "a file where the sandbox should be"


def test_the_drill_restores_its_own_hosts_backup_and_will_not_guess_between_other_servers(
    tmp_path, local_repo, restic_password_file, restic_cmd, localhost_inventory, playbook
):
    """Two servers with the same layout back up into one repository; the other one's backup is newer. The drill of
    localhost restores localhost's (not the newest), and a drill host whose own name is neither refuses to guess."""
    prod = tmp_path / "prod"
    made = sampledata.make_client_tree(prod, "c001", "杭州示例贸易有限公司", pdfs=1)
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "localhost", str(prod))
    ours = tree_digest(prod / "c001")
    (prod / "c001" / "宁波服务器的文件.txt").write_text("another server's books", encoding="utf-8")
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "nb-books02", str(prod))
    client = {k: made["client"][k] for k in ("id", "name", "paths")}
    state = tmp_path / "state"
    inv = localhost_inventory({"ledgerguard_clients": [client], "ledgerguard_state_dir": str(state)})
    extravars = drill_vars(tmp_path, local_repo, restic_password_file, drill_id="own-host", drill_keep_sandbox=True)
    r = playbook("drill.yml", inventory=inv, extravars=extravars)
    assert r.status == "successful", failed_messages(r)
    [record] = [json.loads(line) for line in (state / "drills" / "history.jsonl").read_text().splitlines()]
    assert record["snapshot"]["hostname"] == "localhost" and record["passed"] is True
    restored = tmp_path / "sandbox" / "own-host" / "c001" / str(prod / "c001").lstrip("/")
    assert tree_digest(restored) == ours and record["clients"][0]["files"] == len(ours)

    r = playbook(
        "drill.yml",
        inventory=inv,
        extravars={**extravars, "drill_id": "drill-host", "ledgerguard_backup_host": "drill-host"},
    )
    assert r.status == "failed"
    messages = failed_messages(r)
    assert messages[-1].startswith(
        "Drill drill-host on localhost FAILED: drill: the repository holds snapshots of 2 hosts (localhost, "
        "nb-books02) and none of this host (drill-host): set drill_snapshot_host to the host whose backups this drill "
        "restores, or drill_snapshot_id"
    ), messages


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


def test_damaged_books_fail_the_drill_and_notify(
    tmp_path, books, local_repo, restic_password_file, localhost_inventory, playbook
):
    prod, clients = books(damage=True)
    state = tmp_path / "state"
    # c001's reference manifest (drill_manifest_reference) from the production tree, with one sha256 altered: the
    # drill's manifest check must report that file as changed.
    records = list(manifest.hashed_entries(str(prod / "c001").encode(), parallel="thread", workers=1))
    altered = next(r for r in records if r["type"] == "file")
    altered["sha256"] = "0" * 64
    reference = state / "manifests" / "c001.source.jsonl"
    reference.parent.mkdir(parents=True)
    reference.write_bytes(b"".join(manifest.serialize(records, "json")))
    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    Hook.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(state)})
        r = playbook(
            "drill.yml",
            inventory=inv,
            extravars=drill_vars(
                tmp_path,
                local_repo,
                restic_password_file,
                drill_id="drill-damaged",
                drill_ledger_checks={"c001": {"csv": ["凭证"]}},
                drill_notify_on_failure=True,
                backup_verify_notify_webhooks=[{"url": f"http://127.0.0.1:{server.server_port}/hook"}],
            ),
        )
    finally:
        server.shutdown()
    assert r.status == "failed"
    (msg,) = failed_messages(r)
    assert msg.startswith("Drill drill-damaged on localhost FAILED: c001: ledger; c001: manifest; c002: sqlite")
    assert "(targets missed: False, verification failed: True)" in msg
    (rec,) = [json.loads(line) for line in (state / "drills" / "history.jsonl").read_text().splitlines()]
    assert rec["passed"] is False and rec["verification_failed"] is True and rec["targets_missed"] is False
    c001, c002 = rec["clients"]
    assert c001["checks"]["ledger"]["ok"] is False
    assert c001["checks"]["manifest"]["ok"] is False
    assert (c001["checks"]["manifest"]["changed"], c001["checks"]["manifest"]["missing"]) == (1, 0)
    assert c001["checks"]["manifest"]["reference"] == str(reference)
    assert c002["checks"]["manifest"]["ok"] is True and c002["checks"]["manifest"]["reference"] is None
    assert any("记-7" in f and "2024-02" in f for f in c001["checks"]["ledger"]["findings"])
    assert c002["checks"]["sqlite"]["ok"] is False and c002["checks"]["sqlite"]["problems"]
    # One notification for the run, naming the host and both problems.
    assert len(Hook.received) == 1
    text = json.dumps(Hook.received[0], ensure_ascii=False)
    assert "drill-damaged" in text and "c001: ledger" in text and "c002: sqlite" in text
    report = json.loads((tmp_path / "evidence" / "drill-damaged" / "report.json").read_text())
    assert report["passed"] is False
