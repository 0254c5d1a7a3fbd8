"""Verifier for the restic scenario (testinfra, podman backend): the real state after converge.

restic runs inside the container through `podman exec --env NAME`, which copies the value of NAME from this
process's environment: the password and the S3 keys never appear in a command line.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

TAG = "molecule-restic"


def _restic_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RESTIC_REPOSITORY"] = f"s3:{os.environ['LEDGERGUARD_TEST_S3_ENDPOINT']}/ledgerguard-restic"
    env["RESTIC_PASSWORD"] = Path(os.environ["LEDGERGUARD_TEST_PASSWORD_FILE"]).read_text().rstrip("\n")
    return env


def podman_exec(host, *argv: str, names: tuple[str, ...] = (), stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run argv in the scenario's container with the named variables copied from _restic_env()."""
    cmd = ["podman", "exec", "-i"]
    for name in names:
        cmd += ["--env", name]
    cmd += [host.backend.name, *argv]
    return subprocess.run(cmd, env=_restic_env(), input=stdin, capture_output=True, text=True, timeout=120)


def restic_json(host, *args: str):
    names = ("RESTIC_REPOSITORY", "RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    proc = podman_exec(host, "restic", "--no-cache", *args, "--json", names=names)
    assert proc.returncode == 0, proc.stderr
    # `snapshots --json` prints one document, `ls --json` one document per line.
    docs = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return docs[0] if len(docs) == 1 and isinstance(docs[0], list) else docs


def tree_digest(host, root: str) -> dict[str, str]:
    """Map every path below root to 'dir', or to the sha256 of the file."""
    out = host.check_output(
        "cd %s && find . -mindepth 1 \\( -type d -printf 'dir  %%p\\n' \\) -o \\( -type f -exec sha256sum {} + \\)",
        root,
    )
    digest = {}
    for line in out.splitlines():
        kind, path = line.split("  ", 1)
        digest[path] = kind
    return digest


@pytest.fixture(scope="module")
def source(host):
    return tree_digest(host, "/srv/ledgers")


def test_source_tree_is_the_prepared_sample(source):
    files = {p for p, kind in source.items() if kind != "dir"}
    assert files == {
        "./C001/ledger.csv",
        "./C001/archive.bin",
        "./C002/凭证/2024-01 记账凭证.csv",
        "./C002/empty.txt",
    }
    assert source["./C002/empty.txt"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert source["./C003 empty"] == "dir"


def test_one_snapshot_with_the_scenario_tag(host):
    snapshots = restic_json(host, "snapshots", "--tag", TAG)
    assert len(snapshots) == 1, "the idempotence run must not make a second snapshot"
    assert snapshots[0]["paths"] == ["/srv/ledgers"]
    assert snapshots[0]["tags"] == [TAG]


def test_snapshot_lists_every_file(host, source):
    entries = restic_json(host, "ls", "latest", "--tag", TAG)
    listed = {e["path"] for e in entries if e.get("struct_type") == "node" and e.get("type") == "file"}
    assert listed == {"/srv/ledgers/" + p[2:] for p, kind in source.items() if kind != "dir"}


def test_whole_restore_is_byte_identical(host, source):
    # restic_restore's landing rule: /srv/ledgers in the snapshot lands at <target>/srv/ledgers.
    assert tree_digest(host, "/srv/restore/srv/ledgers") == source
    assert host.check_output("ls -A /srv/restore") == "srv"


def test_partial_restore_holds_only_the_chosen_client(host, source):
    restored = tree_digest(host, "/srv/restore-c002/srv/ledgers")
    expected = {p: kind for p, kind in source.items() if p == "./C002" or p.startswith("./C002/")}
    assert restored == expected
    assert host.check_output("ls -A /srv/restore-c002/srv/ledgers") == "C002"


def test_restored_files_keep_their_mode(host):
    assert host.file("/srv/restore/srv/ledgers/C001/ledger.csv").mode == 0o640
    assert host.file("/srv/restore/srv/ledgers/C001").mode == 0o750


def test_password_left_no_trace_in_the_container(host):
    """The modules hand restic the password in a 0600 temp file that must be gone after the run."""
    password = _restic_env()["RESTIC_PASSWORD"]
    proc = podman_exec(host, "grep", "-rlsF", "-f", "-", "/tmp", "/var/tmp", "/root", "/srv", "/run", stdin=password)
    assert proc.returncode == 1, f"password found in: {proc.stdout}"
