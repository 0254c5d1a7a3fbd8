"""restore_clients' decisions (plugin_utils/restore_clients.py) and its timeline steps, without a host."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest

from ansible_collections.ledgerguard.recovery.plugins.callback.timeline import CallbackModule
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import verify_chain
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import restore_clients as rc

CLIENT = {
    "id": "c001",
    "name": "杭州示例贸易有限公司",
    "priority": 10,
    "declared_paths": ["/srv/账套/c001"],
    "restore_paths": ["/srv/账套/c001"],
}

# The fields the report (incident_report filter, report templates, notices) reads from a restored client.
OK_FIELDS = {
    "id", "name", "priority", "host", "status", "paths", "snapshot", "why", "warnings", "skipped", "files", "bytes",
    "restore_seconds", "verified", "late_writers", "manifests", "backup_manifest", "staging", "quarantine", "restored",
    "replaced", "quarantined", "kept_changed", "kept_new", "unchanged", "detached_mounts", "ledger", "started",
    "finished", "seconds", "filings", "next_deadline", "filing_warnings",
}  # fmt: skip
FAILED_FIELDS = {
    "id", "name", "priority", "host", "status", "paths", "failed_task", "msg", "snapshot", "skipped", "why",
    "staging", "quarantine", "quarantined", "backup_manifest", "started", "finished", "filings", "next_deadline",
    "filing_warnings",
}  # fmt: skip


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ({"ledger": {"sqlite": "账簿/ledger.sqlite", "csv": {"sources": ["凭证/2026-09.csv", "凭证/*.csv"]}}},
         ["/srv/账套/c001/账簿/ledger.sqlite", "/srv/账套/c001/凭证/2026-09.csv"]),
        ({"csv": "/data/凭证.csv", "sqlite": ["a.sqlite"], "root": "/r"}, ["/r/a.sqlite", "/data/凭证.csv"]),
        ({"ledger": {"csv": ["x[1].csv", "b.csv"]}}, ["/srv/账套/c001/b.csv"]),
        ({}, []),
    ],
)  # fmt: skip
def test_ledger_paths_absolute_or_under_the_root_without_globs(client, expected):
    assert rc.ledger_paths({**CLIENT, **client}) == expected


def test_has_ledger():
    assert not rc.has_ledger(CLIENT)
    assert rc.has_ledger({**CLIENT, "csv": ["凭证.csv"]}) and rc.has_ledger({**CLIENT, "ledger": {"sqlite": "a"}})


def test_clients_of_one_snapshot_and_work_folder_share_a_restore():
    point = {"chosen": {"id": "a" * 64}}
    other = {**CLIENT, "id": "c002", "declared_paths": ["/srv/账套/c002"]}
    elsewhere = {**CLIENT, "id": "c003", "declared_paths": ["/data/c003"]}
    work = ".ledgerguard-INC-20261126-001"
    key = rc.batch_key(CLIENT, point, work, False)
    assert key == rc.batch_key(other, point, work, False) == ("batch", "a" * 64, f"/srv/账套/{work}")
    assert rc.batch_key(elsewhere, point, work, False) != key
    assert rc.batch_key(CLIENT, {"chosen": {"id": "b" * 64}}, work, False) != key
    assert rc.batch_key(CLIENT, point, work, True) == ("single", "c001")  # pinned
    assert rc.batch_key({**CLIENT, "snapshot_path": "/old/c001"}, point, work, False) == ("single", "c001")
    assert [rc.staging_name(ids) for ids in (["c001"], ["c001", "c002"], ["a", "b", "c", "d"])] == [
        "c001",
        "c001+c002",
        "a+3-more",
    ]


def test_late_writers_only_before_swap_and_under_the_clients_folders():
    scans = [
        {"label": "after_swap", "writers": [{"pid": 1, "targets": ["/srv/账套/c001/a"]}]},
        {
            "label": "before_swap",
            "writers": [
                {"pid": 2, "comm": "python3", "exe": "/usr/bin/python3", "action": "stopped",
                 "holds": [{"path": "/srv/账套/c001/凭证"}, {"path": "/srv/账套/c0010/x"}],
                 "targets": ["/srv/账套/c001"]},
                {"pid": 3, "holds": [{"path": "/srv/账套/c002"}]},
            ],
        },
    ]  # fmt: skip
    assert rc.late_writers(scans, ["/srv/账套/c001"]) == [
        {"pid": 2, "comm": "python3", "exe": "/usr/bin/python3", "action": "stopped",
         "paths": ["/srv/账套/c001/凭证", "/srv/账套/c001"]}
    ]  # fmt: skip
    assert rc.late_writers(scans, ["/srv/账套/c003"]) == []


def test_fallback_point_lists_the_unusable_snapshot_once_and_says_why():
    point = {"found": True, "chosen": {"id": "n"}, "skipped": [{"id": "d", "short_id": "d"}], "why": "x"}
    unusable = {"id": "n", "short_id": "nnnnnnnn", "time": "t", "reasons": ["needs pack 3f"]}
    older = {"found": True, "chosen": {"id": "o"}, "why": "newest snapshot before the loss", "warnings": [],
             "skipped": [{"id": "n", "reasons": ["unusable"]}, {"id": "m"}]}  # fmt: skip
    out = rc.fallback_point(point, older, unusable)
    assert [s["id"] for s in out["skipped"]] == ["d", "n", "m"] and out["skipped"][1] is unusable
    assert out["why"] == "newest snapshot before the loss; nnnnnnnn was skipped: the repository lost data it needs"
    assert rc.no_older_msg(CLIENT, "books01", unusable, {"why": "no clean snapshot"}) == (
        "No restore point for client c001 (杭州示例贸易有限公司) on books01: needs pack 3f No older clean snapshot "
        "exists (no clean snapshot)."
    )


def test_messages_name_the_client_the_snapshot_and_what_to_do():
    point = {
        "why": "every snapshot shows damage",
        "skipped": [{"short_id": "1a2b3c4d", "time": "T", "reasons": ["a", "b"]}],
    }
    assert rc.no_point_msg(CLIENT, "books01", point) == (
        "No restore point for client c001 (杭州示例贸易有限公司) on books01: every snapshot shows damage. "
        "Skipped 1a2b3c4d (T): a; b. Pin a snapshot with incident_pinned_snapshots if one of them is acceptable."
    )
    chosen = {"short_id": "1a2b3c4d", "stats": {"files": 3, "bytes": 30}}
    good = [{"files": 2, "total_bytes": 20}, {"files": 1, "total_bytes": 10}]
    assert rc.listing_problem(CLIENT, "/s", chosen, good) == ""
    assert rc.listing_problem(CLIENT, "/s", chosen, good[:1]) == (
        "The restored tree of client c001 in /s holds 2 files / 20 bytes but snapshot 1a2b3c4d lists 3 files / 30 "
        "bytes; nothing was swapped. Check the staging folder and re-run."
    )
    entry = {"findings_count": 1, "summary": "c001: 1 finding", "findings": [{"detail": "记-3 does not balance"}]}
    msg = rc.ledger_staging_msg(CLIENT, "books01", "1a2b3c4d", "/s", entry)
    assert msg.startswith("Client c001 (杭州示例贸易有限公司) on books01: the books restored from snapshot 1a2b3c4d")
    assert "have 1 finding(s): c001: 1 finding: 记-3 does not balance. Nothing was swapped" in msg


def test_result_entries_keep_the_reports_fields():
    state = {
        "point": {"chosen": {"id": "i", "short_id": "s", "time": "t", "stats": {}, "clean": True, "tags": ["x"]},
                  "why": "w", "warnings": [], "skipped": []},
        "restic": {"files": 4, "bytes": 40, "seconds": 1.5, "verified": True},
        "swap": {"restored": ["a"], "replaced": [], "quarantined": ["q2"], "quarantined_earlier": ["q1"],
                 "verified": True},
        "late_writers": [], "manifests": [{"digest": "d1"}], "staging": "/s", "quarantine": "/q",
        "ledger": {"ok": True, "findings_count": 0}, "started": "2026-11-26T08:00:00Z", "started_epoch": 100.0,
    }  # fmt: skip
    ok = rc.ok_entry(CLIENT, "books01", state, "2026-11-26T08:00:09Z", 109.04)
    assert set(ok) == OK_FIELDS
    assert ok["snapshot"] == {"id": "i", "short_id": "s", "time": "t", "stats": {}, "clean": True}
    assert ok["quarantined"] == ["q1", "q2"] and ok["verified"] is True and ok["seconds"] == 9.0
    assert ok["ledger"] == {"ok": True, "findings": 0} and ok["manifests"] == ["d1"]
    assert rc.ok_entry(CLIENT, "h", {**state, "late_writers": [{"pid": 9}]}, "f", 100)["verified"] is False
    failed = rc.failed_entry(CLIENT, "books01", state, rc.StepFailed(rc.Step.SWAP, "boom"), "f")
    assert set(failed) == FAILED_FIELDS
    assert failed["failed_task"] == "Swap the restored files into place, damaged files to quarantine"
    plan = rc.planned_from_point(CLIENT, "books01", "/w", "/w/quarantine/c001", state["point"] | {"found": True})
    assert plan["status"] == "planned" and plan["action"] == "restore s into staging, verify, swap into place"
    assert plan["staging"] == "/w/staging/c001/<run id>"


def test_markers_are_written_atomically_with_their_json(tmp_path):
    marker = tmp_path / "标记 目录" / "c001.done.json"
    marker.parent.mkdir()
    marker.write_text("old")
    record = {"id": "c001", "name": "杭州示例贸易有限公司", "status": "ok"}
    other = tmp_path / "标记 目录" / "c002.swapped.json"
    stdin = rc.markers_stdin({str(marker): record, str(other): {"id": "c002"}})
    subprocess.run(["/bin/sh", "-c", rc.markers_script(), "x"], input=stdin, text=True, check=True)
    assert json.loads(marker.read_text(encoding="utf-8")) == record
    assert "杭州示例贸易有限公司" in marker.read_text(encoding="utf-8")  # not \\u escaped
    assert marker.stat().st_mode & 0o777 == 0o600 and json.loads(other.read_text()) == {"id": "c002"}
    assert sorted(p.name for p in marker.parent.iterdir()) == ["c001.done.json", "c002.swapped.json"]


def test_timeline_has_a_line_per_step(tmp_path):
    path = tmp_path / "INC-20261126-001" / "timeline.jsonl"
    cb = CallbackModule()
    cb.v2_playbook_on_play_start(SimpleNamespace(get_name=lambda: "Respond"))
    host = SimpleNamespace(get_name=lambda: "books01")
    fact = {"ledgerguard_timeline": {"path": str(path), "incident_id": "INC-20261126-001", "operator": "王会计"}}
    task = SimpleNamespace(_uuid="t", action="ledgerguard.recovery.restore_clients", get_name=lambda: "Restore all")
    steps = [
        {"task": "Restore the chosen snapshot into staging, 1a2b3c4d", "clients": ["c001", "c002"], "status": "ok",
         "changed": True, "duration": 1.2},
        {"task": "Swap the restored files into place, damaged files to quarantine", "clients": ["c002"],
         "status": "failed", "changed": False, "duration": 0.1, "msg": "no space"},
    ]  # fmt: skip
    res = {"changed": True, "ansible_facts": fact, "ledgerguard_steps": steps}
    cb.v2_runner_on_ok(SimpleNamespace(_host=host, _task=task, _result=res, _task_fields={}))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["task"], r["status"], r.get("step_of")) for r in lines[2:]] == [
        ("Restore all", "ok", None),
        ("Restore the chosen snapshot into staging, 1a2b3c4d [c001, c002]", "ok", "Restore all"),
        ("Swap the restored files into place, damaged files to quarantine [c002]", "failed", "Restore all"),
    ]
    assert lines[4]["msg"] == "no space" and lines[3]["changed"] is True and verify_chain(str(path))["ok"]
