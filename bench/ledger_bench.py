"""ledger_verify over one client's year of vouchers (12 monthly CSV files + the SQLite ledger): time, peak RSS."""

from __future__ import annotations

import shutil

from bench.common import WORK, median, run_module
from ledgerguard import sampledata

PERIODS = [f"2024-{m:02d}" for m in range(1, 13)]
SIZES = [500, 2000, 8000]  # vouchers per month


def client_tree(per_period: int) -> dict:
    """One client's year with ``per_period`` vouchers a month (built once under .cache/bench/ledger): its client."""
    root = WORK / "ledger" / f"v{per_period}"
    marker = WORK / "ledger" / f"v{per_period}.done"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        info = sampledata.make_client_tree(
            root,
            "c001",
            periods=PERIODS,
            vouchers_per_period=per_period,
            pdfs=0,
            unbalanced=[("2024-06", 7)],
            missing=[("2024-09", 11)],
        )
        marker.write_text(repr(info["baseline"]))
    return {"id": "c001", "root": str(root / "c001"), "csv": ["凭证"], "sqlite": ["账簿/ledger.sqlite"]}


def run(quick: bool, rounds: int) -> dict:
    sizes = [100, 500, 2000] if quick else SIZES
    points = []
    for per_period in sizes:
        root = WORK / "ledger" / f"v{per_period}"
        client = client_tree(per_period)
        runs = [
            run_module("ledger_verify", {"clients": [client], "fail_on_findings": False}, root.parent)
            for _ in range(rounds)
        ]
        res = runs[-1]["result"]
        assert res["findings_count"] == 4, res["summary"]
        points.append(
            {
                "vouchers": per_period * 12 * 2,
                "rows": res["clients"]["c001"]["rows"],
                "seconds": round(median([r["seconds"] for r in runs]), 3),
                "max_rss_mib": round(max(r["max_rss_kib"] for r in runs) / 1024, 1),
                "findings": res["findings_count"],
            }
        )
    for p in points:
        p["us_per_row"] = round(p["seconds"] / p["rows"] * 1e6, 1)
    return {"points": points, "note": "vouchers and rows count the CSV and SQLite copies together"}
