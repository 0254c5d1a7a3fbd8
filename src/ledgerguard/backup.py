"""``ledgerguard backup``: the collection's own backups (playbooks/backup.yml) through ansible-runner.

Runs the ``backup`` role the way ``incident`` and ``drill`` run theirs (private data directory, scrubbed environment,
live progress, AWX-style job events), then prints one line per client from the job artifact ``ledgerguard_backup``
(files new/changed, bytes added, duration, snapshot id, manifest id), then per client and repository (the
repository, the off-site copy) what the retention policy keeps and forgets. ``--check`` is the preview: the plan, and
per client and repository every snapshot the policy would keep (with the rules that keep it) and forget (restic forget
--dry-run), nothing written or forgotten; ``--prune`` runs the scheduled prune step instead of a backup (the
repository, then the off-site copy, restic's last lines of each); ``--forget``
applies the retention policy after the backups (without it retention is a dry run too).

Exit codes: 0 every host backed up, 1 a host failed (the role already alerted), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledgerguard.common import EXIT_FAILED, EXIT_OK
from ledgerguard.playbook_cmd import (
    parse_extra_vars,
    playbook_extravars,
    run_with_progress,
    split_list,
)

PLAYBOOK = "backup.yml"


def add_subparser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "backup",
        parents=[common],
        help="back up each client (restic, manifest, consistent SQLite), retention, off-site copy",
        description="Run playbooks/backup.yml: per host, per client of ledgerguard_clients one restic snapshot with "
        "its backup-time manifest, then the retention policy (dry run unless --forget) and the off-site copy. Prints "
        "one line per client and its retention per repository. --check is the preview: the plan and, per client, in "
        "the repository and the off-site copy, each snapshot retention would keep (and the rule that keeps it) or "
        "forget; nothing is written or forgotten. --prune prunes the repository and the off-site copy instead. Exit 0 "
        "when every host succeeded, 1 when one failed.",
    )
    p.add_argument("--clients", help="comma-separated client ids to back up (default: all of each host)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--prune",
        action="store_true",
        help="run the scheduled prune step (restic prune of the repository and the off-site copy) instead",
    )
    mode.add_argument("--forget", action="store_true", help="apply the retention policy after the backups")
    p.add_argument("--metrics-dir", help="node_exporter textfile directory for the backup metrics (on the hosts)")


def backup_vars(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.clients:
        out["backup_client_ids"] = split_list(args.clients)
    if args.prune:
        out.update(backup_entry="prune", backup_prune_mode="apply")
    if args.forget:
        out["backup_forget_mode"] = "apply"
    if args.metrics_dir:
        out["backup_metrics_dir"] = args.metrics_dir
    return out


def human_bytes(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def result_line(host: str, r: dict[str, Any], check: bool) -> str:
    """One line per client (or database) of a host's run."""
    if r.get("database"):
        head = f"{host} {r['database']}" + (f" (client {r['client']})" if r.get("client") else "")
        return (
            f"{head}: dump streamed, {human_bytes(r.get('bytes_added'))} added, {float(r.get('seconds') or 0):.2f} s, "
            f"snapshot {str(r.get('snapshot_id') or '')[:8] or '(check mode)'}"
        )
    name = f" ({r['name']})" if r.get("name") and r.get("name") != r.get("client") else ""
    snapshot = str(r.get("snapshot_id") or "")[:8] or ("(check mode)" if check else "none")
    manifest = str(r.get("manifest_snapshot_id") or "")[:8] or "none"
    ledgers = len(r.get("ledgers") or [])
    return (
        f"{host} {r.get('client')}{name}: {int(r.get('files_new') or 0)} new, {int(r.get('files_changed') or 0)} "
        f"changed, {human_bytes(r.get('bytes_added'))} added, {float(r.get('seconds') or 0):.2f} s, "
        f"snapshot {snapshot}, manifest {manifest}" + (f", {ledgers} SQLite ledger(s) consistent" if ledgers else "")
    )


