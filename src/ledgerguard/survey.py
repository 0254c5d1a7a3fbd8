"""``ledgerguard survey``: before the bad day, which snapshots hold each client's books.

The survey is the backup_verify role's survey section (``restic_snapshots clients:``, i.e. ``Restic.survey``: the same
mapping of a live path into each snapshot's tree that the incident's restore uses), run on its own through
playbooks/backup_verify.yml with every other check turned off. It runs on each host, so a client folder reached through
a symlink is resolved where it lives. Per client path it shows the snapshots that hold it, under which host, tags and
in-snapshot path, and flags a client no snapshot of the host the incident restores from holds (with what to set).

Exit codes: 0 every client path is held by a snapshot of its host's backup host, 1 a client path is not (or the run
failed), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledgerguard.common import EXIT_FAILED, EXIT_OK
from ledgerguard.playbook_cmd import (
    evidence_root,
    parse_extra_vars,
    playbook_extravars,
    run_with_progress,
)

PLAYBOOK = "backup_verify.yml"
PIN_HINT = (
    "set ledgerguard_clients[].snapshot_path to where the snapshots store it (see 'restic ls <snapshot> /'), "
    "or back the folder up"
)
# backup_verify with only the survey: no restic check, no restore, no storage audit, nothing written to metrics or sent.
SURVEY_ONLY = {
    "backup_verify_check_enabled": False,
    "backup_verify_freshness_enabled": False,
    "backup_verify_coverage_enabled": False,
    "backup_verify_damage_enabled": False,
    "backup_verify_spot_check_enabled": False,
    "backup_verify_storage_enabled": False,
    "backup_verify_retention_enabled": False,
    "backup_verify_survey_enabled": True,
    # nor the off-site copy's comparison (it defaults to the backup role's backup_copy_repository)
    "backup_verify_copy_repository": "",
    "backup_verify_metrics_file": "",
    "backup_verify_notify_on": [],
    # the host the incident restores from (restore_snapshot_host), not backup_verify's own default
    "backup_verify_snapshot_host": "{{ ledgerguard_backup_host | default(inventory_hostname) }}",
}


def add_subparser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub.add_parser(
        "survey",
        parents=[common],
        help="which snapshots hold each client's books (host, tags, in-snapshot path), before the bad day",
        description="For every client of every host (ledgerguard_clients), list the snapshots that hold its folders, "
        "under which host and tags and at which path inside each snapshot (the mapping the incident's restore uses), "
        "and flag the clients no snapshot of the host's backup host (ledgerguard_backup_host, default the inventory "
        "name) holds. Read-only. Exit 0 when every client is held, 1 when one is not or the run failed.",
    )


def client_rows(host: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per client path of a host's survey, with the verdict for the incident: ``ok`` (a snapshot of the
    host's backup host holds it), ``other_hosts`` (only other hosts' snapshots do) or ``not_covered``."""
    backup_host = host.get("snapshot_host") or host.get("host")
    rows = []
    for entry in host.get("survey") or []:
        covering = list(entry.get("covering") or [])
        own = [c for c in covering if c.get("hostname") == backup_host]
        if own:
            verdict, note = "ok", ""
        elif covering:
            verdict = "other_hosts"
            note = (
                f"only snapshots of {', '.join(entry.get('hosts') or [])} hold it; the incident restores from "
                f"snapshots of {backup_host}: set ledgerguard_backup_host or back it up from {backup_host}"
            )
        else:
            verdict = "not_covered"
            note = f"no snapshot holds {entry.get('path')}: " + PIN_HINT
        newest = own[-1] if own else (covering[-1] if covering else None)
        rows.append(
            {
                "host": host.get("host"),
                "backup_host": backup_host,
                "client": entry.get("client", ""),
                "name": entry.get("name", ""),
                "path": entry.get("path", ""),
                "pinned_snapshot_path": entry.get("pinned_snapshot_path", ""),
                "verdict": verdict,
                "note": note,
                "snapshots": len(covering),
                "hosts": list(entry.get("hosts") or []),
                "tags": sorted({t for c in covering for t in c.get("tags") or []}),
                "snapshot_paths": list(entry.get("snapshot_paths") or []),
                "newest": newest,
                "covering": covering,
            }
        )
    return rows


