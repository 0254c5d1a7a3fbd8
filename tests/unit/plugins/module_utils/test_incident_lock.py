"""The incident lock has one reader (module_utils/incident_lock.read_lock), shared by host_lock (which takes it) and
backup_lock (which refuses to run while it is held): a link, FIFO or garbage is reported, never followed or trusted."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import backup_lock, incident_lock
from ansible_collections.ledgerguard.recovery.plugins.modules import host_lock


def test_one_reader_for_both_modules():
    assert host_lock.read_lock is incident_lock.read_lock and backup_lock.read_lock is incident_lock.read_lock
    assert host_lock.take is incident_lock.take


def test_held_lock_refuses_a_backup(tmp_path):
    lock = tmp_path / "incident.lock"
    assert backup_lock.incident_message(str(lock), "backup") is None
    assert incident_lock.take(str(lock), {"incident_id": "INC-7", "operator": "李娜", "token": "t1"})
    assert not incident_lock.take(str(lock), {"incident_id": "INC-8", "token": "t2"})
    assert json.loads(lock.read_text())["incident_id"] == "INC-7"
    msg = backup_lock.incident_message(str(lock), "backup")
    assert msg.startswith("Incident INC-7 holds this host (operator 李娜") and "nothing was backed up" in msg


@pytest.mark.parametrize("kind", ["symlink", "fifo", "garbage", "no-incident"])
def test_untrusted_lock_still_refuses_and_never_blocks(tmp_path, kind):
    lock = tmp_path / "incident.lock"
    if kind == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text(json.dumps({"incident_id": "INC-1"}))
        lock.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(lock)  # opening it for reading would block: it is never opened
    elif kind == "garbage":
        lock.write_text("not json")
    else:
        lock.write_text("{}")
    holder = incident_lock.read_lock(str(lock))
    assert set(holder) == {"error"}
    msg = backup_lock.incident_message(str(lock), "prune")
    assert "cannot be read" in msg and "No prune runs" in msg
