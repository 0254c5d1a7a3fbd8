"""restic's sftp: backend (a NAS over SSH, issue 17) against a real OpenSSH server on 127.0.0.1: its own host key,
strict host-key checking against a known_hosts file, the client key given as a file. The restic modules run as real
module processes with restic 0.14 and 0.18: init, backup, restore byte-identical, check; an unreachable server, an
unknown and a changed host key and a refused login are each reported by name before restic runs; the key never
appears in argv or results."""

# ruff: noqa: F811 (the restic_bin fixture comes from test_repo_layouts; tests take it by name)
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from test_repo_layouts import make_books, run_module, sha_tree

# a fixture, taken by name
from test_repo_layouts import restic_bin  # noqa: F401  # pylint: disable=unused-import

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen") and os.geteuid() == 0),
    reason="needs openssh-server, openssh-client and root (scripts/setup.sh installs openssh-server)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1:<free port>, root login by key only, sftp subsystem; stopped afterwards."""
    base = tmp_path_factory.mktemp("sshd")
    hostkey = keygen(base / "host_key")
    client = keygen(base / "client_key")
    (base / "authorized_keys").write_text(Path(str(client) + ".pub").read_text())
    (base / "authorized_keys").chmod(0o600)
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {hostkey}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp internal-sftp\n"
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    log = open(base / "sshd.log", "wb")  # noqa: SIM115 (kept open while the server runs)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sshd did not start: {(base / 'sshd.log').read_text()}") from None
            time.sleep(0.1)
    known = base / "known_hosts"
    key_type, key_data = Path(str(hostkey) + ".pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{port} {key_type} {key_data}\n")
    try:
        yield {"port": port, "client": client, "known_hosts": known, "base": base, "hostkey": hostkey}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def sftp_args(sshd: dict, tmp_path: Path, restic_bin: str, name: str = "repo", **extra) -> dict:
    pwfile = tmp_path / "pw"
    if not pwfile.exists():
        pwfile.write_text("sftp-secret")
        pwfile.chmod(0o600)
    args = {
        "repository": f"sftp://root@127.0.0.1:{sshd['port']}/{tmp_path / name}",
        "password_file": str(pwfile),
        "restic_binary": restic_bin,
        "cache_dir": str(tmp_path / "cache"),
        "sftp_identity_file": str(sshd["client"]),
        "sftp_known_hosts_file": str(sshd["known_hosts"]),
    }
    args.update(extra)
    return args


def test_sftp_repository_backup_restore_check(sshd, restic_bin, tmp_path):
    books = make_books(tmp_path / "live")
    args = sftp_args(sshd, tmp_path, restic_bin)
    made = run_module("restic_repository", dict(args, init=True), tmp_path)
    assert not made.get("failed"), made.get("msg")
    assert made["backend"] == "sftp" and made["changed"] is True
    assert (tmp_path / "repo" / "config").is_file()
    backed = run_module("restic_backup", dict(args, paths=[str(books)], tags=["nightly"]), tmp_path)
    assert not backed.get("failed"), backed.get("msg")
    target = tmp_path / "restore"
    restored = run_module(
        "restic_restore",
        dict(args, snapshot=backed["snapshot_id"], target=str(target), include_paths=[str(books / "C001")]),
        tmp_path,
    )
    assert not restored.get("failed"), restored.get("msg")
    assert sha_tree(Path(restored["restored_paths"][0]["restored_to"])) == sha_tree(books / "C001")
    checked = run_module("restic_check", args, tmp_path)
    assert not checked.get("failed") and checked["ok"] is True, checked.get("msg")
    # secrets: the key's content never appears in any result (the key FILE's path may)
    secret = Path(sshd["client"]).read_text()
    body = "".join(line for line in secret.splitlines() if not line.startswith("-----"))
    for result in (made, backed, restored, checked):
        assert body[:40] not in json.dumps(result) and "sftp-secret" not in json.dumps(result)


def test_sftp_failures_are_named_before_restic_runs(sshd, restic_bin, tmp_path):
    args = sftp_args(sshd, tmp_path, restic_bin)
    assert not run_module("restic_repository", dict(args, init=True), tmp_path).get("failed")

    down = dict(args, repository=f"sftp://root@127.0.0.1:{free_port()}/{tmp_path / 'repo'}")
    res = run_module("restic_snapshots", down, tmp_path)
    assert res["failed"] and res["error_kind"] == "unreachable" and "refused" in res["msg"].lower(), res["msg"]

    unknown = tmp_path / "empty_known_hosts"
    unknown.write_text("")
    res = run_module("restic_snapshots", dict(args, sftp_known_hosts_file=str(unknown)), tmp_path)
    assert res["failed"] and res["error_kind"] == "sftp_host_key", res["msg"]
    assert "not in the known_hosts file" in res["msg"]

    other = keygen(tmp_path / "other_host_key")
    key_type, key_data = Path(str(other) + ".pub").read_text().split()[:2]
    changed = tmp_path / "changed_known_hosts"
    changed.write_text(f"[127.0.0.1]:{sshd['port']} {key_type} {key_data}\n")
    res = run_module("restic_snapshots", dict(args, sftp_known_hosts_file=str(changed)), tmp_path)
    assert res["failed"] and res["error_kind"] == "sftp_host_key" and "CHANGED" in res["msg"], res["msg"]

    stranger = keygen(tmp_path / "stranger_key")
    res = run_module("restic_snapshots", dict(args, sftp_identity_file=str(stranger)), tmp_path)
    assert res["failed"] and res["error_kind"] == "sftp_auth_failed" and "authorized_keys" in res["msg"], res["msg"]

    res = run_module("restic_snapshots", dict(args, sftp_identity_file=str(tmp_path / "no-key")), tmp_path)
    assert res["failed"] and res["error_kind"] == "sftp_key_file"

    missing = dict(args, repository=f"sftp://root@127.0.0.1:{sshd['port']}/{tmp_path / 'nothing-here'}")
    res = run_module("restic_snapshots", missing, tmp_path)
    assert res["failed"] and res["error_kind"] == "repo_missing", res["msg"]
