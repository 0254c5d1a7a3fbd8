"""The test harness's /proc listing for its watches (tests/conftest.py UserPids): kernel threads left out once
known, every user process in, a new process seen in the next listing."""

from __future__ import annotations

import os
import subprocess

from conftest import UserPids


def test_kernel_threads_are_left_out_and_new_processes_come_in():
    listing = UserPids()
    pids = listing()
    assert str(os.getppid()) in pids and str(os.getpid()) not in pids
    assert "2" not in pids  # kthreadd
    assert "2" in listing.kernel
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert str(child.pid) in listing()
    finally:
        child.kill()
        child.wait()
    assert str(child.pid) not in listing()
    # a PID that no listing shows any more is forgotten, whatever it was
    listing.kernel.add("999999999")
    listing()
    assert "999999999" not in listing.kernel
