"""The backup role's cost against plain restic (issue 15), all contenders alternating within one run.

- ``tree``: client trees backed up into a fresh local repository by plain ``restic backup`` (one per client, one
  after the other) and by the role's step (``restic_backup`` with ``clients``: every client of the host in one module
  run) without and with the backup-time manifest (the manifest's cost apart), first backup and a second one of the
  unchanged trees (the nightly case); then the whole role through ansible-playbook (``playbooks/backup.yml``: lock,
  incident checks, backup, status, metrics; manifest off, retention off), whose fixed Ansible cost does not grow
  with the tree. Each tree is measured as one client and as the same amount of data split over ten clients of one
  host (the per-host fixed cost amortised over them).
- ``database`` (when PostgreSQL's server binaries and ``runuser`` exist): ``pg_dump -Fc > file`` against
  ``db_dump_backup`` (the same dump streamed into restic, never on disk) on one scratch database.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.common import PY, REPO, WORK, load_average, measure, measure_module, median, module_env
from bench.trees import make_mixed_tree

HOST = "bench-host"
TAG = "ledgerguard-backup"
NAMES = ("plain", "module", "module_manifest")

# (name, total small files, large files in all, MiB per large file). "realistic" is 1/8 of the restore-overhead
# case (1 GiB in 20,000 files): 2,510 files, about 123 MiB, the same mean file size; "small" the earlier tree; "firm"
# the nightly run of a firm as issue 19 counts it (30 clients, about 4,900 files, about 450 MB): 4,890 files, about
# 453 MiB (one 13 MiB archive per client beside its small files).
# "firm3" is three such firms' worth as one host (90 clients, about 14,700 files, 1.36 GB), for ``--overhead firm3:90``:
# a nightly run long enough (about a minute of restic) to show the whole role's fixed cost against it.
TREES = {"small": (1500, 10, 2), "realistic": (2500, 10, 9), "firm": (4860, 30, 13), "firm3": (14580, 90, 13)}
# How many clients of one host each tree is split over (one layout each).
CLIENT_COUNTS = {"small": (1, 10), "realistic": (1, 10), "firm": (30,)}


def _repo(path: Path, pw: Path, template: Path | None = None) -> str:
    """A fresh repository at ``path``: a copy of ``template`` when given, else a new ``restic init``."""
    shutil.rmtree(path, ignore_errors=True)
    if template is not None:
        shutil.copytree(template, path)
        return str(path)
    subprocess.run(["restic", "-r", str(path), "--password-file", str(pw), "init"], check=True, capture_output=True)
    return str(path)


def _template(work: Path, pw: Path) -> tuple[Path, dict]:
    """One empty repository every contender's repository is copied from, and its key's KDF parameters.

    Every restic run opens the repository and derives its key with the scrypt parameters ``restic init`` calibrated
    for about half a second on the machine as loaded at that moment (measured: N 32768, r 8, p 7 took 0.50 CPU s per
    open, p 1 0.10 s). A contender with a repository of its own would pay a different key derivation per client;
    with 30 clients that differs by seconds of CPU between the contenders, more than the module costs. Copies of one
    repository share its key, so each restic open costs the same for all."""
    template = work / "repo-template"
    _repo(template, pw)
    key = json.loads(next((template / "keys").iterdir()).read_text(encoding="utf-8"))
    return template, {k: key.get(k) for k in ("kdf", "N", "r", "p")}


def _cache(work: Path, name: str) -> dict[str, str]:
    """An empty restic cache of the contender's own (``XDG_CACHE_HOME``, read by plain restic and by the module's
    restic alike): the copies of one template share its repository ID, and so would share a cache folder."""
    folder = work / f"cache-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return {"XDG_CACHE_HOME": str(folder)}


def _plain(repo: str, pw: Path, clients: list[dict], cache: dict[str, str]) -> dict:
    """``restic backup`` of each client, one after the other, as a nightly script would (one measured shell)."""
    env = dict(os.environ, RESTIC_REPOSITORY=repo, RESTIC_PASSWORD_FILE=str(pw), **cache)
    script = " && ".join(
        shlex.join(["restic", "backup", "--host", HOST, "--tag", c["id"], "--tag", TAG, *c["paths"]]) for c in clients
    )
    return measure(["sh", "-c", script + " >/dev/null"], env)


def _module(repo: str, pw: Path, clients: list[dict], manifest: bool, work: Path, cache: dict[str, str]) -> dict:
    """The role's step: restic_backup with every client of the host in one module run."""
    args = {"repository": repo, "password": pw.read_text().strip(), "host": HOST, "tags": [TAG], "manifest": manifest,
            "clients": [{"id": c["id"], "name": c["name"], "paths": c["paths"]} for c in clients]}  # fmt: skip
    return measure_module("restic_backup", args, work, env=dict(module_env(), **cache), tag="m" if manifest else "n")


