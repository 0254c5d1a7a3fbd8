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
import stat
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ledgerguard import __version__, collection
from ledgerguard.common import (  # noqa: F401 - EXIT_* and check_secret_file are part of the CLI's interface
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TARGETS_MISSED,
    BadInput,
    check_secret_file,
)
from ledgerguard.progress import Progress, format_duration
from ledgerguard.runner import PlaybookRun, run_playbook

PLAYBOOKS = {
    "incident": "incident_respond.yml",
    "drill": "drill.yml",
    "verify": "backup_verify.yml",
    "freeze": "freeze.yml",
    "thaw": "thaw.yml",
    "compliance": "compliance_report.yml",
}
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_runner_dir() -> Path:
    env = os.environ.get("LEDGERGUARD_RUNNER_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/ledgerguard/runner")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ledgerguard" / "runner"


@dataclass
class ExtraVars:
    """What -e gave: inline variables (key=value, JSON) and variable files passed through by path.

    ``file_keys`` are the names the files define (read here only to check them, e.g. for an incident id); the files'
    values are never copied into ``values``, so a secret in a file never reaches ansible-playbook's command line or
    ansible-runner's artifacts.
    """

    values: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    file_values: dict[str, Any] = field(default_factory=dict)


def read_vars_file(item: str) -> tuple[str, dict[str, Any]]:
    """Check an ``-e @file`` (exists, regular, a YAML/JSON mapping); return its absolute path and its variables."""
    path = Path(item[1:]).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadInput(f"-e {item}: {path} does not exist; give the path of a YAML or JSON variables file") from None
    except OSError as exc:
        raise BadInput(f"-e {item}: cannot read {path} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"-e {item}: {path} is not a regular file; give a YAML or JSON variables file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StringTimesLoader)  # noqa: S506 - safe loader
    except OSError as exc:
        raise BadInput(f"-e {item}: cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BadInput(f"-e {item}: {path} is not UTF-8 text; save it as UTF-8 YAML or JSON") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"-e {item}: {path} is not YAML/JSON ({exc.__class__.__name__}); fix the file") from None
    if not isinstance(data, dict):
        raise BadInput(f"-e {item}: {path} must hold a mapping of variables (name: value)")
    return str(path.resolve()), data


class _StringTimesLoader(yaml.SafeLoader):
    """A safe loader that keeps dates and times as the strings they were written as (as Ansible does)."""


_StringTimesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_extra_vars(items: list[str]) -> ExtraVars:
    """-e key=value (the value stays a string, as ansible-playbook keeps it), -e JSON object, or -e @file.yml|json
    (checked here, then passed to ansible-playbook by path)."""
    out = ExtraVars()
    for item in items or []:
        if item.startswith("@"):
            path, data = read_vars_file(item)
            out.files.append(path)
            out.file_values.update(data)
        elif item.lstrip().startswith("{"):
            try:
                data = json.loads(item)
            except ValueError:
                raise BadInput(
                    f'-e {item!r}: not valid JSON; give a JSON object such as \'{{"name": "value"}}\''
                ) from None
            if not isinstance(data, dict):
                raise BadInput(f"-e {item!r}: a JSON value must be an object of variables")
            out.values.update(data)
        elif "=" in item:
            key, _sep, value = item.partition("=")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise BadInput(f"-e {item!r}: '{key}' is not a valid variable name (letters, digits, '_')")
            out.values[key] = value
        else:
            raise BadInput(f"-e {item!r}: expected key=value, a JSON object or @file")
    return out


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must not be negative")
    return value


def duration(text: str) -> float:
    """Seconds from '90', '90s', '15m', '4h', '2d'."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration such as 900, 15m, 4h or 1d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def identifier(text: str) -> str:
    if not ID_RE.match(text):
        raise argparse.ArgumentTypeError(f"'{text}' must be 1-64 letters, digits, '.', '_' or '-'")
    return text


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
    from ledgerguard import survey

    survey.add_subparser(sub, common)
    from ledgerguard import backup

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
    from ledgerguard import evidence
    from ledgerguard import schedule as sched

    sched.add_arguments(ssub.add_parser("install", help="write timers (or a cron file) and enable them"), install=True)
    sched.add_arguments(ssub.add_parser("remove", help="disable and delete them"), install=False)
    evidence.add_subparser(sub)
    from ledgerguard import review

    review.add_subparser(sub)
    from ledgerguard import notices

    notices.add_subparser(sub)
    return parser


# ---------------------------------------------------------------------------------------------------------------
# playbook commands


def playbook_extravars(args: argparse.Namespace, extra: ExtraVars | None = None) -> dict[str, Any]:
    """The variables a run gets: connection paths (never secrets), evidence folder, command options, inline -e.

    Variable files (-e @file) are not read into it: they go to ansible-playbook by path (``ExtraVars.files``).
    """
    if extra is None:
        extra = parse_extra_vars(args.extra_vars)
    extravars: dict[str, Any] = {}
    password_file = check_secret_file(args.password_file, "--password-file")
    if password_file is None and os.environ.get("RESTIC_PASSWORD_FILE"):
        check_secret_file(os.environ["RESTIC_PASSWORD_FILE"], "RESTIC_PASSWORD_FILE")
    s3_file = check_secret_file(args.s3_credentials_file, "--s3-credentials-file")
    if args.repository:
        if re.search(r"://[^/@\s]+:[^/@\s]+@", args.repository):
            raise BadInput("--repository must not embed credentials (user:password@); use --s3-credentials-file")
        extravars["ledgerguard_repository"] = args.repository
    if password_file:
        extravars["ledgerguard_password_file"] = password_file
    if s3_file:
        extravars["ledgerguard_s3_credentials_file"] = s3_file
    if args.s3_profile:
        extravars["ledgerguard_s3_profile"] = args.s3_profile
    if args.evidence_dir:
        extravars["ledgerguard_evidence_dir"] = str(Path(args.evidence_dir).expanduser().resolve())

    cmd = args.command
    if cmd in ("incident", "freeze", "thaw") and args.incident_id:
        extravars["ledgerguard_incident_id"] = args.incident_id
    if cmd == "incident" and args.clients:
        extravars["incident_clients"] = split_list(args.clients)
    if cmd == "drill":
        extravars.update(drill_vars(args))
    extravars.update(extra.values)
    return extravars


def incident_id_given(extravars: dict[str, Any], extra: ExtraVars) -> bool:
    return bool(str(extravars.get("ledgerguard_incident_id") or extra.file_values.get("ledgerguard_incident_id") or ""))


def evidence_root(extravars: dict[str, Any], extra: ExtraVars) -> Path:
    """Where the playbook keeps evidence folders: ledgerguard_evidence_dir, else the roles' default (the collection's
    evidence_root rule: $LEDGERGUARD_EVIDENCE_DIR, /var/lib/ledgerguard/evidence for root, else XDG state)."""
    given = extravars.get("ledgerguard_evidence_dir") or extra.file_values.get("ledgerguard_evidence_dir")
    return Path(str(given)).expanduser().resolve() if given else default_evidence_root()


def default_evidence_root() -> Path:
    return collection.module("plugins.plugin_utils.evidence_pack").default_evidence_root().resolve()


def new_incident_id(root: Path, reserve: bool = True) -> str:
    """The next ``INC-<YYYYMMDD>-NNN`` under ``root`` (the playbook's own format and numbering, controller local
    date). With ``reserve`` its evidence folder is created exclusively (mode 0700), so two operators starting at the
    same moment get different ids."""
    today = datetime.now().strftime("%Y%m%d")  # noqa: DTZ005 - the playbook numbers by the controller's local date
    for _attempt in range(1000):
        try:
            existing = [p.name for p in root.iterdir()] if root.is_dir() else []
        except OSError as exc:
            raise BadInput(f"evidence folder {root} cannot be read ({exc.strerror}); give --evidence-dir") from None
        numbers = [0] + [int(m.group(1)) for n in existing if (m := re.fullmatch(rf"INC-{today}-([0-9]{{3}})", n))]
        number = max(numbers) + 1
        if number > 999:
            raise BadInput(f"more than 999 incidents on {today} in {root}; give --incident-id")
        incident_id = f"INC-{today}-{number:03d}"
        if not reserve:
            return incident_id
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.mkdir(root / incident_id, 0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise BadInput(
                f"cannot create the evidence folder {root / incident_id} ({exc.strerror}); "
                "give --evidence-dir with a writable folder"
            ) from None
        return incident_id
    raise BadInput(f"could not reserve a new incident id in {root}; give --incident-id")


def split_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def drill_vars(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    snap = (args.snapshot or "latest").strip()
    if snap in ("latest", "random"):
        out["drill_snapshot_selection"] = snap
    elif re.fullmatch(r"[0-9a-fA-F]{4,64}", snap):
        out["drill_snapshot_id"] = snap
    else:
        raise BadInput(f"--snapshot {snap!r}: expected latest, random or a snapshot id (4-64 hex characters)")
    if args.window_days is not None:
        out["drill_random_window_days"] = args.window_days
    if args.seed:
        out["drill_random_seed"] = args.seed
    if args.clients:
        out["drill_clients"] = split_list(args.clients)
    if args.sandbox:
        if not args.sandbox.startswith("/"):
            raise BadInput(f"--sandbox {args.sandbox!r} must be an absolute path on the hosts")
        out["drill_sandbox_dir"] = args.sandbox
    targets = {}
    if args.rto is not None:
        targets["rto_seconds"] = args.rto
    if args.rpo is not None:
        targets["rpo_seconds"] = args.rpo
    if args.min_throughput is not None:
        targets["min_throughput_bytes_per_second"] = args.min_throughput
    if targets:
        # Command-line targets win over the inventory's, for every client; targets not given keep their values.
        out["drill_target_overrides"] = targets
    if args.drill_id:
        out["drill_id"] = args.drill_id
    if args.keep_sandbox:
        out["drill_keep_sandbox"] = True
    if args.metrics_dir:
        out["drill_metrics_dir"] = args.metrics_dir
    return out


def resolve_inventory(inventory: str | None) -> str | None:
    if not inventory:
        return None
    p = Path(inventory).expanduser()
    if not p.exists():
        raise BadInput(f"--inventory {inventory}: no such file or directory")
    return str(p.resolve())


def exit_code_for(status: str | None, rc: int | None, artifact_data: dict[str, Any], command: str) -> int:
    """0 success, 1 a step failed, 3 a drill missed its targets (and nothing else went wrong)."""
    drill = artifact_data.get("ledgerguard_drill") if isinstance(artifact_data, dict) else None
    if command == "drill" and isinstance(drill, dict) and truthy(drill.get("targets_missed")):
        if not truthy(drill.get("verification_failed")):
            return EXIT_TARGETS_MISSED
        return EXIT_FAILED
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


def playbook_run(
    args: argparse.Namespace,
    playbook: str,
    private_data_dir: Path,
    inventory: str | None,
    extravars: dict[str, Any],
    extra: ExtraVars,
    ident: str,
) -> PlaybookRun:
    """One ansible-runner run of a playbook with the options every subcommand shares (limit, check, verbosity,
    artifact rotation)."""
    return PlaybookRun(
        playbook=playbook,
        private_data_dir=private_data_dir,
        inventory=inventory,
        extravars=extravars,
        extravars_files=extra.files,
        limit=args.limit,
        ident=ident,
        check=args.check,
        verbosity=args.verbose,
        rotate_artifacts=max(1, args.rotate_artifacts),
    )


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
    code = exit_code_for(runner.status, runner.rc, artifact_data, args.command)
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
            from ledgerguard import schedule as sched

            return sched.run(args)
        if args.command in ("evidence", "review"):
            return int(args.func(args))
        if args.command == "notices":
            from ledgerguard import notices

            return notices.run(args)
        if args.command == "survey":
            from ledgerguard import survey

            return survey.run(args)
        if args.command == "backup":
            from ledgerguard import backup

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