def survey_from_report(report: dict[str, Any]) -> dict[str, Any]:
    """The survey part of a backup_verify result.json: per host its rows, and the clients that need attention."""
    hosts = []
    for host in report.get("hosts") or []:
        rows = client_rows(host)
        reachable = next((c for c in host.get("checks") or [] if c.get("check") == "reachable"), {})
        hosts.append(
            {
                "host": host.get("host"),
                "backup_host": host.get("snapshot_host") or host.get("host"),
                "repository": host.get("repository", ""),
                "reachable": reachable.get("status") == "OK",
                "reason": reachable.get("reason", "") if reachable.get("status") != "OK" else "",
                "clients": rows,
            }
        )
    gaps = [r for h in hosts for r in h["clients"] if r["verdict"] != "ok"]
    unreachable = [h["host"] for h in hosts if not h["reachable"]]
    return {"hosts": hosts, "gaps": len(gaps), "unreachable": unreachable}


def _cell(value: Any) -> str:
    return str(value if value is not None else "").replace("\n", " ")


def render(survey: dict[str, Any]) -> str:
    """The human-readable survey: one block per host, one line per client path, the gaps spelt out."""
    lines = []
    for host in survey["hosts"]:
        lines.append(
            f"Host {host['host']} (incident restores from snapshots of host {host['backup_host']}, "
            f"repository {host['repository']})"
        )
        if not host["reachable"]:
            lines.append(f"  repository not readable: {host['reason']}")
            continue
        if not host["clients"]:
            lines.append("  no clients declared (ledgerguard_clients)")
            continue
        header = ("client", "path", "snapshots", "hosts", "tags", "in the snapshot", "newest", "incident")
        table = [header]
        for row in host["clients"]:
            newest = row["newest"] or {}
            table.append(
                (
                    f"{row['client']} {row['name']}".strip(),
                    row["path"],
                    str(row["snapshots"]),
                    ", ".join(row["hosts"]) or "-",
                    ", ".join(row["tags"]) or "-",
                    ", ".join(row["snapshot_paths"]) or "-",
                    f"{newest.get('short_id')} {str(newest.get('time', ''))[:19]} ({newest.get('hostname')})"
                    if newest
                    else "-",
                    {"ok": "finds it", "other_hosts": "OTHER HOST ONLY", "not_covered": "NOT COVERED"}[row["verdict"]],
                )
            )
        widths = [max(_width(r[i]) for r in table) for i in range(len(header))]
        for n, row in enumerate(table):
            lines.append("  " + "  ".join(_pad(_cell(v), widths[i]) for i, v in enumerate(row)).rstrip())
            if n == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        for row in host["clients"]:
            if row["note"]:
                lines.append(f"  ! {row['client']} {row['path']}: {row['note']}")
    if survey["gaps"] or survey["unreachable"]:
        lines.append(
            f"Survey: {survey['gaps']} client path(s) the incident would not find"
            + (
                f", {len(survey['unreachable'])} host(s) whose repository did not answer"
                if survey["unreachable"]
                else ""
            )
        )
    else:
        lines.append("Survey: every client path is held by a snapshot of its host's backup host")
    return "\n".join(lines)


def _width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in _cell(text))


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def run(args: argparse.Namespace) -> int:
    extra = parse_extra_vars(args.extra_vars)
    extravars = playbook_extravars(args, extra)
    out_dir = evidence_root(extravars, extra) / "survey"
    extravars = {**SURVEY_ONLY, "backup_verify_output_dir": str(out_dir), **extravars}
    run = run_with_progress(args, "survey", PLAYBOOK, extravars, extra, "survey only")
    runner, progress = run.runner, run.progress
    result_dir = (progress.summary.artifact_data or {}).get("backup_verify_result_dir")
    report_file = Path(str(result_dir)) / "result.json" if result_dir else None
    if report_file is None or not report_file.is_file():
        print(
            f"ledgerguard survey: the run ended ({runner.status}, rc {runner.rc}) without a result; "
            f"see {run.artifacts / 'stdout'}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    survey = survey_from_report(json.loads(report_file.read_text(encoding="utf-8")))
    code = EXIT_OK if not survey["gaps"] and not survey["unreachable"] and runner.rc == 0 else EXIT_FAILED
    if args.json:
        print(json.dumps(dict(survey, result=str(report_file), exit_code=code), ensure_ascii=False, indent=2))
    else:
        print(render(survey))
        print(f"Result: {report_file}")
    return code
