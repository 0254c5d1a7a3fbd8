"""write_freeze's action plugin (issue 19: the freeze, rescan and thaw records in the same task): the record's fields
and when a run is recorded, what a rollback thaws (only this run's freeze, never everything), and the records written
private on the controller, with the module replaced by a stub that answers as the real one does."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
from conftest import ModuleActionStub

from ansible_collections.ledgerguard.recovery.plugins.action.write_freeze import ActionModule
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import freeze_record as fr

FROZEN = {"method": "readonly_bind", "path": "/srv/账套/c001"}
EARLIER = {"method": "remount_ro", "path": "/srv/archive"}
FREEZE = {
    "changed": True,
    "targets": [
        {"name": "readonly_bind /srv/账套/c001", "action": "freeze", "target": FROZEN},
        {"name": "remount_ro /srv/archive", "action": "already_frozen", "target": EARLIER},
        {"name": "service smbd.service", "action": "left_alone", "target": {"method": "service", "unit": "smbd"}},
    ],
    "proof": [{"target": "readonly_bind /srv/账套/c001", "kind": "write_refused", "errno": "EROFS"}],
    "watchdog": {"kind": "process", "pid": 4242},
}


def test_record_has_every_field_with_the_empty_value_when_missing():
    rec = fr.record("会计服务器", "INC-1", {"changed": True, "msg": "froze"}, recorded_at="2026-12-06T01:00:00Z")
    assert rec == {
        "host": "会计服务器",
        "incident": "INC-1",
        "recorded_at": "2026-12-06T01:00:00Z",
        "failed": False,
        "msg": "froze",
        "changed": True,
        "targets": [],
        "proof": [],
        "writers": [],
        "containment": {},
        "held": [],
        "stopped_processes": [],
        "rescan": {},
        "watchdog": None,
        "remaining": [],
        "registry": "",
        "rolled_back": [],
    }


def test_what_is_recorded_and_under_which_name():
    assert [fr.record_name(s, "after_swap") for s in ("frozen", "rescan", "thawed")] == [
        "freeze.json",
        "rescan-after_swap.json",
        "thaw.json",
    ]
    assert fr.worth_recording("frozen", {"changed": False}) is False  # a no-op rerun keeps the original proof
    assert fr.worth_recording("frozen", {"changed": False, "failed": True}) is True
    assert fr.worth_recording("rescan", {"changed": True, "writers": []}) is False
    assert fr.worth_recording("rescan", {"writers": [{"pid": 1}]}) is True
    assert fr.worth_recording("thawed", {"changed": False, "rescan": {"changed": True}}) is True
    assert fr.worth_recording("thawed", {"changed": False, "rescan": {}}) is False


def test_a_rollback_thaws_only_what_this_run_froze():
    assert fr.frozen_by(FREEZE) == [FROZEN]
    failed = {
        "failed": True,
        "targets": [{"action": "failed", "target": FROZEN}, {"action": "thawed", "target": EARLIER}],
    }
    assert fr.frozen_by(failed) == [FROZEN]
    assert fr.frozen_by({"skipped": True}) == []


class Stub(ModuleActionStub, ActionModule):
    """The action with the module run replaced: records the arguments it would send to the host."""

    FQCN = "ledgerguard.recovery.write_freeze"

    def go(self) -> dict:
        return self.run(task_vars={"inventory_hostname": "会计服务器"})


pytestmark = pytest.mark.usefixtures("no_action_base_run")


def test_freeze_is_recorded_private_and_the_controller_options_stay_on_the_controller(tmp_path):
    folder = tmp_path / "证据" / "INC-1" / "hosts" / "会计服务器"
    action = Stub({"incident": "INC-1", "state": "frozen", "targets": [FROZEN], "evidence_dir": str(folder)}, FREEZE)
    out = action.go()
    assert action.sent == [{"incident": "INC-1", "state": "frozen", "targets": [FROZEN]}]
    assert out["record"] == str(folder / "freeze.json")
    rec = json.loads((folder / "freeze.json").read_text(encoding="utf-8"))
    assert (rec["host"], rec["incident"], rec["targets"], rec["watchdog"]) == (
        "会计服务器",
        "INC-1",
        FREEZE["targets"],
        {"kind": "process", "pid": 4242},
    )
    assert oct((folder / "freeze.json").stat().st_mode & 0o777) == "0o600"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    # when the freeze finished, on the controller's clock (the incident's frozen_at): now, in UTC
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out["finished_at"])
    assert (
        abs(
            dt.datetime.strptime(out["finished_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
            - time.time()
        )
        < 60
    )


def test_nothing_is_recorded_in_check_mode_or_without_a_change(tmp_path):
    args = {"incident": "INC-1", "state": "frozen", "targets": [FROZEN], "evidence_dir": str(tmp_path / "ev")}
    Stub(args, FREEZE, check=True).go()
    Stub(args, {**FREEZE, "changed": False}).go()
    assert not (tmp_path / "ev").exists()


def test_rescan_carries_its_label_and_is_recorded_when_it_found_a_process(tmp_path):
    args = {"incident": "INC-1", "state": "rescan", "label": "after_swap", "evidence_dir": str(tmp_path)}
    writer = {"pid": 13, "action": "stopped"}
    action = Stub(args, {"changed": True, "writers": [writer]})
    out = action.go()
    assert out["label"] == "after_swap" and action.sent == [{"incident": "INC-1", "state": "rescan"}]
    assert json.loads((tmp_path / "rescan-after_swap.json").read_text(encoding="utf-8"))["writers"] == [writer]


def test_rollback_of_a_freeze_that_froze_nothing_runs_nothing(tmp_path):
    """An empty targets list would thaw everything the incident holds: the rollback must not reach the module."""
    args = {"incident": "INC-1", "state": "thawed", "rollback_of": {"skipped": True}, "evidence_dir": str(tmp_path)}
    action = Stub(args, {"changed": True, "targets": [{"action": "thawed"}]})
    out = action.go()
    assert action.sent == [] and out["changed"] is False
    assert not (tmp_path / "freeze.json").exists()


def test_rollback_thaws_this_runs_targets_and_records_them_in_the_freeze_record(tmp_path):
    args = {"incident": "INC-1", "state": "thawed", "rollback_of": FREEZE, "evidence_dir": str(tmp_path)}
    thawed = [{"name": "readonly_bind /srv/账套/c001", "action": "thawed"}]
    action = Stub(args, {"changed": True, "targets": thawed})
    action.go()
    assert action.sent == [{"incident": "INC-1", "state": "thawed", "targets": [FROZEN]}]
    rec = json.loads((tmp_path / "freeze.json").read_text(encoding="utf-8"))
    assert rec["rolled_back"] == thawed and rec["targets"] == FREEZE["targets"]
    assert not (tmp_path / "thaw.json").exists()


def test_rollback_then_fails_with_the_plays_message(tmp_path):
    """The role's one task after a host failed: thaw this run's targets (here none: nothing runs), then fail naming the
    hosts; a rollback that itself failed keeps its own message."""
    msg = (
        "Freezing failed on h2 (target 1 (remount_ro /): refusing). What this run froze was thawed again on every host."
    )
    args = {"incident": "INC-1", "state": "thawed", "rollback_of": {}, "fail_msg": msg}
    action = Stub(args, {"changed": True})
    out = action.go()
    assert action.sent == [] and (out["failed"], out["msg"]) == (True, msg)
    thawed = Stub({**args, "rollback_of": FREEZE, "evidence_dir": str(tmp_path)}, {"changed": True, "targets": []})
    out = thawed.go()
    assert thawed.sent == [{"incident": "INC-1", "state": "thawed", "targets": [FROZEN]}]
    assert (out["failed"], out["msg"]) == (True, msg) and (tmp_path / "freeze.json").exists()
    broken = Stub({**args, "rollback_of": FREEZE}, {"failed": True, "msg": "thawing failed for: readonly_bind"})
    assert broken.go()["msg"] == "thawing failed for: readonly_bind"
