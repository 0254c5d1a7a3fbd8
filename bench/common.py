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
# The collection the modules are run from: this checkout, or (BENCH_COLLECTIONS=<dir holding ansible_collections/>)
# another copy, e.g. the code before a fix, to measure before and after with the same benchmark.
COLLECTIONS = Path(os.environ.get("BENCH_COLLECTIONS") or REPO / ".collections")
MODULES = COLLECTIONS / "ansible_collections" / "ledgerguard" / "recovery" / "plugins" / "modules"


def module_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(COLLECTIONS)
    env["LC_ALL"] = "C.UTF-8"
    return env


TIME = "/usr/bin/time"


def parse_time_output(text: str) -> dict:
    """The figures GNU time wrote with ``-f "%e %U %S %M"`` (its last line: anything before it is the command's own
    stderr when ``-o`` is not used, or a "Command exited with non-zero status" note)."""
    fields = text.split()
    if len(fields) < 4:
        raise ValueError(f"GNU time output {text!r} does not end with '%e %U %S %M'")
    wall, user, system, rss = fields[-4:]
    return {"wall_seconds": float(wall), "cpu_seconds": float(user) + float(system), "max_rss_kib": int(rss)}


def measure(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None) -> dict:
    """Run ``cmd``; return wall seconds, CPU seconds and the peak RSS (KiB) of the largest process in its tree.

    GNU time runs the command: its wait4 reports the maximum RSS over the command and every process it waited for.
    (Measured from this process instead, a child would carry the benchmark interpreter's RSS from before its exec.)
    stdout is returned (small: module results); stderr (or, when empty, stdout) is shown only if the run fails.
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
            err = (proc.stderr or proc.stdout).decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}: {err}")
        figures = parse_time_output(Path(stats).read_text())
    finally:
        os.unlink(stats)
    return {
        "seconds": seconds,
        "cpu_seconds": figures["cpu_seconds"],
        "max_rss_kib": figures["max_rss_kib"],
        "stdout": proc.stdout,
    }


MODULE_HOST = Path(__file__).with_name("module_host.py")


def parse_module_output(text: str) -> dict:
    """A module's result: the JSON object on its stdout (anything printed before the opening brace is skipped)."""
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no JSON result in the module's output: {text[-500:]!r}")
    return json.loads(text[start:])


def parse_rss_report(text: str) -> dict:
    """What bench/module_host.py wrote: peak RSS (KiB) of the module's own process and of its largest child, and
    (when present: reports written before they were added have none) the CPU seconds of the module's own process and
    of the processes it ran and waited for."""
    data = json.loads(text)
    out = {}
    for key in ("module_kib", "children_kib"):
        value = data.get(key)
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"module_host report {data!r}: {key} is not a non-negative integer")
        out[key] = value
    for key in ("module_cpu_s", "children_cpu_s"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"module_host report {data!r}: {key} is not a non-negative number")
        out[key] = float(value)
    return out


def measure_module(
    module: str | Path, args: dict, workdir: Path, env: dict[str, str] | None = None, tag: str = ""
) -> dict:
    """Run a collection module as its own process, as the AnsiballZ payload does (bench/module_host.py: runpy as
    ``__main__``, args from a 0600 file), measured by GNU time (wall, CPU and the largest process of the tree).

    ``module`` is a name under plugins/modules or a path. Besides ``measure``'s figures: ``module_rss_kib`` (the
    module's Python process), ``children_rss_kib`` (its largest waited-for child: restic, a worker, ...) and
    ``result`` (the module's JSON result). A module that fails raises with its message.
    """
    path = Path(module) if str(module).endswith(".py") else MODULES / f"{module}.py"
    stem = f"{path.stem}{'-' + tag if tag else ''}"
    args_file, rss_file = workdir / f"{stem}.args.json", workdir / f"{stem}.rss.json"
    fd = os.open(args_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the args may hold a password
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle, ensure_ascii=False)
    rss_file.unlink(missing_ok=True)
    try:
        res = measure([PY, str(MODULE_HOST), str(rss_file), str(path), str(args_file)], env=env or module_env())
    finally:
        args_file.unlink(missing_ok=True)
    res["result"] = parse_module_output(res.pop("stdout").decode("utf-8", "replace"))
    if res["result"].get("failed"):
        raise RuntimeError(f"{path.stem} failed: {res['result'].get('msg', res['result'])}")
    split = parse_rss_report(rss_file.read_text(encoding="utf-8"))
    rss_file.unlink()
    res["module_rss_kib"], res["children_rss_kib"] = split["module_kib"], split["children_kib"]
    res["module_cpu_seconds"], res["children_cpu_seconds"] = split.get("module_cpu_s"), split.get("children_cpu_s")
    return res


def run_module(name: str, args: dict, workdir: Path) -> dict:
    """Run a collection module as its own process (as the AnsiballZ payload does), with an args file."""
    return measure_module(name, args, workdir)


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


# Every benchmark, in the order `make bench` runs them and docs/benchmarks.md shows them.
JOBS = (
    "manifest",
    "scaling",
    "ledger",
    "restore_point",
    "restore_overhead",
    "module_memory",
    "fleet",
    "validation",
    "client_cost",
    "drill",
    "backup",
)
