"""Validation cost (issue 18): what the file validators cost, alone and inside the restore-point choice.

Two parts.
(1) ``validators.validate`` in this process over a mixed tree built here (SQLite ledgers, CSV vouchers, PDFs,
    .xlsx workbooks, PNG and JPEG scans, files of no known format): files, MiB, files/s and MiB/s per format, and the
    checker that answered. Page cache warm; the best of ``rounds`` passes (the machine may be shared).
(2) The ``snapshot_damage`` module (run as its own process, as the AnsiballZ payload does: bench/module_host.py, no
    controller) against a local restic repository of one client with N nightly snapshots (backdated with
    ``--time``), a few files changing each night and the SQLite ledger corrupted in place (same size) in the newest
    night, as in the incident. ``mode: all`` assesses every one of the N snapshots (the worst case: ``until_clean``
    stops earlier), with ``validate`` on and off in alternating rounds; the ratio is on/off within this one run.
Raw per-file and per-round figures go to bench/results/raw/validation.json (git-ignored).
"""

from __future__ import annotations

import datetime
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

from bench.common import REPO, RESULTS, WORK, measure_module, median
from ledgerguard import sampledata

sys.path.insert(0, str(REPO / ".collections"))

TARGET_RATIO = 1.5  # issue 18: validation on within 1.5x of off
MIB = 1024 * 1024
FIRST_NIGHT = datetime.datetime(2026, 1, 1, 23, 0, tzinfo=datetime.UTC)  # nightly snapshots are backdated from here


# ------------------------------------------------------------------------------------------------ file makers


def _png(path: Path, width: int, height: int, rng: random.Random) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # a greyscale "scan": noisy rows, so the compressed data has a realistic size
    raw = b"".join(b"\x00" + bytes(rng.randrange(180, 256) for _ in range(width)) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    )


