"""The operator's path through the CLI (issue 13 items 13, 15, 16): key=value values stay strings, every failure is
one line and exit 2, the incident id is generated and printed first, -e @file goes through by path, and the
environment handed to ansible-runner is an allow-list. ansible-runner is replaced by a recorder that does what it
does with the variables (json.dumps onto the command line)."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from ledgerguard import cli, runner


class Recorder:
    def __init__(self):
        self.runs = []

    def __call__(self, run, event_handler=None, extra_env=None, cmdline=()):
        # ansible-runner puts the extravars on ansible-playbook's command line as JSON: this is where a datetime
        # crashed with a traceback.
        json.dumps(run.extravars)
        self.runs.append(run)

        class Result:
            status, rc = "successful", 0

        return Result()


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(cli, "run_playbook", rec)
    return rec


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_key_value_times_stay_strings(capsys, recorder, tmp_path):
    code, _out, err = run(
        capsys,
        "incident",
        "--incident-id", "INC-20261125-001",
        "--private-data-dir", str(tmp_path / "r"),
        "-e", "incident_loss_started=2026-11-25T08:00:00+08:00",
        "-e", "incident_detected_at=2026-11-25 09:30",
        "-e", "incident_summary=yes",
    )  # fmt: skip
    assert code == 0, err
    ev = recorder.runs[0].extravars
    assert ev["incident_loss_started"] == "2026-11-25T08:00:00+08:00"
    assert ev["incident_detected_at"] == "2026-11-25 09:30" and ev["incident_summary"] == "yes"


def test_vars_file_times_stay_strings_and_bad_files_are_one_line(capsys, recorder, tmp_path):
    good = tmp_path / "vars.yml"
    good.write_text("incident_loss_started: 2026-11-25T08:00:00+08:00\n")
    extra = cli.parse_extra_vars([f"@{good}"])
    assert extra.file_values["incident_loss_started"] == "2026-11-25T08:00:00+08:00"
    binary = tmp_path / "bin.yml"
    binary.write_bytes(b"\xff\xfe\x00x")
    for item, words in (
        (f"@{tmp_path / 'missing.yml'}", "does not exist"),
        (f"@{tmp_path}", "is not a regular file"),
        (f"@{binary}", "is not UTF-8"),
        ("[1]", "expected key=value"),
        ("{bad json", "not valid JSON"),
    ):
        code, _out, err = run(capsys, "verify", "--private-data-dir", str(tmp_path / "r"), "-e", item)
        assert code == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert recorder.runs == []


def test_unexpected_error_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path):
    def boom(*_a, **_k):
        raise RuntimeError("runner exploded\nsecond line")

    monkeypatch.setattr(cli, "run_playbook", boom)
    code, _out, err = run(capsys, "verify", "--private-data-dir", str(tmp_path / "r"))
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "RuntimeError: runner exploded" in err and "second line" not in err


def test_incident_id_is_generated_in_the_playbooks_format_and_printed_first(capsys, recorder, tmp_path):
    evidence = tmp_path / "evidence"
    today = datetime.now().strftime("%Y%m%d")  # noqa: DTZ005 - the playbook numbers by local date
    (evidence / f"INC-{today}-004").mkdir(parents=True)
    base = ["incident", "--evidence-dir", str(evidence), "--private-data-dir", str(tmp_path / "r"), "--plain"]
    code, out, err = run(capsys, *base)
    assert code == 0, err
    assert out.splitlines()[0] == f"Incident id: INC-{today}-005"
    assert recorder.runs[0].extravars["ledgerguard_incident_id"] == f"INC-{today}-005"
    assert (evidence / f"INC-{today}-005").is_dir()  # reserved: a second operator gets the next one
    code, out, _err = run(capsys, *base)
    assert out.splitlines()[0] == f"Incident id: INC-{today}-006"
    # An id given on the command line or in -e is used as it is.
    code, out, _err = run(capsys, *base, "--incident-id", "INC-X-1")
    assert recorder.runs[-1].extravars["ledgerguard_incident_id"] == "INC-X-1" and "Incident id:" not in out
    code, out, _err = run(capsys, *base, "-e", "ledgerguard_incident_id=INC-Y-2")
    assert recorder.runs[-1].extravars["ledgerguard_incident_id"] == "INC-Y-2" and "Incident id:" not in out
    # A dry run reserves nothing.
    code, out, _err = run(capsys, *base, "--check")
    assert out.splitlines()[0] == f"Incident id: INC-{today}-007" and not (evidence / f"INC-{today}-007").exists()


def test_vars_file_goes_through_by_path(capsys, recorder, tmp_path):
    secret_file = tmp_path / "secret vars.yml"
    secret_file.write_text("db_password: Sup3rSecretFromFile\n")
    code, _out, err = run(
        capsys, "verify", "--private-data-dir", str(tmp_path / "r"), "-e", f"@{secret_file}", "-e", "a=1"
    )
    assert code == 0, err
    recorded = recorder.runs[0]
    assert recorded.extravars_files == [str(secret_file)]
    assert "Sup3rSecretFromFile" not in json.dumps(recorded.extravars) and recorded.extravars["a"] == "1"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("B2_ACCOUNT_KEY", "b2-secret-value"),
        ("AZURE_ACCOUNT_KEY", "azure-secret-value"),
        ("MYSQL_PWD", "mysql-secret-value"),
        ("SSHPASS", "ssh-secret-value"),
        ("RESTIC_PASSWORD", "restic-secret-value"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"),
        ("GOOGLE_APPLICATION_CREDENTIALS_JSON", "gcs-secret-value"),
        ("ANSIBLE_BECOME_PASS", "become-secret-value"),
        ("SOME_UNKNOWN_THING", "unknown-secret-value"),
    ],
)
def test_environment_is_an_allow_list(name, value):
    env = runner.scrubbed_environment({name: value, "PATH": "/usr/bin", "LANG": "zh_CN.UTF-8"})
    assert name not in env and value not in json.dumps(env)
    assert env["PATH"] == "/usr/bin" and env["LANG"] == "zh_CN.UTF-8"


def test_environment_masks_credentials_in_urls():
    env = runner.scrubbed_environment(
        {
            "RESTIC_REPOSITORY": "s3:https://AKIAKEY:repo-url-secret@s3.example.com/bucket",
            "https_proxy": "http://proxyuser:proxy-secret@proxy:3128",
            "RESTIC_PASSWORD_FILE": "/root/.restic-pw",
            "ANSIBLE_VAULT_PASSWORD_FILE": "/root/.vault",
        }
    )
    blob = json.dumps(env)
    assert "repo-url-secret" not in blob and "proxy-secret" not in blob
    assert re.fullmatch(r"s3:https://AKIAKEY:\*\*\*@s3\.example\.com/bucket", env["RESTIC_REPOSITORY"])
    assert env["RESTIC_PASSWORD_FILE"] == "/root/.restic-pw" and env["ANSIBLE_VAULT_PASSWORD_FILE"] == "/root/.vault"


def test_argument_errors_are_one_line(capsys):
    for argv in (["freeze"], ["drill", "--rto", "soon"], ["incident", "--incident-id", "../x"], []):
        code, _out, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "usage:" not in err, err
    code, _out, err = run(capsys, "freeze")
    assert (
        err
        == "ledgerguard freeze: the following arguments are required: --incident-id; see 'ledgerguard freeze --help'\n"
    )
