"""restic >= 0.16 compatibility: the backend probe before restic runs (newer restic retries an unreachable
backend for minutes) and the JSON error lines of restic >= 0.17 read as plain text."""

from __future__ import annotations

import socket
import time

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic as r


@pytest.mark.parametrize(
    ("repository", "address"),
    [
        ("s3:http://127.0.0.1:9000/bucket/prefix", ("127.0.0.1", 9000)),
        ("s3:https://oss-cn-hangzhou.aliyuncs.com/books", ("oss-cn-hangzhou.aliyuncs.com", 443)),
        ("s3:http://minio.local/books", ("minio.local", 80)),
        ("s3:s3.amazonaws.com/books", ("s3.amazonaws.com", 443)),
        ("s3:http://[::1]:9000/b", ("::1", 9000)),
        ("rest:http://backup.example:8000/repo", ("backup.example", 8000)),
        ("/srv/restic-repo", None),
        ("sftp:user@host:/srv/repo", None),
        ("rclone:remote:bucket", None),
    ],
)
def test_backend_address(repository, address):
    assert r.backend_address(repository) == address


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_probe_passes_a_listening_endpoint():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert r.probe_backend(f"s3:http://127.0.0.1:{port}/bucket", {}) is None


def test_probe_names_the_endpoint_of_a_stopped_server():
    port = _free_port()
    started = time.monotonic()
    err = r.probe_backend(f"s3:http://127.0.0.1:{port}/bucket", {}, attempts=2, pause=0.2)
    assert time.monotonic() - started < 5
    assert err is not None and err.kind == "unreachable"
    assert err.message == (
        f"Cannot reach the backend of restic repository s3:http://127.0.0.1:{port}/bucket: 127.0.0.1:{port} "
        f"(connect: connection refused). Check that the storage server at 127.0.0.1:{port} is running and reachable "
        "from this host (network, firewall, endpoint URL), then retry."
    )
    assert err.details["attempts"] == "2"


def test_probe_is_skipped_behind_a_proxy_and_for_local_repositories(tmp_path):
    port = _free_port()
    assert r.probe_backend(f"s3:http://127.0.0.1:{port}/b", {"HTTPS_PROXY": "http://127.0.0.1:3128"}) is None
    assert r.probe_backend(str(tmp_path), {}) is None


def test_json_error_lines_of_newer_restic_read_like_restic_014():
    stderr = (
        '{"message_type":"exit_error","code":1,"message":"no matching ID found for prefix \\"deadbeef\\""}\n'
        '{"message_type":"error","error":{"message":"write /t/a: no space left on device"},"during":"restore",'
        '"item":"/t/a"}\n'
        "plain line stays\n"
    )
    assert r.plain_stderr(stderr) == (
        'Fatal: no matching ID found for prefix "deadbeef"\n'
        "error (restore) for /t/a: write /t/a: no space left on device\n"
        "plain line stays\n"
    )
    assert r.plain_stderr("Fatal: wrong password or no key found\n") == "Fatal: wrong password or no key found\n"


def test_the_engine_probes_once_before_its_first_run_and_never_starts_restic_against_a_dead_endpoint():
    calls = []

    def fake(argv, env, timeout=None, cwd=None, **_):
        calls.append(argv)
        return r.ResticResult(argv, 0, "[]", "")

    port = _free_port()
    dead = r.Restic("restic", f"s3:http://127.0.0.1:{port}/b", "/pw", run=fake, base_env={})
    with pytest.raises(r.ResticError) as err:
        dead.run("snapshots", "--json")
    assert err.value.kind == "unreachable" and f"127.0.0.1:{port} (connect: connection refused)" in err.value.message
    assert calls == []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        alive = r.Restic("restic", f"s3:http://127.0.0.1:{server.getsockname()[1]}/b", "/pw", run=fake, base_env={})
        alive.run("snapshots", "--json")
    alive.run("snapshots", "--json")  # probed once: the listener is gone now, the engine does not ask again
    assert [c[1] for c in calls] == ["snapshots", "snapshots"]
