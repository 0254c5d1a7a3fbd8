"""One evidence file on the controller (plugin_utils.evidence_files, behind the evidence_file action and the notice
drafts): JSON as to_nice_json writes it, private folders and file, atomic, changed only when the bytes change, check
mode writes nothing, refusals name the path."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from conftest import lose_mkdir_race
from ansible.plugins.filter.core import to_nice_json

from ansible_collections.ledgerguard.recovery.plugins.action.evidence_file import ActionModule
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef

RECORD = {
    "host": "会计服务器",
    "incident": "INC-20261126-001",
    "failed": False,
    "targets": [{"target": "/srv/账套/c001", "action": "freeze"}],
    "watchdog": None,
    "containment": {},
}


def act(args: dict, check: bool = False) -> dict:
    action = object.__new__(ActionModule)  # act() needs only the task's check mode
    action._task = SimpleNamespace(check_mode=check)
    return action.act({"data": None, "content": None, **args}, {})


def test_json_is_what_to_nice_json_writes():
    assert ef.nice_json(RECORD) == to_nice_json(RECORD, ensure_ascii=False) + "\n"


def test_record_is_written_private_once_and_again_only_when_it_changes(tmp_path):
    path = tmp_path / "证据" / "INC-20261126-001" / "hosts" / "会计服务器" / "freeze.json"
    planned = act({"path": str(path), "data": RECORD}, check=True)
    assert planned == {"changed": True, "path": str(path), "written": True}
    assert not (tmp_path / "证据").exists()
    assert act({"path": str(path), "data": RECORD}) == {"changed": True, "path": str(path), "written": True}
    assert json.loads(path.read_text(encoding="utf-8")) == RECORD
    assert path.read_text(encoding="utf-8") == ef.nice_json(RECORD)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    for folder in (path.parent, tmp_path / "证据"):  # the created parents too
        assert oct(folder.stat().st_mode & 0o777) == "0o700", folder
    assert os.listdir(path.parent) == ["freeze.json"]  # no temporary file left
    assert act({"path": str(path), "data": RECORD})["changed"] is False
    assert act({"path": str(path), "data": RECORD}, check=True)["changed"] is False
    # A folder of another mode is made private again, as ansible.builtin.file with mode 0700 would.
    path.parent.chmod(0o755)
    again = act({"path": str(path), "data": RECORD})
    assert again == {"changed": True, "path": str(path), "written": False}
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    changed = act({"path": str(path), "data": {**RECORD, "failed": True}})
    assert changed["written"] is True and json.loads(path.read_text(encoding="utf-8"))["failed"] is True
    text = act({"path": str(path.parent / "说明.txt"), "content": "冻结记录\n"})
    assert text["written"] is True and (path.parent / "说明.txt").read_text(encoding="utf-8") == "冻结记录\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"path": "/x/freeze.json"}, "give exactly one of data and content for /x/freeze.json"),
        ({"path": "/x/freeze.json", "data": {}, "content": ""}, "give exactly one of data and content"),
        ({"path": "relative/freeze.json", "data": {}}, "path relative/freeze.json is not absolute"),
    ],
)
def test_bad_arguments_are_refused_by_name(args, message):
    out = act(args)
    assert out["failed"] is True and message in out["msg"]


def test_a_file_in_the_way_of_the_folder_is_refused(tmp_path):
    (tmp_path / "hosts").write_text("not a folder")
    out = act({"path": str(tmp_path / "hosts" / "h1" / "freeze.json"), "data": RECORD})
    assert out["failed"] is True and "not written" in out["msg"] and str(tmp_path / "hosts") in out["msg"]
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    out = act({"path": str(link / "freeze.json"), "data": RECORD})
    assert out["failed"] is True and "is not a folder" in out["msg"]


def test_not_absolute_names_the_owner_the_option_and_the_value():
    """One message for every controller-side path option (evidence_file, write_freeze, state_capture)."""
    assert ef.not_absolute("write_freeze", "evidence_dir", "/srv/证据/INC-1/hosts/会计服务器") is None
    assert ef.not_absolute("state_capture", "evidence_dir", "证据/INC-1") == (
        "state_capture: evidence_dir 证据/INC-1 is not absolute; give the full path."
    )


def test_a_folder_made_meanwhile_by_another_host_is_used_and_modes_can_be_given(tmp_path, monkeypatch):
    """Hosts of one run write into one evidence folder at once (the drill's hosts/<host>/ copies): the worker that
    loses the race to create the shared parent goes on; the drill's copy asks for 0750 folders and a 0640 file."""
    shared = tmp_path / "drill-1"
    lose_mkdir_race(monkeypatch, shared)
    copy = shared / "hosts" / "会计服务器" / "history.jsonl"
    assert ef.private_folder(str(copy.parent), mode=0o750) is True
    assert ef.write_private_bytes(str(copy), b"{}\n", mode=0o640, folder_mode=0o750) is True
    assert copy.read_bytes() == b"{}\n" and os.stat(copy).st_mode & 0o777 == 0o640
    assert [os.stat(p).st_mode & 0o777 for p in (shared, copy.parent.parent, copy.parent)] == [0o750] * 3
