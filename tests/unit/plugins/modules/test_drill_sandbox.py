"""drill_sandbox (issue 19: the drill's sandbox refusal and its run folder in one module run): an unsafe sandbox is
refused with the filter's reason (also through a symbolic link, and in check mode) and nothing is created; a safe one
gets the run's folder, mode 0700, idempotently; a folder that cannot be made is an error, not a refusal."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import drill_sandbox
from conftest import lose_mkdir_race, module_result


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    return module_result(drill_sandbox.main, args, capsys, check_mode)


def client(prod) -> dict:
    return {"id": "c002", "name": "宁波示例餐饮有限公司", "paths": [str(prod)]}


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_sandbox_inside_production_is_refused_and_nothing_is_created(tmp_path, capsys, check_mode):
    prod = tmp_path / "账套" / "c002"
    prod.mkdir(parents=True)
    sandbox = prod / "drill"
    out = run({"sandbox": str(sandbox), "path": str(sandbox / "d1"), "clients": [client(prod)]}, capsys, check_mode)
    assert out["failed"] is True and out["refused"] is True
    assert out["msg"] == (
        f"drill_sandbox_dir '{sandbox}' is inside production path '{prod}' of client c002 (宁波示例餐饮有限公司); "
        "a drill must restore outside every path declared in ledgerguard_clients"
    )
    assert not sandbox.exists()


def test_a_link_into_production_is_refused_by_its_resolved_path(tmp_path, capsys):
    prod = tmp_path / "prod" / "c002"
    prod.mkdir(parents=True)
    link = tmp_path / "drill-link"
    link.symlink_to(prod)
    out = run({"sandbox": str(link), "path": str(link / "d1"), "clients": [client(prod)]}, capsys)
    assert out["refused"] is True and out["realpath"] == str(prod)
    assert f"'{prod}' (resolved from '{link}') is inside production path" in out["msg"]
    assert not (prod / "d1").exists()


def test_forbidden_paths_and_relative_sandboxes_are_refused(tmp_path, capsys):
    out = run(
        {"sandbox": str(tmp_path / "a"), "path": str(tmp_path / "a" / "d1"), "forbidden_paths": [str(tmp_path)]}, capsys
    )
    assert out["refused"] is True and out["msg"].endswith("(drill_forbidden_paths)")
    out = run({"sandbox": "drills", "path": str(tmp_path / "d1")}, capsys)
    assert out["refused"] is True and out["msg"].startswith("drill_sandbox_dir 'drills' is not an absolute path")


def test_a_safe_sandbox_gets_the_run_folder_mode_0700_idempotently(tmp_path, capsys):
    sandbox = tmp_path / "沙箱"
    args = {"sandbox": str(sandbox), "path": str(sandbox / "d1"), "clients": [client(tmp_path / "prod")]}
    planned = run(args, capsys, check_mode=True)
    assert planned["changed"] is True and planned["created"] == [str(sandbox), str(sandbox / "d1")]
    assert not sandbox.exists()
    done = run(args, capsys)
    assert done["changed"] is True and done["created"] == [str(sandbox), str(sandbox / "d1")]
    for folder in (sandbox, sandbox / "d1"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    again = run(args, capsys)
    assert again["changed"] is False and again["created"] == []
    os.chmod(sandbox / "d1", 0o755)
    assert run(args, capsys, check_mode=True)["changed"] is True
    assert run(args, capsys)["changed"] is True and stat.S_IMODE(os.stat(sandbox / "d1").st_mode) == 0o700


def test_a_run_folder_that_cannot_be_made_is_an_error_not_a_refusal(tmp_path, capsys):
    sandbox = tmp_path / "sandbox"
    sandbox.write_text("a file where the sandbox should be")
    out = run({"sandbox": str(sandbox), "path": str(sandbox / "d1")}, capsys)
    assert out["failed"] is True and out["refused"] is False
    assert (
        out["error"]
        == out["msg"]
        == (
            f"drill_sandbox: {sandbox} is not a folder, so the drill's folder {sandbox / 'd1'} cannot be made "
            "under it; "
            "fix the folder's owner or mode, or choose another drill_sandbox_dir"
        )
    )


def test_a_parent_made_meanwhile_by_another_host_is_used(tmp_path, capsys, monkeypatch):
    """Hosts of one run may share the sandbox's parent: the one that loses the race to create it goes on."""
    sandbox = tmp_path / "sandbox" / "relative"
    lose_mkdir_race(monkeypatch, tmp_path / "sandbox")
    out = run({"sandbox": str(sandbox), "path": str(sandbox / "d1")}, capsys)
    assert out.get("failed") is not True, out
    assert out["changed"] is True and out["created"] == [str(sandbox), str(sandbox / "d1")]
    assert stat.S_IMODE(os.stat(sandbox / "d1").st_mode) == 0o700


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_path_outside_the_sandbox_is_refused_and_left_as_it_was(tmp_path, capsys, check_mode):
    """The run folder must lie inside the sandbox: a production folder given as path is refused, its mode untouched."""
    prod = tmp_path / "账套" / "c002"
    prod.mkdir(parents=True, mode=0o755)
    os.chmod(prod, 0o755)
    sandbox = tmp_path / "沙箱"
    out = run({"sandbox": str(sandbox), "path": str(prod), "clients": [client(prod)]}, capsys, check_mode)
    assert out["failed"] is True and out["refused"] is True and out["created"] == []
    assert out["msg"] == (
        f"drill_sandbox: path {str(prod)!r} is not inside the sandbox {str(sandbox)!r}; the drill makes and changes "
        "folders only there"
    )
    assert stat.S_IMODE(os.stat(prod).st_mode) == 0o755 and not sandbox.exists()
    # a sibling whose name only starts like the sandbox's is outside it too
    out = run({"sandbox": str(sandbox), "path": str(tmp_path / "沙箱2" / "d1")}, capsys, check_mode)
    assert out["refused"] is True and not (tmp_path / "沙箱2").exists()


def test_a_link_inside_the_sandbox_that_leads_out_is_refused(tmp_path, capsys):
    prod = tmp_path / "账套" / "c002"
    prod.mkdir(parents=True)
    os.chmod(prod, 0o755)
    sandbox = tmp_path / "沙箱"
    sandbox.mkdir()
    (sandbox / "d1").symlink_to(prod)
    out = run({"sandbox": str(sandbox), "path": str(sandbox / "d1"), "clients": [client(prod)]}, capsys)
    assert out["refused"] is True
    assert out["msg"] == (
        f"drill_sandbox: {str(sandbox / 'd1')!r} resolves to {str(prod)!r}, outside the sandbox {str(sandbox)!r}; "
        "remove the link from the sandbox"
    )
    assert stat.S_IMODE(os.stat(prod).st_mode) == 0o755
