"""The incident object (plugins/action/incident_record.py): its rules, the atomic locked write, refusals."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.ledgerguard.recovery.plugins.action import incident_record as ir

FIELDS = {
    "detected_at": "2026-11-26T09:10:00+08:00",
    "loss_started": "",
    "cause": "ransomware",
    "operator": "王会计",
    "summary": "甲公司的账套被加密",
    "hosts": ["books-hz01"],
    "clients": {"books-hz01": ["c001", "c002"]},
    "pinned": {},
}


def test_first_update_declares_and_normalises_times():
    record = ir.merge_record({}, FIELDS, "INC-20261126-001", "/ev/INC-20261126-001", "2026-11-26T01:12:00Z", True)
    assert record == {
        **FIELDS,
        "version": 1,
        "incident_id": "INC-20261126-001",
        "evidence_dir": "/ev/INC-20261126-001",
        "declared_at": "2026-11-26T01:12:00Z",
        "runs": ["2026-11-26T01:12:00Z"],
        "detected_at": "2026-11-26T01:10:00Z",
    }


def test_rerun_keeps_declaration_and_detection_and_adds_a_run():
    first = ir.merge_record({}, FIELDS, "INC-20261126-001", "/ev/x", "2026-11-26T01:12:00Z", True)
    again = ir.merge_record(
        first, {**FIELDS, "detected_at": "", "loss_started": "2026-11-25T22:00:00+08:00"}, "INC-20261126-001",
        "/ev/x", "2026-11-26T03:00:00Z", True,
    )  # fmt: skip
    assert again["declared_at"] == "2026-11-26T01:12:00Z"
    assert again["detected_at"] == "2026-11-26T01:10:00Z"
    assert again["loss_started"] == "2026-11-25T14:00:00Z"
    assert again["runs"] == ["2026-11-26T01:12:00Z", "2026-11-26T03:00:00Z"]
    # An update that is not a new run leaves runs alone.
    assert ir.merge_record(again, {}, "INC-20261126-001", "/ev/x", "2026-11-26T04:00:00Z")["runs"] == again["runs"]


def test_detection_defaults_to_now_on_the_first_run():
    record = ir.merge_record({}, {"detected_at": ""}, "INC-20261126-001", "/ev/x", "2026-11-26T01:12:00Z")
    assert (record["detected_at"], record["loss_started"]) == ("2026-11-26T01:12:00Z", "")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"place": "杭州"},
            "record: unknown field(s) place; an incident record takes detected_at, loss_started, cause, operator, "
            "summary, hosts, clients, pinned, compliance",
        ),
        ({"hosts": "books-hz01"}, "record.hosts must be a list, got str ('books-hz01')"),
        (
            {"detected_at": "2026-11-26 09:10"},
            "record.detected_at '2026-11-26 09:10' has no timezone, so it is ambiguous; add one, e.g. "
            "2026-11-26T09:10+08:00 or 2026-11-26T09:10Z",
        ),
    ],
)
def test_bad_fields_are_refused_by_name(fields, message):
    with pytest.raises(ir.RecordError) as err:
        ir.merge_record({}, fields, "INC-20261126-001", "/ev/x", "2026-11-26T01:12:00Z")
    assert str(err.value) == message


def test_write_is_atomic_private_and_idempotent(tmp_path):
    evidence = str(tmp_path / "证据" / "INC-20261126-001")
    record, changed, created = ir.write_record(
        evidence, FIELDS, "INC-20261126-001", "2026-11-26T01:12:00Z", True, False
    )
    path = os.path.join(evidence, "incident.json")
    data = open(path, "rb").read()
    assert (changed, created) == (True, True)
    assert data == (json.dumps(record, indent=4, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    assert "王会计".encode() in data
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(evidence).st_mode) == 0o700
    assert ir.read_record(path) == record
    # The same fields again, not a new run: nothing to write, the bytes stay, no temporary file is left.
    again, changed, created = ir.write_record(
        evidence, FIELDS, "INC-20261126-001", "2026-11-26T05:00:00Z", False, False
    )
    assert (again, changed, created) == (record, False, False)
    assert open(path, "rb").read() == data
    assert sorted(os.listdir(evidence)) == ["incident.json"]


def test_check_mode_writes_nothing(tmp_path):
    evidence = tmp_path / "INC-20261126-001"
    record, changed, created = ir.write_record(
        str(evidence), FIELDS, "INC-20261126-001", "2026-11-26T01:12:00Z", True, True
    )
    assert (changed, created, record["runs"]) == (True, True, ["2026-11-26T01:12:00Z"])
    assert not evidence.exists()
    evidence.mkdir()
    ir.write_record(str(evidence), FIELDS, "INC-20261126-001", "2026-11-26T01:12:00Z", True, True)
    assert list(evidence.iterdir()) == []


def test_a_symlink_or_bad_json_is_refused(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("{}", encoding="utf-8")
    link = tmp_path / "incident.json"
    link.symlink_to(target)
    with pytest.raises(ir.RecordError, match="must be a regular file, not a link"):
        ir.read_record(str(link))
    link.unlink()
    link.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ir.RecordError, match=r"holds a list, not a JSON object"):
        ir.read_record(str(link))
    link.write_text("{", encoding="utf-8")
    with pytest.raises(ir.RecordError, match=r"is not valid JSON .*SHA256SUMS"):
        ir.read_record(str(link))
    assert ir.read_record(str(tmp_path / "missing.json")) is None


def test_next_id_counts_the_days_folders(tmp_path):
    assert ir.next_incident_id(str(tmp_path / "none"), "20261126") == "INC-20261126-001"
    for name in ("INC-20261126-001", "INC-20261126-003", "INC-20261125-009", "notes"):
        (tmp_path / name).mkdir()
    assert ir.next_incident_id(str(tmp_path), "20261126") == "INC-20261126-004"


def test_folders_are_made_private_and_bad_names_refused(tmp_path):
    evidence = tmp_path / "INC-20261126-001"
    evidence.mkdir(mode=0o700)
    assert ir.make_folders(str(evidence), ["hosts", "notices"], True) == ["hosts", "notices"]
    assert sorted(os.listdir(evidence)) == []  # check mode makes nothing
    assert ir.make_folders(str(evidence), ["hosts", "notices"], False) == ["hosts", "notices"]
    for name in ("hosts", "notices"):
        assert stat.S_IMODE(os.stat(evidence / name).st_mode) == 0o700
    assert ir.make_folders(str(evidence), ["hosts", "notices"], False) == []
    (evidence / "notices").chmod(0o755)
    assert ir.make_folders(str(evidence), ["hosts", "notices"], False) == ["notices"]
    assert stat.S_IMODE(os.stat(evidence / "notices").st_mode) == 0o700
    (evidence / "主机").symlink_to(tmp_path)
    with pytest.raises(ir.RecordError, match="is not a folder"):
        ir.make_folders(str(evidence), ["主机"], False)
    for bad in ("", "..", "a/b"):
        with pytest.raises(ir.RecordError, match="not a plain folder name"):
            ir.make_folders(str(evidence), [bad], False)


def test_the_incident_refuses_to_start_without_its_timeline_token(tmp_path):
    timeline = tmp_path / "证据" / "timeline.jsonl"
    info = {"path": str(timeline), "run": "20261126T011200000000Z-42", "incident_id": "INC-20261126-001"}
    missing = ir.timeline_problem("INC-20261126-001", info)
    assert missing == ir.TIMELINE_NOT_WRITTEN.format(incident_id="INC-20261126-001", path=str(timeline))
    assert missing.startswith("Incident INC-20261126-001 refused to start, nothing was touched: its tamper-evident")
    assert "callbacks_enabled = ledgerguard.recovery.timeline" in missing
    timeline.parent.mkdir()
    timeline.write_text('{"event": "run_start", "run": "an earlier run"}\n', encoding="utf-8")
    assert ir.timeline_problem("INC-20261126-001", info) == missing  # another run's line is not this run's
    with timeline.open("a", encoding="utf-8") as handle:
        handle.write('{"event": "run_start", "run": "20261126T011200000000Z-42", "operator": "王会计"}\n')
    assert ir.timeline_problem("INC-20261126-001", info) is None
    assert ir.timeline_problem("INC-20261126-001", {}) is None  # a dry run writes no timeline


def test_declare_names_the_run_and_its_timeline():
    token = ir.run_token(ir.datetime.datetime(2026, 11, 26, 1, 12, 0, 123456, tzinfo=ir.datetime.UTC))
    assert token.startswith("20261126T011200123456Z-") and token.split("-")[1].isdigit()
    assert ir.run_token() != ir.run_token()  # a new token for each run
    facts = ir.declared_facts("INC-20261126-001", "/证据/INC-20261126-001", "王会计", False, token)
    assert facts == {
        "ledgerguard_incident_id": "INC-20261126-001",
        "ledgerguard_timeline": {
            "incident_id": "INC-20261126-001",
            "path": "/证据/INC-20261126-001/timeline.jsonl",
            "operator": "王会计",
            "run": token,
        },
    }
    # A dry run writes no timeline: the callback ignores an empty ledgerguard_timeline.
    dry = ir.declared_facts("INC-20261126-001", "/证据/INC-20261126-001", "王会计", True, token)
    assert dry == {"ledgerguard_incident_id": "INC-20261126-001", "ledgerguard_timeline": {}}
