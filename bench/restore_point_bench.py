"""Restore-point choice: the damage assessment + clean_restore_point over growing snapshot histories.

Two parts. (1) The decision logic itself (module_utils/damage.py + the clean_restore_point filter) over synthetic
restic listings of 50..500 snapshots, all of them examined (mode=all), and with mode=until_clean. (2) The real
``snapshot_damage`` module against a local restic repository, where restic's own ls/diff/dump calls dominate.
"""

from __future__ import annotations

import datetime
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REPO, WORK, median, run_module

sys.path.insert(0, str(REPO / ".collections"))

ROOT = "/srv/clients/c001"


def _history(n: int, files: int, damaged_newest: int, seed: int = 1):
    """Synthetic `restic ls --json` node lists and `restic diff --json` change lists, oldest first."""
    rng = random.Random(seed)
    names = [f"{ROOT}/凭证/{i:05d}.csv" for i in range(files)]
    sizes = {p: rng.randrange(200, 40000) for p in names}
    snapshots = []
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    for k in range(n):
        damaged = k >= n - damaged_newest
        changed = rng.sample(names, max(1, files // 50)) if not damaged else names[: int(files * 0.8)]
        for p in changed:
            sizes[p] = rng.randrange(200, 40000)
        nodes = [{"struct_type": "node", "path": ROOT, "type": "dir"}]
        nodes += [{"struct_type": "node", "path": p, "type": "file", "size": sizes[p]} for p in names]
        if damaged:
            nodes.append({"struct_type": "node", "path": f"{ROOT}/README_DECRYPT.txt", "type": "file", "size": 900})
        diff = [{"message_type": "change", "path": p, "modifier": "M"} for p in changed]
        snapshots.append(
            {
                "id": f"{k:08x}" + "0" * 56,
                "short_id": f"{k:08x}",
                "time": (start + datetime.timedelta(hours=6 * k)).isoformat().replace("+00:00", "Z"),
                "nodes": nodes,
                "diff": diff,
            }
        )
    return snapshots


def _decide(history, mode: str):
    from ansible_collections.ledgerguard.recovery.plugins.filter.restore_point import clean_restore_point
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import damage

    summaries = {}

    def summary(i):
        if i not in summaries:
            summaries[i] = damage.ls_summary(history[i]["nodes"], [ROOT])
        return summaries[i]

    out = []
    for i in range(len(history) - 1, -1, -1):
        cur = summary(i)
        prev = summary(i - 1) if i > 0 else None
        diff = damage.diff_summary(history[i]["diff"], [ROOT]) if i > 0 else None
        clean, reasons = damage.assess(prev, cur, diff, {})
        s = history[i]
        out.append(
            {
                "id": s["id"],
                "short_id": s["short_id"],
                "time": s["time"],
                "assessed": True,
                "after_cutoff": False,
                "clean": clean,
                "reasons": reasons,
                "stats": {},
            }
        )
        if clean and mode == "until_clean":
            break
    return clean_restore_point(out)


def synthetic(quick: bool, rounds: int) -> dict:
    sizes = [50, 100, 250, 500]
    files = 100 if quick else 300
    points = []
    for n in sizes:
        history = _history(n, files, damaged_newest=20)
        row = {"snapshots": n, "files_per_snapshot": files}
        for mode in ("all", "until_clean"):
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                choice = _decide(history, mode)
                times.append(time.perf_counter() - t)
            assert choice["found"] and choice["chosen"]["short_id"] == history[n - 21]["short_id"], choice["why"]
            row[f"{mode}_seconds"] = round(median(times), 4)
        row["all_ms_per_snapshot"] = round(row["all_seconds"] / n * 1000, 3)
        row["skipped"] = len(choice["skipped"])
        points.append(row)
    return {"points": points, "damaged_newest": 20}


def _restic(repo: str, pw: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "RESTIC_REPOSITORY": repo,
        "RESTIC_PASSWORD_FILE": str(pw),
        "RESTIC_CACHE_DIR": str(WORK / "restic-cache"),
    }
    return subprocess.run(["restic", *args], env=env, cwd=cwd, capture_output=True, text=True, check=True)


def real_restic(quick: bool) -> dict:
    """snapshot_damage (mode=all) against a local repository of up to 30 snapshots, candidates cut by `before`."""
    total = 12 if quick else 30
    sizes = [4, 8, 12] if quick else [10, 20, 30]
    base = WORK / "restore-point"
    marker = base / f"repo-{total}.done"
    repo, pw, data = base / f"repo-{total}", base / "password", base / "data"
    times_file = base / f"repo-{total}.times"
    if not marker.exists():
        import shutil

        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        pw.write_text("bench-only password\n")
        pw.chmod(0o600)
        rng = random.Random(3)
        tree = data / "c001"
        tree.mkdir(parents=True)
        for i in range(60):
            (tree / f"{i:03d}.csv").write_bytes(os.urandom(64).hex().encode() * 20)
        _restic(str(repo), pw, "init")
        stamps = []
        for _k in range(total):
            for i in rng.sample(range(60), 2):
                (tree / f"{i:03d}.csv").write_bytes(os.urandom(64).hex().encode() * 20)
            _restic(str(repo), pw, "backup", "--host", "bench", "--tag", "nightly", str(tree))
            stamps.append(datetime.datetime.now(datetime.UTC).isoformat())
            time.sleep(0.05)
        times_file.write_text("\n".join(stamps))
        marker.write_text("ok\n")
    stamps = times_file.read_text().splitlines()
    points = []
    for n in sizes:
        # candidates: the first n snapshots (taken before the (n+1)th); newer ones are listed as after the cutoff
        before = stamps[n - 1]
        args = {
            "repository": str(repo),
            "password_file": str(pw),
            "paths": [str(data / "c001")],
            "mode": "all",
            "before": before,
            "cache_dir": str(WORK / "restic-cache"),
        }
        res = run_module("snapshot_damage", args, base)
        assessed = sum(1 for s in res["result"]["snapshots"] if s.get("assessed"))
        points.append(
            {
                "snapshots": n,
                "assessed": assessed,
                "seconds": round(res["seconds"], 2),
                "seconds_per_snapshot": round(res["seconds"] / max(1, assessed), 3),
                "max_rss_mib": round(res["max_rss_kib"] / 1024, 1),
            }
        )
    return {"points": points, "repository_snapshots": total, "files_per_snapshot": 60}
