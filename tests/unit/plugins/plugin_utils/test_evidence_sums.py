"""SHA256SUMS of an evidence folder (plugin_utils.evidence_pack.write_sums, behind the evidence_sums action): what
GNU sha256sum -c accepts from inside the folder, Chinese and GBK names, excluded names at any depth, idempotent."""

from __future__ import annotations

import os
import subprocess

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as ep


def test_sums_are_what_sha256sum_checks_and_change_only_with_the_evidence(tmp_path):
    (tmp_path / "hosts" / "会计服务器").mkdir(parents=True)
    (tmp_path / "report.html").write_text("<h1>事件报告</h1>", encoding="utf-8")
    (tmp_path / "hosts" / "会计服务器" / "processes.txt").write_text("1 root init\n", encoding="utf-8")
    with open(os.fsencode(tmp_path / "notices") + b"-" + "客户通知.md".encode("gbk"), "wb") as handle:
        handle.write(b"GBK-named notice")
    (tmp_path / "odd\\name.txt").write_text("backslash", encoding="utf-8")
    (tmp_path / "timeline.jsonl").write_text('{"seq": 1}\n', encoding="utf-8")
    (tmp_path / "hosts" / "timeline.jsonl").write_text('{"seq": 1}\n', encoding="utf-8")
    (tmp_path / "link").symlink_to(tmp_path / "report.html")

    planned = ep.write_sums(tmp_path, ["timeline.jsonl"], check_mode=True)
    assert planned["changed"] is True and not (tmp_path / "SHA256SUMS").exists()
    first = ep.write_sums(tmp_path, ["timeline.jsonl"])
    assert first["changed"] is True and first["files"] == 4 and first["sha256"] == planned["sha256"]
    assert oct((tmp_path / "SHA256SUMS").stat().st_mode & 0o777) == "0o600"
    listed = (tmp_path / "SHA256SUMS").read_bytes()
    assert b"timeline.jsonl" not in listed and b"link" not in listed
    check = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(b": OK\n") == 4

    assert ep.write_sums(tmp_path, ["timeline.jsonl"])["changed"] is False
    (tmp_path / "hosts" / "timeline.jsonl").write_text('{"seq": 1}\n{"seq": 2}\n', encoding="utf-8")
    assert ep.write_sums(tmp_path, ["timeline.jsonl"])["changed"] is False  # excluded at any depth
    (tmp_path / "report.html").write_text("<h1>事件报告（修订）</h1>", encoding="utf-8")
    again = ep.write_sums(tmp_path, ["timeline.jsonl"])
    assert again["changed"] is True and again["sha256"] != first["sha256"]
