"""No secret leaks (issue 7): the incident, the drill and verification through the ledgerguard CLI, with a known
restic password and known S3 keys, while the process table is sampled; then every file the runs wrote is searched.

The S3 keys reach the CLI as a 0600 credentials file (for the incident they are also in the CLI's own environment,
as AWX would inject them, to prove the CLI does not pass them on); the password always as a 0600 file. restic itself
must get the S3 keys through its environment (that is how restic reads them), so /proc/<restic>/environ holding them
is expected and not a leak; the password may be in no process's environment at all (restic reads it from a 0600 file
that is removed afterwards).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ProcessWatch, cli_environment
from test_incident import Site, tree

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")
LEDGERGUARD = [sys.executable, "-m", "ledgerguard"]


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LEDGERGUARD, *args], capture_output=True, text=True, env=cli_environment(env), timeout=900, check=False
    )


def newer(path: Path, since: float) -> bool:
    """path was changed at or after since (False when it is gone: other tests remove their folders meanwhile)."""
    try:
        return path.lstat().st_mtime >= since
    except FileNotFoundError:
        return False


def files_under(root: Path) -> Iterator[Path]:
    """root itself if it is a file, else the files in it, its subfolders' too, not following symlinks; a folder
    removed during the walk (other tests' temporary folders, Ansible's per-task folders) is skipped, not an error."""
    if root.is_file():
        yield root
        return
    for here, _folders, files in os.walk(root):
        for name in files:
            yield Path(here) / name


def test_no_secret_in_any_file_or_process(tmp_path, s3_server):
    start = time.time()
    password = "lg-rel-pw-" + secrets.token_hex(12)
    access_key = "AKIALGREL" + secrets.token_hex(6).upper()
    secret_key = "lgRelSecret/" + secrets.token_urlsafe(24)
    bucket = "lg-rel-sec-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path, s3_server, bucket)
    site.password_file.write_text(password + "\n")
    site.s3_env = {**site.s3_env, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    site.credentials_file.write_text(
        f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"
    )
    site.restic("init")
    site.backup(dt.datetime.now() - dt.timedelta(days=1))
    clean = tree(site.root("c001"))
    (site.root("c001") / "凭证" / "2026-09.csv").unlink()
    inventory = site.inventory()
    runner_dir, evidence, state = tmp_path / "runner", site.evidence, site.state
    common = ["--plain", "-i", str(inventory), "--repository", site.repo, "--evidence-dir", str(evidence),
              "--private-data-dir", str(runner_dir), "-v",
              "-e", f"ledgerguard_state_dir={state}", "-e", "incident_operator=pytest"]  # fmt: skip
    watch = ProcessWatch(
        {
            "restic password": password.encode(),
            "S3 access key": access_key.encode(),
            "S3 secret key": secret_key.encode(),
        },
        {"restic password": password.encode()},
        seen=lambda argv: argv[0].endswith(b"restic"),
    )
    watch.start()
    try:
        # The drill (before the incident: the books are damaged after) and later the verification, with the
        # credentials file.
        drill = cli(
            "drill", *common, "--password-file", str(site.password_file),
            "--s3-credentials-file", str(site.credentials_file), "--sandbox", str(tmp_path / "sandbox"),
            "--drill-id", "drill-rel", env={},
        )  # fmt: skip
        assert drill.returncode == 0, drill.stdout[-3000:] + drill.stderr
        # The incident, with the S3 keys also in the CLI's environment (the CLI never hands such variables to
        # ansible-runner, which would write them to its artifacts; the keys travel as the 0600 file).
        incident = cli(
            "incident", *common, "--password-file", str(site.password_file), "--incident-id", "INC-20261126-077",
            "--clients", "c001", "--s3-credentials-file", str(site.credentials_file),
            env={"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key,
                 "AWS_DEFAULT_REGION": "us-east-1"},
        )  # fmt: skip
        assert incident.returncode == 0, incident.stdout[-3000:] + incident.stderr
        assert tree(site.root("c001")) == clean
        verify = cli(
            "verify", *common, "--password-file", str(site.password_file),
            "--s3-credentials-file", str(site.credentials_file), env={},
        )  # fmt: skip
        assert verify.returncode in (0, 1), verify.stdout[-3000:] + verify.stderr
    finally:
        watch.stop.set()
        watch.join(timeout=10)
    assert watch.seen > 0, "the process table was never sampled while restic ran"
    assert watch.found == []

    needles = {
        "restic password": password.encode(),
        "S3 access key": access_key.encode(),
        "S3 secret key": secret_key.encode(),
    }
    inputs = {site.password_file, site.credentials_file}
    # What the runs wrote: this test's folders (runner private data dirs, evidence, state, books, sandbox), the
    # module temp dirs and restic's cache under HOME, and anything new directly in /tmp (other tests' pytest folders
    # excepted).
    roots = [tmp_path, Path.home() / ".ansible", Path.home() / ".cache" / "restic"]
    roots += [p for p in Path("/tmp").iterdir() if not p.name.startswith("pytest-of-") and newer(p, start - 1)]  # noqa: S108
    scanned, leaks = 0, []
    seen: set[Path] = set()
    for root in roots:
        for path in files_under(root):
            try:
                if path in seen or path in inputs or not path.is_file() or path.is_symlink():
                    continue
                st = path.stat()
                if st.st_mtime < start - 1 or st.st_size > 64 * 1024 * 1024:
                    continue
                seen.add(path)
                data = path.read_bytes()
            except OSError:
                continue
            scanned += 1
            leaks += [f"{what} in {path}" for what, value in needles.items() if value in data]
    outputs = incident.stdout + incident.stderr + drill.stdout + drill.stderr + verify.stdout + verify.stderr
    leaks += [f"{what} in the CLI output" for what, value in needles.items() if value.decode() in outputs]
    assert leaks == []
    # Evidence, timeline, reports, ansible-runner artifacts of three runs, drill history.
    assert scanned > 150
    assert (evidence / "INC-20261126-077" / "timeline.jsonl").exists()
    assert (evidence / "INC-20261126-077" / "report.json").exists()
