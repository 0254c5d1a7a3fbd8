"""`ledgerguard manifest record`: bad input is refused before restic runs (exit 2, message names the input)."""

from __future__ import annotations

import pytest

from ledgerguard import cli


@pytest.fixture(autouse=True)
def no_restic_env(monkeypatch):
    for name in ("RESTIC_REPOSITORY", "RESTIC_PASSWORD_FILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_needs_a_repository(capsys):
    assert cli.main(["manifest", "record", "--snapshot", "latest"]) == cli.EXIT_BAD_INPUT
    assert "manifest record: give --repository or set RESTIC_REPOSITORY" in capsys.readouterr().err


def test_refuses_credentials_in_the_url(capsys):
    argv = ["manifest", "record", "--snapshot", "latest", "--repository", "s3:https://AK:SECRET@127.0.0.1:9/b"]
    assert cli.main(argv) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "must not embed credentials" in err and "SECRET" not in err


def test_needs_a_private_password_file(tmp_path, capsys):
    loose = tmp_path / "pw"
    loose.write_text("x")
    loose.chmod(0o644)
    argv = ["manifest", "record", "--snapshot", "latest", "--repository", str(tmp_path / "repo")]
    assert cli.main(argv) == cli.EXIT_BAD_INPUT
    assert "give --password-file (a 0600 file) or set RESTIC_PASSWORD_FILE" in capsys.readouterr().err
    assert cli.main([*argv, "--password-file", str(loose)]) == cli.EXIT_BAD_INPUT
    assert f"--password-file {loose} has mode 0644" in capsys.readouterr().err


def test_s3_credentials_from_ini_or_environment(tmp_path, monkeypatch):
    ini = tmp_path / "creds"
    ini.write_text("[default]\naws_access_key_id = AK\naws_secret_access_key = SK\nregion = us-east-1\n")
    ini.chmod(0o600)
    assert cli.s3_env(str(ini), "default") == {
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.raises(cli.BadInput, match=r"has no \[other\] profile"):
        cli.s3_env(str(ini), "other")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "EK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ES")
    assert cli.s3_env(None, "default") == {"AWS_ACCESS_KEY_ID": "EK", "AWS_SECRET_ACCESS_KEY": "ES"}


def test_snapshot_paths_must_exist_on_this_host(tmp_path, capsys):
    """A real restic repository whose snapshot backed up a path that is gone: refused with exit 2, nothing stored."""
    import json
    import os
    import shutil
    import subprocess

    if not shutil.which("restic"):
        pytest.skip("restic is not installed")
    pw = tmp_path / "pw"
    pw.write_text("pw")
    pw.chmod(0o600)
    repo, data = tmp_path / "repo", tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "RESTIC_REPOSITORY": str(repo)}
    env["RESTIC_PASSWORD_FILE"] = str(pw)
    env["RESTIC_CACHE_DIR"] = str(tmp_path / "cache")
    subprocess.run(["restic", "init"], env=env, check=True, capture_output=True)
    subprocess.run(["restic", "backup", str(data)], env=env, check=True, capture_output=True)
    shutil.rmtree(data)
    argv = ["manifest", "record", "--snapshot", "latest", "--repository", str(repo), "--password-file", str(pw)]
    assert cli.main([*argv, "--cache-dir", str(tmp_path / "cache")]) == cli.EXIT_BAD_INPUT
    assert f"backed up {data}, which does not exist on this host" in capsys.readouterr().err
    snaps = json.loads(
        subprocess.run(["restic", "snapshots", "--json"], env=env, capture_output=True, check=True).stdout
    )
    assert len(snaps) == 1
