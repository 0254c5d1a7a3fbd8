"""Verifier for the drill scenario: history, sandbox and metrics in the container, reports on the controller."""

from __future__ import annotations

import json
import os
from pathlib import Path


def history(host) -> list[dict]:
    f = host.file("/var/lib/ledgerguard/drills/history.jsonl")
    assert f.exists and f.mode == 0o640
    return [json.loads(line) for line in f.content_string.splitlines()]


def test_one_drill_recorded_and_passed(host):
    (rec,) = history(host)  # the check step recorded nothing
    assert rec["drill_id"] == "drill-molecule" and rec["passed"] is True
    assert rec["snapshot"]["tags"] == ["molecule-drill"]
    c001, c002 = rec["clients"]
    assert (c001["id"], c001["name"]) == ("C001", "华东商贸有限公司")
    assert c001["files"] == 2 and c002["files"] == 1
    assert c001["checks"]["ledger"]["ok"] is True and c001["checks"]["sqlite"]["ok"] is True
    assert c001["targets"]["rto_seconds"] == 600.0 and c002["targets"]["rto_seconds"] == 14400.0
    assert c001["checks"]["restore"]["verified"] is True


def test_sandbox_removed_and_production_untouched(host):
    sandbox = host.file("/var/tmp/ledgerguard-drill")
    assert sandbox.is_directory and sandbox.listdir() == []
    assert host.file("/srv/ledgers/C002/明细账.csv").content_string == "科目,借方,贷方\n2202 应付账款,0.00,2500.50\n"


def test_metrics_for_node_exporter(host):
    prom = host.file("/var/lib/node_exporter/textfile_collector/ledgerguard_drill.prom")
    assert prom.mode == 0o644
    text = prom.content_string
    assert 'ledgerguard_drill_passed{host="ledgerguard-drill"} 1' in text
    assert 'ledgerguard_drill_rto_seconds{host="ledgerguard-drill",client="C001"}' in text


def test_reports_on_the_controller():
    ev = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "evidence" / "drill-molecule"
    report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
    assert report["passed"] is True and report["hosts"][0]["host"] == "ledgerguard-drill"
    assert "<svg" in (ev / "report.html").read_text(encoding="utf-8")
    copy = (ev / "hosts" / "ledgerguard-drill" / "history.jsonl").read_text(encoding="utf-8")
    assert json.loads(copy)["drill_id"] == "drill-molecule"
