"""Verifier for the backup_verify scenario: the evidence on the controller and the state of the container."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def evidence() -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "evidence"


@pytest.fixture(scope="module")
def report(evidence) -> dict:
    runs = sorted((evidence / "backup_verify").iterdir())
    # converge and idempotence each wrote one run; check mode wrote none.
    assert len(runs) == 2
    return json.loads((runs[-1] / "result.json").read_text(encoding="utf-8"))


def test_host_checks_pass(report):
    host = report["hosts"][0]
    assert host["host"] == "ledgerguard-backup-verify"
    by = {(c["check"], c["subject"]): c["status"] for c in host["checks"]}
    assert by[("coverage", "C001 华东商贸有限公司: /srv/ledgers/C001")] == "OK"
    assert by[("coverage", "C002 客户二: /srv/ledgers/C002")] == "OK"
    assert {s for (name, _), s in by.items() if name in ("reachable", "freshness", "damage", "spot_check")} == {"OK"}
    spot = next(c for c in host["checks"] if c["check"] == "spot_check")
    assert spot["details"]["matched"] == 3


def test_repository_checks(report):
    repo = report["repositories"][0]
    checks = {c["check"]: c for c in repo["checks"]}
    assert repo["repository"].endswith("/ledgerguard-backup-verify")
    assert checks["data"]["status"] == "OK"
    # The rolling window advanced once per real run: 1/7 at converge, 2/7 at idempotence.
    assert checks["data"]["details"]["subset"] == "2/7"
    assert checks["storage_versioning"]["status"] == "WARN"
    assert checks["storage_lifecycle"]["status"] == "OK"
    assert {c["status"] for c in repo["checks"] if c["check"] == "retention"} == {"OK"}
    assert report["status"] == "WARN"


def test_rolling_state_and_metrics(evidence):
    state = json.loads(next((evidence / "state" / "backup_verify").glob("rolling-*.json")).read_text())
    assert (state["t"], state["next"], state["read"]) == (7, 3, [1, 2])
    prom = (evidence / "metrics" / "ledgerguard_backup_verify.prom").read_text(encoding="utf-8")
    assert "ledgerguard_backup_verify_status 1\n" in prom
    assert 'ledgerguard_backup_coverage_ratio{host="ledgerguard-backup-verify"} 1.0\n' in prom


def test_sandbox_is_empty(host):
    sandbox = host.file("/var/lib/ledgerguard/backup_verify/sandbox")
    assert not sandbox.exists or host.check_output("find /var/lib/ledgerguard/backup_verify/sandbox -type f") == ""
    # The live data is untouched.
    assert host.file("/srv/ledgers/C001/总账.csv").content_string == "科目,借方,贷方\n1001 库存现金,100.00,0.00\n"
