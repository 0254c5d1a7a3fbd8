"""Issue 13 item 16, for real: `ledgerguard ... -e @secrets.yml` runs ansible-playbook through ansible-runner with
the file passed by path; its secret reaches the play but appears nowhere in the private data dir (artifacts, env/,
command, job events, stdout) nor on any process's command line; secrets in the CLI's environment
(B2_ACCOUNT_KEY, AZURE_ACCOUNT_KEY, MYSQL_PWD, SSHPASS, credentials in RESTIC_REPOSITORY) are not passed on."""

from __future__ import annotations

import sys

from conftest import ProcessWatch
from ledgerguard import cli

FILE_SECRET = "VarsFileSecret-7d1f0c"
ENV_SECRETS = {
    "B2_ACCOUNT_KEY": "b2-env-secret-91ab",
    "AZURE_ACCOUNT_KEY": "azure-env-secret-3c2d",
    "MYSQL_PWD": "mysql-env-secret-5e6f",
    "SSHPASS": "sshpass-env-secret-7a8b",
}
URL_SECRET = "url-env-secret-9c0d"


def test_vars_file_and_environment_secrets_never_reach_argv_or_artifacts(tmp_path, monkeypatch, capsys):
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: The secret arrived (without printing it)\n"
        "      ansible.builtin.assert:\n"
        f"        that: db_password == '{FILE_SECRET[:6]}' ~ '{FILE_SECRET[6:]}'\n"
        "        quiet: true\n"
        "    - name: Hold on so the process table can be sampled\n"
        "      ansible.builtin.pause:\n        seconds: 1\n"
    )
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        f"all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    varsfile = tmp_path / "secrets.yml"
    varsfile.write_text(f"db_password: {FILE_SECRET}\n")
    varsfile.chmod(0o600)
    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RESTIC_REPOSITORY", f"s3:https://AKIAEXAMPLE:{URL_SECRET}@s3.example.com/b")
    monkeypatch.setitem(cli.PLAYBOOKS, "verify", str(playbook))
    pdd = tmp_path / "runner"
    secrets = [FILE_SECRET, URL_SECRET, *ENV_SECRETS.values()]
    watch = ProcessWatch(
        {s: s.encode() for s in secrets}, seen=lambda argv: any(b"ansible-playbook" in a for a in argv)
    )
    watch.start()
    try:
        code = cli.main(
            ["verify", "--plain", "-i", str(inventory), "--private-data-dir", str(pdd), "-e", f"@{varsfile}"]
        )
    finally:
        watch.stop.set()
        watch.join()
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert watch.seen > 0 and watch.found == []
    leaks = []
    files = [p for p in pdd.rglob("*") if p.is_file()]
    assert any(p.name == "command" for p in files)
    for path in files:
        data = path.read_bytes()
        leaks += [
            f"{secret} in {path}"
            for secret in [FILE_SECRET, URL_SECRET, *ENV_SECRETS.values()]
            if secret.encode() in data
        ]
    assert leaks == []
    command = next(p for p in files if p.name == "command").read_text()
    assert f"@{varsfile}" in command  # passed by path
