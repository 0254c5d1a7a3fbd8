"""Shared testinfra fixtures for the Molecule verifiers.

pytest loads this file for every molecule/<scenario>/tests/ (the repository root is pytest's rootdir), so the
scenarios share these helpers instead of each keeping a copy.
"""

from __future__ import annotations

import pytest


class UnitProcess:
    """The main process of a systemd unit in the container under test (read when asked, never cached)."""

    def __init__(self, host, unit: str) -> None:
        self.host = host
        self.unit = unit

    @property
    def pid(self) -> int:
        out = self.host.run(f"systemctl show -p MainPID --value {self.unit}").stdout.strip()
        return int(out or 0)

    def state(self) -> str:
        """The state letter of /proc/PID/stat: R running, S sleeping, T stopped (SIGSTOP)."""
        stat = self.host.run(f"cat /proc/{self.pid}/stat")
        assert stat.rc == 0, f"{self.unit}: no process {self.pid}: {stat.stderr}"
        return stat.stdout.rpartition(")")[2].split()[0]


@pytest.fixture
def encryptor(host) -> UnitProcess:
    """The running writer started by molecule/_shared/tasks/encryptor.yml (transient unit lg-encryptor.service)."""
    return UnitProcess(host, "lg-encryptor.service")
