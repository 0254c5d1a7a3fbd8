"""The controller-side secrets contract of the restic action plugins (resolve_connection)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restic_action import (
    credentials_from_ini,
    resolve_connection,
)


@pytest.fixture
def pwfile(tmp_path):
    path = tmp_path / "pw"
    path.write_text("from-var-file\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def envpw(tmp_path):
    path = tmp_path / "envpw"
    path.write_text("from-env-file\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def ini(tmp_path):
    path = tmp_path / "creds"
    path.write_text(
        "[default]\naws_access_key_id = AKIADEF\naws_secret_access_key = defsecret\n\n"
        "[audit]\naws_access_key_id = AKIAAUD\naws_secret_access_key = audsecret\naws_session_token = tok\n"
        "region = eu-central-1\n"
    )
    path.chmod(0o600)
    return path


def test_task_args_win(pwfile, ini):
    args = {"repository": "/task/repo", "password_file": "/host/pw", "env": {"AWS_ACCESS_KEY_ID": "task"}}
    variables = {"ledgerguard_repository": "/var/repo", "ledgerguard_password_file": str(pwfile),
                 "ledgerguard_s3_credentials_file": str(ini)}  # fmt: skip
    out = resolve_connection(args, variables, {"RESTIC_REPOSITORY": "/env/repo"})
    assert out == args  # nothing read, nothing added


def test_variables_before_environment(pwfile, envpw, ini):
    variables = {"ledgerguard_repository": "/var/repo", "ledgerguard_password_file": str(pwfile),
                 "ledgerguard_s3_credentials_file": str(ini)}  # fmt: skip
    environ = {"RESTIC_REPOSITORY": "/env/repo", "RESTIC_PASSWORD_FILE": str(envpw), "AWS_ACCESS_KEY_ID": "envkey",
               "AWS_SECRET_ACCESS_KEY": "envsecret"}  # fmt: skip
    out = resolve_connection({"snapshot": "latest"}, variables, environ)
    assert out == {
        "snapshot": "latest",
        "repository": "/var/repo",
        "password": "from-var-file\n",
        "env": {"AWS_ACCESS_KEY_ID": "AKIADEF", "AWS_SECRET_ACCESS_KEY": "defsecret"},
    }


def test_environment_last(envpw):
    environ = {"RESTIC_REPOSITORY": "/env/repo", "RESTIC_PASSWORD_FILE": str(envpw), "AWS_ACCESS_KEY_ID": "envkey",
               "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_DEFAULT_REGION": "us-east-1", "HOME": "/root"}  # fmt: skip
    out = resolve_connection({}, {}, environ)
    assert out == {
        "repository": "/env/repo",
        "password": "from-env-file\n",
        "env": {"AWS_ACCESS_KEY_ID": "envkey", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_DEFAULT_REGION": "us-east-1"},
    }


def test_profile_choice(ini):
    env = credentials_from_ini(str(ini), "audit")
    assert env == {"AWS_ACCESS_KEY_ID": "AKIAAUD", "AWS_SECRET_ACCESS_KEY": "audsecret", "AWS_SESSION_TOKEN": "tok",
                   "AWS_DEFAULT_REGION": "eu-central-1"}  # fmt: skip
    with pytest.raises(AnsibleActionFail, match=r"has no \[nope\] profile \(it has: default, audit\)"):
        credentials_from_ini(str(ini), "nope")


def test_missing_repository_and_password():
    with pytest.raises(AnsibleActionFail, match="No restic repository given: set the task option repository"):
        resolve_connection({}, {}, {})
    with pytest.raises(AnsibleActionFail, match="No restic password for repository /r: set password or password_file"):
        resolve_connection({"repository": "/r"}, {}, {})


def test_credentials_in_url_are_refused_without_echoing_them(pwfile):
    with pytest.raises(AnsibleActionFail) as exc:
        resolve_connection({"repository": "s3:https://AKIA:wJalrXUtnFEMI@s3.example.com/bucket"}, {}, {})
    assert "embeds credentials" in exc.value.message and "s3:https://***@s3.example.com/bucket" in exc.value.message
    assert "wJalrXUtnFEMI" not in exc.value.message


def test_secret_files_readable_by_others_are_refused(pwfile, ini):
    pwfile.chmod(0o640)
    with pytest.raises(AnsibleActionFail, match=r"is readable by group or others \(mode 0640\).*chmod 600"):
        resolve_connection({"repository": "/r"}, {"ledgerguard_password_file": str(pwfile)}, {})
    ini.chmod(0o644)
    with pytest.raises(AnsibleActionFail, match="ledgerguard_s3_credentials_file .* is readable by group or others"):
        resolve_connection({"repository": "/r", "password": "x"}, {"ledgerguard_s3_credentials_file": str(ini)}, {})


def test_unreadable_password_file(tmp_path):
    with pytest.raises(AnsibleActionFail, match="cannot be read on the controller: No such file or directory"):
        resolve_connection({"repository": "/r"}, {"ledgerguard_password_file": str(tmp_path / "absent")}, {})


def test_ini_without_keys(tmp_path):
    path = tmp_path / "c"
    path.write_text("[default]\nregion = x\n")
    path.chmod(0o600)
    with pytest.raises(AnsibleActionFail, match=r"profile \[default\] lacks aws_access_key_id"):
        credentials_from_ini(str(path))
