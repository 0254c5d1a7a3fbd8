"""The ledgerguard CLI end to end: real playbooks through ansible-runner, exit codes, and no secret on disk."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_environment

from ledgerguard import sampledata

pytestmark = pytest.mark.slow
LEDGERGUARD = [sys.executable, "-m", "ledgerguard"]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LEDGERGUARD, *args], capture_output=True, text=True, env=cli_environment(env), timeout=300, check=False
    )


def client_books(tmp_path: Path) -> tuple[Path, list[dict]]:
    prod = tmp_path / "prod"
    c = sampledata.make_client_tree(prod, "c001", "杭州示例贸易有限公司", periods=["2024-03"], pdfs=1)
    return prod, [{"id": "c001", "name": c["client"]["name"], "paths": c["client"]["paths"], "priority": 1}]


def test_drill_missing_its_rto_exits_3(tmp_path, local_repo, restic_password_file, restic_cmd, localhost_inventory):
    prod, clients = client_books(tmp_path)
    restic_cmd(local_repo, restic_password_file, "backup", str(prod))
    inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(tmp_path / "state")})
    res = cli(
        "drill", "--plain", "-i", str(inv), "--repository", local_repo, "--password-file", str(restic_password_file),
        "--evidence-dir", str(tmp_path / "evidence"), "--private-data-dir", str(tmp_path / "runner"),
        "--sandbox", str(tmp_path / "sandbox"), "--rto", "0.01s", "--drill-id", "drill-tight",
        "-e", "drill_progress_interval=0",
    )  # fmt: skip
    assert res.returncode == 3, res.stdout[-3000:] + res.stderr
    out = res.stdout
    assert "ledgerguard drill: exit 3 (the drill missed its targets)" in out
    assert "Drill drill-tight: FAILED" in out
    assert "    - c001: RTO " in out and "exceeds the target of 0.01s" in out
    assert "\x1b" not in out  # --plain: no terminal control characters
    record = json.loads((tmp_path / "state" / "drills" / "history.jsonl").read_text())
    assert record["targets_missed"] is True and record["verification_failed"] is False
    # --rto wins for every client; the RPO target keeps its role default (26 h).
    assert record["clients"][0]["targets"] == {
        "rto_seconds": 0.01,
        "rpo_seconds": 93600.0,
        "min_throughput_bytes_per_second": None,
    }
    # The run's artifacts are where AWX would keep them: job events, status, rc; no env/ files.
    (artifacts,) = (tmp_path / "runner" / "drill" / "artifacts").iterdir()
    assert (artifacts / "status").read_text() == "failed"
    assert len(list((artifacts / "job_events").iterdir())) > 50
    assert not (tmp_path / "runner" / "drill" / "env").exists()


def test_cli_drill_on_s3_leaves_no_secret_in_any_file(
    tmp_path, s3_server, s3_repo, restic_password_file, s3_credentials_file, restic_cmd, localhost_inventory
):
    prod, clients = client_books(tmp_path)
    restic_cmd(s3_repo, restic_password_file, "backup", str(prod), env=s3_server.env())
    password = restic_password_file.read_text().strip()
    aws = s3_server.env()
    secrets = {"restic password": password, "S3 secret key": aws["AWS_SECRET_ACCESS_KEY"]}
    inv = localhost_inventory({"ledgerguard_clients": clients, "ledgerguard_state_dir": str(tmp_path / "state")})
    runner_dir, evidence = tmp_path / "runner", tmp_path / "evidence"
    res = cli(
        "drill", "--plain", "-i", str(inv), "--repository", s3_repo,
        "--password-file", str(restic_password_file), "--s3-credentials-file", str(s3_credentials_file),
        "--evidence-dir", str(evidence), "--private-data-dir", str(runner_dir), "--sandbox", str(tmp_path / "sandbox"),
        "--drill-id", "drill-s3", "-v",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "Drill drill-s3: PASSED" in res.stdout and "ledgerguard drill: exit 0 (success)" in res.stdout
    history = json.loads((tmp_path / "state" / "drills" / "history.jsonl").read_text())
    assert history["clients"][0]["files"] == 3 and history["passed"] is True

    # A failing run too (wrong sandbox), so error paths are scanned as well.
    bad = cli(
        "drill", "--plain", "-i", str(inv), "--repository", s3_repo, "--password-file", str(restic_password_file),
        "--s3-credentials-file", str(s3_credentials_file), "--private-data-dir", str(runner_dir),
        "--evidence-dir", str(evidence), "--sandbox", str(prod / "c001" / "x"),
    )  # fmt: skip
    assert bad.returncode == 1 and "is inside production path" in bad.stdout

    scanned = 0
    for root in (runner_dir, evidence, tmp_path / "state"):
        for path in root.rglob("*"):
            if path.is_file():
                scanned += 1
                data = path.read_bytes()
                for what, value in secrets.items():
                    assert value.encode() not in data, f"{what} found in {path}"
    assert scanned > 100  # job events of both runs, artifacts, reports, history
    for out in (res.stdout, res.stderr, bad.stdout, bad.stderr):
        assert password not in out and aws["AWS_SECRET_ACCESS_KEY"] not in out
    # ansible-runner wrote no env/ files (suppress_env_files) and kept its command file private.
    assert not (runner_dir / "drill" / "env").exists()
    for command in (runner_dir / "drill" / "artifacts").glob("*/command"):
        assert stat.S_IMODE(command.stat().st_mode) == 0o600