def _jpeg(path: Path, scan_bytes: int, rng: random.Random) -> None:
    def seg(code: int, body: bytes) -> bytes:
        return bytes((0xFF, code)) + struct.pack(">H", len(body) + 2) + body

    jfif = seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    dqt = seg(0xDB, b"\x00" + bytes(rng.randrange(1, 100) for _ in range(64)))
    sof = seg(0xC0, b"\x08\x04\x00\x03\x00\x01\x01\x11\x00")
    dht = seg(0xC4, b"\x00" + bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]) + bytes(range(12)))
    sos = seg(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    scan = bytes(b if b != 0xFF else 0xFE for b in rng.randbytes(scan_bytes))  # entropy-coded data, no markers
    path.write_bytes(b"\xff\xd8" + jfif + dqt + sof + dht + sos + scan + b"\xff\xd9")


def _xlsx(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    cells = "".join(
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>记-{r:04d}</t></is></c>'
        f'<c r="B{r}"><v>{rng.randrange(100, 10**7) / 100:.2f}</v></c></row>'
        for r in range(1, rows + 1)
    )
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"/>',
        "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        '2006/main"><sheets><sheet name="凭证" sheetId="1"/></sheets></workbook>',
        "xl/worksheets/sheet1.xml": '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main"><sheetData>{cells}</sheetData></worksheet>',
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)


def mixed_tree(quick: bool) -> Path:
    """Built once under .cache/bench/validation/tree-<size> (a marker says it is complete)."""
    size = "quick" if quick else "full"
    root = WORK / "validation" / f"tree-{size}"
    marker = root.with_suffix(".done")
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    k = 1 if quick else 4
    rng = random.Random(18)
    for c in range(2 * k):
        client = f"c{c:03d}"
        periods = [f"2024-{m:02d}" for m in range(1, 13)]
        # a year of vouchers per client: 12 CSV files and the SQLite ledger holding the same lines
        sampledata.make_client_tree(root, client, periods=periods, vouchers_per_period=150, pdfs=0, seed=c)
        base = root / client
        for n in range(15 * k // 2 + 5):
            pages = 1 + n % 6
            sampledata.write_fake_pdf(base / "扫描件" / f"记-{n:04d}.pdf", f"Voucher {n:04d} {client}", pages=pages)
        (base / "报表").mkdir(parents=True, exist_ok=True)
        for n in range(5 * k):
            _xlsx(base / "报表" / f"{n:03d}.xlsx", rows=200 + 300 * n, seed=c * 100 + n)
        (base / "图片").mkdir(parents=True, exist_ok=True)
        for n in range(5 * k):
            _png(base / "图片" / f"{n:03d}.png", 400, 100 + 40 * n, rng)
            _jpeg(base / "图片" / f"{n:03d}.jpg", 20000 + 15000 * n, rng)
        (base / "其他").mkdir(parents=True, exist_ok=True)
        for n in range(5 * k):
            (base / "其他" / f"{n:03d}.bin").write_bytes(rng.randbytes(4096 * (1 + n)))
            (base / "其他" / f"{n:03d}.txt").write_text("备注 memo line\n" * (50 * (1 + n)), encoding="utf-8")
    marker.write_text("ok\n")
    return root


# ------------------------------------------------------------------------------------------------ part 1


def throughput(quick: bool, rounds: int) -> dict:
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import validators

    root = mixed_tree(quick)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)  # warm page cache
    passes = []
    for _ in range(rounds):
        per_file = []
        for path in files:
            started = time.perf_counter()
            verdict = validators.validate(str(path))
            seconds = time.perf_counter() - started
            per_file.append((path, verdict, seconds))
        passes.append(per_file)
    # per format, the fastest of the passes (least disturbed by the other load on the machine)
    formats: dict[str, dict] = {}
    pass_seconds: dict[str, list[float]] = {}
    for index, per_file in enumerate(passes):
        totals: dict[str, dict] = {}
        for path, verdict, seconds in per_file:
            fmt = verdict.format or "(unknown)"
            row = totals.setdefault(fmt, {"files": 0, "bytes": 0, "seconds": 0.0, "checkers": {}, "status": {}})
            row["files"] += 1
            row["bytes"] += path.stat().st_size
            row["seconds"] += seconds
            row["checkers"][verdict.checker] = row["checkers"].get(verdict.checker, 0) + 1
            row["status"][verdict.status] = row["status"].get(verdict.status, 0) + 1
        for fmt, row in totals.items():
            if fmt not in formats or row["seconds"] < formats[fmt]["seconds"]:
                formats[fmt] = {**row, "best_pass": index}
            pass_seconds.setdefault(fmt, []).append(round(row["seconds"], 4))
    rows = []
    for fmt, row in sorted(formats.items()):
        secs = max(row["seconds"], 1e-9)
        rows.append(
            {
                "format": fmt,
                "checker": ", ".join(sorted(row["checkers"])),
                "status": row["status"],
                "files": row["files"],
                "mib": round(row["bytes"] / MIB, 2),
                "seconds": round(row["seconds"], 4),
                "files_per_second": round(row["files"] / secs, 1),
                "mib_per_second": round(row["bytes"] / MIB / secs, 1),
                "pass_seconds": pass_seconds[fmt],
            }
        )
    total_files = sum(r["files"] for r in rows)
    total_bytes = sum(p.stat().st_size for p in files)
    total_secs = sum(r["seconds"] for r in rows)
    raw = [
        {"path": str(p.relative_to(root)), "bytes": p.stat().st_size, **v.as_dict(), "seconds": round(s, 6)}
        for p, v, s in passes[-1]
    ]
    return {
        "rows": rows,
        "rounds": rounds,
        "total": {
            "files": total_files,
            "mib": round(total_bytes / MIB, 2),
            "seconds": round(total_secs, 3),
            "files_per_second": round(total_files / max(total_secs, 1e-9), 1),
            "mib_per_second": round(total_bytes / MIB / max(total_secs, 1e-9), 1),
        },
        "qpdf": shutil.which("qpdf") or "not installed",
        "_raw": raw,
    }


# ------------------------------------------------------------------------------------------------ part 2


def _restic(repo: Path, pw: Path, *args: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "RESTIC_REPOSITORY": str(repo),
        "RESTIC_PASSWORD_FILE": str(pw),
        "RESTIC_CACHE_DIR": str(WORK / "restic-cache"),
    }
    subprocess.run(["restic", *args], env=env, capture_output=True, text=True, check=True)


def _corrupt_in_place(path: Path) -> None:
    """Overwrite bytes inside the file (same size), past the header: the incident's corrupted ledger."""
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(page + 100, min(len(data), 3 * page), 7):
        data[offset] = (data[offset] * 31 + 17) & 0xFF
    path.write_bytes(bytes(data))


def history(snapshots: int) -> dict:
    """A repository of ``snapshots`` nightly backups of one client (built once, reused while the marker exists)."""
    base = WORK / "validation" / f"restic-{snapshots}"
    marker = base.with_suffix(".done")
    repo, pw, tree = base / "repo", base / "password", base / "data" / "c001"
    if not marker.exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        pw.write_text("bench-only password\n")
        pw.chmod(0o600)
        rng = random.Random(50)
        periods = [f"2024-{m:02d}" for m in range(1, 13)]
        sampledata.make_client_tree(base / "data", "c001", periods=periods, vouchers_per_period=60, pdfs=20)
        (tree / "报表").mkdir()
        for n in range(4):
            _xlsx(tree / "报表" / f"{n:02d}.xlsx", rows=300, seed=n)
        _restic(repo, pw, "init")
        start = FIRST_NIGHT
        for night in range(snapshots):
            if night:
                # a few files change each night: two vouchers re-exported, one workbook saved, a new scan, and
                # the ledger itself (new lines: a valid SQLite file every night until the last)
                for period in rng.sample(periods, 2):
                    sampledata.write_voucher_csv(tree / "凭证" / f"{period}.csv", period, 60, seed=night)
                _xlsx(tree / "报表" / f"{night % 4:02d}.xlsx", rows=300 + night, seed=night)
                sampledata.write_fake_pdf(tree / "扫描件" / f"记-n{night:04d}.pdf", f"Voucher night {night}")
                sampledata.write_sqlite_ledger(tree / "账簿" / "ledger.sqlite", periods, 60, seed=night)
            if night == snapshots - 1 and snapshots > 1:
                _corrupt_in_place(tree / "账簿" / "ledger.sqlite")
            stamp = (start + datetime.timedelta(days=night)).strftime("%Y-%m-%d %H:%M:%S")
            _restic(repo, pw, "backup", "--host", "bench", "--tag", "nightly", "--time", stamp, str(tree))
        marker.write_text("ok\n")
    return {"repo": repo, "password": pw, "tree": tree, "base": base}


def counting_restic(base: Path, log: Path) -> Path:
    """A restic wrapper that appends its subcommand (ls, diff, restore, dump, ...) to ``log`` and execs restic: how
    many restic runs each mode costs (each one opens the repository and loads its index)."""
    real = shutil.which("restic") or "restic"
    wrapper = base / "restic-counted"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in -*|*/*) ;; *) printf \'%s\\n\' "$a" >> ' + f"'{log}'" + "; break;; esac; done\n"
        f"exec '{real}' \"$@\"\n"
    )
    wrapper.chmod(0o700)
    return wrapper


def restic_runs(log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        counts[line] = counts.get(line, 0) + 1
    return dict(sorted(counts.items()))


def restore_point(snapshots: int, rounds: int) -> dict:
    made = time.monotonic()
    h = history(snapshots)
    build_seconds = round(time.monotonic() - made, 1)
    tree = h["tree"]
    common_args = {
        "repository": str(h["repo"]),
        "password_file": str(h["password"]),
        "paths": [str(tree)],
        "mode": "all",
        "cache_dir": str(WORK / "restic-cache"),
        "ledger_paths": [str(tree / "账簿" / "ledger.sqlite"), str(tree / "凭证")],
    }
    runs: list[dict] = []
    for r in range(rounds):
        order = (True, False) if r % 2 == 0 else (False, True)  # alternate who goes first
        for validate in order:
            log = h["base"] / f"restic-runs-{r}-{validate}.log"
            log.unlink(missing_ok=True)
            binary = str(counting_restic(h["base"], log))
            res = measure_module(
                "snapshot_damage", {**common_args, "validate": validate, "restic_binary": binary}, h["base"], tag=str(r)
            )
            snaps = res["result"]["snapshots"]
            newest_clean = next((s for s in snaps if s.get("clean")), None)
            runs.append(
                {
                    "round": r,
                    "validate": validate,
                    "seconds": round(res["seconds"], 2),
                    "cpu_seconds": round(res["cpu_seconds"], 2),
                    "max_rss_mib": round(res["max_rss_kib"] / 1024, 1),
                    "assessed": sum(1 for s in snaps if s.get("assessed")),
                    "clean": sum(1 for s in snaps if s.get("clean")),
                    "chosen_time": newest_clean and newest_clean["time"],
                    "newest_reasons": (snaps[0].get("reasons") or [])[:3] if snaps else [],
                    "restic_runs": restic_runs(log),
                }
            )
            print(f"[bench] validation: round {r} validate={validate}: {runs[-1]['seconds']} s", flush=True)
    on = [x["seconds"] for x in runs if x["validate"]]
    off = [x["seconds"] for x in runs if not x["validate"]]
    per_round = [
        round(a["seconds"] / b["seconds"], 2)
        for a in runs
        if a["validate"]
        for b in runs
        if not b["validate"] and b["round"] == a["round"]
    ]
    ratio = round(median(on) / median(off), 2)
    first_on = next(x for x in runs if x["validate"])
    first_off = next(x for x in runs if not x["validate"])
    return {
        "snapshots": snapshots,
        "rounds": rounds,
        "mode": "all",
        "repository_build_seconds": build_seconds,
        "median_on_seconds": median(on),
        "median_off_seconds": median(off),
        "ratio": ratio,
        "ratio_per_round": per_round,
        "meets_target": ratio <= TARGET_RATIO,
        "target": TARGET_RATIO,
        "chosen_on": first_on["chosen_time"],
        "chosen_off": first_off["chosen_time"],
        "runs": runs,
    }


def run(quick: bool, rounds: int, snapshots: int) -> dict:
    from bench.common import load_average, machine_facts

    load_start = load_average()
    part1 = throughput(quick, max(rounds, 3))  # cheap: always at least 3 passes
    raw = part1.pop("_raw")
    part2 = restore_point(snapshots, min(rounds, 2))
    out = {
        "throughput": part1,
        "restore_point": part2,
        "machine": machine_facts(),
        "load_average": [load_start, load_average()],
    }
    raw_dir = RESULTS / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / "validation.json").write_text(
        json.dumps({"files": raw, **out}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return out
