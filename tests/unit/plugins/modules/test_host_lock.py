"""host_lock (issue 13 item 10): exclusive create, read back, check mode, idempotence, never replaces another's
lock; many concurrent takers, exactly one wins."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import host_lock
from conftest import module_result


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    return module_result(host_lock.main, args, capsys, check_mode)


def test_take_check_mode_idempotent_and_refused_to_another(tmp_path, capsys):
    lock = tmp_path / "incident.lock"
    args = {"path": str(lock), "incident_id": "INC-1", "info": {"operator": "张三"}}
    planned = run(args, capsys, check_mode=True)
    assert planned["changed"] is True and planned["acquired"] is True and not lock.exists()
    taken = run(args, capsys)
    assert taken["changed"] is True and taken["acquired"] is True
    content = json.loads(lock.read_text(encoding="utf-8"))
    assert content["incident_id"] == "INC-1" and content["operator"] == "张三" and content["token"]
    assert oct(lock.stat().st_mode & 0o777) == "0o600"
    assert os.listdir(tmp_path) == ["incident.lock"]  # no temporary file left
    again = run(args, capsys)
    assert again["changed"] is False and again["acquired"] is True
    other = run({**args, "incident_id": "INC-2"}, capsys)
    assert other["changed"] is False and other["acquired"] is False and other["holder"]["incident_id"] == "INC-1"
    # Giving back: another incident cannot, the holder can (check mode first).
    assert run({**args, "incident_id": "INC-2", "state": "absent"}, capsys)["changed"] is False and lock.exists()
    assert run({**args, "state": "absent"}, capsys, check_mode=True)["changed"] is True and lock.exists()
    assert run({**args, "state": "absent"}, capsys)["changed"] is True and not lock.exists()
    assert run({**args, "state": "absent"}, capsys)["changed"] is False


@pytest.mark.parametrize("kind", ["symlink", "garbage", "fifo"])
def test_untrusted_lock_is_never_taken_over(tmp_path, capsys, kind):
    lock = tmp_path / "incident.lock"
    if kind == "symlink":
        lock.symlink_to("/etc/passwd")
    elif kind == "garbage":
        lock.write_text("not json")
    else:
        os.mkfifo(lock)
    out = run({"path": str(lock), "incident_id": "INC-1"}, capsys)
    assert out["acquired"] is False and out["changed"] is False and out["holder"]["error"]
    assert lock.is_symlink() if kind == "symlink" else lock.exists()


def test_missing_folder_is_one_clear_message(tmp_path, capsys):
    args = {"path": str(tmp_path / "no" / "incident.lock"), "incident_id": "INC-1"}
    out = run(args, capsys)
    assert out["failed"] is True and "does not exist: create it first" in out["msg"]
    # A dry run before the state folder exists: no lock yet, so it would be taken; nothing is created.
    out = run(args, capsys, check_mode=True)
    assert out["acquired"] is True and out["changed"] is True and not (tmp_path / "no").exists()


def _taker(args):
    path, incident, barrier = args
    barrier.wait()
    content = {"incident_id": incident, "token": os.urandom(8).hex()}
    return incident if host_lock.take(path, content) else None


def test_concurrent_takers_exactly_one_wins(tmp_path):
    for round_ in range(5):
        path = str(tmp_path / f"lock{round_}")
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Manager().Barrier(8)
        with ctx.Pool(8) as pool:
            winners = [w for w in pool.map(_taker, [(path, f"INC-{i}", barrier) for i in range(8)]) if w]
        assert len(winners) == 1
        assert host_lock.read_lock(path)["incident_id"] == winners[0]


def test_create_folder_makes_the_state_folder_private(tmp_path, capsys):
    state = tmp_path / "状态" / "ledgerguard"
    args = {"path": str(state / "incident.lock"), "incident_id": "INC-1", "create_folder": True}
    planned = run(args, capsys, check_mode=True)
    assert planned["changed"] is True and planned["acquired"] is True and not (tmp_path / "状态").exists()
    taken = run(args, capsys)
    assert taken["changed"] is True and taken["acquired"] is True and (state / "incident.lock").is_file()
    for folder in (tmp_path / "状态", state):  # the missing parent too, as ansible.builtin.file makes it
        assert oct(folder.stat().st_mode & 0o7777) == "0o700", folder
    assert run(args, capsys)["changed"] is False
    # An existing folder of another mode is given 0700 (a change), the lock kept.
    state.chmod(0o755)
    again = run(args, capsys)
    assert again["changed"] is True and again["acquired"] is True and oct(state.stat().st_mode & 0o7777) == "0o700"
    # A file where the folder should be: one message naming it.
    blocked = tmp_path / "file"
    blocked.write_text("x")
    out = run({**args, "path": str(blocked / "incident.lock")}, capsys)
    assert out["failed"] is True and f"Creating the lock's folder {blocked} failed" in out["msg"]


def test_release_writes_the_record_first_and_keeps_an_earlier_one(tmp_path, capsys):
    lock = tmp_path / "incident.lock"
    marker = tmp_path / "incidents" / "INC-1" / "closed.json"
    run({"path": str(lock), "incident_id": "INC-1"}, capsys)
    record = {"incident_id": "INC-1", "closed_at": "2026-11-26T12:00:00Z", "clients": [{"id": "c001", "name": "甲"}]}
    args = {"path": str(lock), "incident_id": "INC-1", "state": "absent", "record_path": str(marker), "record": record}
    planned = run(args, capsys, check_mode=True)
    assert planned["changed"] is True and planned["record_written"] is True
    assert lock.exists() and not marker.parent.exists()
    done = run(args, capsys)
    assert done["changed"] is True and done["record_written"] is True and done["acquired"] is True
    assert not lock.exists()
    assert json.loads(marker.read_text(encoding="utf-8")) == record
    assert marker.read_text(encoding="utf-8") == json.dumps(record, ensure_ascii=False, indent=4, sort_keys=True) + "\n"
    assert oct(marker.stat().st_mode & 0o777) == "0o600" and oct(marker.parent.stat().st_mode & 0o777) == "0o700"
    assert os.listdir(marker.parent) == ["closed.json"]  # no temporary file left
    # A re-run keeps the first record (and has no lock to give back): nothing changes.
    again = run({**args, "record": {**record, "closed_at": "2026-11-27T00:00:00Z"}}, capsys)
    assert again["changed"] is False and again["record_written"] is False
    assert json.loads(marker.read_text(encoding="utf-8"))["closed_at"] == "2026-11-26T12:00:00Z"
    # The record is written whoever holds the lock; another incident's lock stays.
    run({"path": str(lock), "incident_id": "INC-2"}, capsys)
    other = tmp_path / "incidents" / "INC-1b" / "closed.json"
    out = run({**args, "record_path": str(other)}, capsys)
    assert out["record_written"] is True and out["acquired"] is False and other.is_file() and lock.exists()


def test_record_needs_its_path(tmp_path, capsys):
    out = run(
        {"path": str(tmp_path / "incident.lock"), "incident_id": "INC-1", "state": "absent", "record": {"a": 1}},
        capsys,
    )
    assert out["failed"] is True and "record_path" in out["msg"]


def test_refuse_names_the_holder_and_changes_nothing(tmp_path, capsys):
    lock = tmp_path / "incident.lock"
    info = {"operator": "王会计", "controller": "ops1"}
    held = run({"path": str(lock), "incident_id": "INC-20261126-001", "info": info}, capsys)
    before = lock.read_bytes()
    args = {"path": str(lock), "incident_id": "INC-20261126-002", "refuse": True, "host": "账务服务器"}
    for check_mode in (True, False):
        out = run(args, capsys, check_mode=check_mode)
        assert out["failed"] is True and out["acquired"] is False and out["changed"] is False
        assert out["msg"].startswith(
            "Host 账务服务器 is locked by incident INC-20261126-001 (operator 王会计, since "
            f"{held['holder']['created']}, "
        ), out["msg"]
        assert " ago, controller ops1). Finish that incident first (re-run it with " in out["msg"]
        assert out["msg"].endswith(
            f"ledgerguard_incident_id=INC-20261126-001), or if it is abandoned, remove {lock} after checking. "
            "Nothing was changed by INC-20261126-002 on this host."
        ), out["msg"]
    assert lock.read_bytes() == before
    # The holder itself passes (a re-run continues the incident).
    assert run({**args, "incident_id": "INC-20261126-001"}, capsys)["acquired"] is True


def test_refuse_an_untrusted_lock(tmp_path, capsys):
    lock = tmp_path / "incident.lock"
    lock.write_text("not json")
    out = run({"path": str(lock), "incident_id": "INC-1", "refuse": True, "host": "files01"}, capsys)
    assert out["failed"] is True and out["msg"] == (
        f"Host files01: the incident lock {lock} cannot be trusted ({lock} is not a ledgerguard lock (not JSON)); "
        "check it and remove it if no incident is running. Nothing was changed by INC-1 on this host."
    )
    assert lock.read_text() == "not json"


def test_folders_lists_the_existing_folders_in_order(tmp_path, capsys):
    books = tmp_path / "账套"
    (books / "c002").mkdir(parents=True)
    (books / "c001").mkdir()
    (books / "file").write_text("x")
    (books / "link").symlink_to(books / "c001")
    wanted = [str(books / n) for n in ("c002", "gone", "file", "link", "c001")]
    args = {"path": str(tmp_path / "incident.lock"), "incident_id": "INC-1", "folders": wanted}
    planned = run(args, capsys, check_mode=True)
    assert planned["folders"] == [str(books / "c002"), str(books / "c001")]
    assert run(args, capsys)["folders"] == [str(books / "c002"), str(books / "c001")]
    assert "folders" not in run({**args, "state": "absent"}, capsys)
