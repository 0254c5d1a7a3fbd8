"""Run the embedded S3 server (moto on a free 127.0.0.1 port) for the Molecule scenarios.

scripts/molecule.sh starts this in the background. It writes a shell file with the variables the scenarios read,
the restic password file and the AWS shared-credentials file (both 0600), then serves until it receives SIGTERM or
SIGINT, or until the process that started it exits; then it stops moto.

    python scripts/molecule/s3_server.py RUN_DIR
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from ledgerguard.embedded_s3 import EmbeddedS3  # noqa: E402


def write_private(path: Path, text: str) -> None:
    """Write a file that only its owner may read (created 0600, never world-readable in between)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[1]).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    parent = os.getppid()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())

    server = EmbeddedS3(log_path=run_dir / "moto.log").start()
    try:
        env = server.env()
        password_file = run_dir / "restic-password"
        credentials_file = run_dir / "s3-credentials"
        write_private(password_file, f"molecule-{secrets.token_hex(16)}\n")
        write_private(
            credentials_file,
            "[default]\n"
            f"aws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\n"
            f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
            f"region = {env['AWS_DEFAULT_REGION']}\n",
        )
        exports = {
            "LEDGERGUARD_TEST_S3_ENDPOINT": server.endpoint,
            "LEDGERGUARD_TEST_PASSWORD_FILE": str(password_file),
            "LEDGERGUARD_TEST_S3_CREDENTIALS_FILE": str(credentials_file),
            "LEDGERGUARD_TEST_S3_PID": str(os.getpid()),
            **env,
        }
        lines = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in exports.items())
        write_private(run_dir / "s3.env.part", lines)
        (run_dir / "s3.env.part").replace(run_dir / "s3.env")
        # Serve until told to stop, or until the starting script is gone (never leave moto behind).
        while not stop.wait(1.0):
            if os.getppid() != parent or (server.process and server.process.poll() is not None):
                break
    finally:
        server.stop()
        (run_dir / "s3.env").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
