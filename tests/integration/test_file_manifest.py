"""file_manifest through real playbook runs (ansible-runner): check mode, apply, idempotence, compare."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from conftest import failed_messages, task_result

from ledgerguard import sampledata

PLAYBOOKS = Path(__file__).parent / "playbooks"


def client_tree(tmp_path: Path) -> Path:
    root = tmp_path / "restore"
    sampledata.make_client_tree(root, "c001", periods=["2024-02", "2024-03"], vouchers_per_period=10)
    (root / "c001" / os.fsdecode(b"legacy-\xb9\xfa.txt")).write_bytes(b"gbk-named file")  # name not valid UTF-8
    return root


def test_create_check_apply_idempotent(tmp_path, localhost_inventory, playbook):
    tree = client_tree(tmp_path)
    dest = tmp_path / "manifests" / "c001.jsonl"
    dest.parent.mkdir()
    runner = playbook(
        str(PLAYBOOKS / "file_manifest_create.yml"),
        inventory=localhost_inventory(),
        extravars={"fm_tree": str(tree), "fm_dest": str(dest)},
    )
    assert runner.status == "successful", failed_messages(runner)
    first = task_result(runner, "Build the manifest")
    assert task_result(runner, "Build the manifest in check mode")["changed"] is True
    assert task_result(runner, "Build the manifest again")["changed"] is False
    data = dest.read_bytes()
    assert hashlib.sha256(data).hexdigest() == first["digest"]
    lines = [json.loads(x) for x in data.decode("utf-8").splitlines()]
    by_path = {x["path"]: x for x in lines[1:]}
    csv_path = tree / "c001" / "凭证" / "2024-03.csv"
    assert by_path["c001/凭证/2024-03.csv"]["sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert by_path["c001/凭证/2024-03.csv"]["size"] == csv_path.stat().st_size
    assert by_path["c001/legacy-\\xb9\\xfa.txt"]["sha256"] == hashlib.sha256(b"gbk-named file").hexdigest()
    assert first["files"] == 2 + 1 + 3 + 1 and first["dirs"] == 4


def test_sha256sum_format_verifies_with_coreutils(tmp_path, localhost_inventory, playbook):
    tree = client_tree(tmp_path)
    dest = tmp_path / "SHA256SUMS"
    runner = playbook(
        str(PLAYBOOKS / "file_manifest_create.yml"),
        inventory=localhost_inventory(),
        extravars={"fm_tree": str(tree), "fm_dest": str(dest), "fm_format": "sha256sum"},
    )
    assert runner.status == "successful", failed_messages(runner)
    proc = subprocess.run(["sha256sum", "--strict", "-c", str(dest)], cwd=tree, capture_output=True, check=False)
    assert proc.returncode == 0 and proc.stdout.count(b": OK") == 7


def test_compare_finds_damage(tmp_path, localhost_inventory, playbook):
    tree = client_tree(tmp_path)
    ref = tmp_path / "ref.jsonl"
    inv = localhost_inventory()
    runner = playbook(
        str(PLAYBOOKS / "file_manifest_create.yml"),
        inventory=inv,
        extravars={"fm_tree": str(tree), "fm_dest": str(ref)},
        private_data_dir=tmp_path / "r1",
    )
    assert runner.status == "successful", failed_messages(runner)
    report = tmp_path / "diff.jsonl"
    extravars = {"fm_tree": str(tree), "fm_reference": str(ref), "fm_report": str(report)}
    runner = playbook(
        str(PLAYBOOKS / "file_manifest_compare.yml"),
        inventory=inv,
        extravars=extravars,
        private_data_dir=tmp_path / "r2",
    )
    assert runner.status == "successful", failed_messages(runner)
    assert task_result(runner, "Compare the tree with the reference manifest")["matched"] is True
    # Ransomware-style damage: one file encrypted in place, one deleted, a ransom note added.
    (tree / "c001" / "账簿" / "ledger.sqlite").write_bytes(os.urandom(2048))
    (tree / "c001" / "凭证" / "2024-02.csv").unlink()
    (tree / "c001" / "README_DECRYPT.txt").write_text("send bitcoin")
    runner = playbook(
        str(PLAYBOOKS / "file_manifest_compare.yml"),
        inventory=inv,
        extravars=extravars,
        private_data_dir=tmp_path / "r3",
    )
    assert runner.status == "failed"
    assert failed_messages(runner) == [
        f"1 missing, 1 changed, 1 extra entries compared with {ref}; see 'differences' and the full list in {report}"
    ]
    res = task_result(runner, "Compare the tree with the reference manifest")
    assert res["differences"] == {
        "missing": ["c001/凭证/2024-02.csv"],
        "changed": [{"path": "c001/账簿/ledger.sqlite", "fields": ["size", "sha256"]}],
        "extra": ["c001/README_DECRYPT.txt"],
    }
    assert [json.loads(x)["status"] for x in report.read_text(encoding="utf-8").splitlines()] == [
        "extra",
        "missing",
        "changed",
    ]
