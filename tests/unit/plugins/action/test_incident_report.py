"""The incident report's controller action (plugins/action/incident_report.py): every host's published results read as
the report takes them, and the customer notice drafts it writes through plugin_utils.notices.write_drafts (the same
code as the notice_drafts action): written once, kept when unchanged, a kept (approved) notice never rewritten, check
mode writes nothing."""

from __future__ import annotations

import json
import stat

import pytest

from ansible_collections.ledgerguard.recovery.plugins.action.incident_report import host_results
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import notices as n

FREEZE = {"targets": [{"path": "/srv/账套/c001"}], "writers": []}
HOSTVARS = {
    "books-a": {
        "incident_result": {
            "clients": [{"id": "c001", "name": "甲公司"}],
            "frozen_at": "2026-11-26T09:00:00Z",
            "failed_step": "",
        },
        "restore_results": [{"id": "c001", "status": "ok"}],
        "write_freeze_result": FREEZE,
        "write_freeze_rescans": [{"label": "after_swap", "writers": []}],
    },
    "books-b": {},  # dropped out before publishing anything
}


def test_every_hosts_published_results_with_their_defaults():
    hosts = host_results(HOSTVARS, ["books-a", "books-b"], ["books-a"])
    assert hosts["books-a"] == {
        "restore_results": [{"id": "c001", "status": "ok"}],
        "restore_database_results": [],
        "freeze": FREEZE,
        "thaw": {},
        "rescans": [{"label": "after_swap", "writers": []}],
        "state_snapshot": {},
        "frozen_at": "2026-11-26T09:00:00Z",
        "thawed_at": "",
        "failed_step": "",
        "failed_msg": "",
        "repository_damage": {},
        "selected": [{"id": "c001", "name": "甲公司"}],
        "in_play": True,
    }
    assert hosts["books-b"]["in_play"] is False
    assert hosts["books-b"]["selected"] == [] and hosts["books-b"]["freeze"] == {}


def test_when_writes_resumed_and_the_rescan_before_the_thaw_come_from_the_thaw():
    rescan = {"writers": [{"pid": 13, "action": "stopped"}], "held": []}
    thaw = {"changed": True, "targets": [], "finished_at": "2026-11-26T10:00:00Z", "rescan": rescan}
    hostvars = {"books-a": {**HOSTVARS["books-a"], "write_freeze_thaw_result": thaw}}
    host = host_results(hostvars, ["books-a"], ["books-a"])["books-a"]
    assert host["thawed_at"] == "2026-11-26T10:00:00Z"
    assert host["rescans"] == [{"label": "after_swap", "writers": []}, {**rescan, "label": "before_thaw"}]
    # a thaw that failed, or a host that never froze: no time; a rescan that found nothing: not listed
    for incident, answer in (
        (HOSTVARS["books-a"]["incident_result"], {**thaw, "failed": True}),
        ({"clients": []}, thaw),
    ):
        vars_ = {"incident_result": incident, "write_freeze_thaw_result": {**answer, "rescan": {"writers": []}}}
        host = host_results({"h": vars_}, ["h"], ["h"])["h"]
        assert host["thawed_at"] == "" and host["rescans"] == []
    failed_rescan = {"writers": [], "msg": "pid 13 still writes"}
    vars_ = {"write_freeze_thaw_result": {**thaw, "rescan": failed_rescan}}
    host = host_results({"h": vars_}, ["h"], ["h"])["h"]
    assert host["rescans"] == [{**failed_rescan, "label": "before_thaw"}]


def test_the_rescan_after_the_swap_is_listed_after_the_restores_when_it_found_a_process_or_failed():
    before_swap = [{"label": "before_swap", "writers": []}]
    found = {"label": "after_swap", "writers": [{"pid": 13, "action": "stopped"}], "held": [], "changed": True}
    held = {"label": "after_swap", "writers": [], "held": [{"pid": 14}]}
    failed = {"label": "after_swap", "failed": True, "msg": "pid 13 still writes", "writers": []}
    thaw = {"finished_at": "2026-11-26T10:00:00Z", "rescan": {"writers": [{"pid": 15}]}}
    for rescan in (found, held, failed):
        vars_ = {
            "write_freeze_rescans": before_swap,
            "write_freeze_rescan_result": rescan,
            "write_freeze_thaw_result": thaw,
        }
        host = host_results({"h": vars_}, ["h"], ["h"])["h"]
        assert host["rescans"] == [*before_swap, rescan, {**thaw["rescan"], "label": "before_thaw"}]
        assert "rescan" not in host
    # found nothing, or skipped (no freeze): not listed
    for rescan in ({"label": "after_swap", "writers": [], "held": []}, {"skipped": True, "changed": False}):
        vars_ = {"write_freeze_rescans": before_swap, "write_freeze_rescan_result": rescan}
        assert host_results({"h": vars_}, ["h"], ["h"])["h"]["rescans"] == before_swap


