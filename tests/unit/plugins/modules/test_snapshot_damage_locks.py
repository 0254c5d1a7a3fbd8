"""snapshot_damage honours the shared restic option stale_lock_age and reports the stale locks it removed, as every
restic module of the collection does (doc fragment ledgerguard.recovery.restic)."""

from __future__ import annotations

import pytest
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import Restic
from ansible_collections.ledgerguard.recovery.plugins.modules import snapshot_damage
from conftest import module_result

REMOVED = {"pid": 4242, "host": "书房", "age_seconds": 7200, "why": "holder PID 4242 no longer runs on 书房"}


@pytest.mark.parametrize(("given", "used"), [({"stale_lock_age": 0}, 0), ({}, 1800)])
def test_stale_lock_age_reaches_the_engine_and_removed_locks_are_reported(tmp_path, capsys, monkeypatch, given, used):
    seen = {}

    class Engine(Restic):
        """The real engine, with a repository that holds no snapshot and a run that removed one stale lock."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen["stale_lock_age"] = self.stale_lock_age
            self.removed_locks = [REMOVED]

        def snapshots(self, *args, **kwargs):
            return []

    monkeypatch.setattr(snapshot_damage, "Restic", Engine)
    password = tmp_path / "password"
    password.write_text("secret\n")
    repo = str(tmp_path / "仓库")
    args = {"repository": repo, "password_file": str(password), "paths": ["/srv/账套/c001"], **given}
    out = module_result(snapshot_damage.main, dict(args, restic_binary="/usr/bin/restic"), capsys)
    assert seen == {"stale_lock_age": used}
    # (the warning beside it comes from the same helper as every restic module's: module/restic report_removed_locks,
    # whose text test_reliability_repository.py asserts; in this process Ansible's controller display may take it)
    assert out["snapshots"] == [] and out["stale_locks_removed"] == [REMOVED]
