"""The five restic modules run in-process against a stand-in restic that replays output captured from restic 0.14.

The stand-in records each call (argv, the environment names, the password file's mode and content) so the tests can
assert exact command lines and that the password never reaches argv and its file is gone afterwards.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

FIX = Path(__file__).resolve().parents[3] / "unit" / "fixtures" / "restic"
PASSWORD = "unit-test password 口令"

STAND_IN = r"""#!{python}
import json, os, stat, sys
fix, log, scenario = {fix!r}, {log!r}, json.load(open({scenario!r}))
argv = sys.argv[1:]
while argv and argv[0] == "--cache-dir":
    argv = argv[2:]
pw = os.environ.get("RESTIC_PASSWORD_FILE", "")
entry = {{"argv": sys.argv[1:], "env": sorted(os.environ), "lc_all": os.environ.get("LC_ALL"), "pw_file": pw}}
if pw and os.path.exists(pw):
    entry["pw_mode"] = stat.S_IMODE(os.stat(pw).st_mode)
    entry["pw"] = open(pw).read()
with open(log, "a") as handle:
    handle.write(json.dumps(entry) + "\n")
cmd = argv[0]
name = cmd + "_help" if "--help" in argv else scenario.get(cmd, cmd)
for stream, ext in ((sys.stdout, "stdout"), (sys.stderr, "stderr")):
    stream.write(open(os.path.join(fix, name + "." + ext)).read())