def _playbook(playbook: str, repo: str, pw: Path, clients: list[dict], work: Path, cache: dict[str, str]) -> dict:
    """ansible-playbook ``playbook`` on one local host holding ``clients`` (manifest and retention off)."""
    inv = work / "inventory.json"
    hostvars = {"ansible_connection": "local", "ansible_python_interpreter": PY, "ledgerguard_clients": clients}
    inv.write_text(json.dumps({"all": {"hosts": {HOST: hostvars}}}, ensure_ascii=False), encoding="utf-8")
    extra = {"ledgerguard_repository": repo, "ledgerguard_password_file": str(pw),
             "ledgerguard_state_dir": str(work / "state"), "backup_manifest": False,
             "backup_retention_enabled": False}  # fmt: skip
    env = dict(
        module_env(),
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_HOME=str(REPO / ".cache" / "ansible-home"),
        **cache,
    )
    env.pop("PYTHONPATH", None)
    cmd = [str(Path(PY).parent / "ansible-playbook"), "-i", str(inv), playbook, "-e", json.dumps(extra)]
    return measure(cmd, env, cwd=REPO)


def _role(repo: str, pw: Path, clients: list[dict], work: Path, cache: dict[str, str]) -> dict:
    """The whole role: ansible-playbook playbooks/backup.yml."""
    return _playbook("playbooks/backup.yml", repo, pw, clients, work, cache)


