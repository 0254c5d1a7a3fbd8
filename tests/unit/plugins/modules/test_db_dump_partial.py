"""db_dump_backup after a dump that failed half-way: what restic stored is forgotten, and the message says so only
when restic's forget succeeded (a locked repository keeps the truncated dump as the newest snapshot)."""

from __future__ import annotations

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import ResticResult
from ansible_collections.ledgerguard.recovery.plugins.modules.db_dump_backup import forget_partial

FULL = "9c" * 32


class Repository:
    def __init__(self, rc: int) -> None:
        self.rc, self.argv = rc, []

    def run(self, *argv):
        self.argv.append(list(argv))
        return ResticResult(argv=["restic", *argv], rc=self.rc, stdout="", stderr="unable to create lock: locked")


def test_the_partial_snapshot_is_said_forgotten_only_when_it_was():
    done = Repository(0)
    assert forget_partial(done, FULL[:8], FULL) == "The partial snapshot 9c9c9c9c was forgotten; "
    assert done.argv == [["forget", "--", FULL]]
    locked = Repository(1)
    assert forget_partial(locked, FULL[:8], FULL) == (
        f"The partial snapshot 9c9c9c9c could NOT be forgotten (restic forget exit 1): forget it by hand "
        f"('restic forget {FULL}') before trusting this database's newest snapshot; "
    )
    nothing = Repository(0)
    assert forget_partial(nothing, "", "") == "No snapshot was kept; " and nothing.argv == []
    assert forget_partial(nothing, "1a2b3c4d", "") == (
        "restic reported snapshot 1a2b3c4d, not in the repository's list: check 'restic snapshots'; "
    )