sys.exit(int(open(os.path.join(fix, name + ".rc")).read()))
"""


@pytest.fixture
def fake_restic(tmp_path):
    """Returns (binary path, set_scenario(dict), calls())."""
    log = tmp_path / "calls.jsonl"
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({}))
    binary = tmp_path / "restic"
    binary.write_text(STAND_IN.format(python=sys.executable, fix=str(FIX), log=str(log), scenario=str(scenario)))
    binary.chmod(0o755)

    def set_scenario(mapping: dict[str, str]) -> None:
        scenario.write_text(json.dumps(mapping))

    def calls() -> list[dict]:
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    return str(binary), set_scenario, calls


def run_module(name: str, args: dict, capsys, check_mode: bool = False) -> dict:
    module = importlib.import_module(f"ansible_collections.ledgerguard.recovery.plugins.modules.{name}")
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def base(binary: str, **kw) -> dict:
    return {"repository": "/WORK/repo", "password": PASSWORD, "restic_binary": binary, **kw}


def repo_calls(calls) -> list[list[str]]:
    """The argv of every call that touched the repository (not version / --help)."""
    return [c["argv"] for c in calls() if c["argv"][0] != "version" and "--help" not in c["argv"]]


def test_password_only_through_a_0600_file_that_is_removed(fake_restic, capsys):
    binary, scenario, calls = fake_restic
    scenario({"cat": "cat_config"})
    result = run_module("restic_repository", base(binary), capsys)
    assert result["changed"] is False and result["exists"] is True and result["repository_version"] == 2
    assert PASSWORD not in json.dumps(result)
    for call in calls():
        assert all(PASSWORD not in arg for arg in call["argv"])
        assert call["lc_all"] == "C"
        assert "RESTIC_PASSWORD" not in call["env"]
    touching = [c for c in calls() if c["argv"][0] == "cat"]
    assert touching[0]["pw_mode"] == 0o600 and touching[0]["pw"] == PASSWORD
    assert not os.path.exists(touching[0]["pw_file"])


def test_repository_never_inits_on_wrong_password(fake_restic, capsys):
    binary, scenario, calls = fake_restic
    scenario({"cat": "err_wrong_password", "init": "init"})
    result = run_module("restic_repository", base(binary, init=True), capsys)
    assert result["failed"] is True and result["error_kind"] == "wrong_password"
    assert result["msg"].startswith("Wrong password for restic repository /WORK/repo:")
    assert [a[0] for a in repo_calls(calls)] == ["cat"]


def test_repository_init_only_when_missing_and_not_in_check_mode(fake_restic, capsys):
    binary, scenario, calls = fake_restic
    scenario({"cat": "err_repo_missing"})
    result = run_module("restic_repository", base(binary, init=True), capsys, check_mode=True)
    assert result["changed"] is True and result["exists"] is False and result["initialized"] is True
    assert [a[0] for a in repo_calls(calls)] == ["cat"]
    missing = run_module("restic_repository", base(binary), capsys)
    assert missing["failed"] is True and missing["error_kind"] == "repo_missing" and "init: true" in missing["msg"]


def test_snapshots_filters_and_contains_path(fake_restic, capsys):
    binary, scenario, calls = fake_restic
    scenario({"snapshots": "snapshots_json", "find": "find_json_dir"})
    result = run_module(
        "restic_snapshots",
        base(
            binary,
            tags=["daily"],
            hosts=["fixture-host"],
            after="2000-01-01T00:00:00+08:00",
            contains_path="/WORK/src/srv/ledgers/C001",
        ),  # fmt: skip
        capsys,
    )
    (snap,) = result["snapshots"]
    assert result["count"] == 1 and result["total"] == 1 and result["latest"]["id"] == snap["id"]
    assert snap["contains_path"] is True and result["containing"] == [snap["id"]]
    find = repo_calls(calls)[-1]
    assert find[:4] == ["find", "--json", f"--snapshot={snap['id']}", "--"]
    # every place the live path may be stored (absolute, or relative to any of its parents)
    assert set(find[4:]) == {
        "/WORK/src/srv/ledgers/C001",
        "/src/srv/ledgers/C001",
        "/srv/ledgers/C001",
        "/ledgers/C001",
        "/C001",
    }
    none = run_module("restic_snapshots", base(binary, tags=["weekly"]), capsys)
    assert none["count"] == 0 and none["latest"] is None


def test_snapshots_refuses_naive_timestamps(fake_restic, capsys):
    binary, _scenario, calls = fake_restic
    result = run_module("restic_snapshots", base(binary, before="2026-03-01 09:30:00"), capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("before '2026-03-01 09:30:00' has no timezone, so it is ambiguous")
    assert repo_calls(calls) == []


def test_backup_check_mode_is_a_dry_run(fake_restic, capsys, tmp_path):
    binary, scenario, calls = fake_restic
    scenario({"backup": "backup_dry_run_json"})
    result = run_module("restic_backup", base(binary, paths=[str(tmp_path)], tags=["daily"]), capsys, check_mode=True)
    assert result["changed"] is True and result["snapshot_id"] == "" and result["summary"]["dry_run"] is True
    assert repo_calls(calls) == [["backup", "--json", "--tag=daily", "--dry-run", "--", str(tmp_path)]]


def test_backup_returns_the_full_snapshot_id(fake_restic, capsys, tmp_path):
    binary, scenario, calls = fake_restic
    # the captured backup and snapshots come from one capture run, so the short ID resolves to the full one
    scenario({"backup": "backup_json", "snapshots": "snapshots_json"})
    result = run_module("restic_backup", base(binary, paths=[str(tmp_path)], host="h"), capsys)
    assert len(result["snapshot_id"]) == 64 and result["snapshot_id"].startswith(result["summary"]["snapshot_id"])
    assert repo_calls(calls)[0] == ["backup", "--json", "--host=h", "--", str(tmp_path)]


def test_backup_refuses_missing_paths(fake_restic, capsys, tmp_path):
    binary, _scenario, calls = fake_restic
    result = run_module("restic_backup", base(binary, paths=[str(tmp_path / "nope")]), capsys)
    assert result["msg"] == f"paths entry {tmp_path / 'nope'} does not exist on this host; nothing was backed up"
    assert repo_calls(calls) == []


def test_check_damaged_repository(fake_restic, capsys):
    binary, scenario, _calls = fake_restic
    scenario({"check": "check_damaged"})
    failed = run_module("restic_check", base(binary), capsys)
    assert failed["failed"] is True and failed["error_kind"] == "check_failed"
    assert failed["msg"].startswith("restic check found 2 problem(s) in repository /WORK/repo: data_lost: ")
    assert "restic said: pack " in failed["msg"]
    recorded = run_module("restic_check", base(binary, fail_on_error=False, read_data_subset="1/2"), capsys)
    assert recorded["ok"] is False and len(recorded["errors"]) == 2 and recorded["changed"] is False


def test_check_locked_is_not_a_check_failure(fake_restic, capsys):
    binary, scenario, _calls = fake_restic
    scenario({"check": "err_locked"})
    result = run_module("restic_check", base(binary, fail_on_error=False), capsys)
    assert result["failed"] is True and result["error_kind"] == "locked"


def test_check_clean_with_subset(fake_restic, capsys):
    binary, scenario, calls = fake_restic
    scenario({"check": "check_subset_text"})
    result = run_module("restic_check", base(binary, read_data_subset="1/2"), capsys)
    assert result["ok"] is True and result["read_data"] == "1/2" and result["packs_total"] >= 1
    assert repo_calls(calls) == [["check", "--read-data-subset=1/2"]]


def test_restore_check_mode_writes_nothing(fake_restic, capsys, tmp_path):
    binary, scenario, calls = fake_restic
    scenario({"ls": "ls_json", "snapshots": "snapshots_json"})
    target = tmp_path / "restore"
    result = run_module("restic_restore", base(binary, snapshot="latest", target=str(target)), capsys, check_mode=True)
    assert result["changed"] is True and result["files"] == 3 and result["bytes"] == 31 + 20000 + 6
    assert result["comparison"]["missing"] > 0 and result["verified"] is False
    assert result["restored_paths"] == [
        {
            "path": "/WORK/src/srv/ledgers",
            "snapshot_path": "/WORK/src/srv/ledgers",
            "restored_to": str(target / "WORK/src/srv/ledgers"),
        }
    ]
    assert not target.exists()
    # resolve 'latest' (manifest snapshots left out), the top of its tree (the layout), the listing
    assert [a[0] for a in repo_calls(calls)] == ["snapshots", "ls", "ls"]


def test_restore_validates_its_input(fake_restic, capsys, tmp_path):
    binary, scenario, calls = fake_restic
    scenario({"ls": "ls_json", "snapshots": "snapshots_json"})
    rel = run_module("restic_restore", base(binary, snapshot="latest", target="restore"), capsys)
    assert rel["msg"].startswith("target 'restore' is not an absolute path")
    short = run_module("restic_restore", base(binary, snapshot="ab", target=str(tmp_path)), capsys)
    assert short["msg"].startswith("snapshot 'ab' is not a restic snapshot ID")
    absent = run_module(
        "restic_restore",
        base(binary, snapshot="latest", target=str(tmp_path), include_paths=["/WORK/src/srv/ledgers/C001/nope.csv"]),
        capsys,
    )
    assert absent["msg"].startswith("include_paths /WORK/src/srv/ledgers/C001/nope.csv not in snapshot 46eb436e")
    sid = "46eb436e9eff9de244a07ee89179426c90f92c408be89577730aba148896a79d"
    assert repo_calls(calls)[-1] == ["ls", "--json", "--recursive", "--", sid, "/WORK/src/srv/ledgers/C001/nope.csv"]


def test_restore_unknown_snapshot(fake_restic, capsys, tmp_path):
    binary, scenario, _calls = fake_restic
    scenario({"ls": "err_snapshot_missing_ls", "snapshots": "snapshots_json"})
    result = run_module("restic_restore", base(binary, snapshot="deadbeef", target=str(tmp_path)), capsys)
    assert result["error_kind"] == "snapshot_not_found"
    assert result["msg"].startswith("Snapshot 'deadbeef' was not found in restic repository /WORK/repo")
    full = run_module("restic_restore", base(binary, snapshot="deadbeef" * 8, target=str(tmp_path)), capsys)
    assert full["error_kind"] == "snapshot_not_found"
    assert full["msg"].startswith(f"Snapshot '{'deadbeef' * 8}' was not found in restic repository /WORK/repo.")


def test_missing_binary_and_password(capsys, tmp_path):
    result = run_module(
        "restic_snapshots",
        {"repository": "/r", "password": "long enough", "restic_binary": str(tmp_path / "no")},
        capsys,
    )
    assert result["msg"].startswith(f"restic_binary {tmp_path / 'no'} is not an executable file on this host")
    result = run_module("restic_snapshots", {"repository": "/r"}, capsys)
    assert result["msg"].startswith("No restic password for repository /r: set password or password_file")
    result = run_module("restic_snapshots", {"password": "long enough"}, capsys)
    assert result["msg"].startswith("No restic repository given")


def test_env_cannot_smuggle_the_password(fake_restic, capsys):
    binary, _scenario, _calls = fake_restic
    result = run_module("restic_snapshots", base(binary, env={"RESTIC_PASSWORD": "x"}), capsys)
    assert result["msg"].startswith("env may not set RESTIC_PASSWORD")


def test_password_file_on_host_is_used_and_kept(fake_restic, capsys, tmp_path):
    binary, scenario, calls = fake_restic
    scenario({"cat": "cat_config"})
    pw = tmp_path / "host-pw"
    pw.write_text("p")
    pw.chmod(0o600)
    args = {"repository": "/WORK/repo", "password_file": str(pw), "restic_binary": binary}
    run_module("restic_repository", args, capsys)
    assert [c["pw_file"] for c in calls() if c["argv"][0] == "cat"] == [str(pw)]
    assert pw.exists() and stat.S_IMODE(pw.stat().st_mode) == 0o600
