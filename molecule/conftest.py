"""Shared testinfra fixtures for the Molecule verifiers.

pytest loads this file for every molecule/<scenario>/tests/ (the repository root is pytest's rootdir), so the
scenarios share these helpers instead of each keeping a copy.

It also makes testinfra's podman backend (`podman://<container>`) run each command through nsenter, as the lg_podman
connection does (molecule/_shared/lg_nsenter.py: same namespaces, capabilities and environment as podman exec, without
its three programs per command), once the scenario's Ansible steps have cached the container; otherwise podman exec.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from testinfra.backend.podman import PodmanBackend

_spec = importlib.util.spec_from_file_location("lg_nsenter", Path(__file__).parent / "_shared" / "lg_nsenter.py")
lg_nsenter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lg_nsenter)
_podman_exec_run = PodmanBackend.run


def _nsenter_run(self, command, *args, **kwargs):
    target = lg_nsenter.cached_target(self.name) if self.user is None else None
    if target is None:
        return _podman_exec_run(self, command, *args, **kwargs)
    cmd = self.get_command(command, *args)
    argv = lg_nsenter.command(target, ["/bin/sh", "-c", cmd])
    out = self.run_local(" ".join(["%s"] * len(argv)), *argv)
    out.command = self.encode(cmd)
    return out


PodmanBackend.run = _nsenter_run


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
