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


def test_a_dump_that_writes_many_warnings_does_not_hang_the_backup():
    """pg_dump / mariadb-dump may print pages of warnings while restic reads the dump: 1 MiB of them on stderr, and
    the dump's 64 KiB on stdout read to the end; the dump's exit code and its messages come back."""
    import sys
    import threading

    from ansible_collections.ledgerguard.recovery.plugins.module_utils.dbcapture import stream_dump

    program = (
        "import sys\n"
        "for _ in range(8192): sys.stderr.write('警告: 表 凭证 的统计信息过期' + 'x' * 100 + '\\n')\n"
        "sys.stdout.write('D' * 65536)\n"
        "sys.exit(3)\n"
    )
    done: dict = {}
    worker = threading.Thread(
        target=lambda: done.update(out=stream_dump([sys.executable, "-c", program], {}, lambda p: len(p.read()))),
        daemon=True,
    )
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the dump stopped on its own warnings (a full stderr pipe)"
    rc, err, got = done["out"]
    assert (rc, got) == (3, 65536)
    assert err.count("警告: 表 凭证 的统计信息过期") == 8192
