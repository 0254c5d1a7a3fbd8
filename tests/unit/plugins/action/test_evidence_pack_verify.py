"""evidence_pack state=verified over several folders: one result per folder, also for a folder that is missing (it
failed the whole task before, with no result for the folders that were there)."""

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.ledgerguard.recovery.plugins.action import evidence_pack as action
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as ep


def test_a_missing_folder_is_one_failed_pack_and_the_others_are_verified(tmp_path):
    signed = tmp_path / "证据" / "INC-20261207-001"
    signed.mkdir(parents=True)
    (signed / "report.html").write_text("<p>事件报告</p>", encoding="utf-8")
    key = ep.keygen(tmp_path / "密钥" / "firm.key")
    ep.sign(signed, key["key"], signer="审计", kind="incident")
    missing = tmp_path / "证据" / "INC-20261207-002"
    stub = object.__new__(action.ActionModule)
    stub._task = SimpleNamespace(check_mode=False)
    args = {"state": "verified", "path": [str(signed), str(missing)], "public_key": key["public_key"], "key": None,
            "fail_on_problems": False}  # fmt: skip
    out = stub.act(args, {})
    assert "failed" not in out and out["ok"] is False and out["msg"] == "1 of 2 pack(s) verified"
    first, second = out["packs"]
    assert first["pack"] == str(signed) and first["ok"] is True
    assert second["pack"] == str(missing) and second["ok"] is False
    assert second["problems"] == [
        f"folder-missing: {missing}: evidence folder {missing} does not exist or is not a directory"
    ]
    failing = stub.act(dict(args, fail_on_problems=True), {})
    assert failing["failed"] is True and failing["msg"] == (
        f"evidence_pack: {missing}: folder-missing: {missing}: evidence folder {missing} does not exist or is not a "
        "directory"
    )
