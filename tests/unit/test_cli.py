"""The ledgerguard CLI without running playbooks: argument checks, secret-file checks, exit-code mapping, variables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from ledgerguard import cli


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "restic-password"
    path.write_text("s3cr3t-value\n")
    path.chmod(0o600)
    return path


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_no_command_and_unknown_options_are_bad_input(capsys):
    assert run(capsys)[0] == 2
    assert run(capsys, "drill", "--no-such-option")[0] == 2
    assert run(capsys, "schedule")[0] == 2
    code, _out, err = run(capsys, "freeze")
    assert code == 2 and "--incident-id" in err


def test_help_and_version_exit_0(capsys):
    code, out, _err = run(capsys, "--version")
    assert code == 0 and out.startswith("ledgerguard ")
    code, out, _err = run(capsys, "--help")
    flat = " ".join(out.split())
    assert code == 0 and "Exit codes: 0 success, 1 a step failed, 2 bad input, 3 a drill missed its targets." in flat
    for sub in ("incident", "drill", "verify", "freeze", "thaw", "timeline", "schedule"):
        assert sub in out


def test_password_file_readable_by_others_is_refused(capsys, secret, tmp_path):
    secret.chmod(0o644)
    code, out, err = run(capsys, "drill", "--password-file", str(secret), "--private-data-dir", str(tmp_path / "r"))
    assert code == 2
    assert err == (
        f"ledgerguard: --password-file {secret} has mode 0644: it holds a secret and must be readable by its owner "
        f"only; run 'chmod 600 {secret}' and retry\n"
    )
    assert not (tmp_path / "r").exists()  # nothing ran


def test_missing_and_non_regular_secret_files(capsys, tmp_path):
    missing = tmp_path / "nope"
    code, _out, err = run(capsys, "verify", "--s3-credentials-file", str(missing))
    assert code == 2
    assert err == (
        f"ledgerguard: --s3-credentials-file {missing}: no such file; give the path of a file that holds the secret\n"
    )
    code, _out, err = run(capsys, "verify", "--password-file", str(tmp_path))
    assert code == 2 and err == f"ledgerguard: --password-file {tmp_path} is not a regular file\n"


def test_bad_values_are_bad_input(capsys, secret):
    assert run(capsys, "drill", "--rto", "soon")[0] == 2
    assert run(capsys, "freeze", "--incident-id", "../etc")[0] == 2
    code, _out, err = run(capsys, "drill", "--snapshot", "yesterday", "--password-file", str(secret))
    assert code == 2 and "--snapshot 'yesterday': expected latest, random or a snapshot id" in err
    code, _out, err = run(capsys, "drill", "--repository", "s3:https://key:secret@s3.example/b")
    assert code == 2 and "must not embed credentials" in err
    code, _out, err = run(capsys, "drill", "-i", "/nonexistent/inventory.yml")
    assert code == 2 and err == "ledgerguard: --inventory /nonexistent/inventory.yml: no such file or directory\n"
    code, _out, err = run(capsys, "drill", "--sandbox", "relative")
    assert code == 2 and "--sandbox 'relative' must be an absolute path" in err


def test_extravars_carry_paths_never_secrets(secret, tmp_path):
    s3 = tmp_path / "s3"
    s3.write_text("[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = abc\n")
    s3.chmod(0o600)
    varsfile = tmp_path / "vars.yml"
    varsfile.write_text("drill_keep_sandbox: true\nledgerguard_clients: [{id: c1, name: 客户一, paths: [/srv/c1]}]\n")
    args = cli.build_parser().parse_args(
        [
            "drill",
            "--repository", "s3:http://127.0.0.1:9000/b/r",
            "--password-file", str(secret),
            "--s3-credentials-file", str(s3),
            "--snapshot", "random", "--window-days", "14", "--seed", "w7",
            "--clients", "c1, c2", "--rto", "30m", "--rpo", "26h", "--min-throughput", "1000",
            "--sandbox", "/var/tmp/lg", "-e", f"@{varsfile}", "-e", "drill_trend_points=12",
        ]
    )  # fmt: skip
    ev = cli.playbook_extravars(args)
    assert ev["ledgerguard_password_file"] == str(secret) and ev["ledgerguard_s3_credentials_file"] == str(s3)
    assert ev["drill_snapshot_selection"] == "random" and ev["drill_random_window_days"] == 14
    assert ev["drill_clients"] == ["c1", "c2"]
    assert ev["drill_target_overrides"] == {
        "rto_seconds": 1800,
        "rpo_seconds": 93600,
        "min_throughput_bytes_per_second": 1000,
    }
    assert "drill_targets" not in ev and "drill_client_targets" not in ev
    # key=value stays a string (as ansible-playbook keeps it); the @file goes through by path, not by content.
    assert ev["drill_trend_points"] == "12" and "ledgerguard_clients" not in ev
    extra = cli.parse_extra_vars(args.extra_vars)
    assert extra.files == [str(varsfile)] and extra.file_values["ledgerguard_clients"][0]["name"] == "客户一"
    blob = json.dumps(ev)
    assert "s3cr3t-value" not in blob and "AKIAEXAMPLE" not in blob


def test_snapshot_id_and_incident_vars(secret):
    args = cli.build_parser().parse_args(["drill", "--snapshot", "4f3a9c01"])
    assert cli.playbook_extravars(args)["drill_snapshot_id"] == "4f3a9c01"
    args = cli.build_parser().parse_args(["incident", "--incident-id", "INC-2026-001", "--clients", "c1,c2"])
    ev = cli.playbook_extravars(args)
    assert ev["ledgerguard_incident_id"] == "INC-2026-001" and ev["incident_clients"] == ["c1", "c2"]


@pytest.mark.parametrize(
    ("status", "rc", "artifacts", "command", "expected"),
    [
        ("successful", 0, {}, "verify", 0),
        ("failed", 2, {}, "verify", 1),
        ("timeout", 254, {}, "drill", 1),
        ("failed", 2, {"ledgerguard_drill": {"targets_missed": True, "verification_failed": False}}, "drill", 3),
        ("failed", 2, {"ledgerguard_drill": {"targets_missed": "True", "verification_failed": "False"}}, "drill", 3),
        ("failed", 2, {"ledgerguard_drill": {"targets_missed": True, "verification_failed": True}}, "drill", 1),
        ("failed", 2, {"ledgerguard_drill": {"targets_missed": False, "verification_failed": True}}, "drill", 1),
        ("successful", 0, {"ledgerguard_drill": {"targets_missed": False}}, "drill", 0),
    ],
)
def test_exit_codes(status, rc, artifacts, command, expected):
    assert cli.exit_code_for(status, rc, artifacts, command) == expected


def test_drill_exit_code_with_missed_targets_counts_hosts_without_a_record():
    missed = {"targets_missed": True, "verification_failed": False, "hosts": {"书房": {}, "财务": {}}}
    art = {"ledgerguard_drill": missed}
    # the hosts that missed their targets failed their own play: still exit 3
    assert cli.exit_code_for("failed", 2, art, "drill", {"书房", "财务"}) == 3
    # another host unreachable (or stopped before its drill recorded anything): exit 1, not "only targets missed"
    assert cli.exit_code_for("failed", 4, art, "drill", {"书房", "档案室"}) == 1
    assert cli.exit_code_for("failed", 2, {"ledgerguard_drill": dict(missed, hosts=None)}, "drill", {"书房"}) == 1


def test_parse_extra_vars_forms(tmp_path):
    assert cli.parse_extra_vars(["a=1", "b=x y", 'c={"k": [1]}', '{"d": true}']).values == {
        "a": "1",
        "b": "x y",
        "c": '{"k": [1]}',
        "d": True,
    }
    with pytest.raises(cli.BadInput, match="expected key=value"):
        cli.parse_extra_vars(["novalue"])
    with pytest.raises(cli.BadInput, match="not a valid variable name"):
        cli.parse_extra_vars(["1x=2"])
    bad = tmp_path / "list.yml"
    bad.write_text("- 1\n")
    with pytest.raises(cli.BadInput, match="must hold a mapping"):
        cli.parse_extra_vars([f"@{bad}"])


def test_timeline_verify_exit_codes(capsys, tmp_path):
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import append

    path = tmp_path / "INC-1" / "timeline.jsonl"
    path.parent.mkdir()
    for i in range(3):
        append(str(path), {"step": i, "msg": f"event {i}"})
    code, out, _err = run(capsys, "timeline", "verify", str(path.parent))
    assert code == 0 and ": OK, 3 lines, chain intact" in out
    code, out, _err = run(
        capsys, "timeline", "verify", "--incident-id", "INC-1", "--evidence-dir", str(tmp_path), "--json"
    )
    assert code == 0 and json.loads(out)["ok"] is True
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("event 1", "event X")
    path.write_text("\n".join(lines) + "\n")
    code, out, _err = run(capsys, "timeline", "verify", str(path))
    assert code == 1 and "BROKEN at line 2 of 3" in out
    code, _out, err = run(capsys, "timeline", "verify", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "does not exist" in err


def test_default_runner_dir_respects_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LEDGERGUARD_RUNNER_DIR", str(tmp_path / "rd"))
    assert cli.default_runner_dir() == tmp_path / "rd"
    monkeypatch.delenv("LEDGERGUARD_RUNNER_DIR")
    expected = "/var/lib/ledgerguard/runner" if os.geteuid() == 0 else "ledgerguard/runner"
    assert str(cli.default_runner_dir()).endswith(expected)


def test_drill_lines_name_each_database():
    drill = {
        "drill_id": "d1",
        "passed": False,
        "hosts": {
            "books1": {
                "passed": False, "snapshot": "4f3a9c01", "rto_seconds": 12.0, "rpo_seconds": 60.0, "files": 3,
                "bytes": 10, "problems": ["database postgresql/ledger: table public.凭证 has 120 rows"],
                "databases": ["postgresql/ledger: FAILED: table public.凭证 has 120 rows"],
            }
        },
    }  # fmt: skip
    lines = cli.drill_lines(drill)
    assert lines[2:] == [
        "    database postgresql/ledger: FAILED: table public.凭证 has 120 rows",
        "    - database postgresql/ledger: table public.凭证 has 120 rows",
    ]


def test_the_survey_turns_off_every_other_backup_verify_step():
    """Each of backup_verify's switches (its defaults' *_enabled, data read under check) and the off-site copy's
    comparison is off in the survey, the survey itself on: a new step of the role must be switched off here too."""
    from ledgerguard import survey

    root = Path(__file__).resolve().parents[2]
    defaults = yaml.safe_load((root / "roles/backup_verify/defaults/main.yml").read_text(encoding="utf-8"))
    switches = {k for k in defaults if k.endswith("_enabled")} - {"backup_verify_data_enabled"}
    assert {k: survey.SURVEY_ONLY.get(k) for k in switches} == {
        k: k == "backup_verify_survey_enabled" for k in switches
    }
    assert "backup_verify_copy_repository" in defaults and survey.SURVEY_ONLY["backup_verify_copy_repository"] == ""
    assert survey.SURVEY_ONLY["backup_verify_metrics_file"] == ""
    assert survey.SURVEY_ONLY["backup_verify_notify_on"] == []
