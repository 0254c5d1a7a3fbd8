"""Peak memory of every module of plugins/modules on the largest case, next to the plain tool where one exists.

Each module runs as its own process the way the AnsiballZ payload runs it (``bench/module_host.py``: ``runpy`` as
``__main__``, the arguments the action plugin would send in an args file), under GNU time; nothing of Ansible's
controller side runs, so the figures are the module's. Per run: the peak RSS of the module's own Python process
(``getrusage(RUSAGE_SELF)``), of its largest child (restic, a hashing worker, mount: ``RUSAGE_CHILDREN``) and of the
largest process of the whole tree (GNU time ``%M``). Plain tools are measured by the same GNU time.

The case (``--scale 1``, the issue's largest): the 1 GiB / 20,000 files tree of ``bench/restore_overhead.py``
backed up into a local repository that then also holds 499 small snapshots of other hosts (500 snapshots to list and
check); the tree restored (``verify: true``) and hashed; a second snapshot after simulated ransomware (10 % of the
files rewritten and renamed, a ransom note per client folder) for ``snapshot_damage``; the restored tree swapped
back by ``restore_swap``; ``ledger_verify`` on the ledger benchmark's year of 96,000 vouchers; ``s3_bucket_audit``
on a bucket of 20,000 objects on the embedded moto S3; ``write_freeze`` freezing and thawing two loop-device
filesystems (``fsfreeze``, ``remount_ro``) and a ``readonly_bind`` (root only; always thawed, unmounted and detached
in ``finally``). ``--scale 0.25`` runs the same at a quarter of the size, to show which figures grow with the input.

    python -m bench.module_memory               # full size (about 15 minutes on 2 CPUs)
    python -m bench.module_memory --scale 0.25  # a quarter: shows what grows
    python -m bench.module_memory --quick       # --scale 0.02 (a smoke test)
    python -m bench.module_memory --growth      # the two growth probes below (about 3 minutes)

``--growth`` measures what the profiling of this benchmark found growing with the input (and what was fixed):
``restic_restore`` restoring snapshots of 5,000 and 20,000 small files, and ``snapshot_damage`` (``mode: all``)
examining 2, 4 and 8 snapshots of 20,000 files. Its figures go to the same JSON under ``profiles``.

Results: ``bench/results/module_memory.json`` (one entry per scale; other scales' entries are kept).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import fcntl
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ledger_bench
from bench.common import COLLECTIONS, PY, REPO, RESULTS, WORK, load_average, measure, measure_module
from bench.manifest_bench import SHA256SUM
from bench.restore_overhead import FULL_BYTES, FULL_FILES, build_tree, restic_env, tree_size

sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / ".collections"))

RESULT = RESULTS / "module_memory.json"
INCIDENT = "BENCH-MEMORY-1"
SWAP_COUNTS = ("restored", "replaced", "quarantined", "kept_changed", "kept_new", "unchanged")
# what a shell script would do with boto3 instead of the module: the same bucket calls, then list every object
BOTO3_AUDIT = """
import sys, boto3
c = boto3.client("s3", endpoint_url=sys.argv[1])
b = sys.argv[2]
c.head_bucket(Bucket=b)
for call in ("get_bucket_versioning", "get_object_lock_configuration", "get_bucket_encryption",
             "get_public_access_block", "get_bucket_lifecycle_configuration", "get_bucket_policy"):
    try:
        getattr(c, call)(Bucket=b)
    except c.exceptions.ClientError:
        pass
if sys.argv[3] == "list":
    n = sum(len(p.get("Contents", [])) for p in c.get_paginator("list_objects_v2").paginate(Bucket=b))
    assert n == int(sys.argv[4]), n
