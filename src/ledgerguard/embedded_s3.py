"""The embedded S3 server: moto's standalone server on a free 127.0.0.1 port.

Used by the demo and by the tests, so that both speak plain S3 to a real HTTP endpoint. Only loopback is used.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# moto accepts any credentials; these fixed ones only make the demo reproducible. Never real secrets.
DEMO_ACCESS_KEY = "ledgerguard-demo-access"
DEMO_SECRET_KEY = "ledgerguard-demo-secret-key"  # noqa: S105 (a fixed key for the local moto server only)
DEMO_REGION = "us-east-1"


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _moto_server_binary() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if not found:
        raise RuntimeError("moto_server not found: run 'make setup' (it installs moto[server] into .venv)")
    return found


@dataclass
class EmbeddedS3:
    """A moto server process. Start with start(), stop with stop(); restartable on the same port."""

    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restic_url(self, bucket: str, prefix: str = "") -> str:
        path = f"{bucket}/{prefix}".rstrip("/")
        return f"s3:{self.endpoint}/{path}"

    def env(self) -> dict[str, str]:
        """The environment restic and boto3 need to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": DEMO_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": DEMO_SECRET_KEY,
            "AWS_DEFAULT_REGION": DEMO_REGION,
        }

    def start(self, timeout: float = 30.0) -> EmbeddedS3:
        if self.process and self.process.poll() is None:
            return self
        if not self.port:
            self.port = free_port()
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = dict(os.environ)
        env.pop("AWS_PROFILE", None)
        self.process = subprocess.Popen(
            [_moto_server_binary(), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode} on port {self.port}")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1).close()  # noqa: S310 (loopback only)
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.endpoint} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def client(self):
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=DEMO_ACCESS_KEY,
            aws_secret_access_key=DEMO_SECRET_KEY,
            region_name=DEMO_REGION,
        )

    def create_bucket(self, name: str) -> None:
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name not in existing:
            client.create_bucket(Bucket=name)

    def __enter__(self) -> EmbeddedS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