def test_the_snapshot_is_read_from_the_registered_result_of_state_snapshot():
    registered = {
        "changed": True,
        "snapshot_id": "f" * 64,
        "short_id": "ffffffff",
        "reused": False,
        "paths": ["/srv/a"],
    }
    registered |= {"missing_paths": [], "repository": "same", "tags": ["INC-1", "pre-restore"], "bundle": {"x": 1}}
    host = host_results({"h": {"state_snapshot_result": registered}}, ["h"], ["h"])["h"]
    assert host["state_snapshot"] == {k: v for k, v in registered.items() if k not in ("changed", "bundle")}
    skipped = {"skipped": True, "changed": False}  # both halves off
    assert host_results({"h": {"state_snapshot_result": skipped}}, ["h"], ["h"])["h"]["state_snapshot"] == {}


CLIENTS = [{"id": "c001", "name": "杭州示例贸易有限公司", "host": "books-a", "status": "ok"}]
CONFIGURED = [{"id": "c001", "name": "杭州示例贸易有限公司", "paths": ["/srv/c001"], "language": "en"}]


def render(name, notice, client):
    return f"{name} {notice['id']} {client['name']}\n"


def drafts(folder, check=False, render=render):
    return n.write_drafts(str(folder), "INC-20261126-001", CLIENTS, CONFIGURED, ["zh-CN"], [], render, check)


def test_drafts_written_private_then_unchanged_and_check_mode_writes_nothing(tmp_path):
    folder = tmp_path / "INC-20261126-001"
    planned = drafts(folder, check=True)
    assert planned == {
        "changed": True,
        "written": ["notices/c001.en.md", "notices/c001.restored.en.md", "notices/c001.final.en.md"],
        "kept": [],
        "index": str(folder / "notices" / "index.json"),
    }
    assert not folder.exists()
    first = drafts(folder)
    assert first["changed"] is True and first["written"] == planned["written"] and first["kept"] == []
    text = (folder / "notices" / "c001.final.en.md").read_text(encoding="utf-8")
    assert text == "notice_final.en.md.j2 c001.final.en 杭州示例贸易有限公司\n"
    assert stat.S_IMODE((folder / "notices" / "c001.final.en.md").stat().st_mode) == 0o600
    index = json.loads((folder / "notices" / "index.json").read_text(encoding="utf-8"))
    assert [e["id"] for e in index["notices"]] == ["c001.confirmed.en", "c001.restored.en", "c001.final.en"]
    assert drafts(folder)["changed"] is False
    assert drafts(folder, check=True)["changed"] is False  # check mode of an unchanged re-run says so too


def test_an_approved_notice_is_kept_and_a_render_error_is_raised(tmp_path):
    folder = tmp_path / "INC-20261126-001"
    drafts(folder)
    doc = n.load_index(str(folder))
    doc["notices"][0]["status"] = "approved"
    n.save_index(str(folder), doc)
    again = drafts(folder, render=lambda name, notice, client: "changed\n")
    assert again["kept"] == ["notices/c001.en.md"]
    assert (folder / "notices" / "c001.en.md").read_text(encoding="utf-8").startswith("notice.en.md.j2")

    def broken(name, notice, client):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        drafts(tmp_path / "other", render=broken)


def test_the_published_report_is_one_that_was_written():
    """The job artifact ledgerguard_report names report.html only when HTML was written (it named it always)."""
    from ansible_collections.ledgerguard.recovery.plugins.action.incident_report import report_file

    assert report_file(["md", "html"]) == "report.html"
    assert report_file(["md"]) == "report.md"
    assert report_file([]) == "report.json"
