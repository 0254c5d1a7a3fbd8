# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore, dump, listing or diff gives up at restic 0.14's first retry of a pack file that is gone
(module_utils/restic/run.watched_run), as restic 0.18 does by itself, instead of waiting out about 44 s of retries per
read; every other retry, and every other subcommand, is left to restic."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic as r
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import errors, run

PACK = "16455c0e52ac29e11a611f1f881ccb2d3e1fdd374f68e0899fc2647f4da9ff45"
# restic 0.14's own words for a local repository whose pack file was deleted (captured from a real run)
LOCAL = (
    f"Load(<data/16455c0e52>, 3000201, 0) returned error, retrying after 552.330144ms: open "
    f"/srv/repo/data/16/{PACK}: no such file or directory"
)
SNAPSHOT = "307cc06a" + "1" * 56


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            LOCAL,
            f"Load(<data/16455c0e52>, 3000201, 0) returned error: open /srv/repo/data/16/{PACK}: no such file or "
            "directory",
        ),  # fmt: skip
        (
            "Load(<data/16455c0e52>, 0, 0) returned error, retrying after 1.08s: The specified key does not exist.",
            "Load(<data/16455c0e52>, 0, 0) returned error: The specified key does not exist.",
        ),
        # the network failing is worth restic's retries
        ("Load(<data/16455c0e52>, 0, 0) returned error, retrying after 1.08s: read: connection reset by peer", ""),
        # an index or snapshot file: not a pack
        ("Load(<index/0123456789>, 0, 0) returned error, retrying after 1.0s: open x: no such file or directory", ""),
        # restic 0.18 does not retry: nothing to stop
        (f"Load(<data/16455c0e52>, 3000201, 0) failed: open /srv/repo/data/16/{PACK}: no such file or directory", ""),
    ],
)
def test_gone_pack_retry(line, expected):
    assert errors.gone_pack_retry(line) == expected


def fake_restic(tmp_path, body: str) -> str:
    path = tmp_path / "restic"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def retrying_restic(tmp_path) -> str:
    """A restic that prints 0.14's retry notice for a gone pack, then goes on retrying for 60 s."""
    return fake_restic(tmp_path, f"echo restoring >&2\necho '{LOCAL}' >&2\nsleep 60\necho 'restored everything'\n")


def test_a_restore_is_stopped_at_the_first_retry_of_a_gone_pack_and_names_it(tmp_path):
    binary = retrying_restic(tmp_path)
    engine = r.Restic(binary, "/srv/repo", "/dev/null")
    result = engine.run("restore", "--target", str(tmp_path / "t"), "--", SNAPSHOT)
    # stopped, not waited out: what the fake prints after its 60 s is not there
    assert result.rc != 0 and not result.timed_out
    assert "restored everything" not in result.stdout
    assert result.gave_up == f"Load(<data/16455c0e52>, 3000201, 0) returned error: open /srv/repo/data/16/{PACK}: " \
        "no such file or directory"  # fmt: skip
    err = r.classify_error(result, "/srv/repo", target=str(tmp_path / "t"), snapshot=SNAPSHOT, action="restore")
    assert err.kind == "repository_damaged"
    assert err.details == {"packs": [PACK], "snapshot": SNAPSHOT}
    assert str(err) == (
        f"Snapshot 307cc06a cannot be restored from restic repository /srv/repo: pack {PACK}, which it needs, is "
        f"missing from the repository (restic says: {result.gave_up}). Nothing restored from it may be used. Run "
        "restic check to see the damage, and restore an older snapshot that does not need the lost pack (the incident "
        "path moves to one by itself)."
    )
    # a listing stopped the same way names what it could not do
    listing = r.classify_error(result, "/srv/repo", snapshot=SNAPSHOT, action="list the snapshot")
    assert str(listing).startswith(
        f"restic could not list the snapshot in restic repository /srv/repo: pack {PACK}, which snapshot 307cc06a "
        "needs, is missing from the repository (restic says: Load(<data/16455c0e52>, 3000201, 0) returned error: open "
    )


def test_a_dump_streamed_to_a_consumer_is_stopped_too(tmp_path):
    binary = retrying_restic(tmp_path)
    engine = r.Restic(binary, "/srv/repo", "/dev/null")
    value, result = engine.stream("dump", "--", SNAPSHOT, "/books/ledger.db", consume=lambda out: out.read())
    assert value == b"" and result.gave_up and result.rc != 0


@pytest.mark.parametrize("sub", ["check", "find", "copy", "prune"])
def test_other_subcommands_are_left_to_restics_retries(tmp_path, sub):
    """check goes on to find other damage, find locates every snapshot that needs the pack: they are not cut short."""
    binary = fake_restic(tmp_path, f"echo '{LOCAL}' >&2\nsleep 1\necho done\n")
    result = r.Restic(binary, "/srv/repo", "/dev/null").run(sub)
    assert result.rc == 0 and result.stdout == "done\n" and result.gave_up == ""
    assert LOCAL in result.stderr


def test_a_transient_error_is_left_to_restics_retries(tmp_path):
    line = "Load(<data/16455c0e52>, 0, 0) returned error, retrying after 1.0s: read: connection reset by peer"
    binary = fake_restic(tmp_path, f"echo '{line}' >&2\nsleep 1\necho restored\n")
    result = r.Restic(binary, "/srv/repo", "/dev/null").run("restore", "--target", str(tmp_path), "--", SNAPSHOT)
    assert result.rc == 0 and result.stdout == "restored\n" and result.gave_up == ""


def test_the_whole_process_group_is_stopped(tmp_path):
    """restic's children (ssh for sftp:) go with it: the group is signalled, not only restic."""
    marker = tmp_path / "child.pid"
    binary = fake_restic(tmp_path, f"sleep 60 &\necho $! > {marker}\necho '{LOCAL}' >&2\nwait\n")
    _value, result = run.watched_run(
        [binary], {"PATH": os.environ["PATH"]}, lambda out: out.read(), give_up_on_gone=True
    )
    assert result.gave_up and result.rc != 0
    child = int(marker.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"restic's child {child} still runs after restic was stopped")
