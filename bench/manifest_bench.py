"""file_manifest against GNU sha256sum: a mixed tree (ratio), and file-count scaling (time and peak RSS)."""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

from bench.common import WORK, drop_caches_warm, load_average, measure, median, run_module
from bench.trees import make_count_tree, make_mixed_tree

SHA256SUM = "find . -type f -print0 | xargs -0 sha256sum > {out}"
SHA256SUM_P2 = "find . -type f -print0 | xargs -0 -P2 -n 256 sha256sum > {out}"


def _tree(kind: str, params: dict, maker) -> Path:
    name = kind + "-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    root = WORK / "trees" / name
    marker = WORK / "trees" / (name + ".done")
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        maker(root, **params)
        marker.write_text("ok\n")
    return root


def _sha256sum(tree: Path, out: Path, parallel: bool = False) -> dict:
    cmd = (SHA256SUM_P2 if parallel else SHA256SUM).format(out=out)
    return measure(["sh", "-c", cmd], cwd=tree)


def _fm(tree: Path, dest: Path, work: Path, parallel: str = "process", fmt: str = "json") -> dict:
    dest.unlink(missing_ok=True)
    return run_module(
        "file_manifest", {"path": str(tree), "dest": str(dest), "parallel": parallel, "format": fmt}, work
    )


def _cross_check(tree: Path, work: Path) -> bool:
    """file_manifest's sha256sum output holds exactly the lines of coreutils' (paths without './', any order)."""
    _fm(tree, work / "fm.sums", work, fmt="sha256sum")
    _sha256sum(tree, work / "coreutils.sums")
    ours = sorted((work / "fm.sums").read_bytes().splitlines())
    theirs = sorted(line.replace(b"  ./", b"  ", 1) for line in (work / "coreutils.sums").read_bytes().splitlines())
    return ours == theirs


def mixed(quick: bool, rounds: int) -> dict:
    params = {"small": 4000, "large": 2, "large_mib": 64} if quick else {"small": 20000, "large": 4, "large_mib": 256}
    tree = _tree("mixed", params, make_mixed_tree)
    work = WORK / "manifest"
    work.mkdir(parents=True, exist_ok=True)
    drop_caches_warm(tree)
    files = sum(1 for p in tree.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    contenders = {
        "sha256sum": lambda: _sha256sum(tree, work / "s1.txt"),
        "file_manifest (process)": lambda: _fm(tree, work / "m.jsonl", work, "process"),
        "sha256sum xargs -P2": lambda: _sha256sum(tree, work / "s2.txt", parallel=True),
        "file_manifest (thread)": lambda: _fm(tree, work / "m.jsonl", work, "thread"),
        "file_manifest (none: one process)": lambda: _fm(tree, work / "m.jsonl", work, "none"),
    }
    names = list(contenders)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    load_before = load_average()
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # alternate who goes first
        for name in order:
            res = contenders[name]()
            res.pop("stdout", None)
            res.pop("result", None)
            runs[name].append(res)
    summary = {
        n: {
            "median_seconds": round(median([x["seconds"] for x in v]), 3),
            "median_cpu_seconds": round(median([x["cpu_seconds"] for x in v]), 3),
            "max_rss_mib": round(max(x["max_rss_kib"] for x in v) / 1024, 1),
            "runs_seconds": [round(x["seconds"], 3) for x in v],
        }
        for n, v in runs.items()
    }
    base = summary["sha256sum"]["median_seconds"]
    for n in names:
        summary[n]["ratio_vs_sha256sum"] = round(base / summary[n]["median_seconds"], 2)
    # per-round ratios: the spread says how much the shared machine disturbed the medians
    per_round = [runs["sha256sum"][i]["seconds"] / runs["file_manifest (process)"][i]["seconds"] for i in range(rounds)]
    return {
        "tree": {"files": files, "bytes": total, **params},
        "rounds": rounds,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "contenders": summary,
        "speedup": summary["file_manifest (process)"]["ratio_vs_sha256sum"],
        "speedup_per_round": [round(x, 2) for x in per_round],
        "speedup_stdev": round(statistics.pstdev(per_round), 2),
        "same_hashes_as_sha256sum": _cross_check(tree, work),
    }


def scaling(quick: bool, rounds: int) -> dict:
    counts = [2000, 10000, 40000] if quick else [10000, 50000, 200000]
    work = WORK / "manifest"
    work.mkdir(parents=True, exist_ok=True)
    points = []
    for n in counts:
        tree = _tree("count", {"files": n}, make_count_tree)
        drop_caches_warm(tree)
        fm, s, cmp_ = [], [], []
        for r in range(rounds):
            pair = [
                ("sha", lambda t=tree: _sha256sum(t, work / "c.txt")),
                ("fm", lambda t=tree: _fm(t, work / "c.jsonl", work)),
            ]
            for name, fn in pair if r % 2 == 0 else reversed(pair):
                (s if name == "sha" else fm).append(fn())
        # compare two manifests of n entries (file against file: the merge alone)
        ref = work / f"ref-{n}.jsonl"
        shutil.copyfile(work / "c.jsonl", ref)
        for _ in range(rounds):
            cmp_.append(
                run_module(
                    "file_manifest",
                    {"operation": "compare", "reference": str(ref), "candidate": str(work / "c.jsonl")},
                    work,
                )
            )
        points.append(
            {
                "files": n,
                "sha256sum_seconds": round(median([x["seconds"] for x in s]), 3),
                "file_manifest_seconds": round(median([x["seconds"] for x in fm]), 3),
                "sha256sum_cpu_seconds": round(median([x["cpu_seconds"] for x in s]), 3),
                "file_manifest_cpu_seconds": round(median([x["cpu_seconds"] for x in fm]), 3),
                "file_manifest_max_rss_mib": round(max(x["max_rss_kib"] for x in fm) / 1024, 1),
                "sha256sum_max_rss_mib": round(max(x["max_rss_kib"] for x in s) / 1024, 1),
                "compare_seconds": round(median([x["seconds"] for x in cmp_]), 3),
                "compare_max_rss_mib": round(max(x["max_rss_kib"] for x in cmp_) / 1024, 1),
                "manifest_bytes": (work / "c.jsonl").stat().st_size,
            }
        )
        ref.unlink()
    return {"rounds": rounds, "points": points, "files_per_directory": 1000}
