"""pre_restore_snapshot's decisions (issue 19: one task for the probe, the lookup and the backup): the probe command
says which paths exist, exactly as the shell runs it (Chinese names, spaces, quotes, a broken symlink), and the
published result prefers the snapshot made now, else the newest of an earlier run."""

from __future__ import annotations

import os
import subprocess

from ansible_collections.ledgerguard.recovery.plugins.action import pre_restore_snapshot as prs

ARGS = {"paths": [], "incident": "INC-20261126-001", "tags": ["勒索"], "host": "books01", "repository": None}


def test_probe_finds_existing_paths_and_broken_symlinks(tmp_path):
    here = tmp_path / "账套" / "杭州 示例's"
    here.mkdir(parents=True)
    gone = tmp_path / "账套" / "c002"
    broken = tmp_path / "账套" / "link"
    os.symlink(tmp_path / "nowhere", broken)
    paths = [str(gone), str(here), str(broken), str(tmp_path / "$(touch pwned)")]
    out = subprocess.run(["/bin/sh", "-c", prs.probe_command(paths)], capture_output=True, text=True, check=True)
    assert out.stdout == "1\n2\n"
    assert prs.existing_paths(paths, out.stdout) == [str(here), str(broken)]
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")


def test_published_prefers_the_snapshot_made_now():
    args = {**ARGS, "paths": ["/srv/a", "/srv/b"]}
    made = {"snapshot_id": "f" * 64, "short_id": "ffffffff", "changed": True}
    out = prs.published(args, ["/srv/a"], [], made)
    assert out == {
        "snapshot_id": "f" * 64,
        "short_id": "ffffffff",
        "reused": False,
        "paths": ["/srv/a"],
        "missing_paths": ["/srv/b"],
        "repository": "same",
        "tags": ["INC-20261126-001", "pre-restore", "勒索"],
    }


def test_published_reuses_the_newest_earlier_snapshot_in_a_forensic_repository():
    args = {**ARGS, "paths": ["/srv/a"], "repository": "s3:https://s3.example.cn/forensics"}
    earlier = [{"id": "1" * 64, "short_id": "11111111"}, {"id": "2" * 64, "short_id": "22222222"}]
    out = prs.published(args, ["/srv/a"], earlier, None)
    assert (out["snapshot_id"], out["short_id"], out["reused"], out["repository"]) == (
        "2" * 64,
        "22222222",
        True,
        "forensic",
    )


def test_nothing_to_keep_and_a_dry_run_backup():
    args = {**ARGS, "paths": ["/srv/a"]}
    assert prs.published(args, [], [], None)["snapshot_id"] == ""
    assert prs.published(args, [], [], None)["reused"] is False
    dry = prs.published(args, ["/srv/a"], [], {"changed": True})  # restic backup --dry-run: no snapshot id
    assert (dry["snapshot_id"], dry["short_id"], dry["reused"]) == ("", "", False)
