"""Render bench/results/*.json into docs/benchmarks.md and its SVG charts."""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import REPO, RESULTS
from bench.svg import line_chart

DOC = REPO / "docs" / "benchmarks.md"
IMG = REPO / "docs" / "benchmarks"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _all_results() -> list[dict]:
    out = []
    for path in sorted(RESULTS.glob("*.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            continue
    return out


def _problem(res: dict | None, what: str) -> str | None:
    if res is None:
        return f"_Not run: no `bench/results/{what}.json`._\n"
    if "missing" in res:
        return f"_Not measured: {res['missing']}._\n"
    if "error" in res:
        return f"_Failed in this run: `{res['error'][:400]}`._\n"
    return None


def _mib(b: int) -> str:
    return f"{b / 1048576:,.0f} MiB"


def _machine(meta: dict) -> list[str]:
    m = meta["machine"]
    return [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu']} ({m['cpus_available']} CPUs available; "
        f"SHA extensions: {'yes' if m['sha_ni'] else 'no'}) |",
        f"| Memory | {m['memory_gib']} GiB |",
        f"| OS / kernel | {m['os']} / {m['kernel']} |",
        f"| Filesystem of the trees | {m['filesystem']} (page cache warm: every tree is read once before timing) |",
        f"| Python / ansible-core | {m['python']} / {m['ansible_core']} ({m['openssl']}) |",
        f"| Tools | {m['sha256sum']}; {m['restic']} |",
        f"| Run | {meta['started']} to {meta.get('finished', '?')} UTC, {'--quick, ' if meta['quick'] else ''}"
        f"{meta['rounds']} alternating rounds, medians |",
        f"| Load average (1, 5, 15 min) | start {meta['load_average_start']}, end {meta.get('load_average_end')} |",
        "",
        "Commands: "
        + "; ".join(sorted({f"`{r['command']}` ({r.get('finished', '?')})" for r in _all_results() if "command" in r}))
        + ".",
        "",
        "The machine is shared (other jobs may run at the same time): every comparison alternates its contenders "
        "round by round and reports medians, so a disturbance hits both sides.",
        "",
    ]


def _manifest(res: dict | None) -> list[str]:
    out = ["## Manifest hashing: `file_manifest` against GNU `sha256sum`", ""]
    if p := _problem(res, "manifest"):
        return out + [p]
    t = res["tree"]
    out += [
        f"Tree: {t['files']:,} files, {_mib(t['bytes'])}: {t['small']:,} small files (512 B to 64 KiB, log-uniform, "
        f"{500} per directory) and {t['large']} files of {t['large_mib']} MiB. `sha256sum` is "
        "`find . -type f -print0 | xargs -0 sha256sum > out` (one process at a time); `file_manifest` is the module "
        "run as its own process (as Ansible runs it) writing a JSON-lines manifest with `dest`, 2 workers.",
        "",
        "| contender | median wall s | median CPU s | peak RSS (largest process) | speed vs `sha256sum` |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, c in res["contenders"].items():
        out.append(
            f"| {name} | {c['median_seconds']:.2f} | {c['median_cpu_seconds']:.2f} | {c['max_rss_mib']} MiB | "
            f"{c['ratio_vs_sha256sum']:.2f}x |"
        )
    out += [
        "",
        f"**Result: `file_manifest` is {res['speedup']:.2f}x as fast as single-process `sha256sum`** (target: at "
        f"least 1.5x; per-round ratios {res['speedup_per_round']}). Same hashes as `sha256sum` for every file: "
        f"{'yes' if res['same_hashes_as_sha256sum'] else '**NO**'}.",
        "",
        "Where the gain comes from: the `none` row (one process, no parallelism) separates the two causes. Python's "
        "`hashlib` uses OpenSSL, which uses the CPU's SHA instructions; coreutils 9.1 `sha256sum` as built by Debian "
        "uses its own portable C code. The rest is hashing on both CPUs (forked worker processes; threads are slower "
        "for many small files because per-file work holds the GIL). `xargs -P2` shows what parallel `sha256sum` "
        "gains on its own; it does not spread a few large files well.",
        "",
    ]
    return out


def _scaling(res: dict | None) -> list[str]:
    out = ["## Cost and memory as the file count grows", ""]
    if p := _problem(res, "scaling"):
        return out + [p]
    out += [
        f"Trees of tiny files (about 90 bytes, {res['files_per_directory']} per directory): the cost per file, "
        "not per byte. `compare` merges two manifest files of that many entries (streaming, sorted merge).",
        "",
        "| files | `sha256sum` s (CPU s) | `file_manifest` s (CPU s) | `file_manifest` peak RSS | `compare` s |"
        " `compare` peak RSS | manifest size |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p_ in res["points"]:
        out.append(
            f"| {p_['files']:,} | {p_['sha256sum_seconds']:.2f} ({p_.get('sha256sum_cpu_seconds', 0):.2f}) | "
            f"{p_['file_manifest_seconds']:.2f} ({p_.get('file_manifest_cpu_seconds', 0):.2f}) | "
            f"{p_['file_manifest_max_rss_mib']} MiB | {p_['compare_seconds']:.2f} | {p_['compare_max_rss_mib']} MiB | "
            f"{_mib(p_['manifest_bytes'])} |"
        )
    first, last = res["points"][0], res["points"][-1]
    growth = last["file_manifest_max_rss_mib"] - first["file_manifest_max_rss_mib"]
    span = last["files"] - first["files"]
    fm_us = (last["file_manifest_seconds"] - first["file_manifest_seconds"]) / span * 1e6
    sha_us = (last["sha256sum_seconds"] - first["sha256sum_seconds"]) / span * 1e6
    out += [
        "",
        f"Cost grows linearly with the file count: about {fm_us:.0f} µs per extra file for `file_manifest` and "
        f"{sha_us:.0f} µs for `sha256sum`. On trees of tiny files `sha256sum` is the faster of the two: there is "
        "almost nothing to hash, and `file_manifest` pays per entry for what `sha256sum` does not do (an `lstat`, "
        "a metadata record, a JSON line, a hand-off to a worker) plus a fixed start-up (Python, the module, forking "
        "the workers). Its advantage is per byte (the mixed tree above).",
        "",
        f"Peak RSS moves by {growth:+.1f} MiB from {first['files']:,} to {last['files']:,} files "
        f"({last['files'] // first['files']}x more): memory does not grow with the file count when streaming to "
        "`dest` (it is bounded by the largest single directory's name list and a fixed window of in-flight batches). "
        "RSS is that of the largest process (module or one worker; the module runs one worker per CPU).",
        "",
        "![cost vs size](benchmarks/manifest_scaling.svg) ![memory vs size](benchmarks/manifest_memory.svg)",
        "",
    ]
    return out


def _ledger(res: dict | None) -> list[str]:
    out = ["## `ledger_verify`", ""]
    if p := _problem(res, "ledger"):
        return out + [p]
    out += [
        "One client, a year of vouchers: 12 monthly CSV files (UTF-8 with BOM) and the same vouchers in the SQLite "
        "ledger (`PRAGMA integrity_check` included), with one unbalanced voucher and one gap planted (4 findings).",
        "",
        "| vouchers | entry lines | seconds | µs per line | peak RSS |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p_ in res["points"]:
        out.append(
            f"| {p_['vouchers']:,} | {p_['rows']:,} | {p_['seconds']:.2f} | {p_['us_per_row']} | "
            f"{p_['max_rss_mib']} MiB |"
        )
    out += ["", "Memory grows with the number of vouchers (one pair of sums per voucher), not with the line count.", ""]
    return out


def _restore_point(res: dict | None) -> list[str]:
    out = ["## Restore-point choice over up to 500 snapshots", ""]
    if p := _problem(res, "restore_point"):
        return out + [p]
    syn = res["synthetic"]
    out += [
        "Decision logic (`module_utils/damage.py` `ls_summary`/`diff_summary`/`assess` for each snapshot against its "
        "predecessor, then the `clean_restore_point` filter) over synthetic `restic ls`/`restic diff` data, "
        f"{syn['points'][0]['files_per_snapshot']} files per snapshot, the newest {syn['damaged_newest']} snapshots "
        "damaged (ransom note, 80 % of files rewritten). `all` examines every snapshot; `until_clean` (the "
        "module's default) stops at the newest clean one.",
        "",
        "| snapshots | `all` s | ms per snapshot | `until_clean` s | skipped |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p_ in syn["points"]:
        out.append(
            f"| {p_['snapshots']} | {p_['all_seconds']:.3f} | {p_['all_ms_per_snapshot']} | "
            f"{p_['until_clean_seconds']:.4f} | {p_['skipped']} |"
        )
    first, last = syn["points"][0], syn["points"][-1]
    out += [
        "",
        f"Cost per snapshot stays flat ({first['all_ms_per_snapshot']} ms at {first['snapshots']}, "
        f"{last['all_ms_per_snapshot']} ms at {last['snapshots']}): linear in the snapshots examined, not "
        "quadratic (each snapshot is listed once and compared with its predecessor only).",
        "",
    ]
    real = res.get("restic")
    if real and "points" in real:
        out += [
            f"With real restic (the `snapshot_damage` module, `mode: all`, local repository of "
            f"{real['repository_snapshots']} snapshots of {real['files_per_snapshot']} files, candidates cut with "
            "`before`): restic's `ls`, `diff` and `dump` calls dominate.",
            "",
            "| snapshots assessed | seconds | s per snapshot | peak RSS |",
            "|---:|---:|---:|---:|",
        ]
        for p_ in real["points"]:
            out.append(
                f"| {p_['assessed']} | {p_['seconds']:.2f} | {p_['seconds_per_snapshot']:.3f} | "
                f"{p_['max_rss_mib']} MiB |"
            )
        per = real["points"][-1]["seconds_per_snapshot"]
        out += [
            "",
            f"At about {per:.2f} s per snapshot, assessing all of 500 snapshots would take about {per * 500 / 60:.0f} "
            "minutes with this repository; `until_clean` stops at the first clean snapshot, so an incident pays only "
            "for the damaged snapshots plus one.",
            "",
        ]
    out += ["![restore point](benchmarks/restore_point.svg)", ""]
    return out


def _flat(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for k, v in d.items():
        if k in ("traceback",):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += _flat(v, key + ".")
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for i, item in enumerate(v):
                rows += _flat(item, f"{key}[{i}].")
        else:
            rows.append((key, v))
    return rows


def _restore_overhead(res: dict | None) -> list[str]:
    out = ["## Restore overhead: `restic_restore` against plain `restic restore`", ""]
    if p := _problem(res, "restore_overhead"):
        return out + [p]
    out += [
        "Measured by `bench/restore_overhead.py` (`bench/results/restore_overhead.json`): "
        f"{res.get('description', '')}. "
        f"Snapshot of {res.get('files', '?'):,} files, {_mib(res.get('bytes', 0))} (scale {res.get('scale', '?')} of "
        f"the 1 GiB / 20,000 files case), {res.get('rounds', '?')} rounds, load average before "
        f"{res.get('load_average_before')}.",
        "",
    ]
    backends = res.get("backends")
    if isinstance(backends, dict) and backends:
        out += ["| backend | module median s | restic median s | overhead |", "|---|---:|---:|---:|"]
        for name, b in backends.items():
            med = b.get("median_seconds", {})
            out.append(
                f"| {name} | {med.get('module', '?')} | {med.get('restic', '?')} | {b.get('overhead_percent', '?')} % |"
            )
        out.append("")
        if "target_overhead_percent" in res:
            verdict = "met" if res.get("meets_target") else "**missed**"
            out += [f"Target: under {res['target_overhead_percent']} % ({verdict} in this run).", ""]
        return out
    out += ["| figure | value |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in _flat(res) if k != "bench_seconds"]
    return out + [""]


def _fleet(res: dict | None) -> list[str]:
    out = ["## Fleet: the incident playbook over 1 to 32 local-connection hosts", ""]
    if p := _problem(res, "fleet"):
        return out + [p]
    out += [
        res.get("description", "").strip() + f" Forks {res.get('forks', 8)}, one run per size.",
        "",
        "| hosts | wall s | s per host | tasks started | task results | hosts restored | load average before, after |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p_ in res["points"]:
        out.append(
            f"| {p_['hosts']} | {p_['seconds']:.1f} | {p_['seconds_per_host']:.2f} | {p_.get('tasks', '')} | "
            f"{p_.get('task_results', '')} | {p_.get('restored_hosts', '')} | "
            f"{p_.get('load_average_before', '')}, {p_.get('load_average_after', '')} |"
        )
    pts = res["points"]
    if pts:
        one, last = pts[0], pts[-1]
        cpus = (_load("meta") or {}).get("machine", {}).get("cpus_available", 2)
        per_result = last["seconds"] * cpus / max(1, last.get("task_results") or 1)
        out += [
            "",
            f"One host runs {one.get('tasks')} tasks in {one['seconds']:.0f} s "
            f"({one['seconds'] / max(1, one['tasks']):.2f} s per task, restic included). "
            f"At {last['hosts']} hosts the wall time per host falls to "
            f"{last['seconds_per_host']:.1f} s because hosts run side by side (forks 8), but the whole run is bound by "
            f"the {cpus} CPUs: about {per_result:.2f} CPU-seconds per task result, most of it Ansible's own per-task "
            "work (by our estimate: templating, forking a worker, building and starting the module payload) "
            "rather than restic, whose restores here are small. Cost grows linearly with hosts x tasks. "
            "Fact gathering is already off "
            "(`gathering = explicit`) and `pipelining = true` is set (it only matters over SSH; with "
            "`ansible_connection: local` there is no transfer to save). On a real fleet the work runs on the managed "
            "hosts, so the controller's share per task is what limits forks.",
        ]
    out += ["", "![fleet](benchmarks/fleet.svg)"]
    if res.get("run"):
        out += ["", res["run"]]
    return out + [""]


def _memory(results: dict[str, dict | None]) -> list[str]:
    out = ["## Peak memory per module on the largest case", "", "| module | case | peak RSS |", "|---|---|---:|"]
    sc = results.get("scaling")
    if sc and "points" in sc:
        p = sc["points"][-1]
        out.append(
            f"| file_manifest (create) | {p['files']:,} files, streamed to `dest` | "
            f"{p['file_manifest_max_rss_mib']} MiB |"
        )
        out.append(
            f"| file_manifest (compare) | two manifests of {p['files']:,} entries | {p['compare_max_rss_mib']} MiB |"
        )
    mf = results.get("manifest")
    if mf and "contenders" in mf:
        out.append(
            f"| file_manifest (create) | mixed tree, {_mib(mf['tree']['bytes'])} | "
            f"{mf['contenders']['file_manifest (process)']['max_rss_mib']} MiB |"
        )
    lv = results.get("ledger")
    if lv and "points" in lv:
        p = lv["points"][-1]
        out.append(f"| ledger_verify | {p['rows']:,} entry lines | {p['max_rss_mib']} MiB |")
    rp = results.get("restore_point")
    if rp and "restic" in rp and "points" in rp["restic"]:
        p = rp["restic"]["points"][-1]
        out.append(f"| snapshot_damage | {p['assessed']} snapshots, mode all | {p['max_rss_mib']} MiB |")
    ro = results.get("restore_overhead") or {}
    rss = [(k, v) for k, v in _flat(ro) if "rss" in k.lower()]
    if rss:
        label = {"module": "restic_restore", "restic": "plain `restic restore` (for comparison)"}
        out += [
            f"| {label.get(k.rsplit('.', 1)[-1], k)} | 1 GiB / 20,000 files, largest process of the run | {v} MiB |"
            for k, v in rss
        ]
    else:
        out += ["", "`restic_restore`: `bench/restore_overhead.py` does not record peak memory (not measured here)."]
    out += [""]
    return out


def _charts(results: dict[str, dict | None]) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    sc = results.get("scaling")
    if sc and "points" in sc:
        pts = sc["points"]
        series = {
            "sha256sum": [(p["files"], p["sha256sum_seconds"]) for p in pts],
            "file_manifest": [(p["files"], p["file_manifest_seconds"]) for p in pts],
            "compare (merge)": [(p["files"], p["compare_seconds"]) for p in pts],
        }
        (IMG / "manifest_scaling.svg").write_text(
            line_chart("Manifest cost vs file count", series, "files", "seconds"), encoding="utf-8"
        )
        memory = {
            "file_manifest (create)": [(p["files"], p["file_manifest_max_rss_mib"]) for p in pts],
            "file_manifest (compare)": [(p["files"], p["compare_max_rss_mib"]) for p in pts],
            "sha256sum": [(p["files"], p["sha256sum_max_rss_mib"]) for p in pts],
        }
        (IMG / "manifest_memory.svg").write_text(
            line_chart("Peak RSS vs file count", memory, "files", "MiB", log=False), encoding="utf-8"
        )
    fl = results.get("fleet")
    if fl and fl.get("points"):
        series = {
            "wall seconds": [(p["hosts"], p["seconds"]) for p in fl["points"]],
            "seconds per host": [(p["hosts"], p["seconds_per_host"]) for p in fl["points"]],
        }
        (IMG / "fleet.svg").write_text(
            line_chart("Incident playbook vs hosts (forks 8)", series, "hosts", "seconds"), encoding="utf-8"
        )
    rp = results.get("restore_point")
    if rp and "synthetic" in rp and "points" in rp.get("synthetic", {}):
        pts = rp["synthetic"]["points"]
        series = {"decision, mode all": [(p["snapshots"], p["all_seconds"]) for p in pts]}
        if "points" in rp.get("restic", {}):
            series["snapshot_damage + restic"] = [(p["assessed"], p["seconds"]) for p in rp["restic"]["points"]]
        (IMG / "restore_point.svg").write_text(
            line_chart("Restore-point choice vs snapshots", series, "snapshots examined", "seconds"), encoding="utf-8"
        )


def write() -> Path:
    meta = _load("meta") or {}
    results = {n: _load(n) for n in ("manifest", "scaling", "ledger", "restore_point", "restore_overhead", "fleet")}
    _charts(results)
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`; `--quick` for a short run). Raw figures: `bench/results/*.json`. "
        "Targets from issue 8.",
        "",
    ]
    if meta:
        lines += _machine(meta)
    lines += _summary(results)
    for part in (_manifest, _scaling):
        lines += part(results[part.__name__.strip("_")])
    lines += _restore_point(results["restore_point"])
    lines += _ledger(results["ledger"])
    lines += _memory(results)
    lines += _restore_overhead(results["restore_overhead"])
    lines += _fleet(results["fleet"])
    DOC.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return DOC


def _summary(results: dict[str, dict | None]) -> list[str]:
    out = ["## Summary", "", "| benchmark | target | measured |", "|---|---|---|"]
    mf = results.get("manifest")
    if mf and "speedup" in mf:
        ok = "met" if mf["speedup"] >= 1.5 else "**missed**"
        out.append(f"| manifest hashing vs `sha256sum` | >= 1.5x on 2 cores | {mf['speedup']:.2f}x ({ok}) |")
    sc = results.get("scaling")
    if sc and "points" in sc:
        a, b = sc["points"][0], sc["points"][-1]
        out.append(
            f"| manifest memory, {a['files']:,} -> {b['files']:,} files | bounded | "
            f"{a['file_manifest_max_rss_mib']} -> {b['file_manifest_max_rss_mib']} MiB |"
        )
    fl = results.get("fleet")
    if fl and fl.get("points"):
        series = {
            "wall seconds": [(p["hosts"], p["seconds"]) for p in fl["points"]],
            "seconds per host": [(p["hosts"], p["seconds_per_host"]) for p in fl["points"]],
        }
        (IMG / "fleet.svg").write_text(
            line_chart("Incident playbook vs hosts (forks 8)", series, "hosts", "seconds"), encoding="utf-8"
        )
    rp = results.get("restore_point")
    if rp and "synthetic" in rp and "points" in rp["synthetic"]:
        a, b = rp["synthetic"]["points"][0], rp["synthetic"]["points"][-1]
        out.append(
            f"| restore-point choice, {a['snapshots']} -> {b['snapshots']} snapshots | linear | "
            f"{a['all_ms_per_snapshot']} -> {b['all_ms_per_snapshot']} ms per snapshot |"
        )
    ro = results.get("restore_overhead")
    out.append(f"| restore overhead vs `restic restore` | < 5 % | {_overhead_text(ro)} |")
    fl = results.get("fleet")
    if fl and fl.get("points"):
        text = "; ".join(
            f"{p['hosts']}: {p['seconds']:.0f} s ({p['seconds_per_host']:.1f} s/host)" for p in fl["points"]
        )
    else:
        text = "not measured"
    out.append(f"| fleet, hosts (forks 8) | scaling shown | {text} |")
    return out + [""]


def _overhead_text(ro: dict | None) -> str:
    if not ro:
        return "not run"
    if "missing" in ro or "error" in ro:
        return "not measured (see below)"
    if isinstance(ro.get("overhead_percent"), int | float):
        return (
            f"{ro['overhead_percent']} % (median {ro.get('median_module_seconds')} s against "
            f"{ro.get('median_restic_seconds')} s; {ro.get('files', '?'):,} files, scale {ro.get('scale', '?')}, "
            f"backends: {', '.join(ro.get('backends', {}) or ['?'])})"
        )
    for k, v in _flat(ro):
        if "overhead" in k.lower() and isinstance(v, int | float):
            return f"{k} = {v}"
    return "see below"