"""


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


class Bench:
    """The rows of the table, and everything the modules share (work dir, repository, password, cache)."""

    def __init__(self, work: Path, scale: float):
        self.work, self.scale = work, scale
        self.rows: list[dict] = []
        self.password_file = work / "password"
        self.password_file.write_text("module memory bench " + os.urandom(8).hex() + "\n")
        self.password_file.chmod(0o600)
        self.cache = work / "restic-cache"
        self.repo = str(work / "repo")

    def restic(self, *args: str, repo: str | None = None) -> str:
        env = restic_env(repo or self.repo, self.password_file, {"RESTIC_CACHE_DIR": str(self.cache)})
        return subprocess.run(["restic", *args], env=env, capture_output=True, text=True, check=True).stdout

    def restic_args(self, repo: str | None = None) -> dict:
        """The connection options the action plugin resolves and sends (password read from the 0600 file)."""
        return {
            "repository": repo or self.repo,
            "password": self.password_file.read_text(),
            "cache_dir": str(self.cache),
            "_ansible_tmpdir": str(self.work),
        }

    def module(self, label: str, name: str, args: dict, case: str) -> dict:
        res = measure_module(name, args, self.work, tag=label.replace(" ", "_"))
        row = {
            "module": name,
            "label": label,
            "case": case,
            "seconds": round(res["seconds"], 2),
            "cpu_seconds": round(res["cpu_seconds"], 2),
            "module_rss_mib": mib(res["module_rss_kib"]),
            "children_rss_mib": mib(res["children_rss_kib"]),
            "max_rss_mib": mib(res["max_rss_kib"]),
        }
        self.rows.append(row)
        print(
            f"  {label}: {row['seconds']} s, module {row['module_rss_mib']} MiB, children "
            f"{row['children_rss_mib']} MiB",
            file=sys.stderr,
            flush=True,
        )
        return res["result"]

    def tool(
        self,
        label: str,
        cmd: list[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        row: int = -1,
        slot: str = "tool",
    ) -> None:
        """A plain-tool equivalent of a module row (the last one unless ``row``), stored under ``slot``."""
        res = measure(cmd, env=env, cwd=cwd)
        figures = {slot: label, f"{slot}_seconds": round(res["seconds"], 2), f"{slot}_rss_mib": mib(res["max_rss_kib"])}
        self.rows[row].update(figures)
        print(
            f"  {label}: {figures[f'{slot}_seconds']} s, {figures[f'{slot}_rss_mib']} MiB", file=sys.stderr, flush=True
        )

    def restic_tool(self, label: str, *args: str, repo: str | None = None) -> None:
        env = restic_env(repo or self.repo, self.password_file, {"RESTIC_CACHE_DIR": str(self.cache)})
        self.tool(label, ["restic", *args], env=env)


def damage(tree: Path, fraction: float, seed: int = 7) -> int:
    """Ransomware, simulated: rewrite ``fraction`` of the files with random bytes under a new name, note per client."""
    rng = random.Random(seed)
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    hit = rng.sample(files, int(len(files) * fraction))
    for path in hit:
        size = path.stat().st_size
        path.with_name(path.name + ".locked").write_bytes(os.urandom(size))
        path.unlink()
    for client in sorted(p for p in tree.iterdir() if p.is_dir()):
        (client / "README_DECRYPT.txt").write_text("Your files are encrypted. Pay 1 BTC to recover them.\n")
    return len(hit)


def small_snapshots(b: Bench, count: int) -> float:
    """``count`` snapshots of one small folder of other hosts, two restic processes at a time."""
    small = b.work / "small" / "notes"
    small.mkdir(parents=True)
    (small / "readme.txt").write_text("other hosts' notes\n")
    started = time.perf_counter()

    def one(i: int) -> None:
        b.restic("backup", "--host", f"other-{i % 10:02d}", "--tag", "nightly", str(small))

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - started


def restic_part(b: Bench, files: int, size: int, snapshots: int) -> dict:
    tree = b.work / "srv" / "books"
    t0 = time.perf_counter()
    built = build_tree(tree, files, size)
    facts: dict = {"files": built[0], "bytes": built[1], "build_seconds": round(time.perf_counter() - t0, 1)}
    big = f"{built[0]:,} files, {built[1] / 2**20:,.0f} MiB"

    # restic_backup: the first backup of the tree, module into one repository, plain restic into another
    plain_repo = str(b.work / "repo-plain")
    b.restic("init", repo=plain_repo)
    b.restic("init")
    args = {**b.restic_args(), "paths": [str(tree)], "host": "books", "tags": ["nightly"]}
    clean = b.module("restic_backup", "restic_backup", args, f"first backup, {big}")
    b.restic_tool("restic backup", "backup", "--host", "books", "--tag", "nightly", str(tree), repo=plain_repo)
    shutil.rmtree(plain_repo)
    b.module(
        "restic_backup manifest",
        "restic_backup",
        {**args, "manifest": True},
        f"second backup (unchanged), with the backup-time manifest (sha256 of {built[0]:,} files)",
    )
    snapshot, snapshot_time = clean["snapshot_id"], None
    for snap in json.loads(b.restic("snapshots", "--json")):
        if snap["id"] == snapshot:
            snapshot_time = snap["time"]

    # restic_restore (verify, content comparison: the module's defaults) against restic restore --verify
    staging, plain_target = b.work / "staging", b.work / "restore-plain"
    args = {**b.restic_args(), "snapshot": snapshot, "target": str(staging)}
    b.module("restic_restore", "restic_restore", args, f"whole snapshot, {big}, verify")
    b.restic_tool("restic restore --verify", "restore", snapshot, "--target", str(plain_target), "--verify")
    if tree_size(staging / tree.relative_to("/")) != built or tree_size(plain_target) != built:
        raise RuntimeError("a restore did not bring back every file of the tree")
    shutil.rmtree(plain_target)

    # file_manifest: hash the tree, hash the restored tree, compare the two manifests
    live, restored = b.work / "live.jsonl", b.work / "restored.jsonl"
    b.module("file_manifest", "file_manifest", {"path": str(tree), "dest": str(live)}, f"create, {big}, to `dest`")
    b.tool("sha256sum", ["sh", "-c", SHA256SUM.format(out=b.work / "sha256sum.txt")], cwd=tree)
    b.module(
        "file_manifest restored",
        "file_manifest",
        {"path": str(staging / tree.relative_to("/")), "dest": str(restored)},
        "create, the restored tree",
    )
    b.module(
        "file_manifest compare",
        "file_manifest",
        {"operation": "compare", "reference": str(live), "candidate": str(restored)},
        f"compare two manifests of {built[0]:,} entries",
    )

    # 500 snapshots to list and check
    existing = len(json.loads(b.restic("snapshots", "--json")))
    facts["small_snapshot_seconds"] = round(small_snapshots(b, snapshots - existing), 1)
    facts["snapshots"] = len(json.loads(b.restic("snapshots", "--json")))
    many = f"{facts['snapshots']} snapshots, {big} of data"
    b.module("restic_snapshots", "restic_snapshots", b.restic_args(), f"list {many}")
    b.restic_tool("restic snapshots --json", "snapshots", "--json")
    b.module("restic_repository", "restic_repository", b.restic_args(), f"open and describe, {many}")
    b.restic_tool("restic cat config", "cat", "config")
    b.module("restic_check", "restic_check", b.restic_args(), f"structure check, {many}")
    b.restic_tool("restic check", "check")

    # snapshot_damage: the clean snapshot and one after simulated ransomware, both assessed
    facts["damaged_files"] = damage(tree, 0.10)
    b.restic("backup", "--host", "books", "--tag", "nightly", str(tree))
    args = {**b.restic_args(), "paths": [str(tree)], "host": "books", "mode": "all"}
    found = b.module("snapshot_damage", "snapshot_damage", args, f"3 snapshots of {big} (2 clean, 1 damaged), mode all")
    facts["damage_verdicts"] = {s["short_id"]: s.get("clean") for s in found.get("snapshots", []) if s.get("assessed")}
    if sorted(facts["damage_verdicts"].values()) != [False, True, True]:
        raise RuntimeError(f"snapshot_damage should find 2 clean snapshots and 1 damaged: {facts['damage_verdicts']}")

    # restore_swap: the restored tree back in place, damaged files to quarantine
    args = {
        "paths": [str(tree)],
        "staging": str(staging),
        "quarantine": str(b.work / "quarantine"),
        "snapshot_time": snapshot_time,
    }
    swapped = b.module("restore_swap", "restore_swap", args, f"{big} restored, {facts['damaged_files']:,} damaged")
    facts["swap"] = {k: len(v) if isinstance(v, list) else v for k, v in swapped.items() if k in SWAP_COUNTS}
    facts["tree_after_swap"] = list(tree_size(tree))
    return facts


def ledger_part(b: Bench) -> dict:
    per_period = max(ledger_bench.SIZES[0], int(ledger_bench.SIZES[-1] * b.scale))
    client = ledger_bench.client_tree(per_period)
    res = b.module(
        "ledger_verify",
        "ledger_verify",
        {"clients": [client], "fail_on_findings": False},
        f"a year of {per_period * 12:,} vouchers, CSV and SQLite",
    )
    return {"vouchers_per_period": per_period, "rows": res["clients"]["c001"]["rows"]}


def s3_part(b: Bench, objects: int) -> dict:
    from ledgerguard.embedded_s3 import EmbeddedS3

    server = EmbeddedS3(log_path=b.work / "moto.log").start()
    try:
        server.create_bucket("ledgers")
        client = server.client()
        client.put_bucket_versioning(Bucket="ledgers", VersioningConfiguration={"Status": "Enabled"})
        client.put_bucket_lifecycle_configuration(
            Bucket="ledgers",
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "old-versions",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
                    }
                ]
            },
        )
        t0 = time.perf_counter()

        def put(i: int) -> None:
            client.put_object(Bucket="ledgers", Key=f"restic/data/{i % 256:02x}/{i:064x}", Body=b"x" * 512)

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, range(objects)))
        put_seconds = time.perf_counter() - t0
        env = {**os.environ, **server.env()}  # for boto3; the module gets the keys as its env option
        args = {
            "repository": server.restic_url("ledgers", "restic"),
            "env": server.env(),
            "required": ["versioning", "lifecycle"],
        }
        res = b.module("s3_bucket_audit", "s3_bucket_audit", args, f"bucket of {objects:,} objects, every check")
        b.tool("boto3: same bucket calls", [PY, "-c", BOTO3_AUDIT, server.endpoint, "ledgers", "calls", "0"], env=env)
        b.tool(
            f"boto3: same calls + list {objects:,} objects",
            [PY, "-c", BOTO3_AUDIT, server.endpoint, "ledgers", "list", str(objects)],
            env=env,
            slot="tool2",
        )
        return {"objects": objects, "put_seconds": round(put_seconds, 1), "audit_status": res.get("status")}
    finally:
        server.stop()


def _sh(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def freeze_part(b: Bench) -> dict:
    """write_freeze on loop-device filesystems made here (docs/freeze.md); thawed, unmounted, detached in finally."""
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import freeze as fz

    if os.geteuid() != 0 or not shutil.which("losetup"):
        return {"skipped": "write_freeze needs root and util-linux (mounts, loop devices, FIFREEZE)"}
    lab = b.work / "freeze"
    state_dir = lab / "state"
    mounts: list[Path] = []
    try:
        for name in ("fsfreeze", "remount"):
            image, mnt = lab / f"{name}.img", lab / "mnt" / name
            mnt.mkdir(parents=True)
            with open(image, "wb") as fh:
                fh.truncate(64 * 1024 * 1024)
            subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
            subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True, capture_output=True)
            mounts.append(mnt)
        bind = lab / "clients" / "c001"
        bind.mkdir(parents=True)
        targets = [
            {"method": "fsfreeze", "path": str(mounts[0])},
            {"method": "remount_ro", "path": str(mounts[1])},
            {"method": "readonly_bind", "path": str(bind), "name": "客户 c001"},
        ]
        args = {
            "incident": INCIDENT,
            "targets": targets,
            "state_dir": str(state_dir),
            "watchdog_backend": "process",
            "max_duration": 600,
        }
        case = "fsfreeze + remount_ro (loop ext4) + readonly_bind, verified"
        frozen = b.module("write_freeze", "write_freeze", args, f"freeze: {case}")
        actions = [t.get("action") for t in frozen.get("targets", [])]
        b.module("write_freeze thaw", "write_freeze", {**args, "state": "thawed"}, f"thaw: {case}")
        b.tool("fsfreeze -f", ["fsfreeze", "-f", str(mounts[0])], row=-2)
        b.tool("fsfreeze -u", ["fsfreeze", "-u", str(mounts[0])])
        return {"freeze_actions": actions}
    finally:
        with contextlib.suppress(fz.FreezeError, OSError):
            fz.apply_thaw(fz.Host(fz.subprocess_run, state_dir=str(state_dir)), INCIDENT)
        for mnt in mounts:
            with contextlib.suppress(OSError):
                fd = os.open(mnt, os.O_RDONLY)
                with contextlib.suppress(OSError):
                    fcntl.ioctl(fd, fz.FITHAW, 0)
                os.close(fd)
        prefix = str(lab) + "/"
        for _attempt in range(3):
            inside = [
                m
                for m in fz.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
                if m.mountpoint.startswith(prefix)
            ]
            if not inside:
                break
            for m in sorted(inside, key=lambda m: (-len(m.mountpoint), -m.mount_id)):
                _sh("umount", m.mountpoint)
        for line in _sh("losetup", "-a").stdout.splitlines():
            if str(lab) in line:
                _sh("losetup", "-d", line.split(":")[0])


def growth(work: Path) -> dict:
    """restic_restore over 5,000 and 20,000 small files; snapshot_damage over 2, 4 and 8 snapshots of 20,000."""
    b = Bench(work, 1.0)
    b.restic("init")
    out: dict = {"restic_restore": [], "snapshot_damage": []}
    tree = work / "srv" / "books"
    snapshot = ""
    for files in (5_000, 20_000):
        shutil.rmtree(tree, ignore_errors=True)
        build_tree(tree, files, files * 1024)
        b.restic("backup", "--host", "books", str(tree))
        snapshot = json.loads(b.restic("snapshots", "--json", "--latest", "1", "--host", "books"))[-1]["id"]
        target = work / f"restore-{files}"
        args = {**b.restic_args(), "snapshot": snapshot, "target": str(target)}
        b.module(f"restic_restore {files}", "restic_restore", args, f"{files:,} files of about 1 KiB")
        out["restic_restore"].append({"files": files, "module_rss_mib": b.rows[-1]["module_rss_mib"]})
        shutil.rmtree(target)
    # 8 more snapshots of the 20,000 files, 200 files rewritten each time, dated a day apart (older than the above)
    rng = random.Random(1)
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    cutoffs = []
    for day in range(8):
        for path in rng.sample(files, 200):
            path.write_bytes(os.urandom(path.stat().st_size or 1))
        when = dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC) + dt.timedelta(days=day)
        b.restic("backup", "--host", "books", "--time", when.strftime("%Y-%m-%d %H:%M:%S"), str(tree))
        cutoffs.append((when + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z"))
    for examined, before in ((2, cutoffs[1]), (4, cutoffs[3]), (8, cutoffs[7])):
        args = {**b.restic_args(), "paths": [str(tree)], "host": "books", "mode": "all", "before": before}
        found = b.module(f"snapshot_damage {examined}", "snapshot_damage", args, f"{examined} snapshots examined")
        assessed = sum(1 for s in found["snapshots"] if s.get("assessed"))
        out["snapshot_damage"].append({"examined": assessed, "module_rss_mib": b.rows[-1]["module_rss_mib"]})
    return out


def run(scale: float = 1.0, work: Path | None = None) -> dict:
    """Measure every module at ``scale``; return the results of every scale measured so far (this one replaced)."""
    started = time.perf_counter()
    base = WORK
    base.mkdir(parents=True, exist_ok=True)
    own = work is None
    work = work or Path(tempfile.mkdtemp(prefix="module-memory-", dir=base))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o700)
    b = Bench(work, scale)
    entry: dict = {
        "scale": scale,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_before": load_average(),
        "runner": "each module as its own process, as the AnsiballZ payload runs it (bench/module_host.py: runpy "
        "as __main__ with an args file), under GNU time; no ansible-playbook or ansible-runner",
    }
    try:
        entry["restic"] = restic_part(
            b, max(100, int(FULL_FILES * scale)), int(FULL_BYTES * scale), max(10, int(500 * scale))
        )
        entry["ledger"] = ledger_part(b)
        entry["s3"] = s3_part(b, max(100, int(20_000 * scale)))
        entry["freeze"] = freeze_part(b)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    entry["rows"] = b.rows
    entry["modules"] = sorted({r["module"] for r in b.rows})
    entry["load_average_after"] = load_average()
    entry["seconds"] = round(time.perf_counter() - started, 1)
    entry["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    old = _load()
    runs = {k: v for k, v in old.get("runs", {}).items() if float(k) != scale}
    runs[str(scale)] = entry
    return {**old, "runs": dict(sorted(runs.items(), key=lambda kv: float(kv[0])))}


def _load() -> dict:
    old = json.loads(RESULT.read_text(encoding="utf-8")) if RESULT.exists() else {}
    return {"description": __doc__.split("\n\n")[0].replace("\n", " "), "runs": {}, **old}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.module_memory", description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the largest case (default 1.0)")
    ap.add_argument("--quick", action="store_true", help="--scale 0.02: a smoke test")
    ap.add_argument("--growth", action="store_true", help="run the growth probes instead (results under 'profiles')")
    ap.add_argument(
        "--profile-name",
        default="after",
        help="key of the growth probe's figures under 'profiles' (default after; 'before' for a run with "
        "BENCH_COLLECTIONS pointing at the code before a fix)",
    )
    ap.add_argument("--work", type=Path, default=None, help="scratch directory, kept (default: a temp dir, removed)")
    args = ap.parse_args(argv)
    if not shutil.which("restic"):
        print("restic is not installed (apt-get install restic)", file=sys.stderr)
        return 2
    if args.growth:
        work = args.work or Path(tempfile.mkdtemp(prefix="module-growth-", dir=WORK))
        try:
            probe = growth(work)
        finally:
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)
        result = _load()
        profiles = result.setdefault("profiles", {})
        profiles[args.profile_name] = {
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "collections": str(COLLECTIONS),
            **probe,
        }
        RESULT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(json.dumps(profiles, indent=2))
        return 0
    result = run(0.02 if args.quick else args.scale, args.work)
    entry = result["runs"][str(0.02 if args.quick else args.scale)]
    entry["command"] = "python -m bench.module_memory " + " ".join(argv if argv is not None else sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result["runs"], indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
