"""pre_restore_snapshot's decisions (issue 19: one task for the probe, the lookup and the backup): the probe command
says which paths exist, exactly as the shell runs it (Chinese names, spaces, quotes, a broken symlink), and the
published result prefers the snapshot made now, else the newest of an earlier run."""

from __future__ import annotations

import base64
import os
import subprocess
from types import SimpleNamespace

import pytest

from conftest import state_bundle_bytes

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


class Stub(prs.ActionModule):
    """The action with the host replaced: the probe answers that the first path exists, each module answers as
    ``answers`` says (keyed by module name), the bundle's bytes come back from state_capture."""

    def __init__(self, args: dict, answers: dict, check: bool = False):  # noqa: D107 - no Ansible machinery needed
        self._task = SimpleNamespace(args=args, check_mode=check, async_val=0)
        self.answers = answers
        self.runs: list[tuple[str, dict]] = []

    def _low_level_execute_command(self, cmd, sudoable=True, **_kwargs):
        return {"rc": 0, "stdout": "0\n", "stderr": ""}

    def _restic_module_args(self, args, task_vars):
        return {"repository": "/srv/restic", **args}

    def _execute_module(self, module_name=None, module_args=None, task_vars=None, **_kwargs):
        self.runs.append((module_name.rsplit(".", 1)[-1], dict(module_args)))
        return dict(self.answers[module_name.rsplit(".", 1)[-1]])


ANSWERS = {
    "restic_snapshots": {"snapshots": []},
    "restic_backup": {"changed": True, "snapshot_id": "f" * 64, "short_id": "ffffffff"},
    "state_capture": {"changed": True, "archive_content": base64.b64encode(state_bundle_bytes()).decode("ascii")},
}


def bundle_args(tmp_path) -> dict:
    evidence = tmp_path / "证据" / "hosts" / "books01"
    bundle = {"dest": "/var/lib/lg/state", "archive": "/var/lib/lg/state.tar.gz", "evidence_dir": str(evidence)}
    return {**ARGS, "paths": ["/srv/账套/c001", "/srv/账套/c002"], "bundle": bundle, "publish": True}


@pytest.mark.usefixtures("no_action_base_run")
def test_backup_bundle_and_published_result_in_one_task(tmp_path):
    action = Stub(bundle_args(tmp_path), ANSWERS)
    out = action.run(task_vars={})
    assert [name for name, _args in action.runs] == ["restic_snapshots", "restic_backup", "state_capture"]
    capture = action.runs[2][1]
    assert capture["manifest_paths"] == ["/srv/账套/c001"] and capture["record"] == out["snapshot"]
    assert capture["return_archive"] is True and capture["journal_lines"] == 2000
    assert {k: out[k] for k in out["snapshot"]} == out["snapshot"] and "ansible_facts" not in out  # registered
    assert out["snapshot"]["missing_paths"] == ["/srv/账套/c002"] and out["changed"] is True
    assert out["bundle"]["evidence_files"] == ["state-bundle.tar.gz", "mounts.txt"] and "archive_content" not in str(
        out
    )
    evidence = tmp_path / "证据" / "hosts" / "books01"
    assert (evidence / "mounts.txt").read_text(encoding="utf-8") == "挂载 /srv/账套\n" and (
        evidence / "SHA256SUMS"
    ).is_file()


@pytest.mark.usefixtures("no_action_base_run")
def test_bundle_alone_hashes_nothing_publishes_nothing_and_a_dry_run_files_nothing(tmp_path):
    action = Stub({**bundle_args(tmp_path), "backup": False}, ANSWERS, check=True)
    out = action.run(task_vars={})
    assert [name for name, _args in action.runs] == ["state_capture"]
    assert action.runs[0][1]["manifest_paths"] == [] and "return_archive" not in action.runs[0][1]
    assert "snapshot_id" not in out and "snapshot" not in out
    assert out["msg"].startswith("Dry run: the state bundle") and not (tmp_path / "证据").exists()


@pytest.mark.usefixtures("no_action_base_run")
def test_a_failed_bundle_fails_the_task_naming_the_step(tmp_path):
    answers = {**ANSWERS, "state_capture": {"changed": False}}  # no bytes came back
    out = Stub(bundle_args(tmp_path), answers).run(task_vars={})
    assert out["failed"] is True and out["step"] == "state_capture"
    assert out["short_id"] == "ffffffff" and out["snapshot"]["short_id"] == "ffffffff"  # kept in the registered result
    assert out["msg"] == (
        "pre_restore_snapshot: the bundle /var/lib/lg/state.tar.gz could not be read from the host: the module "
        "returned no content. The damaged state is kept in snapshot ffffffff."
    )