def _clients(root: Path, count: int, small: int, large: int, mib: int) -> tuple[list[dict], dict]:
    """``count`` client trees holding together ``small`` small files and ``large`` files of ``mib`` MiB."""
    clients, files, size = [], 0, 0
    for i in range(count):
        tree = root / f"c{i + 1:03d}"
        made = make_mixed_tree(tree, small=small // count, large=large // count, large_mib=mib, seed=8 + i)
        files, size = files + made["files"], size + made["bytes"]
        clients.append({"id": f"c{i + 1:03d}", "name": f"示例客户{i + 1:02d}有限公司", "paths": [str(tree)]})
    return clients, {"files": files, "bytes": size}


def _figures(runs: dict[str, list[dict]]) -> dict:
    figures = {
        n: {
            "seconds": round(median([x["seconds"] for x in runs[n]]), 3),
            "cpu_seconds": round(median([x["cpu_seconds"] for x in runs[n]]), 3),
        }
        for n in NAMES
    }
    base = figures["plain"]["seconds"]
    figures["overhead_without_manifest"] = round(figures["module"]["seconds"] / base - 1, 4)
    figures["manifest_cost"] = round(figures["module_manifest"]["seconds"] / figures["module"]["seconds"] - 1, 4)
    return figures


def layout_case(work: Path, pw: Path, tree: str, count: int, rounds: int) -> dict:
    """One tree as ``count`` clients of one host: every contender, first and unchanged, ``rounds`` rounds."""
    small, large, mib = TREES[tree]
    root = work / "客户账套" / f"{tree}-{count}"
    clients, size = _clients(root, count, small, large, mib)
    first: dict[str, list[dict]] = {n: [] for n in NAMES}
    again: dict[str, list[dict]] = {n: [] for n in NAMES}
    roles: list[dict] = []
    template, key = _template(work, pw)
    for r in range(rounds):
        order = NAMES[r % 3 :] + NAMES[: r % 3]  # each contender first, second and third in turn
        for name in order:
            repo, cache = _repo(work / f"repo-{name}", pw, template), _cache(work, name)
            for runs in (first, again):
                if name == "plain":
                    runs[name].append(_plain(repo, pw, clients, cache))
                else:
                    runs[name].append(_module(repo, pw, clients, name == "module_manifest", work, cache))
        roles.append(_role(_repo(work / "repo-role", pw, template), pw, clients, work, _cache(work, "role")))
    out: dict = {"tree": tree, "clients": count, **size, "rounds": rounds, "key": key}
    out["first"], out["unchanged"] = _figures(first), _figures(again)
    out["role_seconds"] = round(median([x["seconds"] for x in roles]), 3)
    out["role_cpu_seconds"] = round(median([x["cpu_seconds"] for x in roles]), 3)
    out["role_fixed_seconds"] = round(out["role_seconds"] - out["first"]["module"]["seconds"], 3)
    out["load_average_end"] = load_average()
    shutil.rmtree(root, ignore_errors=True)
    return out


def tree_case(quick: bool, rounds: int) -> dict:
    work = WORK / "backup"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pw = work / "password"
    pw.write_text("bench-password\n")
    pw.chmod(0o600)
    layouts = []
    for tree in ("small",) if quick else ("small", "realistic", "firm"):
        for count in CLIENT_COUNTS[tree]:
            layouts.append(layout_case(work, pw, tree, count, rounds))
    shutil.rmtree(work, ignore_errors=True)
    return {"layouts": layouts, "rounds": rounds}


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = found[-1] if found else (Path(shutil.which("initdb")) if shutil.which("initdb") else None)
    if initdb is None or shutil.which("runuser") is None or shutil.which("pg_dump") is None:
        return None
    return initdb.parent


def database_case(quick: bool, rounds: int) -> dict:
    bindir = _pg_bindir()
    if bindir is None:
        return {"skipped": "PostgreSQL server binaries (initdb), pg_dump or runuser not installed"}
    owner = pwd.getpwnam("postgres")
    root = Path(tempfile.mkdtemp(prefix="ledgerguard-bench-pg-"))
    root.chmod(0o755)
    os.chown(root, owner.pw_uid, owner.pw_gid)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    os.chown(sock, owner.pw_uid, owner.pw_gid)
    as_pg = ["runuser", "-u", "postgres", "--"]
    opts = f"-p 5432 -k {sock} -c listen_addresses=''"
    ctl = [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w"]
    work = WORK / "backup-db"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pw = work / "password"
    pw.write_text("bench-password\n")
    pw.chmod(0o600)
    rows = 100_000 if quick else 1_000_000
    try:
        subprocess.run([*as_pg, str(bindir / "initdb"), "-N", "-D", str(data), "-A", "trust", "-E", "UTF8",
                        "--locale=C.UTF-8"], check=True, capture_output=True)  # fmt: skip
        subprocess.run([*ctl, "start"], check=True, capture_output=True)
        psql = ["psql", "-X", "-q", "-h", str(sock), "-U", "postgres"]
        subprocess.run([*psql, "-c", "CREATE DATABASE ledger"], check=True, capture_output=True)
        sql = ("CREATE TABLE 凭证 (id bigint PRIMARY KEY, period text, account int, amount numeric(14,2), memo text); "
               f"INSERT INTO 凭证 SELECT i, '2026-' || lpad((i % 12 + 1)::text, 2, '0'), 1001 + i % 50, "
               f"(i * 37 % 100000) / 100.0, md5(i::text) FROM generate_series(1, {rows}) i")  # fmt: skip
        subprocess.run([*psql, "-d", "ledger", "-c", sql], check=True, capture_output=True)
        to_file, streamed = [], []
        dump = work / "ledger.dump"
        conn = {"host": str(sock), "port": "5432", "user": "postgres"}
        for r in range(rounds):
            for name in ("file", "stream") if r % 2 == 0 else ("stream", "file"):
                if name == "file":
                    dump.unlink(missing_ok=True)
                    to_file.append(
                        measure(["pg_dump", "-Fc", "-h", str(sock), "-U", "postgres", "-f", str(dump), "ledger"])
                    )
                else:
                    repo = _repo(work / "repo", pw)
                    args = {"repository": repo, "password": "bench-password", "engine": "postgresql",
                            "database": "ledger", "connection": conn, "host": HOST,
                            "tags": ["ledgerguard-backup"]}  # fmt: skip
                    streamed.append(measure_module("db_dump_backup", args, work))
        file_s = median([x["seconds"] for x in to_file])
        stream_s = median([x["seconds"] for x in streamed])
        return {
            "rows": rows,
            "dump_bytes": dump.stat().st_size,
            "pg_dump_to_file_seconds": round(file_s, 3),
            "dump_and_stream_seconds": round(stream_s, 3),
            "stream_over_file": round(stream_s / file_s, 3),
            "rounds": rounds,
        }
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def run(quick: bool, rounds: int) -> dict:
    start = load_average()
    out = {"tree": tree_case(quick, rounds), "database": database_case(quick, rounds)}
    out["load_average"] = {"start": start, "end": load_average()}
    out["restic"] = subprocess.run(["restic", "version"], capture_output=True, text=True).stdout.strip()
    return out


def _own_share(plain: list[dict], module: list[dict]) -> dict:
    """The module's cost counted inside its own runs, which the machine's noise cannot hide: the CPU seconds of its
    own Python process (start-up, arguments, parsing restic's JSON, the result) against those of the restic runs it
    waited for, per round; and, beside it, the paired round-by-round ratio of those restic runs to plain restic's
    (the same restic commands plus ``restic version``, so anything systematic there is restic's ``--json`` output)."""
    own = [m["module_cpu_seconds"] / m["restic_cpu_seconds"] for m in module]
    restic = [m["restic_cpu_seconds"] / p["cpu_seconds"] for p, m in zip(plain, module, strict=True)]
    return {
        "module_process_cpu_seconds": round(median([m["module_cpu_seconds"] for m in module]), 3),
        "module_process_share": round(median(own), 4),
        "module_process_share_range": [round(min(own), 4), round(max(own), 4)],
        "restic_cpu_ratio_paired": round(median(restic) - 1, 4),
        "restic_cpu_ratio_range": [round(min(restic) - 1, 4), round(max(restic) - 1, 4)],
    }


def _floor(repo: str, pw: Path, clients: list[dict], work: Path, cache: dict[str, str]) -> dict:
    """Ansible's least cost for the same backup: ansible-playbook running ``bench/floor_backup.yml``, one task, the
    role's backup step (``restic_backup`` with every client, no async job, no lock, no progress, no status or
    report), so the role's extra splits into what any playbook pays and what the role's own steps add."""
    return _playbook("bench/floor_backup.yml", repo, pw, clients, work, cache)


CONTENDERS = {"module": "the role's step", "role": "the whole role", "floor": "a one-task playbook"}


def overhead_check(tree: str, count: int, rounds: int, contenders: tuple[str, ...] = ("module",)) -> dict:
    """Plain restic against ``contenders``, on one tree as ``count`` clients: ``module`` (the role's step:
    restic_backup without manifest), ``role`` (ansible-playbook playbooks/backup.yml, manifest and retention off),
    ``floor`` (a one-task playbook of the same step: Ansible's least cost). All alternate within each round, each
    first in turn; ``rounds`` rounds of a first backup into a fresh repository, then the unchanged tree: for a quiet
    machine, where the full job's other contenders would take too long. Every round's figures are kept beside the
    medians."""
    work = WORK / "backup-overhead"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pw = work / "password"
    pw.write_text("bench overhead check\n", encoding="utf-8")
    pw.chmod(0o600)
    small, large, mib = TREES[tree]
    clients, size = _clients(work / "客户账套", count, small, large, mib)
    template, key = _template(work, pw)
    out: dict = {"tree": tree, "clients": count, **size, "rounds": rounds, "key": key, "contenders": list(contenders)}
    out["load_average_start"] = load_average()
    names = ("plain", *contenders)
    runs: dict[str, list[dict]] = {}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            repo, cache = _repo(work / f"repo-{name}", pw, template), _cache(work, name)
            for kind in ("first", "unchanged"):
                shutil.rmtree(work / "state", ignore_errors=True)
                if name == "plain":
                    res = _plain(repo, pw, clients, cache)
                elif name == "module":
                    res = _module(repo, pw, clients, False, work, cache)
                else:
                    res = (_role if name == "role" else _floor)(repo, pw, clients, work, cache)
                entry = {"round": r + 1, "seconds": round(res["seconds"], 3)}
                entry["cpu_seconds"] = round(res["cpu_seconds"], 3)
                if name == "module":  # the module's own process apart from its restic runs
                    entry["module_cpu_seconds"] = res["module_cpu_seconds"]
                    entry["restic_cpu_seconds"] = res["children_cpu_seconds"]
                runs.setdefault(f"{name} {kind}", []).append(dict(entry, load_average=load_average()))
    out["runs"] = runs
    for kind in ("first", "unchanged"):
        med = {n: {k: round(median([x[k] for x in runs[f"{n} {kind}"]]), 3) for k in ("seconds", "cpu_seconds")}
               for n in names}  # fmt: skip
        for name in contenders:
            med[name]["overhead_wall"] = round(med[name]["seconds"] / med["plain"]["seconds"] - 1, 4)
            pairs = list(zip(runs[f"plain {kind}"], runs[f"{name} {kind}"], strict=True))
            med[name]["extra_seconds_paired"] = round(median([m["seconds"] - p["seconds"] for p, m in pairs]), 3)
        if "module" in contenders:
            med["module"]["overhead_cpu"] = round(med["module"]["cpu_seconds"] / med["plain"]["cpu_seconds"] - 1, 4)
            med["module"].update(_own_share(runs[f"plain {kind}"], runs[f"module {kind}"]))
        if "role" in contenders:
            # no CPU comparison: the role's backup is an async job, which Ansible's async_wrapper detaches, so its
            # restic runs are not among the processes GNU time counts under ansible-playbook
            med["role"]["cpu_not_comparable"] = "the role's async backup job (restic) is detached from ansible-playbook"
        if {"role", "floor"} <= set(contenders):  # what the role's own steps add to Ansible's least cost
            pairs = list(zip(runs[f"floor {kind}"], runs[f"role {kind}"], strict=True))
            med["role_over_floor_seconds_paired"] = round(median([m["seconds"] - f["seconds"] for f, m in pairs]), 3)
        out[kind] = med
    out["load_average_end"] = load_average()
    out["restic"] = subprocess.run(["restic", "version"], capture_output=True, text=True).stdout.strip()
    shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--overhead", default="", help="only plain against the module, e.g. firm:30 (tree:clients)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--contender",
        default="module",
        help="with --overhead: against what, comma-separated: "
        + ", ".join(f"{k} ({v})" for k, v in CONTENDERS.items()),
    )
    args = ap.parse_args()
    if args.overhead:
        name, number = (args.overhead.split(":", 1) + ["1"])[:2]
        chosen = tuple(args.contender.split(","))
        unknown = [c for c in chosen if c not in CONTENDERS]
        if unknown:
            ap.error(f"--contender {args.contender}: unknown {unknown}; expected a list of {list(CONTENDERS)}")
        result = overhead_check(name, int(number), args.rounds, chosen)
    else:
        result = run(args.quick, args.rounds)
    print(json.dumps(result, indent=2, ensure_ascii=False))
