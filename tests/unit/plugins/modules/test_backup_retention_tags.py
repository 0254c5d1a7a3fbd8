"""backup_retention tag_permanent with real restic on a repository as a firm has it: a year-end snapshot that the firm
re-tagged itself before (restic keeps its first ID in "original") is tagged permanent, and its backup-time manifest
follows it to the new snapshot ID, so a later forget does not take the manifest for an orphan."""

from __future__ import annotations

import json

from ansible_collections.ledgerguard.recovery.plugins.modules import backup_retention
from conftest import module_result, restic


def snapshots(repo, pw) -> list[dict]:
    return json.loads(restic(repo, pw, "snapshots", "--json").stdout)


def test_a_snapshot_retagged_before_gets_the_permanent_tag_and_keeps_its_manifest(
    tmp_path, capsys, local_repo, restic_password_file
):
    books = tmp_path / "账套" / "c001"
    books.mkdir(parents=True)
    (books / "2024年报.xlsx").write_bytes(b"annual report 2024")
    pw = restic_password_file
    restic(local_repo, pw, "backup", "--host", "书房", "--tag", "c001", "--time", "2024-12-31 20:00:00", str(books))
    [data] = snapshots(local_repo, pw)
    manifest_tags = f"ledgerguard-manifest,ledgerguard-manifest-for={data['id']}"
    recorded = tmp_path / f"ledgerguard-manifest-{data['short_id']}.jsonl"
    recorded.write_text('{"ledgerguard_manifest": 1}\n', encoding="utf-8")
    restic(local_repo, pw, "backup", "--host", "书房", "--tag", manifest_tags, "--time", "2024-12-31 20:00:05",
           str(recorded))  # fmt: skip
    # the firm's own re-tag (an auditor's mark): a new snapshot ID, the first one kept as "original"
    restic(local_repo, pw, "tag", "--add", "audited", data["id"])
    [retagged] = [s for s in snapshots(local_repo, pw) if "audited" in s.get("tags", [])]
    assert retagged["original"] == data["id"]
    args = {"operation": "tag_permanent", "clients": ["c001"], "host": "书房", "repository": local_repo,
            "password_file": str(pw), "permanent_dates": ["12-31"], "fiscal_utc_offset": "+08:00"}  # fmt: skip
    out = module_result(backup_retention.main, args, capsys)
    assert out["changed"] is True and "failed" not in out, out.get("msg")
    [tagged] = out["clients"][0]["tagged"]
    after = snapshots(local_repo, pw)
    [permanent] = [s for s in after if "permanent" in s.get("tags", []) and "c001" in s.get("tags", [])]
    assert tagged["id"] == retagged["id"] and tagged["new_id"] == permanent["id"] != retagged["id"]
    [manifest] = [s for s in after if "ledgerguard-manifest" in s.get("tags", [])]
    assert f"ledgerguard-manifest-for={permanent['id']}" in manifest["tags"] and "permanent" in manifest["tags"]


def test_a_named_snapshot_that_matches_nothing_is_said_not_tagged(tmp_path, capsys, local_repo, restic_password_file):
    books = tmp_path / "账套" / "c001"
    books.mkdir(parents=True)
    (books / "审计报告.pdf").write_bytes(b"%PDF-1.7 audited")
    pw = restic_password_file
    restic(local_repo, pw, "backup", "--host", "书房", "--tag", "c001", "--time", "2025-03-31 20:00:00", str(books))
    restic(local_repo, pw, "backup", "--host", "书房", "--tag", "c001", "--time", "2025-04-30 20:00:00", str(books))
    before = snapshots(local_repo, pw)
    args = {"operation": "tag_permanent", "clients": ["c001"], "host": "书房", "repository": local_repo,
            "password_file": str(pw), "permanent_dates": [], "snapshots": ["0badc0de"]}  # fmt: skip
    out = module_result(backup_retention.main, args, capsys)
    # (its warning, "snapshots: 0badc0de matches no snapshot of clients c001 on host 书房: not tagged permanent by
    # this run", is the module's; in this process Ansible's controller display may take it, so the result is checked)
    assert "failed" not in out and out["unmatched_snapshots"] == ["0badc0de"] and out["changed"] is False
    assert snapshots(local_repo, pw) == before
    # a prefix both snapshots share (the empty one) fails before anything is tagged
    out = module_result(backup_retention.main, dict(args, snapshots=["", "0badc0de"]), capsys)
    assert out["failed"] is True
    assert out["msg"] == (
        "snapshots:  match several snapshots of clients c001 on host 书房; give each one's full ID from "
        "'restic snapshots'. Nothing was tagged."
    )
    assert snapshots(local_repo, pw) == before
