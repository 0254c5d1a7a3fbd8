"""Run every benchmark and write bench/results/*.json and docs/benchmarks.md (+ charts).

Usage: python -m bench [--quick] [--only manifest,scaling,ledger,restore_point,restore_overhead,module_memory,fleet,
       validation,client_cost,drill,backup] [--rounds N] [--fleet-sizes 1,4,16,32] [--snapshots N] [--no-report]

BENCH_BEFORE_COLLECTIONS=<dir holding ansible_collections/> runs fleet, client_cost and drill on that copy of the
collection too (before a change), right before this checkout's, so both figures come from one machine state.

Full size takes about 45 minutes on 2 CPUs (the fleet over 1, 4, 16 and 32 hosts about 15 of them, module_memory
about 7 to 11, most of it making 500 snapshots); `--quick` (small trees, 1, 4 and 8 hosts) about 10 minutes.
`--only` and `--no-report` re-run parts: docs/benchmarks.md is always rendered from every result in bench/results/,
so the parts not re-run keep their recorded figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
import traceback

from bench import common, report

ALL = list(common.JOBS)
FLEET_SIZES = [1, 4, 16, 32]  # issue 8: 1, 4, 16 and 32 hosts
FLEET_SIZES_QUICK = [1, 4, 8]


def _restore_overhead(quick: bool) -> dict:
    """bench/restore_overhead.py is the restic helper's: run it, then read the JSON it writes."""
    script = common.REPO / "bench" / "restore_overhead.py"
    if not script.exists():
        return {"missing": "bench/restore_overhead.py does not exist yet"}
    # the case: about 1 GiB in 20,000 files, local repository and moto S3 (quick: a small scale, local only)
    cmd = [common.PY, "-m", "bench.restore_overhead"] + (["--quick"] if quick else ["--s3"])
    proc = subprocess.run(cmd, cwd=common.REPO, capture_output=True, text=True)
    out = common.RESULTS / "restore_overhead.json"
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr[-1500:]}"}
    if not out.exists():
        return {"error": "bench.restore_overhead ran but did not write bench/results/restore_overhead.json"}
    return json.loads(out.read_text(encoding="utf-8"))


def _fleet(quick: bool, rounds: int, sizes: list[int] | None) -> dict:
    from bench import client_cost_bench, fleet_bench

    sizes = sizes or (FLEET_SIZES_QUICK if quick else FLEET_SIZES)
    return client_cost_bench.before_after(fleet_bench.run, quick=quick, rounds=rounds, sizes=sizes)


def _client_cost(quick: bool) -> dict:
    from bench import client_cost_bench

    return client_cost_bench.before_after(client_cost_bench.run, quick=quick)


def _drill(quick: bool) -> dict:
    from bench import client_cost_bench, drill_bench

    return client_cost_bench.before_after(drill_bench.run, quick=quick)


def _module_memory(quick: bool) -> dict:
    from bench import module_memory

    # quick: a smoke test at 2 % of the size (its figures go under their own scale, next to the full-size ones)
    return module_memory.run(0.02 if quick else 1.0)


def _validation(quick: bool, rounds: int, snapshots: int) -> dict:
    from bench import validation_bench

    return validation_bench.run(quick, rounds, snapshots or (10 if quick else 50))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="small trees, fewer rounds, 1, 4 and 8 hosts (about 10 minutes)"
    )
    ap.add_argument("--only", default=",".join(ALL), help="comma-separated subset of: " + ", ".join(ALL))
    ap.add_argument("--rounds", type=int, default=0, help="alternating rounds per comparison (default 5, quick 3)")
    ap.add_argument(
        "--fleet-sizes",
        default="",
        help="host counts for the fleet run (default 1,4,16,32 as issue 8 asks, about 15 minutes on 2 CPUs; quick "
        "1,4,8; e.g. --fleet-sizes 1,4,16 saves the 32-host run, about 9 of those minutes)",
    )
    ap.add_argument(
        "--snapshots",
        type=int,
        default=0,
        help="nightly snapshots for the validation cost's restore-point run (default 50 as issue 18 asks; quick 10)",
    )
    ap.add_argument("--no-report", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = ap.parse_args(argv)
    wanted = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = sorted(set(wanted) - set(ALL))
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; choose from {ALL}")
    rounds = args.rounds or (3 if args.quick else 5)
    fleet_sizes = [int(x) for x in args.fleet_sizes.split(",") if x.strip()] or None
    common.WORK.mkdir(parents=True, exist_ok=True)
    meta = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "rounds": rounds,
        "machine": common.machine_facts(),
        "load_average_start": common.load_average(),
    }
    from bench import backup_bench, ledger_bench, manifest_bench, restore_point_bench

    jobs = {
        "manifest": lambda: manifest_bench.mixed(args.quick, rounds),
        "scaling": lambda: manifest_bench.scaling(args.quick, min(rounds, 3)),
        "ledger": lambda: ledger_bench.run(args.quick, min(rounds, 3)),
        "restore_point": lambda: {
            "synthetic": restore_point_bench.synthetic(args.quick, rounds),
            "restic": restore_point_bench.real_restic(args.quick),
        },
        "restore_overhead": lambda: _restore_overhead(args.quick),
        "module_memory": lambda: _module_memory(args.quick),
        "fleet": lambda: _fleet(args.quick, min(rounds, 3), fleet_sizes),
        "validation": lambda: _validation(args.quick, min(rounds, 3), args.snapshots),
        "client_cost": lambda: _client_cost(args.quick),
        "drill": lambda: _drill(args.quick),
        "backup": lambda: backup_bench.run(args.quick, min(rounds, 3)),
    }
    failures = 0
    for name in wanted:
        print(f"[bench] {name} ...", flush=True)
        started = time.monotonic()
        try:
            result = jobs[name]()
        except Exception as exc:  # noqa: BLE001 - one failed benchmark must not lose the others' results
            failures += 1
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
        result["bench_seconds"] = round(time.monotonic() - started, 1)
        result["command"] = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
        result["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        if name != "restore_overhead":  # that file belongs to bench/restore_overhead.py
            common.save(name, result)
        print(f"[bench] {name}: {result.get('error') or 'done'} in {result['bench_seconds']} s", flush=True)
    meta["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    meta["load_average_end"] = common.load_average()
    common.save("meta", meta)
    if not args.no_report:
        path = report.write()
        print(f"[bench] wrote {path.relative_to(common.REPO)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
