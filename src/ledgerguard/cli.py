"""The ``ledgerguard`` command line: run the collection's playbooks through ansible-runner the way AWX does.

Every playbook run gets a private data directory (``<runner dir>/<command>/``) with rotated artifacts and job
events, ``suppress_env_files``, a scrubbed environment, live progress and a final summary. Secrets never travel on
the command line, in environment variables or in ansible-runner's files: the restic password and the S3 keys are
given as paths to 0600 files (``--password-file``, ``--s3-credentials-file``) and reach the playbooks as the
variables ``ledgerguard_password_file`` / ``ledgerguard_s3_credentials_file``, read by the collection's action
plugins on the controller.

Exit codes: 0 success, 1 a step failed, 2 bad input, 3 a drill missed its targets.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledgerguard import __version__, backup, collection, evidence, notices, review, survey
from ledgerguard import schedule as sched
from ledgerguard.common import (  # noqa: F401 - EXIT_* and check_secret_file are part of the CLI's interface
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TARGETS_MISSED,
    BadInput,
    check_secret_file,
)
from ledgerguard.playbook_cmd import (  # noqa: F401 - part of the CLI's interface (tests, demo)
    ExtraVars,
    ID_RE,
    default_evidence_root,
    default_runner_dir,
    drill_vars,
    duration,
    evidence_root,
    identifier,
    incident_id_given,
    new_incident_id,
    parse_extra_vars,
    playbook_extravars,
    playbook_run,
    positive_number,
    read_vars_file,
    resolve_inventory,
    split_list,
)
from ledgerguard.progress import Progress, format_duration
from ledgerguard.runner import run_playbook

PLAYBOOKS = {
    "incident": "incident_respond.yml",
    "drill": "drill.yml",
    "verify": "backup_verify.yml",
    "freeze": "freeze.yml",
    "thaw": "thaw.yml",
    "compliance": "compliance_report.yml",
}


# ---------------------------------------------------------------------------------------------------------------
# argument parser


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse with its errors on one line (what was wrong, where to look) instead of usage + message; exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("run options (all playbook commands)")
    g.add_argument("-i", "--inventory", help="inventory file or directory (default: ansible.cfg's, the demo)")
    g.add_argument("-l", "--limit", help="limit the run to these hosts (ansible pattern)")
    g.add_argument(
        "--repository", help="restic repository (variable ledgerguard_repository; default $RESTIC_REPOSITORY)"
    )
    g.add_argument("--password-file", help="file (mode 0600) holding the restic repository password")
    g.add_argument("--s3-credentials-file", help="AWS shared-credentials file (mode 0600) for an S3 repository")
    g.add_argument("--s3-profile", help="profile of --s3-credentials-file to use (default: default)")
    g.add_argument("--evidence-dir", help="evidence folder on this machine (variable ledgerguard_evidence_dir)")
    g.add_argument(
        "-e", "--extra-vars", action="append", default=[], metavar="VARS", help="key=value, JSON or @file (repeatable)"
    )
    g.add_argument("--private-data-dir", help="ansible-runner private data dir parent (default: %(default)s)")
    g.add_argument("--rotate-artifacts", type=int, default=20, help="artifact directories kept per command (20)")
    g.add_argument("--check", action="store_true", help="run in check mode (no changes)")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more ansible output in the artifacts")
    g.add_argument("--plain", action="store_true", help="plain log lines even on a terminal (as under cron/AWX)")
    g.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout (no live progress)")

    parser = OneLineErrorParser(
        prog="ledgerguard",
        description="Incident response and recovery drills for ledgerguard.recovery, run through ansible-runner.",
        epilog="Exit codes: 0 success, 1 a step failed, 2 bad input, 3 a drill missed its targets.",
    )
    parser.add_argument("--version", action="version", version=f"ledgerguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("incident", parents=[common], help="run the incident response (freeze ... restore ... report)")
    p.add_argument(
        "--incident-id",
        type=identifier,
        help="incident id (names the evidence folder); default: a new INC-<YYYYMMDD>-NNN, printed first",
    )
    p.add_argument("--clients", help="comma-separated client ids affected (default: all of each host)")

    p = sub.add_parser("drill", parents=[common], help="restore into a sandbox, verify, measure RTO / RPO")
    p.add_argument("--snapshot", default="latest", help="latest (default), random, or a snapshot id")
    p.add_argument("--window-days", type=positive_number, help="how far back a random snapshot may be (days)")
    p.add_argument("--seed", help="seed for --snapshot random (reproducible choice)")
    p.add_argument("--clients", help="comma-separated client ids to drill (default: all)")
    p.add_argument("--sandbox", help="sandbox parent directory on the hosts (default /var/tmp/ledgerguard-drill)")
    p.add_argument("--rto", type=duration, help="RTO target for every client (e.g. 30m); overrides inventory")
    p.add_argument("--rpo", type=duration, help="RPO target for every client (e.g. 26h); overrides inventory")
    p.add_argument("--min-throughput", type=positive_number, help="minimum restore throughput, bytes per second")
    p.add_argument("--drill-id", type=identifier, help="name of this drill run (default drill-<UTC time>)")
    p.add_argument("--keep-sandbox", action="store_true", help="keep the restored sandbox for inspection")
    p.add_argument("--metrics-dir", help="node_exporter textfile directory for the drill metrics")

    sub.add_parser("verify", parents=[common], help="verify the backups (restic check, freshness, coverage)")
    sub.add_parser("compliance", parents=[common], help="the periodic compliance report (compliance_report.yml)")

    survey.add_subparser(sub, common)

    backup.add_subparser(sub, common)

    for name, text in (("freeze", "stop writes on the affected hosts"), ("thaw", "undo a freeze")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("--incident-id", type=identifier, required=True, help="incident id the freeze belongs to")

    p = sub.add_parser("timeline", help="incident timeline tools")
    tsub = p.add_subparsers(dest="timeline_command", metavar="ACTION")
    tsub.required = True
    t = tsub.add_parser("verify", help="check the hash chain of an incident timeline")
    t.add_argument("path", nargs="?", help="timeline.jsonl or the incident's evidence folder")
    t.add_argument("--incident-id", type=identifier, help="find evidence/<id>/timeline.jsonl instead of PATH")
    t.add_argument("--evidence-dir", help="evidence folder root (default: <checkout>/evidence)")
    t.add_argument("--anchor", help="expected sha256 of the last line (e.g. from report.json)")
    t.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("manifest", help="backup-time manifests for your own restic backups")
    msub = p.add_subparsers(dest="manifest_command", metavar="ACTION")
    msub.required = True
    m = msub.add_parser(
        "record",
        help="hash what a snapshot backed up and store it in the repository (run right after the backup)",
        description="Record the backup-time manifest of a restic snapshot: sha256, size and mtime of every file of "
        "the snapshot's paths, hashed on this host now, stored in the same repository as a stdin snapshot tagged "
        "ledgerguard-manifest and ledgerguard-manifest-for=<snapshot id>. The incident restore compares restored "
        "files with it before they replace the originals. Run it on the backed-up host right after each backup "
        "(e.g. 'restic backup ... && ledgerguard manifest record --snapshot latest --host $(hostname)'). The "
        "repository password and S3 keys are read from files or the environment, never from the command line.",
    )
    m.add_argument("--snapshot", required=True, help="snapshot id (or unique prefix) or 'latest'")
    m.add_argument("--host", action="append", default=[], help="with --snapshot latest: only this host (repeatable)")
    m.add_argument("--tag", action="append", default=[], help="with --snapshot latest: only snapshots with this tag")
    m.add_argument("--repository", help="restic repository (default $RESTIC_REPOSITORY)")
    m.add_argument(
        "--password-file", help="file (mode 0600) with the repository password (default $RESTIC_PASSWORD_FILE)"
    )
    m.add_argument("--s3-credentials-file", help="AWS shared-credentials file (0600); default the AWS_* environment")
    m.add_argument("--s3-profile", default="default", help="profile of --s3-credentials-file (default: default)")
    m.add_argument("--cache-dir", help="restic cache directory (default $RESTIC_CACHE_DIR or restic's own)")
    m.add_argument("--exclude", action="append", default=[], help="shell pattern of files to leave out (repeatable)")
    m.add_argument("--force", action="store_true", help="record again even when the snapshot has a manifest")
    m.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("schedule", help="install or remove unattended jobs: backup, prune, drill, verify, compliance")
    ssub = p.add_subparsers(dest="schedule_command", metavar="ACTION")
    ssub.required = True

    sched.add_arguments(ssub.add_parser("install", help="write timers (or a cron file) and enable them"), install=True)
    sched.add_arguments(ssub.add_parser("remove", help="disable and delete them"), install=False)
    evidence.add_subparser(sub)

    review.add_subparser(sub)

    notices.add_subparser(sub)
    return parser


# ---------------------------------------------------------------------------------------------------------------
# playbook commands


def exit_code_for(
    status: str | None,
    rc: int | None,
    artifact_data: dict[str, Any],
    command: str,
    failed_hosts: set[str] | frozenset[str] = frozenset(),
) -> int:
    """0 success, 1 a step failed, 3 a drill missed its targets (and nothing else went wrong).

    ``failed_hosts``: the hosts the run's stats count as failed or unreachable. A missed target fails its own host's
    play, so with missed targets every failed host must have a drill record: one without (unreachable, or stopped
    before the drill could record anything) is a failure of its own, exit 1."""
    drill = artifact_data.get("ledgerguard_drill") if isinstance(artifact_data, dict) else None
    if command == "drill" and isinstance(drill, dict) and truthy(drill.get("targets_missed")):
        recorded = set(drill.get("hosts") or {}) if isinstance(drill.get("hosts"), dict) else set()
        if truthy(drill.get("verification_failed")) or set(failed_hosts) - recorded:
            return EXIT_FAILED
        return EXIT_TARGETS_MISSED
    if status == "successful" and rc == 0:
        return EXIT_OK
    return EXIT_FAILED


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def drill_lines(drill: dict[str, Any]) -> list[str]:
    lines = []
    verdict = "PASSED" if truthy(drill.get("passed")) else "FAILED"
    lines.append(f"Drill {drill.get('drill_id')}: {verdict}")
    for host, h in sorted((drill.get("hosts") or {}).items()):
        rto, rpo = h.get("rto_seconds"), h.get("rpo_seconds")
        lines.append(
            f"  {host}: {'passed' if truthy(h.get('passed')) else 'FAILED'}, snapshot {h.get('snapshot')}, "
            f"RTO {format_duration(float(rto)) if rto is not None else '-'}, "
            f"RPO {format_duration(float(rpo)) if rpo is not None else '-'}, "
            f"{h.get('files')} files / {h.get('bytes')} bytes"
        )
        for database in h.get("databases") or []:
            lines.append(f"    database {database}")
        for problem in h.get("problems") or []:
            lines.append(f"    - {problem}")
    if drill.get("evidence_dir"):
        lines.append(f"Report: {drill['evidence_dir']}/report.html")
    return lines


def tail_text(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"  ({path} not found)"
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return "\n".join("  " + line for line in text.rstrip().splitlines()[-lines:])


def run_command(args: argparse.Namespace) -> int:
    playbook = PLAYBOOKS[args.command]
    if not collection.has_playbook(playbook):
        raise BadInput(f"playbook {collection.playbook(playbook)} is not part of the collection at {collection.root()}")
    extra = parse_extra_vars(args.extra_vars)
    extravars = playbook_extravars(args, extra)
    inventory = resolve_inventory(args.inventory)
    if args.command == "incident" and not incident_id_given(extravars, extra):
        # The operator should not have to invent an id under stress: the same INC-<date>-NNN the playbook would give.
        extravars["ledgerguard_incident_id"] = new_incident_id(evidence_root(extravars, extra), reserve=not args.check)
        print(f"Incident id: {extravars['ledgerguard_incident_id']}", file=sys.stderr if args.json else sys.stdout)
        sys.stdout.flush()
    base = Path(args.private_data_dir).expanduser() if args.private_data_dir else default_runner_dir()
    pdd = base / args.command
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    ident = f"{args.command}-{stamp}"
    progress = Progress(
        stream=sys.stdout,
        tty=False if args.plain else None,
        title=f"ledgerguard {args.command}: playbooks/{playbook} (run {ident})",
        quiet=args.json,
    )
    run = playbook_run(args, playbook, pdd, inventory, extravars, extra, ident)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    with progress:
        runner = run_playbook(run, event_handler=progress)
    artifact_data = progress.summary.artifact_data
    code = exit_code_for(runner.status, runner.rc, artifact_data, args.command, progress.summary.failed_hosts)
    artifacts = pdd / "artifacts" / ident
    extra: dict[str, Any] = {}
    drill = artifact_data.get("ledgerguard_drill") if isinstance(artifact_data, dict) else None
    if args.json:
        out = progress.summary.as_dict()
        out.update(command=args.command, status=runner.status, rc=runner.rc, exit_code=code, artifacts=str(artifacts))
        print(json.dumps(out, ensure_ascii=False, indent=2, default=str))
        return code
    progress.print_summary(status=runner.status, rc=runner.rc, extra=None)
    if code != EXIT_OK and not progress.summary.tasks:
        # ansible-playbook stopped before the first task (syntax error, missing plugin): show why.
        print("ansible-playbook output (last lines):")
        print(tail_text(artifacts / "stdout", 25))
    if isinstance(drill, dict):
        print("\n".join(drill_lines(drill)))
    extra["Artifacts"] = str(artifacts)
    for key, value in extra.items():
        print(f"{key}: {value}")
    meaning = {0: "success", 1: "a step failed", 3: "the drill missed its targets"}[code]
    print(f"ledgerguard {args.command}: exit {code} ({meaning})")
    return code


# ---------------------------------------------------------------------------------------------------------------
# timeline verify


def timeline_verify(args: argparse.Namespace) -> int:
    if args.path:
        path = Path(args.path).expanduser()
        if path.is_dir():
            path = path / "timeline.jsonl"
    elif args.incident_id:
        root = Path(args.evidence_dir).expanduser() if args.evidence_dir else default_evidence_root()
        path = root / args.incident_id / "timeline.jsonl"
    else:
        raise BadInput("timeline verify: give the timeline path (or the evidence folder) or --incident-id")
    if not path.is_file():
        raise BadInput(f"timeline verify: {path} does not exist")
    try:
        verify_chain = collection.module("plugins.module_utils.timeline").verify_chain
    except ImportError as exc:
        raise BadInput(f"timeline verify needs the collection's timeline module ({exc})") from None
    result = verify_chain(str(path), anchor=args.anchor)
    if args.json:
        print(json.dumps(dict(result, path=str(path)), ensure_ascii=False, indent=2))
    elif result.get("ok"):
        print(f"{path}: OK, {result.get('lines')} lines, chain intact (last sha256 {result.get('last_sha256')})")
    else:
        print(f"{path}: BROKEN at line {result.get('first_bad_line')} of {result.get('lines')}: {result.get('reason')}")
    return EXIT_OK if result.get("ok") else EXIT_FAILED


# ---------------------------------------------------------------------------------------------------------------
# manifest record


AWS_INI_KEYS = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "region": "AWS_DEFAULT_REGION",
}


def s3_env(credentials_file: str | None, profile: str) -> dict[str, str]:
    """Backend credentials for restic: from an AWS shared-credentials file (0600), else from the AWS_* environment."""
    import configparser

    if not credentials_file:
        return {v: os.environ[v] for v in AWS_INI_KEYS.values() if os.environ.get(v)}
    path = check_secret_file(credentials_file, "--s3-credentials-file")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise BadInput(f"--s3-credentials-file {credentials_file} is not an AWS credentials INI file ({exc})") from None
    if not parser.has_section(profile):
        raise BadInput(f"--s3-credentials-file {credentials_file} has no [{profile}] profile")
    env = {
        name: parser.get(profile, key).strip() for key, name in AWS_INI_KEYS.items() if parser.has_option(profile, key)
    }
    if not env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_SECRET_ACCESS_KEY"):
        raise BadInput(f"--s3-credentials-file {credentials_file} [{profile}] lacks the access key id or secret")
    return env


def manifest_record(args: argparse.Namespace) -> int:
    """``ledgerguard manifest record``: the same code as restic_backup manifest=true (module_utils/backup_manifest)."""
    import shutil

    bm = collection.module("plugins.module_utils.backup_manifest")
    rs = collection.module("plugins.module_utils.restic")

    repository = args.repository or os.environ.get("RESTIC_REPOSITORY")
    if not repository:
        raise BadInput("manifest record: give --repository or set RESTIC_REPOSITORY")
    if rs.url_embeds_credentials(repository):
        raise BadInput("--repository must not embed credentials (user:password@); use --s3-credentials-file")
    source = args.password_file or os.environ.get("RESTIC_PASSWORD_FILE")
    if not source:
        raise BadInput("manifest record: give --password-file (a 0600 file) or set RESTIC_PASSWORD_FILE")
    password_file = check_secret_file(source, "--password-file" if args.password_file else "RESTIC_PASSWORD_FILE")
    binary = shutil.which("restic")
    if not binary:
        raise BadInput("restic was not found on PATH; install it (Debian/Ubuntu: apt-get install restic)")
    engine = rs.Restic(
        binary,
        repository,
        password_file or "",
        env=s3_env(args.s3_credentials_file, args.s3_profile),
        cache_dir=args.cache_dir or os.environ.get("RESTIC_CACHE_DIR") or None,
    )
    where = rs.redact_repository(repository)
    try:
        snap = engine.resolve_snapshot(args.snapshot.strip(), hosts=args.host, tags=args.tag)
        result = bm.record_manifest(engine, snap, args.exclude, force=args.force)
    except rs.ResticError as exc:
        print(f"ledgerguard manifest record: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as exc:
        raise BadInput(f"manifest record: {exc}") from None
    result.update(repository=where, snapshot_short_id=snap.short_id, snapshot_time=snap.raw_time)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    elif result["existing"]:
        print(
            f"snapshot {snap.short_id} already has backup-time manifest {result['manifest_short_id']} in {where}; "
            "nothing recorded (--force records it again)"
        )
    else:
        print(
            f"recorded backup-time manifest {result['manifest_short_id']} for snapshot {snap.short_id} "
            f"({snap.raw_time}) in {where}: {result['files']} files, {result['bytes']} bytes, "
            f"{result['errors']} unreadable, sha256 {result['digest'][:16]}..."
        )
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad input, 0 for --help / --version
        return int(exc.code or 0)
    try:
        if args.command in PLAYBOOKS:
            return run_command(args)
        if args.command == "timeline":
            return timeline_verify(args)
        if args.command == "manifest":
            return manifest_record(args)
        if args.command == "schedule":
            return sched.run(args)
        if args.command in ("evidence", "review"):
            return int(args.func(args))
        if args.command == "notices":
            return notices.run(args)
        if args.command == "survey":
            return survey.run(args)
        if args.command == "backup":
            return backup.run(args)
    except BadInput as exc:
        print(f"ledgerguard: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("ledgerguard: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the top-level guard: one line, never a traceback
        print(
            f"ledgerguard {args.command}: stopped by an unexpected error: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}; check the input, re-run with -v, "
            "and report it if it persists",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    parser.error(f"unknown command {args.command}")
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
