"""The drill playbook on one local host with 3 and with 10 (or 30) clients: the cost of each extra drilled client.

One restic repository holds one nightly backup of every client (the sample tree: 2 periods of vouchers, a SQLite
ledger, 2 PDFs each); the drill then restores and verifies every client in its sandbox, with the role's defaults
(damage assessment, restore as an async job with progress, manifest, backup-time manifest check, SQLite check).
Measured per run: wall seconds, CPU seconds of ansible-playbook and every process it waited for (not the async
restores, which detach), the module runs and their CPU (bench/metered-python, the async restores included), and the
task results (the run's recap). The per-extra-client slope is
(figure at the larger size - figure at 3) / (the difference in clients). ``BENCH_BEFORE_COLLECTIONS`` runs another
copy of the collection first (bench/client_cost_bench.before_after).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

from bench.client_cost_bench import (
    backed_up_clients,
    cli,
    metered_playbook,
    module_cpu,
    new_repository,
    one_host,
    repository_key,
)
from bench.common import COLLECTIONS, REPO, WORK, measure

RECAP = re.compile(rb"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)")


def run_drill(run_dir: Path, inventory: dict, extravars: dict, collections: Path) -> dict:
    """ansible-playbook drill.yml of the benchmarked collection: wall and CPU seconds, module runs, task results."""
    cmd, env, module_log = metered_playbook(run_dir, "drill.yml", inventory, extravars, collections)
    load_before = [round(x, 1) for x in os.getloadavg()]
    measured = measure(cmd, env=env, cwd=REPO)  # a failed drill raises with its output
    module_runs, module_seconds = module_cpu(module_log)
    recap = [tuple(map(int, m)) for m in RECAP.findall(measured["stdout"])]
    return {
        "seconds": round(measured["seconds"], 1),
        "cpu_seconds": round(measured["cpu_seconds"], 1),
        # the module processes' own count (bench/metered-python), the async restores' included: async_wrapper detaches
        # them from ansible-playbook, so GNU time's cpu_seconds above does not hold them and the two do not subtract
        "module_cpu_seconds": round(module_seconds, 1),
        "module_runs": module_runs,
        # ok counts changed results too; skipped ones are task results as well
        "task_results": sum(ok + skipped for ok, _changed, _unreachable, _failed, skipped in recap),
        "task_results_not_skipped": sum(r[0] for r in recap),
        "load_average_before": load_before,
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
    }


def run(quick: bool, sizes: list[int] | None = None, collections: Path = COLLECTIONS) -> dict:
    sizes = sizes or ([3, 10] if quick else [3, 30])
    base = WORK / "drill_cost"
    repo, pw = new_repository(base)
    when = (dt.datetime.now() - dt.timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
    points = []
    for n in sizes:
        host = f"books{n:02d}"
        made, _files = backed_up_clients(base / host / "账套", n, repo, pw, host, when)
        clients = [{k: c[k] for k in ("id", "name", "paths")} for c in made]
        run_dir = base / f"run-{n}"
        shutil.rmtree(run_dir, ignore_errors=True)
        # the repository holds every size's backup: each drill restores its own host's (also with code before 9169933,
        # which chose the newest snapshot of any host when none was named)
        inventory, extravars = one_host(
            run_dir,
            host,
            clients,
            repo,
            pw,
            drill_sandbox_dir=str(run_dir / "sandbox"),
            drill_id=f"bench-{n}",
            drill_snapshot_host=host,
        )
        point = run_drill(run_dir, inventory, extravars, collections)
        history = run_dir / "state" / "drills" / "history.jsonl"
        record = json.loads(history.read_text(encoding="utf-8").splitlines()[-1])
        point["passed"] = record["passed"]
        point["clients_drilled"] = len(record["clients"])
        points.append({"clients": n, **point})
    out: dict = {
        "points": points,
        "collection": str(collections),
        "repository_key": repository_key(),
        "description": __doc__.split("\n\n")[0],
    }
    a, b = points[0], points[-1]
    extra = b["clients"] - a["clients"]
    if extra:
        for key in ("seconds", "cpu_seconds", "module_cpu_seconds", "module_runs", "task_results"):
            out[f"{key}_per_extra_client"] = round((b[key] - a[key]) / extra, 2)
    return out


if __name__ == "__main__":
    cli(run, __doc__)
