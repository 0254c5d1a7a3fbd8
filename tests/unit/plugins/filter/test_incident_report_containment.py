"""The incident report's Containment section and the per-client writers (issue 14)."""

from __future__ import annotations

from ansible_collections.ledgerguard.recovery.plugins.filter.incident_report import incident_report

RECORD = {"incident_id": "INC-C", "declared_at": "2026-11-26T21:00:00Z", "detected_at": "2026-11-26T20:50:00Z"}


def writer(pid, path, action="stopped", role="writer", kind="cwd", **extra):
    return {
        "pid": pid,
        "start_ticks": pid * 10,
        "ppid": 1,
        "user": "acct",
        "comm": "python3",
        "exe": "/usr/bin/python3.11",
        "exe_sha256": "ab" * 32,
        "cmdline": "python3 enc.py '--key=***'",
        "started": "2026-11-26T20:40:00Z",
        "role": role,
        "writing": role == "writer",
        "action": action,
        "found_at": "2026-11-26T21:01:00Z",
        "acted_at": "2026-11-26T21:01:00Z",
        "targets": [path],
        "holds": [{"kind": kind, "path": path, "mode": "dir", "writing": role == "writer", "target": path}],
        **extra,
    }


def client(cid, path):
    return {"id": cid, "name": cid, "priority": 10, "status": "ok", "paths": [path], "snapshot": {}, "finished": ""}


def test_containment_section_and_late_writer_makes_a_problem():
    hosts = {
        "h1": {
            "restore_results": [client("c001", "/srv/c001"), client("c002", "/srv/c002"), client("c003", "/srv/c003")],
            "freeze": {
                "targets": [{"name": "x"}],
                "writers": [writer(11, "/srv/c001"), writer(12, "/srv/c002/a.csv", role="reader", action="recorded")],
            },
            "rescans": [{"label": "after_swap", "writers": [writer(13, "/srv/c003")], "held": []}],
            "thaw": {"targets": [], "stopped_processes": [{"pid": 11}, {"pid": 13}]},
        }
    }
    report = incident_report(RECORD, hosts)
    rows = {r["pid"]: r for r in report["containment"]}
    assert (rows[11]["found_by"], rows[11]["action"], rows[11]["still_stopped_at_thaw"]) == ("freeze", "stopped", True)
    assert rows[11]["holds"] == ["cwd /srv/c001"]
    assert (rows[12]["role"], rows[12]["action"]) == ("reader", "recorded")
    assert rows[13]["found_by"] == "after_swap"
    summary = report["summary"]["containment"]
    assert (summary["writers_found"], summary["stopped"], summary["readers"], summary["still_stopped_at_thaw"]) == (
        2,
        2,
        1,
        2,
    )
    by_id = {c["id"]: c for c in report["clients"]}
    assert by_id["c001"]["cause"]["writers"][0].startswith(
        "pid 11 (python3, user acct, /usr/bin/python3.11) was writing"
    )
    assert by_id["c002"]["cause"]["writers"] == []  # a reader is not a writer
    # The writer found after the swap: its client is never reported verified on trust.
    assert any(p.startswith("h1/c003: writer pid 13") and "re-checked" in p for p in report["problems"])
    assert report["status"] == "partial"


def test_a_writer_still_running_is_a_problem():
    hosts = {
        "h1": {
            "restore_results": [client("c001", "/srv/c001")],
            "freeze": {"targets": [{"name": "x"}], "writers": []},
            "rescans": [
                {
                    "label": "before_thaw",
                    "writers": [writer(21, "/srv/c001", action="stop_failed")],
                    "held": [writer(21, "/srv/c001")],
                }
            ],
        }
    }
    report = incident_report(RECORD, hosts)
    assert report["summary"]["containment"]["still_running"] == 1
    assert any("writer pid 21" in p and "still ran" in p for p in report["problems"])
