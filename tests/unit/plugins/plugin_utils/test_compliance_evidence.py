"""The compliance checklist read from the evidence on the controller (plugin_utils.compliance_evidence, behind the
compliance_checklist and incident_report actions): which files are found (as ansible.builtin.find with a depth found
them), how histories, verify results, packs and notice records are read, and the errors the report shows."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance as c
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import compliance_evidence as ce
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as ep

NOW = "2026-11-27T09:00:00+08:00"
DRILL = {"drill_id": "演练-1", "finished": "2026-11-25T00:00:00+00:00", "passed": True, "rto_seconds": 9}
VERIFY = {
    "schema": "ledgerguard.backup_verify/1",
    "generated_at": "2026-11-26T00:00:00Z",
    "hosts": [{"host": "books1", "status": "OK", "repository": "s3:bucket", "newest_snapshot": {"time": NOW}}],
}


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_files_found_as_find_with_a_depth_finds_them(tmp_path):
    root = tmp_path / "证据"
    found = [
        write(root / "history.jsonl", ""),
        write(root / "drills" / "客户" / "history.jsonl", ""),
        write(root / "backup_verify" / "2026" / "11" / "result.json", "{}"),
    ]
    write(root / "a" / "b" / "c" / "d" / "result.json", "{}")  # level 5: too deep
    write(root / "a" / ".history.jsonl", "")  # hidden
    write(root / "a" / "other.json", "{}")  # another name
    (root / "link").mkdir()
    (root / "link" / "history.jsonl").symlink_to(root / "history.jsonl")  # a link is no evidence file
    assert ce.find_files(str(root), ["history.jsonl", "result.json"], 4) == sorted(found)
    assert ce.find_files(str(root) + "/", ["history.jsonl"], 1) == [found[0]]
    assert ce.find_files(str(tmp_path / "missing"), ["history.jsonl"], 4) == []


def test_histories_and_verify_results_are_read_in_path_order(tmp_path):
    files = [
        write(tmp_path / "drills" / "history.jsonl", json.dumps(DRILL, ensure_ascii=False) + "\n\n"),
        write(tmp_path / "backup_verify" / "run" / "result.json", json.dumps(VERIFY)),
        write(tmp_path / "other" / "result.json", json.dumps({"not": "a verify result"})),
    ]
    drills, verifies = ce.read_histories(files)
    assert drills == [DRILL]
    assert verifies == [
        {
            "time": "2026-11-26T00:00:00Z",
            "status": "OK",
            "repository": "s3:bucket",
            "host": "books1",
            "newest_snapshot_time": NOW,
        }
    ]


def test_a_broken_history_names_its_file_and_line(tmp_path):
    bad = write(tmp_path / "drills" / "history.jsonl", '{"a": 1}\n{broken\n')
    with pytest.raises(c.ComplianceInputError, match=f"{bad} line 2 is not valid JSON") as raised:
        ce.read_histories([bad])
    assert ce.error_text(raised.value).startswith(f"compliance_checklist: {bad} line 2 is not valid JSON")
    broken = write(tmp_path / "backup_verify" / "result.json", "{")
    with pytest.raises(c.ComplianceInputError, match=f"{broken} is not valid JSON"):
        ce.read_histories([broken])
    # a history in GBK (or damaged bytes) is an input error naming the file, not a crash of the checklist
    gbk = tmp_path / "演练" / "history.jsonl"
    gbk.parent.mkdir()
    gbk.write_bytes('{"drill_id": "演练-1"}\n'.encode("gbk"))
    with pytest.raises(c.ComplianceInputError) as raised:
        ce.read_histories([str(gbk)])
    assert str(raised.value) == (
        f"{gbk} is not UTF-8 text (byte 14: invalid continuation byte); restore it from the evidence pack"
    )


def test_error_text_keeps_a_filter_error_from_its_prefix():
    assert ce.error_text(ValueError("Task failed: retention_policy: two policies differ")) == (
        "retention_policy: two policies differ"
    )
    assert ce.error_text(ValueError("something else")) == "something else"


def test_packs_are_verified_only_with_a_key(tmp_path):
    root = tmp_path / "evidence"
    folder = root / "INC-20261126-001"
    write(folder / "report.html", "<p>报告</p>")
    key = ep.keygen(tmp_path / "keys" / "firm.key")
    ep.sign(folder, key["key"], signer="审计", kind="incident")
    assert ce.verify_packs(str(root), "") == []
    (packed,) = ce.verify_packs(str(root), key["public_key"])
    assert packed["ok"] is True
    (folder / "report.html").write_text("<p>改过</p>", encoding="utf-8")
    (tampered,) = ce.verify_packs(str(root), key["public_key"])
    assert tampered["ok"] is False and tampered["problems"]


def test_union_keeps_the_first_of_repeated_records():
    assert ce._union([{"a": 1}, {"a": 1}, {"b": 2}], [{"b": 2}, {"c": 3}]) == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_clients_once_per_id_first_kept():
    first, again, other = {"id": "c001", "name": "甲"}, {"id": "c001", "name": "乙"}, {"id": "c002", "name": "丙"}
    assert ce.unique_clients([first, again, other, "not a client"]) == [first, other]


def inputs(root, **extra):
    return {
        "mode": "periodic",
        "now": NOW,
        "evidence_root": str(root),
        "settings": {"timezone": "Asia/Shanghai"},
        "policy": {},
        **extra,
    }


def test_checklist_reads_the_evidence_and_takes_extra_records(tmp_path):
    root = tmp_path / "evidence"
    write(root / "drills" / "history.jsonl", json.dumps(DRILL, ensure_ascii=False) + "\n")
    extra = {**DRILL, "drill_id": "演练-2"}
    out = ce.checklist(inputs(root, extra_drills=[DRILL, extra]), [{"id": "c001", "name": "甲", "paths": ["/x"]}])
    assert out["mode"] == "periodic"
    assert [d["id"] for d in out["drills"]] == ["演练-1", "演练-2"]
    assert sum(out["summary"].values()) == len(out["rows"])


def test_incident_mode_reads_the_notice_records(tmp_path):
    folder = tmp_path / "evidence" / "INC-20261126-001"
    write(folder / "notices" / "index.json", json.dumps({"notices": []}))
    incident = {"detected_at": "2026-11-26T23:30:00+08:00"}
    out = ce.checklist(inputs(tmp_path / "evidence", mode="incident", incident=incident), [], str(folder))
    assert out["mode"] == "incident"
    assert ce.read_notices(str(tmp_path / "none")) is None
    write(folder / "notices" / "index.json", "[1, 2]")
    with pytest.raises(c.ComplianceInputError, match="is not a notice index"):
        ce.read_notices(str(folder))


def test_a_naive_detection_time_is_the_checklists_error(tmp_path):
    bad = inputs(tmp_path, mode="incident", incident={"detected_at": "2026-11-26T23:30:00"})
    with pytest.raises(c.ComplianceInputError) as raised:
        ce.checklist(bad, [])
    assert ce.error_text(raised.value).startswith("compliance_checklist: ")
    assert "has no timezone" in ce.error_text(raised.value)
