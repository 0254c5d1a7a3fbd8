"""Restore order from filing deadlines (issue 16) through playbooks/incident_respond.yml: two hosts, three clients
with different filings, a firm's own filing calendar (dates relative to today, so the test never ages) and drill
histories in the evidence folder. One dry run (--check): the plan's one queue across the hosts puts the nearest
deadline first whatever the hand-set priority, each host plans its clients in that order, the ETA comes from the
drills (or says there is none) and a client whose ETA is after its deadline is warned about. Then one real run: each
host restored its clients in the queue's order (the swaps in the timeline), and the report shows the queue."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from ledgerguard import sampledata
from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

CLIENTS = {
    # host, id, name, hand-set priority, filings
    "c001": ("books-a", "杭州示例贸易有限公司", 1, ["annual_report"]),
    "c002": ("books-a", "宁波海风餐饮管理有限公司", 50, ["vat_monthly", "iit_monthly"]),
    "c003": ("books-b", "温州三江五金制品厂", 90, ["cit_quarterly"]),
}


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def task_msgs(runner, task: str) -> list:
    return [
        ev["event_data"].get("res", {}).get("msg")
        for ev in runner.events
        if ev.get("event") == "runner_on_ok" and ev["event_data"].get("task") == task
    ]


def artifacts(runner) -> dict:
    stats = [ev["event_data"] for ev in runner.events if ev.get("event") == "playbook_on_stats"]
    return dict(stats[-1].get("artifact_data") or {}) if stats else {}


def test_restore_order_by_filing_deadline_across_hosts(tmp_path, local_repo, restic_cmd, restic_password_file):
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()  # the calendar's day, UTC+8
    due = {"vat_monthly": today + dt.timedelta(days=1), "cit_quarterly": today + dt.timedelta(days=3),
           "annual_report": today + dt.timedelta(days=60)}  # fmt: skip
    calendar = tmp_path / "本所征期日历.yml"
    calendar.write_text(
        "warning: 本所自编, 请与国家税务总局征期日历核对\nutc_offset: '+08:00'\n"
        "sources: {firm: {title: 本所自编测试日历, certainty: unconfirmed}}\ndeadlines:\n"
        + "".join(
            f"  - {{date: {d.isoformat()}, filings: [{k}], period: 测试期, source: firm}}\n" for k, d in due.items()
        ),
        encoding="utf-8",
    )
    hosts: dict[str, dict] = {}
    for n, (cid, (host, name, priority, filings)) in enumerate(CLIENTS.items(), start=1):
        books = tmp_path / host / "books"
        info = sampledata.make_client_tree(
            books, cid, name, periods=("2026-10",), vouchers_per_period=4, pdfs=1, seed=n
        )
        client = dict(info["client"], priority=priority, filings=filings)
        hosts.setdefault(host, {"ledgerguard_clients": [], "ledgerguard_state_dir": str(tmp_path / host / "state")})
        hosts[host]["ledgerguard_clients"].append(client)
    when = (dt.datetime.now() - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")  # noqa: DTZ005 - restic's local
    for host in hosts:
        restic_cmd(
            local_repo, restic_password_file, "backup", "--host", host, "--time", when, str(tmp_path / host / "books")
        )
    # The drills: c002 restored very slowly (1000 bytes in 100000 s: late for tomorrow's deadline), c003 fast (on a
    # sandbox host: any host's drill of the client counts), c001 never drilled. An older, faster c002 drill is ignored.
    evidence = tmp_path / "evidence"
    drills = {
        ("drill-20261101", "books-a"): ("2026-11-01T02:00:00+00:00", [("c002", 1.0, 10**9)]),
        ("drill-20261201", "books-a"): ("2026-12-01T02:00:00+00:00", [("c002", 100000.0, 1000)]),
        ("drill-20261202", "sandbox"): ("2026-12-02T02:00:00+00:00", [("c003", 1.0, 10**9)]),
    }
    for (drill_id, host), (finished, measured) in drills.items():
        folder = evidence / drill_id / "hosts" / host
        folder.mkdir(parents=True)
        clients = [{"id": c, "restore_seconds": s, "bytes": b, "files": 3} for c, s, b in measured]
        record = {"kind": "drill", "drill_id": drill_id, "host": host, "finished": finished, "clients": clients}
        (folder / "history.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    clean = {cid: tree(tmp_path / CLIENTS[cid][0] / "books" / cid) for cid in CLIENTS}
    for cid, (host, *_rest) in CLIENTS.items():
        for path in (tmp_path / host / "books" / cid / "凭证").iterdir():
            path.unlink()  # the loss
    damaged = {cid: tree(tmp_path / CLIENTS[cid][0] / "books" / cid) for cid in CLIENTS}
    base = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps({"all": {"hosts": {h: {**base, **v} for h, v in hosts.items()}}}, ensure_ascii=False),
        encoding="utf-8",
    )
    extravars = {
        "ledgerguard_repository": local_repo,
        "ledgerguard_password_file": str(restic_password_file),
        "ledgerguard_evidence_dir": str(evidence),
        "ledgerguard_filing_calendar": str(calendar),
        "incident_operator": "pytest",
        "incident_cause": "deleted",
        "incident_detected_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "state_snapshot_journal_lines": 20,
    }

    def run(check: bool):
        play = PlaybookRun(
            playbook="incident_respond.yml",
            private_data_dir=tmp_path / "runner",
            inventory=str(inventory),
            extravars=extravars,
            check=check,
        )
        return run_playbook(play)

    # The dry run: the plan's queue across both hosts, nearest deadline first (the hand-set priorities say the reverse).
    dry = run(check=True)
    assert dry.rc == 0, [
        ev["event_data"].get("res", {}).get("msg") for ev in dry.events if ev["event"] == "runner_on_failed"
    ]
    queue = artifacts(dry)["ledgerguard_restore_queue"]
    assert [(q["position"], q["id"], q["host"]) for q in queue] == [(1, "c002", "books-a"), (2, "c003", "books-b"),
                                                                    (3, "c001", "books-a")]  # fmt: skip
    assert [(q["next_deadline"]["filing"], q["next_deadline"]["date"]) for q in queue] == [
        ("vat_monthly", due["vat_monthly"].isoformat()),
        ("cit_quarterly", due["cit_quarterly"].isoformat()),
        ("annual_report", due["annual_report"].isoformat()),
    ]
    late, fast, undrilled = queue
    assert late["late"] is True and late["eta_basis"].endswith(
        "bytes at 0.01 B/s, drill drill-20261201 on books-a (2026-12-01T02:00:00+00:00)"
    )
    assert late["warnings"] == [
        "filing 'iit_monthly' has no dates in the filing calendar (known: annual_report, cit_quarterly, vat_monthly); "
        "it does not count for the restore order",
        f"LATE: client c002 on books-a is expected to be restored at {late['eta']}, after its vat_monthly deadline "
        f"{due['vat_monthly'].isoformat()} (测试期): apply for an extension of the filing (延期申报) in time",
    ]
    assert (
        fast["late"] is False and fast["warnings"] == [] and "B/s, drill drill-20261202 on sandbox" in fast["eta_basis"]
    )
    assert (undrilled["eta"], undrilled["eta_basis"], undrilled["late"]) == ("", "no drill measurement", False)
    # Each host plans its own clients in the queue's order: c002 before c001 on books-a although c001's priority is 1.
    plan = artifacts(dry)["ledgerguard_plan"]
    assert [(p["host"], p["id"], p["status"]) for p in plan] == [
        ("books-a", "c002", "planned"), ("books-a", "c001", "planned"), ("books-b", "c003", "planned")
    ]  # fmt: skip
    [lines] = task_msgs(dry, "Show the restore queue of the incident (all hosts, nearest filing deadline first)")
    assert (
        lines[0] == "Restore queue of the incident (all hosts; nearest filing deadline first, then priority, then id):"
    )
    assert lines[1].startswith(
        f"1. c002 (宁波海风餐饮管理有限公司) on books-a, priority 50: next deadline vat_monthly for 测试期 due "
        f"{due['vat_monthly'].isoformat()} (end of day, UTC+08:00; unconfirmed: firm); ETA {late['eta']} ("
    )
    assert lines[2:4] == [f"   warning: {w}" for w in late["warnings"]]
    assert lines[4].startswith("2. c003 (温州三江五金制品厂) on books-b, priority 90: next deadline cit_quarterly")
    assert lines[5].startswith("3. c001 (杭州示例贸易有限公司) on books-a, priority 1: next deadline annual_report")
    assert lines[5].endswith("; ETA no drill measurement")
    assert lines[-1] == "Filing calendar: 本所自编, 请与国家税务总局征期日历核对"
    assert {cid: tree(tmp_path / CLIENTS[cid][0] / "books" / cid) for cid in CLIENTS} == damaged  # nothing changed

    # The real run: each host swapped its clients back in the queue's order; the report shows the queue.
    real = run(check=False)
    assert real.rc == 0, [
        ev["event_data"].get("res", {}).get("msg") for ev in real.events if ev["event"] == "runner_on_failed"
    ]
    assert {cid: tree(tmp_path / CLIENTS[cid][0] / "books" / cid) for cid in CLIENTS} == clean
    [folder] = list(evidence.glob("INC-*"))
    swaps: dict[str, list[str]] = {}
    for entry in map(json.loads, (folder / "timeline.jsonl").read_text(encoding="utf-8").splitlines()):
        if str(entry.get("task", "")).startswith("Swap the restored files into place"):
            # one swap step per host (one restore_swap run), naming its clients in the order they were swapped
            swaps.setdefault(entry["host"], []).extend(entry["task"].rsplit(" [", 1)[1].rstrip("]").split(", "))
    assert swaps == {"books-a": ["c002", "c001"], "books-b": ["c003"]}
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert [(c["id"], c["host"]) for c in report["clients"]] == [("c002", "books-a"), ("c003", "books-b"),
                                                                 ("c001", "books-a")]  # fmt: skip
    assert [q["id"] for q in report["restore_queue"]] == ["c002", "c003", "c001"]
    assert all(q["eta_basis"] == "restored" for q in report["restore_queue"])
    # Before the restore began, the same one queue across both hosts (computed once, not per host) gave the restoring
    # notices their ETAs: no snapshot is chosen yet, so each client takes as long as its drill took, one after the
    # other on its host; c001 (never drilled) gets none, and its notice says so plainly.
    [before] = task_msgs(
        real, "Show the restore queue before the restore (all hosts; the restoring notices' ETAs, LATE warnings)"
    )
    assert [line.split(" (", 1)[0] for line in before[1:] if line[0].isdigit()] == ["1. c002", "2. c003", "3. c001"]
    assert " on books-a, priority 50: " in before[1] and before[-1].startswith("Filing calendar: ")
    notices = {e["id"]: e for e in json.loads((folder / "notices" / "index.json").read_text("utf-8"))["notices"]}
    eta = {cid: notices[f"{cid}.restoring.en"] for cid in CLIENTS}
    assert eta["c002"]["eta_basis"] == "as long as the drill drill-20261201 on books-a (2026-12-01T02:00:00+00:00) took"
    assert eta["c003"]["eta_basis"] == "as long as the drill drill-20261202 on sandbox (2026-12-02T02:00:00+00:00) took"
    assert (eta["c001"]["eta"], eta["c001"]["eta_basis"]) == ("", "no drill measurement")
    started = dt.datetime.fromisoformat(report["incident"]["declared_at"].replace("Z", "+00:00"))
    c002_eta = dt.datetime.fromisoformat(eta["c002"]["eta"].replace("Z", "+00:00"))
    assert dt.timedelta(seconds=100000) <= c002_eta - started <= dt.timedelta(seconds=100000 + 1800)
    local = (c002_eta + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
    assert (
        f"- Expected completion: about {local} (UTC+08:00), estimated from the restore speed our recovery drills"
        in (folder / notices["c002.restoring.en"]["path"]).read_text(encoding="utf-8")
    )
    assert "- 预计完成时间：暂时无法给出（我方的恢复演练尚未测得贵司资料的恢复用时）；" in (
        folder / notices["c001.restoring.zh-CN"]["path"]
    ).read_text(encoding="utf-8")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "Restore queue (nearest filing deadline first, then priority, then id; docs/filing_calendar.md):" in markdown
    assert (
        f"1. c002 宁波海风餐饮管理有限公司 on books-a: next deadline vat_monthly for 测试期 due {due['vat_monthly']}"
        in markdown
    )
