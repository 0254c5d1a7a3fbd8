"""Shared helpers: measured subprocess runs (wall time + peak RSS), medians, machine facts, paths."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
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


def measure(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None) -> dict:
    """Run ``cmd``; return wall seconds and the peak RSS (KiB) of the largest process in its tree (wait4).

    stdout is kept (small: module results), stderr is discarded unless the run fails.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # read before wait4 so a full pipe cannot block the child (stderr is small; stdout is a module result)
    out, err = proc.stdout.read(), proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}"
        )
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_kib": usage.ru_maxrss,
        "stdout": out,
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
