"""bench/restore_overhead: restoring a snapshot through ``restic_restore`` against plain ``restic restore``.

Builds a tree of about 1 GiB in 20,000 files (deterministic pseudo-random content; ``--scale`` shrinks both), backs it
up into a local repository (``--s3`` also into a bucket on an embedded moto server), then restores the same snapshot
N times with each contender, alternating the order every round, into a fresh empty target each time:

- ``module``: ``plugins/modules/restic_restore.py`` run as its own process with the arguments the action plugin
  would send (``password`` in the args, ``verify: true``), exactly as the AnsiballZ payload runs it;
- ``restic``: ``restic restore <id> --target T --verify`` with the same environment;
- ``incident``: what the incident path (``roles/restore``) does to restore and verify one client: ``restic_restore``
  as above, then ``file_manifest`` hashing the restored tree into a manifest file (the role compares its file count
  and bytes with the snapshot's before anything is swapped); the verification-cost target is under 1.3 times the
  plain ``restic restore --verify`` (``--no-incident`` leaves it out);
- ``playbook`` (``--playbook``): ``ansible-playbook`` of one ``restic_restore`` task, to show Ansible's own fixed cost.

Every restored tree is checked (file count and bytes) before its time is accepted. Prints a JSON summary (medians and
the ratio module/restic) and writes it to ``bench/results/restore_overhead.json``.

    python -m bench.restore_overhead                  # ~1 GiB, 20,000 files, 5 rounds
    python -m bench.restore_overhead --scale 0.25     # ~256 MiB, 5,000 files
    python -m bench.restore_overhead --quick          # --scale 0.05 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from bench.common import measure, measure_module  # noqa: E402

MODULE = REPO / "plugins" / "modules" / "restic_restore.py"
RESULTS = REPO / "bench" / "results"
FULL_FILES = 20_000
FULL_BYTES = 1 << 30


def build_tree(root: Path, files: int, total: int, seed: int = 20261126) -> tuple[int, int]:
    """``files`` files of pseudo-random sizes (log-uniform, 1 KiB to 1 MiB, scaled to ``total``) in client folders."""
    rng = random.Random(seed)
    raw = [2 ** rng.uniform(10, 20) for _ in range(files)]
    factor = total / sum(raw)
    sizes = [max(1, int(s * factor)) for s in raw]
    written = 0
    for i, size in enumerate(sizes):
        folder = root / f"C{i % 40:03d}" / f"{2015 + (i // 40) % 10}" / f"{(i // 400) % 12 + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"voucher-{i:06d}.dat").write_bytes(rng.randbytes(size))
        written += size
    return len(sizes), written


def restic_env(repo: str, password_file: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C"}
    env.update(extra or {})
    env.update(RESTIC_REPOSITORY=repo, RESTIC_PASSWORD_FILE=str(password_file))
    return env


def tree_size(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


CPU: list[float] = []  # CPU seconds (user + system) of the last timed command and everything it started
RSS: list[int] = []  # peak RSS (KiB) of the largest process of the last timed command's tree (GNU time)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """bench.common.measure (GNU time), keeping the CPU seconds and peak RSS of the run in CPU and RSS."""
    res = measure(cmd, env=env)
    CPU.append(res["cpu_seconds"])
    RSS.append(res["max_rss_kib"])
    return res["seconds"], res["stdout"].decode("utf-8", "replace")


def module_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(REPO / ".collections"),
        "LC_ALL": "C.UTF-8",
    }


class Contenders:
    def __init__(
        self, work: Path, repo: str, password_file: Path, snapshot: str, extra_env: dict[str, str], source: Path
    ):
        self.work, self.repo, self.password_file, self.snapshot = work, repo, password_file, snapshot
        self.source = str(source)  # the backed-up path: restic lands it at <target><source>
        self.manifest_files = 0
        self.extra_env = extra_env
        self.env = restic_env(repo, password_file, extra_env)

    def restic(self, target: Path) -> float:
        seconds, _ = timed(["restic", "restore", self.snapshot, "--target", str(target), "--verify"], self.env)
        return seconds

    def module(self, target: Path) -> float:
        args = {
            "repository": self.repo,
            "password": self.password_file.read_text(),
            "env": self.extra_env,
            "snapshot": self.snapshot,
            "target": str(target),
            "_ansible_check_mode": False,
            "_ansible_no_log": False,
            "_ansible_tmpdir": str(self.work),
        }
        res = measure_module(MODULE, args, self.work, env=module_env())
        CPU.append(res["cpu_seconds"])
        RSS.append(res["max_rss_kib"])
        if not res["result"].get("changed"):
            raise RuntimeError(f"restic_restore did not restore: {res['result'].get('msg', res['result'])}")
        return res["seconds"]

    def incident(self, target: Path) -> float:
        """restic_restore, then file_manifest of the restored tree into a manifest file (as roles/restore does)."""
        seconds = self.module(target)
        cpu, rss = CPU.pop(), RSS.pop()
        dest = self.work / "restored.jsonl"
        dest.unlink(missing_ok=True)
        args = {"path": str(target) + self.source, "dest": str(dest), "file_mode": "0600"}
        res = measure_module("file_manifest", args, self.work, env=module_env())
        CPU.append(cpu + res["cpu_seconds"])
        RSS.append(max(rss, res["max_rss_kib"]))
        self.manifest_files = res["result"]["files"]
        return seconds + res["seconds"]

    def playbook(self, target: Path) -> float:
        book = self.work / "restore.yml"
        book.write_text(
            "---\n- name: Bench restore\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - name: Restore\n      ledgerguard.recovery.restic_restore:\n"
            '        snapshot: "{{ snap }}"\n        target: "{{ target }}"\n'
        )
        inventory = self.work / "inventory.json"
        hostvars = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "ledgerguard_repository": self.repo,
            "ledgerguard_password_file": str(self.password_file),
        }
        inventory.write_text(json.dumps({"all": {"hosts": {"localhost": hostvars}}}))
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/root"),
            "LC_ALL": "C.UTF-8",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
            "ANSIBLE_HOME": str(REPO / ".cache" / "ansible-home"),
            **self.extra_env,
        }
        cmd = [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(inventory),
            str(book),
            "-e",
            json.dumps({"snap": self.snapshot, "target": str(target)}),
        ]
        seconds, _ = timed(cmd, env)
        return seconds


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def run_backend(
    name: str, contenders: Contenders, rounds: int, expect: tuple[int, int], playbook: bool, incident: bool = True
) -> dict:
    names = ["module", "restic"] + (["incident"] if incident else []) + (["playbook"] if playbook else [])
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    rss: dict[str, list[int]] = {n: [] for n in names}
    for rnd in range(rounds):
        order = names if rnd % 2 == 0 else list(reversed(names))
        for contender in order:
            target = contenders.work / f"target-{contender}"
            shutil.rmtree(target, ignore_errors=True)
            seconds = getattr(contenders, contender)(target)
            got = tree_size(target)
            if got != expect:
                raise RuntimeError(f"{contender} restored {got} (files, bytes), expected {expect}")
            if contender == "incident" and contenders.manifest_files != expect[0]:
                raise RuntimeError(f"file_manifest hashed {contenders.manifest_files} files, expected {expect[0]}")
            times[contender].append(round(seconds, 3))
            cpu[contender].append(round(CPU[-1], 3))
            rss[contender].append(RSS[-1])
            shutil.rmtree(target, ignore_errors=True)
            print(f"  [{name}] round {rnd + 1}/{rounds} {contender}: {seconds:.2f} s", file=sys.stderr)
    result = {"runs": times, "median_seconds": {n: median(v) for n, v in times.items()}}
    result["cpu_runs"] = cpu
    # the largest single process of each contender's tree (module: max of the module's Python and its restic)
    result["peak_rss_mib"] = {n: round(max(v) / 1024, 1) for n, v in rss.items()}
    result["median_cpu_seconds"] = {n: median(v) for n, v in cpu.items()}
    result["cpu_ratio_module_to_restic"] = round(
        result["median_cpu_seconds"]["module"] / result["median_cpu_seconds"]["restic"], 4
    )
    # rounds are pairs run back to back, so the per-round difference cancels most of the machine's load drift
    paired = [m - r for m, r in zip(times["module"], times["restic"], strict=True)]
    result["median_paired_difference_seconds"] = median(paired)
    result["ratio_module_to_restic"] = round(result["median_seconds"]["module"] / result["median_seconds"]["restic"], 4)
    result["overhead_percent"] = round((result["ratio_module_to_restic"] - 1) * 100, 2)
    result["overhead_seconds"] = round(result["median_seconds"]["module"] - result["median_seconds"]["restic"], 3)
    if incident:
        # issue 8's verification cost: restore + verify of the incident path against 'restic restore --verify'
        per_round = [i / r for i, r in zip(times["incident"], times["restic"], strict=True)]
        med = result["median_seconds"]
        result["verification_ratio"] = round(med["incident"] / med["restic"], 4)
        result["verification_ratio_per_round"] = [round(x, 3) for x in per_round]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.restore_overhead", description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of 1 GiB / 20,000 files (default 1.0)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per contender (default 5)")
    ap.add_argument("--quick", action="store_true", help="--scale 0.05 --rounds 3")
    ap.add_argument("--s3", action="store_true", help="also measure against an S3 repository on an embedded moto")
    ap.add_argument("--playbook", action="store_true", help="also time ansible-playbook running the same restore")
    ap.add_argument(
        "--no-incident",
        action="store_true",
        help="leave out the incident path's restore + verify (restic_restore, then file_manifest of the tree)",
    )
    ap.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temp dir in .cache/bench)")
    args = ap.parse_args(argv)
    if args.quick:
        args.scale, args.rounds = min(args.scale, 0.05), min(args.rounds, 3)
    if not shutil.which("restic"):
        print("restic is not installed (apt-get install restic)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    base = REPO / ".cache" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="restore-overhead-", dir=base))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o700)
    try:
        files_wanted, bytes_wanted = max(1, int(FULL_FILES * args.scale)), int(FULL_BYTES * args.scale)
        src = work / "src" / "srv" / "ledgers"
        t0 = time.perf_counter()
        expect = build_tree(src, files_wanted, bytes_wanted)
        build_seconds = time.perf_counter() - t0
        password_file = work / "password"
        password_file.write_text("bench password " + os.urandom(8).hex() + "\n")
        password_file.chmod(0o600)
        version = subprocess.run(["restic", "version"], capture_output=True, text=True, check=True).stdout.strip()
        result = {
            "benchmark": "restore_overhead",
            "description": "restic_restore (module process, as Ansible runs it) against plain 'restic restore "
            "--verify' of the same snapshot, alternated, fresh empty target each run",
            "files": expect[0],
            "bytes": expect[1],
            "scale": args.scale,
            "rounds": args.rounds,
            "restic": version,
            "build_seconds": round(build_seconds, 2),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "backends": {},
        }
        backends = [("local", str(work / "repo"), {})]
        server = None
        if args.s3:
            from ledgerguard.embedded_s3 import EmbeddedS3

            server = EmbeddedS3(log_path=work / "moto.log").start()
            server.create_bucket("bench")
            backends.append(("s3", server.restic_url("bench", "restic"), server.env()))
        try:
            for name, repo, extra in backends:
                env = restic_env(repo, password_file, extra)
                subprocess.run(["restic", "init"], env=env, capture_output=True, check=True)
                t0 = time.perf_counter()
                subprocess.run(["restic", "backup", "--json", str(src)], env=env, capture_output=True, check=True)
                backup_seconds = time.perf_counter() - t0
                snaps = json.loads(
                    subprocess.run(
                        ["restic", "snapshots", "--json"], env=env, capture_output=True, text=True, check=True
                    ).stdout
                )
                contenders = Contenders(work, repo, password_file, snaps[0]["id"], extra, src)
                # one warm-up restore each, not timed: caches (restic's and the page cache) are equally warm after
                for warm in ("restic", "module"):
                    target = work / f"target-{warm}"
                    getattr(contenders, warm)(target)
                    shutil.rmtree(target)
                res = run_backend(
                    name, contenders, args.rounds, (expect[0], expect[1]), args.playbook, not args.no_incident
                )
                res["backup_seconds"] = round(backup_seconds, 2)
                result["backends"][name] = res
        finally:
            if server:
                server.stop()
        local = result["backends"]["local"]
        result["median_module_seconds"] = local["median_seconds"]["module"]
        result["median_restic_seconds"] = local["median_seconds"]["restic"]
        result["ratio"] = local["ratio_module_to_restic"]
        result["overhead_percent"] = local["overhead_percent"]
        result["median_paired_difference_seconds"] = local["median_paired_difference_seconds"]
        result["cpu_ratio"] = local["cpu_ratio_module_to_restic"]
        result["target_overhead_percent"] = 5
        result["meets_target"] = local["overhead_percent"] < 5
        if "verification_ratio" in local:
            result["verification_ratio"] = local["verification_ratio"]
            result["median_incident_seconds"] = local["median_seconds"]["incident"]
            result["target_verification_ratio"] = 1.3
            result["meets_verification_target"] = local["verification_ratio"] < 1.3
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        result["bench_seconds"] = round(time.perf_counter() - started, 1)
        result["command"] = "python -m bench.restore_overhead " + " ".join(argv if argv is not None else sys.argv[1:])
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "restore_overhead.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
