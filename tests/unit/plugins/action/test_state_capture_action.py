"""state_capture's action plugin (issue 19): the bundle's bytes come back in the module's own result (return_archive),
so filing it in the evidence folder takes no second module run (it was a slurp); the bytes stay out of the task's
result; nothing is asked for or filed in a dry run; a result without them fails with the message naming the bundle."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from conftest import state_bundle_bytes

from ansible_collections.ledgerguard.recovery.plugins.action.state_capture import ActionModule

ARCHIVE = "/var/lib/ledgerguard/incidents/INC-1/state.tar.gz"


class Stub(ActionModule):
    """The action with the module run replaced: records every module run and answers as state_capture does."""

    def __init__(self, args: dict, check: bool = False, content: bytes | None = None):  # noqa: D107
        self._task = SimpleNamespace(
            args=args, check_mode=check, resolved_action="ledgerguard.recovery.state_capture", action="state_capture"
        )
        self.content = content
        self.runs: list[tuple[str, dict]] = []

    def _execute_module(self, module_name=None, module_args=None, task_vars=None, **_kwargs):
        self.runs.append((module_name, dict(module_args)))
        answer = {"changed": True, "dest": module_args["dest"], "archive": module_args.get("archive")}
        if module_args.get("return_archive") and self.content is not None:
            answer["archive_content"] = base64.b64encode(self.content).decode("ascii")
        return answer

    def go(self) -> dict:
        return self.run(task_vars={"inventory_hostname": "会计服务器"})


pytestmark = pytest.mark.usefixtures("no_action_base_run")


def args(folder) -> dict:
    return {"dest": "/var/lib/ledgerguard/incidents/INC-1/state", "archive": ARCHIVE, "evidence_dir": str(folder)}


def test_the_bundle_is_filed_from_the_modules_own_result_in_one_module_run(tmp_path):
    folder = tmp_path / "证据" / "INC-1" / "hosts" / "会计服务器"
    action = Stub(args(folder), content=state_bundle_bytes())
    out = action.go()
    assert [run[0] for run in action.runs] == ["ledgerguard.recovery.state_capture"]
    assert action.runs[0][1] == {"dest": args(folder)["dest"], "archive": ARCHIVE, "return_archive": True}
    assert "archive_content" not in out and not out.get("failed")
    assert out["evidence_files"] == ["state-bundle.tar.gz", "mounts.txt"]
    assert (folder / "state-bundle.tar.gz").read_bytes() == state_bundle_bytes()
    assert (folder / "mounts.txt").read_text(encoding="utf-8") == "挂载 /srv/账套\n"
    assert oct((folder / "mounts.txt").stat().st_mode & 0o777) == "0o600"
    assert (folder / "SHA256SUMS").is_file()


def test_a_dry_run_asks_for_no_bytes_and_files_nothing(tmp_path):
    folder = tmp_path / "证据"
    action = Stub(args(folder), check=True, content=state_bundle_bytes())
    out = action.go()
    assert action.runs[0][1] == {"dest": args(folder)["dest"], "archive": ARCHIVE}
    assert out["msg"].startswith("Dry run: the state bundle") and not folder.exists()


def test_without_the_bytes_the_task_fails_naming_the_bundle(tmp_path):
    out = Stub(args(tmp_path / "证据")).go()
    assert out["failed"] is True
    assert out["msg"] == (
        f"state_capture: the bundle {ARCHIVE} could not be read from the host: the module returned no content"
    )
    assert not (tmp_path / "证据").exists()


def test_without_evidence_dir_the_bytes_are_not_asked_for():
    action = Stub(
        {"dest": "/var/lib/ledgerguard/incidents/INC-1/state", "archive": ARCHIVE}, content=state_bundle_bytes()
    )
    out = action.go()
    assert action.runs[0][1] == {"dest": "/var/lib/ledgerguard/incidents/INC-1/state", "archive": ARCHIVE}
    assert "archive_content" not in out and "evidence_files" not in out
