"""The incident playbook on one local host with 3 and with 30 small clients: the cost of each extra client.

One restic repository holds one nightly backup of every client (the sample tree: 2 periods of vouchers, a SQLite
ledger, 2 PDFs each); each client then loses its 凭证 folder and one incident restores them all. Measured per run: wall
seconds, CPU seconds of ansible-playbook and every process it started (modules, restic), the task results per host in
the timeline (a restore_clients step line is not a task) and the restore role's own seconds. The per-extra-client
slope is (seconds at 30 - seconds at 3) / 27. ``BENCH_COLLECTIONS=<dir holding ansible_collections/>`` runs another
copy of the collection (e.g. the code before a change) with the same benchmark.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import COLLECTIONS, REPO, WORK, measure

sys.path.insert(0, str(REPO / "src"))


def restic(repo: Path, pw: Path, *args: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LC_ALL": "C",
        "RESTIC_REPOSITORY": str(repo),
        "RESTIC_PASSWORD_FILE": str(pw),
        "RESTIC_CACHE_DIR": str(WORK / "restic-cache"),
    }
    subprocess.run(["restic", *args], env=env, capture_output=True, text=True, check=True)


TEMPLATE = WORK / "incident-repo-template"


def new_repository(base: Path) -> tuple[Path, Path]:
    """An empty repository at ``base``/repo, copied from one template made by ``restic init`` the
    first time (kept in the benchmarks' work folder for later runs).

    Every restic run derives the repository key with the scrypt parameters ``restic init`` calibrated for the machine
    as loaded at that moment (p 1 costs about 0.10 CPU s per open, p 7 about 0.50 s): before and after a change, each
    with a repository of its own, would pay different key costs in every module that runs restic. Copies of one
    template share its key (and its repository ID, so the restic cache the backups use is emptied as well)."""
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    pw = base / "password"
    pw.write_text("bench only\n")
    pw.chmod(0o600)
    if not (TEMPLATE / "config").is_file():
        shutil.rmtree(TEMPLATE, ignore_errors=True)
        restic(TEMPLATE, pw, "init")
    shutil.rmtree(WORK / "restic-cache", ignore_errors=True)
    repo = base / "repo"
    shutil.copytree(TEMPLATE, repo)
    return repo, pw


def repository_key() -> dict:
    """The KDF parameters of the template's key (every benchmark repository's, see ``new_repository``)."""
    key = json.loads(next((TEMPLATE / "keys").iterdir()).read_text(encoding="utf-8"))
    return {k: key.get(k) for k in ("kdf", "N", "r", "p")}


METERED_PYTHON = Path(__file__).with_name("metered-python")


def module_cpu(log: Path) -> tuple[int, float]:
    """The module processes bench/metered-python logged and their CPU seconds (``user system`` per process; GNU
    time's note on a module that exited non-zero is its own line and is skipped; the command line follows)."""
    runs, total = 0, 0.0
    for line in log.read_text().splitlines() if log.exists() else []:
        fields = line.split()
        if len(fields) >= 2 and all(f.replace(".", "", 1).isdigit() for f in fields[:2]):
            runs, total = runs + 1, total + float(fields[0]) + float(fields[1])
    return runs, total


def metered_playbook(
    run_dir: Path, name: str, inventory: dict, extravars: dict, collections: Path, **env: str
) -> tuple[list[str], dict[str, str], Path]:
    """The command and environment that run playbook ``name`` of the benchmarked collection on ``inventory`` with
    ``extravars`` (both written into ``run_dir``), every module under bench/metered-python, which logs its CPU into
    the returned file: a run's CPU then splits into the controller's own (ansible-playbook and its workers) and the
    modules' (restic's included; on a real fleet they run on the managed hosts). ``env``: more variables."""
    playbook = collections / "ansible_collections" / "ledgerguard" / "recovery" / "playbooks" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    module_log = run_dir / "module-cpu.log"
    module_log.unlink(missing_ok=True)
    for hostvars in inventory["all"]["hosts"].values():
        hostvars["ansible_python_interpreter"] = str(METERED_PYTHON)
    (run_dir / "inventory.json").write_text(json.dumps(inventory, ensure_ascii=False), encoding="utf-8")
    (run_dir / "vars.json").write_text(json.dumps(extravars, ensure_ascii=False), encoding="utf-8")
    full = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    full.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_HOME=str(REPO / ".cache" / "ansible-home"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_FORCE_COLOR="0",
        LEDGERGUARD_BENCH_MODULE_LOG=str(module_log),
        LEDGERGUARD_BENCH_PYTHON=sys.executable,
        **env,
    )
    ansible_playbook = shutil.which("ansible-playbook") or str(Path(sys.executable).parent / "ansible-playbook")
    cmd = [ansible_playbook, str(playbook), "-i", str(run_dir / "inventory.json"), "-e", f"@{run_dir / 'vars.json'}"]
    return cmd, full, module_log


def run_incident(run_dir: Path, inventory: dict, extravars: dict, forks: int = 8, collections: Path = COLLECTIONS):
    """ansible-playbook incident_respond.yml of the benchmarked collection; wall and CPU seconds, the timeline."""
    cmd, env, module_log = metered_playbook(
        run_dir,
        "incident_respond.yml",
        inventory,
        extravars,
        collections,
        ANSIBLE_CALLBACKS_ENABLED="ledgerguard.recovery.timeline",
        ANSIBLE_FORKS=str(forks),
    )
    load_before = [round(x, 1) for x in os.getloadavg()]
    try:
        measured = measure(cmd, env=env, cwd=REPO)
        status = "successful"
    except RuntimeError as exc:
        measured, status = {"seconds": None, "cpu_seconds": None}, f"failed: {str(exc)[-600:]}"
    module_runs, module_seconds = module_cpu(module_log)
    timelines = sorted(Path(extravars["ledgerguard_evidence_dir"]).glob("*/timeline.jsonl"))
    lines = [json.loads(x) for t in timelines for x in t.read_text(encoding="utf-8").splitlines()]
    tasks = [x for x in lines if x.get("event") == "task" and not x.get("step_of")]
    restore = [x for x in tasks if "ledgerguard.recovery.restore :" in (x.get("task") or "")]
    # Per inventory host: the first play's check of the host list runs on localhost, which is no incident host.
    hosts = sorted({x.get("host") for x in tasks if x.get("host") and x.get("host") != "localhost"})
    tasks_on_hosts = [x for x in tasks if x.get("host") in hosts]
    # Where the tasks come from: each task result of the incident's hosts by role ("playbook" for the playbook's own
    # include_role tasks), the role's automatic argument-spec check counted with its role.
    by_role: dict[str, int] = {}
    for x in tasks_on_hosts:
        name = x.get("task") or ""
        role = name.split(" : ")[0].rsplit(".", 1)[-1] if " : " in name else "playbook"
        by_role[role] = by_role.get(role, 0) + 1
    return {
        "seconds": round(measured["seconds"], 1) if measured["seconds"] is not None else None,
        "cpu_seconds": round(measured["cpu_seconds"], 1) if measured["cpu_seconds"] is not None else None,
        "module_cpu_seconds": round(module_seconds, 1),
        "controller_cpu_seconds": (
            round(measured["cpu_seconds"] - module_seconds, 1) if measured["cpu_seconds"] is not None else None
        ),
        "module_runs": module_runs,
        "status": status,
        "task_results": len(tasks),
        "task_results_per_host": round(len(tasks_on_hosts) / max(1, len(hosts)), 1),
        "task_results_not_skipped_per_host": round(
            sum(1 for x in tasks_on_hosts if x.get("status") != "skipped") / max(1, len(hosts)), 1
        ),
        "task_results_by_role": dict(sorted(by_role.items(), key=lambda kv: (-kv[1], kv[0]))),
        "restore_role_seconds": round(sum(x.get("duration") or 0 for x in restore), 1),
        "restore_role_task_results": len(restore),
        "step_lines": sum(1 for x in lines if x.get("step_of")),
        "load_average_before": load_before,
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
    }


def before_after(run, **kwargs) -> dict:
    """``run`` on this checkout's collection and, when BENCH_BEFORE_COLLECTIONS names another copy (e.g. a git worktree
    of the commit before a change, linked as <dir>/ansible_collections/ledgerguard/recovery), on that copy first: the
    figures before and after from one machine state."""
    before = os.environ.get("BENCH_BEFORE_COLLECTIONS")
    out = {"before": run(collections=Path(before), **kwargs)} if before else {}
    out.update(run(**kwargs))
    return out


def backed_up_clients(books: Path, count: int, repo: Path, pw: Path, host: str, when: str) -> tuple[list[dict], int]:
    """``count`` sample clients under ``books`` (2 periods of 8 vouchers, a SQLite ledger, 2 PDFs each), backed up as
    one nightly snapshot of ``host`` taken at ``when``: their ledgerguard_clients entries and their number of files."""
    from ledgerguard import sampledata

    clients, files = [], 0
    for i in range(1, count + 1):
        info = sampledata.make_client_tree(
            books, f"c{i:03d}", f"示例客户{i:03d}有限公司", periods=["2026-09", "2026-10"], vouchers_per_period=8,
            pdfs=2, seed=i,
        )  # fmt: skip
        clients.append(info["client"])
        files += info["files"]
    restic(repo, pw, "backup", "--host", host, "--tag", "nightly", "--time", when, str(books))
    return clients, files


def one_host(run_dir: Path, host: str, clients: list[dict], repo: Path, pw: Path, **extravars) -> tuple[dict, dict]:
    """The inventory of one local host with ``clients`` (its state folder in ``run_dir``) and the run's variables:
    the repository, its password file, the evidence folder in ``run_dir``, and ``extravars``."""
    state = str(run_dir / "state")
    hostvars = {"ansible_connection": "local", "ledgerguard_state_dir": state, "ledgerguard_clients": clients}
    return {"all": {"hosts": {host: hostvars}}}, {
        "ledgerguard_repository": str(repo),
        "ledgerguard_password_file": str(pw),
        "ledgerguard_evidence_dir": str(run_dir / "evidence"),
        **extravars,
    }


def cli(run, doc: str) -> None:
    """The command line of a benchmark with 3 and N clients: ``run`` before (BENCH_BEFORE_COLLECTIONS) and after."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 and 10 clients")
    ap.add_argument("--sizes", default="", help="client counts, e.g. 3,30")
    ap.add_argument("--out", default="", help="write the JSON here too")
    args = ap.parse_args()
    result = before_after(run, quick=args.quick, sizes=[int(x) for x in args.sizes.split(",") if x.strip()] or None)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


def run(quick: bool, sizes: list[int] | None = None, collections: Path = COLLECTIONS) -> dict:
    sizes = sizes or ([3, 10] if quick else [3, 30])
    base = WORK / "client_cost"
    repo, pw = new_repository(base)
    when = (dt.datetime.now() - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    points = []
    for n in sizes:
        host = f"books{n:02d}"
        clients, files = backed_up_clients(base / host / "账套", n, repo, pw, host, when)
        for client in clients:
            shutil.rmtree(Path(client["root"]) / "凭证")  # the loss
        run_dir = base / f"run-{n}"
        inventory, extravars = one_host(
            run_dir,
            host,
            clients,
            repo,
            pw,
            incident_cause="deleted",
            incident_clients=[c["id"] for c in clients],
            incident_detected_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            incident_operator="bench",
            incident_summary=f"per-client cost, {n} clients",
            report_notices_enabled=False,
        )
        point = run_incident(run_dir, inventory, extravars, collections=collections)
        point["restored_clients"] = sum(1 for c in clients if (Path(c["root"]) / "凭证").is_dir())
        points.append({"clients": n, "files": files, **point})
        if point["status"] != "successful":
            break
    out: dict = {
        "points": points,
        "collection": str(collections),
        "repository_key": repository_key(),
        "description": __doc__.split("\n\n")[0],
    }
    if len(points) >= 2 and all(p["seconds"] is not None for p in points[:2]):
        a, b = points[0], points[1]
        extra = b["clients"] - a["clients"]
        out["seconds_per_extra_client"] = round((b["seconds"] - a["seconds"]) / extra, 2)
        out["cpu_seconds_per_extra_client"] = round((b["cpu_seconds"] - a["cpu_seconds"]) / extra, 2)
        out["restore_role_seconds_per_extra_client"] = round(
            (b["restore_role_seconds"] - a["restore_role_seconds"]) / extra, 2
        )
    return out


if __name__ == "__main__":
    cli(run, __doc__)