def snapshot_line(verb: str, snap: dict[str, Any], why: str) -> str:
    return f"  {verb:<6} {str(snap.get('short_id') or snap.get('id', ''))[:8]} {snap.get('time', '')} ({why})"


def retention_lines(host: str, retention: dict[str, Any], where: str, detail: bool) -> list[str]:
    """Per client, what the retention policy keeps and forgets (or would) in one repository (``where``); with
    ``detail`` (the --check preview, and any client with something to forget) each snapshot on its own line with its
    time and the rules that keep it, kept ones first."""
    lines = []
    forgotten = {c.get("client"): c for c in retention.get("forgotten") or []}
    for c in retention.get("preview") or []:
        keep, remove = c.get("keep") or [], c.get("remove") or []
        verb = "forgot" if (forgotten.get(c.get("client")) or {}).get("removed") else "would forget"
        lines.append(f"{host} {c.get('client')}: retention in {where} keeps {len(keep)}, {verb} {len(remove)}")
        if detail or remove:
            lines.extend(snapshot_line("keep", s, ", ".join(s.get("reasons") or []) or "kept") for s in keep)
            lines.extend(snapshot_line("forget", s, "no rule of the policy keeps it") for s in remove)
    return lines


def prune_lines(host: str, h: dict[str, Any]) -> list[str]:
    """restic prune's last lines per repository (the repository, then the off-site copy when the run pruned it)."""
    lines = []
    for key, where in (("prune", "the repository"), ("copy_prune", "the off-site copy")):
        if h.get(key):
            lines.append(f"{host}: prune of {where} (restic's last lines):")
            lines.extend(f"  {line}" for line in str(h[key]).splitlines() if line.strip())
    return lines


def render(outcome: dict[str, Any], check: bool, prune: bool) -> list[str]:
    lines: list[str] = []
    for host, h in sorted((outcome.get("hosts") or {}).items()):
        if h.get("failed"):
            lines.append(f"{host}: FAILED: {h.get('error') or 'see the failed step above'}")
        for r in h.get("results") or []:
            lines.append(result_line(host, r, check))
        lines.extend(retention_lines(host, h.get("retention") or {}, "the repository", check))
        for c in h.get("copy") or []:
            state = "in the copy" if c.get("in_copy") else "NOT in the copy"
            lines.append(f"{host} {c.get('client')}: newest snapshot {str(c.get('newest') or '')[:8]} {state}")
        lines.extend(retention_lines(host, h.get("copy_retention") or {}, "the off-site copy", check))
        for s in h.get("status") or []:
            if s.get("late") and not s.get("failed"):
                lines.append(
                    f"{host} {s.get('client')}: LATE: newest successful backup {s.get('last_success_utc') or 'none'}"
                )
        if prune:
            lines.extend(prune_lines(host, h))
    return lines


def run(args: argparse.Namespace) -> int:
    extra = parse_extra_vars(args.extra_vars)
    extravars = {**backup_vars(args), **playbook_extravars(args, extra)}
    what = "prune" if args.prune else "backup"
    run = run_with_progress(args, "backup", PLAYBOOK, extravars, extra, what + (" (check mode)" if args.check else ""))
    runner, progress, artifacts = run.runner, run.progress, run.artifacts
    outcome = (progress.summary.artifact_data or {}).get("ledgerguard_backup") or {}
    failed = runner.rc != 0 or any(h.get("failed") for h in (outcome.get("hosts") or {}).values())
    code = EXIT_FAILED if failed else EXIT_OK
    if args.json:
        out = dict(outcome, status=runner.status, rc=runner.rc, exit_code=code, artifacts=str(artifacts))
        print(json.dumps(out, ensure_ascii=False, indent=2, default=str))
        return code
    progress.print_summary(status=runner.status, rc=runner.rc, extra=None)
    print("\n".join(render(outcome, args.check, args.prune)))
    print(f"Artifacts: {artifacts}")
    print(f"ledgerguard backup: exit {code} ({'success' if code == EXIT_OK else 'a step failed'})")
    return code
