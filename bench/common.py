"""Shared helpers: measured subprocess runs (wall time + peak RSS), medians, machine facts, paths."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
WORK = REPO / ".cache" / "bench"
PY = sys.executable
MODULES = REPO / "plugins" / "modules"


def module_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / ".collections")
    env["LC_ALL"] = "C.UTF-8"
    return env


TIME = "/usr/bin/time"


def measure(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None) -> dict:
    """Run ``cmd``; return wall seconds, CPU seconds and the peak RSS (KiB) of the largest process in its tree.

    GNU time runs the command: its wait4 reports the maximum RSS over the command and every process it waited for.
    (Measured from this process instead, a child would carry the benchmark interpreter's RSS from before its exec.)
    stdout is returned (small: module results); stderr is shown only if the run fails.
    """
    if not os.path.exists(TIME):
        raise RuntimeError(f"{TIME} is needed to measure peak memory: apt-get install -y time")
    fd, stats = tempfile.mkstemp(prefix="time-", suffix=".txt")
    os.close(fd)
    try:
        started = time.perf_counter()
        proc = subprocess.run(
            [TIME, "-o", stats, "-f", "%e %U %S %M", *cmd], env=env, cwd=cwd, capture_output=True, check=False
        )
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}: {err}")
        _wall, user, system, rss = Path(stats).read_text().split()[-4:]
    finally:
        os.unlink(stats)
    return {
        "seconds": seconds,
        "cpu_seconds": float(user) + float(system),
        "max_rss_kib": int(rss),
        "stdout": proc.stdout,
    }


def run_module(name: str, args: dict, workdir: Path) -> dict:
    """Run a collection module as its own process (as the AnsiballZ payload does), with an args file."""
    args_file = workdir / f"{name}.args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}, ensure_ascii=False), encoding="utf-8")
    res = measure([PY, str(MODULES / f"{name}.py"), str(args_file)], env=module_env())
    text = res.pop("stdout").decode("utf-8", "replace")
    res["result"] = json.loads(text[text.index("{") :])
    return res


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def drop_caches_warm(path: Path) -> None:
    """Read every file once so all contenders start from a warm page cache."""
    subprocess.run(["sh", "-c", "find . -type f -print0 | xargs -0 cat > /dev/null"], cwd=path, check=True)


def _first_line(cmd: list[str]) -> str:
    if not shutil.which(cmd[0]):
        return "not installed"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    return out.splitlines()[0] if out else "unknown"


def machine_facts() -> dict:
    cpu = "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    fs = subprocess.run(["df", "-T", str(REPO)], capture_output=True, text=True).stdout.splitlines()
    try:
        import ansible

        ansible_version = ansible.__version__
    except ImportError:
        ansible_version = "not installed"
    return {
        "cpu": cpu,
        "cpus_available": len(os.sched_getaffinity(0)),
        "sha_ni": "sha_ni" in flags,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "filesystem": fs[1].split()[1] if len(fs) > 1 else "unknown",
        "python": platform.python_version(),
        "ansible_core": ansible_version,
        "sha256sum": _first_line(["sha256sum", "--version"]),
        "restic": _first_line(["restic", "version"]),
        "openssl": _first_line([PY, "-c", "import ssl; print(ssl.OPENSSL_VERSION)"]),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
