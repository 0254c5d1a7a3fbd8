"""The test harness's secret watch (tests/conftest.py ProcessWatch): a secret in a program's command line or
environment is found, by the kernel's exec events as root and by sampling /proc otherwise, and a process the events
may have missed (the kernel dropped some) is found by the sweep that follows."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time

import pytest

import conftest
from conftest import ExecEvents, ProcessWatch

IS_ROOT = os.geteuid() == 0


def run_with_secret(argv_secret: str, env_secret: str, seconds: float = 0.3) -> int:
    """A program that holds one secret in its argv and another in its environment for ``seconds``; its PID."""
    child = subprocess.Popen(
        [sys.executable, "-c", f"import time; time.sleep({seconds})", argv_secret],
        env={**os.environ, "LG_WATCH_TEST": env_secret},
    )
    child.wait()
    return child.pid


def watched(watch: ProcessWatch, action):
    watch.start()
    try:
        time.sleep(0.1)  # subscribed and through the first sweep
        return action()
    finally:
        watch.stop.set()
        watch.join(timeout=10)


def new_watch() -> tuple[ProcessWatch, str, str]:
    argv_secret, env_secret = "lg-argv-" + secrets.token_hex(8), "lg-env-" + secrets.token_hex(8)
    watch = ProcessWatch(
        {"argv secret": argv_secret.encode()},
        {"env secret": env_secret.encode()},
        seen=lambda argv: argv_secret.encode() in argv,
    )
    return watch, argv_secret, env_secret


def assert_found(watch: ProcessWatch, pid: int) -> None:
    assert watch.seen >= 1
    assert any(f.startswith(f"argv secret in the command line of PID {pid}: ") for f in watch.found), watch.found
    assert any(f.startswith(f"env secret in the environment of PID {pid}: ") for f in watch.found), watch.found


@pytest.mark.skipif(not IS_ROOT, reason="the kernel's process events need root (CAP_NET_ADMIN)")
def test_exec_events_find_a_secret_in_argv_and_environment():
    watch, argv_secret, env_secret = new_watch()
    pid = watched(watch, lambda: run_with_secret(argv_secret, env_secret))
    assert watch.events_used
    assert watch.samples == 1  # the first sweep only: the program was read at its exec
    assert_found(watch, pid)


@pytest.mark.skipif(not IS_ROOT, reason="the kernel's process events need root (CAP_NET_ADMIN)")
def test_exec_events_report_the_pid_that_executed():
    events = ExecEvents()
    try:
        child = subprocess.Popen(["sleep", "0.2"])
        pids: list[int] = []
        deadline = time.monotonic() + 5
        while child.pid not in pids and time.monotonic() < deadline:
            pids += events.wait(0.1) or []
        child.wait()
    finally:
        events.close()
    assert child.pid in pids


def test_without_events_the_watch_samples_proc(monkeypatch):
    def unavailable():
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(conftest, "ExecEvents", unavailable)
    watch, argv_secret, env_secret = new_watch()
    pid = watched(watch, lambda: run_with_secret(argv_secret, env_secret))
    assert not watch.events_used
    assert watch.samples > 5
    assert_found(watch, pid)


def test_dropped_events_are_made_up_by_a_sweep(monkeypatch):
    """The kernel dropped events (wait returns None): the watch reads every process again, and so finds a program
    whose exec it was never told of."""
    drop = threading.Event()

    class Dropping:  # reports no exec at all, and a loss once ``drop`` is set
        def wait(self, timeout):
            time.sleep(timeout)
            if drop.is_set():
                drop.clear()
                return None
            return []

        def close(self):
            pass

    monkeypatch.setattr(conftest, "ExecEvents", Dropping)
    watch, argv_secret, env_secret = new_watch()
    watch.start()
    child = None
    try:
        wait_for(lambda: watch.samples == 1)
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(10)", argv_secret],
            env={**os.environ, "LG_WATCH_TEST": env_secret},
        )
        time.sleep(0.3)
        assert watch.found == []  # started after the first sweep, and no event told of it
        drop.set()
        wait_for(lambda: watch.samples == 2)
    finally:
        watch.stop.set()
        watch.join(timeout=10)
        if child:
            child.kill()
            child.wait()
    assert watch.events_used
    assert_found(watch, child.pid)


def wait_for(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
